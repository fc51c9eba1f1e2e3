"""Gradient surgery (PCGrad + GTN), the aggregator hook of the trainer, and the Adam-then-L-BFGS
round protocol."""

from __future__ import annotations

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from adapinn.experiments.config import build_config
from adapinn.experiments.fit import fit
from adapinn.samplers import Fixed
from adapinn.samplers.rad import RAD
from adapinn.train import rounds
from adapinn.train.trainer import Trainer
from adapinn.weighting import FixedWeights
from adapinn.weighting.surgery import (
    GTNState,
    PCGrad,
    Sum,
    flatten_stacked,
    gtn_normalise,
    project_conflicts,
)
from tests.test_weighting import make_trainer, small_net, transport_problem


def random_grads(key: int, k: int = 2, p: int = 50) -> jax.Array:
    return jax.random.normal(jax.random.key(key), (k, p))


project = jax.jit(project_conflicts)


# ---------------------------------------------------------------- PCGrad


@pytest.mark.parametrize("seed", range(5))
def test_pcgrad_leaves_no_conflict_between_two_terms(seed):
    grads = random_grads(seed)
    grads = grads.at[1].set(-grads[0] + 0.3 * grads[1])  # make them conflict
    assert float(grads[0] @ grads[1]) < 0
    projected = project(grads, jax.random.key(seed))
    for i, j in [(0, 1), (1, 0)]:
        assert float(projected[i] @ grads[j]) == pytest.approx(0.0, abs=1e-4)
    total = projected.sum(axis=0)
    assert all(float(total @ g) >= -1e-5 for g in grads)  # no term is made worse to first order


def test_pcgrad_is_identity_without_conflict():
    base = jnp.abs(random_grads(0, k=3))  # all entries positive: every inner product > 0
    projected = project(base, jax.random.key(1))
    np.testing.assert_array_equal(projected, base)
    stacked = {"w": base.reshape(3, 5, 10), "b": None}
    total, _ = PCGrad(gtn=False).aggregate(stacked, GTNState(jnp.zeros(3), jnp.asarray(0)),
                                           jax.random.key(2))
    np.testing.assert_allclose(total["w"], base.sum(axis=0).reshape(5, 10), rtol=1e-6)
    assert total["b"] is None


def test_pcgrad_projects_only_the_conflicting_component():
    g1, g2 = jnp.asarray([1.0, 0.0]), jnp.asarray([-1.0, 1.0])
    projected = project(jnp.stack([g1, g2]), jax.random.key(0), eps=0.0)
    np.testing.assert_allclose(projected[0], g1 - (-1.0 / 2.0) * g2, rtol=1e-6)  # [0.5, 0.5]
    np.testing.assert_allclose(projected[1], g2 - (-1.0 / 1.0) * g1, rtol=1e-6)  # [0, 1]


def test_flatten_stacked_round_trip():
    stacked = {"a": jnp.arange(12.0).reshape(2, 2, 3), "b": jnp.ones((2, 4)), "c": None}
    matrix, unflatten = flatten_stacked(stacked)
    assert matrix.shape == (2, 10)
    back = unflatten(matrix[1])
    np.testing.assert_array_equal(back["a"], stacked["a"][1])
    np.testing.assert_array_equal(back["b"], stacked["b"][1])
    assert back["c"] is None


# ---------------------------------------------------------------- GTN


def test_gtn_divides_by_the_bias_corrected_ema_of_the_norm():
    grads = jnp.asarray([[3.0, 4.0], [0.0, 0.1]])  # norms 5 and 0.1
    state = GTNState(jnp.zeros(2), jnp.asarray(0, jnp.int32))
    first, state = gtn_normalise(grads, state, momentum=0.99, eps=0.0)
    np.testing.assert_allclose(jnp.linalg.norm(first, axis=1), [1.0, 1.0], rtol=1e-5)
    second, state = gtn_normalise(2 * grads, state, momentum=0.99, eps=0.0)
    ema = 0.99 * 0.01 * jnp.asarray([5.0, 0.1]) + 0.01 * jnp.asarray([10.0, 0.2])
    np.testing.assert_allclose(state.ema, ema, rtol=1e-5)
    corrected = ema / (1 - 0.99**2)
    np.testing.assert_allclose(jnp.linalg.norm(second, axis=1),
                               jnp.asarray([10.0, 0.2]) / corrected, rtol=1e-5)
    assert int(state.count) == 2


# ---------------------------------------------------------------- the trainer hook


def test_sum_aggregator_path_equals_the_default_step():
    """Per-term gradients stacked by jacrev and summed == the plain loss gradient."""
    plain = make_trainer(FixedWeights(weights={"ic": 3.0}))
    summed = make_trainer(FixedWeights(weights={"ic": 3.0}), aggregator=Sum())
    state = plain.init(small_net(), jax.random.key(1))
    a, metrics_a = eqx.filter_jit(plain.step)(state)
    b, metrics_b = eqx.filter_jit(summed.step)(summed.init(small_net(), jax.random.key(1)))
    np.testing.assert_allclose(metrics_a["loss"], metrics_b["loss"], rtol=1e-6)
    for x, y in zip(jax.tree_util.tree_leaves(eqx.filter(a.model, eqx.is_array)),
                    jax.tree_util.tree_leaves(eqx.filter(b.model, eqx.is_array))):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)


