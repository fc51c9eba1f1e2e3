"""Chain: weights multiply, and a gradient-based scheme balances the loss weighted by the
schemes before it."""

import numpy as np
import pytest

from adapinn.experiments.config import ConfigError
from adapinn.experiments.registry import weighting_from_spec
from adapinn.weighting import Causal, FixedWeights, GradNorm, SelfAdaptive, global_norm
from adapinn.weighting.chain import Chain
from tests.test_weighting import make_trainer, probe


def test_chain_multiplies_the_weights_of_its_schemes():
    chain = Chain((FixedWeights({"ic": 3.0}), Causal(n_chunks=4, tol=5.0)))
    trainer = make_trainer(chain)
    alone = make_trainer(Causal(n_chunks=4, tol=5.0))

    def fn(context, w_state):
        return trainer.weighting.update(w_state, context)[0]

    both = probe(trainer, fn)
    causal = probe(alone, lambda c, s: alone.weighting.update(s, c)[0])
    np.testing.assert_allclose(both["pde"], causal["pde"], rtol=1e-6)
    np.testing.assert_allclose(both["ic"], 3.0 * causal["ic"], rtol=1e-6)


def test_gradnorm_after_fixed_balances_the_already_weighted_gradients():
    """w_final,k * ||grad L_k|| is equal across terms: grad-norm saw w_fixed * grad L_k."""
    trainer = make_trainer(
        Chain((FixedWeights({"ic": 4.0}), GradNorm(every=1, momentum=0.0))), scale=20.0)

    def fn(context, w_state):
        norms = {n: global_norm(g) for n, g in context.term_gradients().items()}
        return norms, trainer.weighting.update(w_state, context)[0]

    norms, weights = probe(trainer, fn)
    weighted = [float(weights[n]) * float(norms[n]) for n in norms]
    np.testing.assert_allclose(weighted, [weighted[0]] * len(weighted), rtol=1e-5)
    assert abs(float(weights["ic"]) / 4.0 - 1.0) > 0.1  # grad-norm did rebalance


def test_chain_builds_from_config_and_rejects_bad_specs():
    chain = weighting_from_spec({"name": "chain", "schemes": [{"name": "causal"},
                                                              {"name": "gradnorm"}]})
    assert [type(s) for s in chain.schemes] == [Causal, GradNorm]
    with pytest.raises(ConfigError, match="schemes"):
        weighting_from_spec({"name": "chain", "schemes": "causal"})
    with pytest.raises(ConfigError, match="unknown weighting 'magic'"):
        weighting_from_spec({"name": "chain", "schemes": [{"name": "magic"}]})
    with pytest.raises(ValueError, match="trainable"):
        Chain((SelfAdaptive(),))
