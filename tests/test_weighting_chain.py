"""Chain: weights multiply, and a gradient-based scheme balances the loss weighted by the
schemes before it."""

import numpy as np
import pytest

from adapinn.experiments.config import ConfigError
from adapinn.experiments.registry import weighting_from_spec
from adapinn.weighting import (
    NTK,
    Causal,
    FixedWeights,
    GradNorm,
    PointwiseGradNorm,
    SelfAdaptive,
    global_norm,
)
from adapinn.weighting.chain import Chain
from adapinn.weighting.pointgrads import point_jacobian_sq_norms
from adapinn.weighting.pointwise_gradnorm import inverse_norm_weights
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
        Chain((FixedWeights({"ic": 4.0}), GradNorm(every=1, momentum=0.0, floor=1e-9))),
        scale=20.0)

    def fn(context, w_state):
        norms = {n: global_norm(g) for n, g in context.term_gradients().items()}
        return norms, trainer.weighting.update(w_state, context)[0]

    norms, weights = probe(trainer, fn)
    weighted = [float(weights[n]) * float(norms[n]) for n in norms]
    np.testing.assert_allclose(weighted, [weighted[0]] * len(weighted), rtol=1e-5)
    assert abs(float(weights["ic"]) / 4.0 - 1.0) > 0.1  # grad-norm did rebalance


def test_ntk_in_a_chain_measures_the_kernel_of_the_earlier_weighted_residual():
    """[causal, ntk]: tr K_pde = mean_i w_causal,i ||d r_i / d theta||^2 (jaxpi's causal NTK),
    not the raw trace, and the final weights are w_causal * the NTK weights of those traces."""
    causal = Causal(n_chunks=4, tol=5.0)
    trainer = make_trainer(Chain((causal, NTK(every=1, momentum=0.0, floor=1e-9))), scale=5.0)

    def fn(context, w_state):
        f = context.point_residual("pde")
        raw = point_jacobian_sq_norms(f, context.params, context.points["pde"], None)
        raw_ic = point_jacobian_sq_norms(context.point_residual("ic"), context.params,
                                         context.points["ic"], None)
        w_causal = causal.update(w_state[0], context)[0]["pde"]
        return raw, raw_ic, w_causal, trainer.weighting.update(w_state, context)[0]

    raw, raw_ic, w_causal, weights = probe(trainer, fn)
    assert float(w_causal.min()) < 0.5  # the causal weights really vary
    traces = {"pde": float(np.mean(w_causal * raw)), "ic": float(np.mean(raw_ic))}
    mean = (traces["pde"] + traces["ic"]) / 2
    np.testing.assert_allclose(weights["pde"], w_causal * mean / traces["pde"], rtol=1e-4)
    np.testing.assert_allclose(float(weights["ic"]), mean / traces["ic"], rtol=1e-4)
    raw_mean = (float(np.mean(raw)) + traces["ic"]) / 2  # the old rule: the unweighted trace
    assert abs(float(weights["ic"]) - raw_mean / traces["ic"]) > 0.05 * float(weights["ic"])


def test_pointwise_gradnorm_in_a_chain_sees_the_earlier_weighted_points():
    """[causal, pointwise_gradnorm]: nu_i = w'_i ||d r_i^2 / d theta||."""
    causal = Causal(n_chunks=4, tol=5.0)
    pgn = PointwiseGradNorm(chunk=16)
    trainer = make_trainer(Chain((causal, pgn)))

    def fn(context, w_state):
        w_causal = causal.update(w_state[0], context)[0]["pde"]
        raw = pgn.point_norms(context, "pde")  # alone: no prior weights
        return w_causal, raw, trainer.weighting.update(w_state, context)[0]

    w_causal, raw, weights = probe(trainer, fn)
    expected = w_causal * inverse_norm_weights(w_causal * raw, pgn.floor)
    np.testing.assert_allclose(weights["pde"], expected, rtol=1e-4)
    unweighted = w_causal * inverse_norm_weights(raw, pgn.floor)
    assert float(np.max(np.abs(unweighted - expected))) > 1e-2


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