def test_pcgrad_training_run():
    trainer = make_trainer(FixedWeights(), lr=3e-3, aggregator=PCGrad())
    state = trainer.init(small_net(), jax.random.key(1))
    batches = trainer.sample(state, jax.random.key(5))
    before = sum(trainer.term_losses(state.model, batches).values())
    state, metrics, first_bad = eqx.filter_jit(lambda t, s: t.run(s, 40))(trainer, state)
    after = sum(trainer.term_losses(state.model, batches).values())
    assert int(first_bad) == -1 and float(after) < float(before)
    agg_state = state.opt_state[0]
    assert int(agg_state.count) == 40 and bool(jnp.all(agg_state.ema > 0))


def test_gtn_cancels_a_constant_term_weight():
    """Why the combination is checked: GTN of (100 g_1, g_2) equals GTN of (g_1, g_2)."""
    grads = jax.random.normal(jax.random.key(3), (2, 7))
    state = PCGrad().init_state(2)
    plain, _ = gtn_normalise(grads, state, momentum=0.99, eps=0.0)
    weighted, _ = gtn_normalise(grads * jnp.asarray([[100.0], [1.0]]), state, 0.99, eps=0.0)
    np.testing.assert_allclose(weighted, plain, rtol=1e-5)


def test_gtn_refuses_fixed_term_ratios_and_warns_for_term_balancing(caplog):
    from adapinn.errors import ConfigError
    from adapinn.weighting import Causal, GradNorm
    from adapinn.weighting.chain import Chain

    with pytest.raises(ConfigError, match="gtn=false"):
        make_trainer(FixedWeights({"ic": 100.0}), aggregator=PCGrad())
    with pytest.raises(ConfigError, match="cancels the fixed term weights"):
        make_trainer(Chain((Causal(), FixedWeights({"ic": 100.0}))), aggregator=PCGrad())
    make_trainer(FixedWeights({"ic": 100.0}), aggregator=PCGrad(gtn=False))  # weights kept
    make_trainer(FixedWeights(), aggregator=PCGrad())  # uniform: nothing to cancel
    with caplog.at_level("WARNING", logger="adapinn.weighting.surgery"):
        make_trainer(Causal(), aggregator=PCGrad())
        assert not caplog.records  # point-level weights keep their ratios
        make_trainer(GradNorm(), aggregator=PCGrad())
    assert "trains like GTN alone" in caplog.text
    with pytest.raises(ConfigError, match="gtn=false"):  # from a config, as a user writes it
        from adapinn.experiments.build import build
        build(build_config({"weighting": {"name": "fixed", "weights": {"ic": 100.0}},
                            "aggregator": {"name": "pcgrad"},
                            "network": {"width": 8, "depth": 1}}), with_reference=False)


def test_aggregator_from_config():
    from adapinn.experiments.registry import build_aggregator

    assert build_aggregator(build_config({})) is None  # "sum": the one-backward-pass path
    agg = build_aggregator(build_config({"aggregator": {"name": "pcgrad", "gtn": False}}))
    assert isinstance(agg, PCGrad) and agg.gtn is False


# ---------------------------------------------------------------- rounds


def test_rounds_refresh_the_samplers_only_at_the_end_of_a_round():
    problem = transport_problem()
    samplers = {"pde": RAD(problem.conditions["pde"].domain, 32, set_size=32, pool_size=256,
                           refresh_every=1),
                "ic": Fixed(problem.conditions["ic"].domain, 8, size=8)}
    trainer = Trainer(problem, samplers, FixedWeights(), optax.adam(1e-3),
                      refresh_samplers=False)
    initial = trainer.init(small_net(), jax.random.key(0))
    state, _ = eqx.filter_jit(trainer.step)(initial)  # RAD is due, but rounds refresh instead
    np.testing.assert_array_equal(state.sampler_states["pde"].points,
                                  initial.sampler_states["pde"].points)
    refreshed = rounds.refresh_samplers(trainer, state, jax.random.key(4))
    assert not bool(jnp.all(refreshed.sampler_states["pde"].points ==
                            state.sampler_states["pde"].points))
    np.testing.assert_array_equal(refreshed.sampler_states["ic"], state.sampler_states["ic"])


def test_fit_with_rounds_sa_and_pcgrad_logs_rounds_and_weights(tmp_path):
    """fit with rounds on a toy problem: L-BFGS rows per round, SA weights logged and grown."""
    config = build_config({
        "network": {"width": 8, "depth": 2},
        "sampler": {"name": "fixed", "size": 32},
        "weighting": {"name": "sa"}, "aggregator": {"name": "pcgrad"},
        "rounds": {"enabled": True, "adam_steps": 20, "lbfgs_steps": 10},
        "train": {"steps": 40, "batch_size": 32, "condition_batch_size": 8, "eval_every": 10,
                  "checkpoint_every": 20, "scan_steps": 10},
    })
    summary = fit(config, tmp_path / "run", progress=False, problem=transport_problem())
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
            .splitlines()]
    lbfgs = [r for r in rows if r["phase"] == "lbfgs"]
    assert [r["round"] for r in lbfgs] == [1, 2] and [r["step"] for r in lbfgs] == [20, 40]
    assert all(0 < r["lbfgs_iters"] <= 10 for r in lbfgs)
    adam = [r for r in rows if r["phase"] == "adam"]
    for row in lbfgs:  # L-BFGS lowers the (unweighted) loss of the round's fixed set
        before = next(r for r in adam if r["step"] == row["step"])
        assert row["loss_pde"] + row["loss_ic"] < before["loss_pde"] + before["loss_ic"]
    assert all(r["weight_pde"] > 1.0 and r["weight_ic"] > 1.0 for r in adam)  # lambda ascends
    assert np.isfinite(summary["rel_l2"])
    assert (tmp_path / "run" / "plots" / "weights.png").exists()
