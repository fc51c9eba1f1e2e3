"""Loss weighting: a conformance suite over every registered scheme, then each scheme's
defining property, then a short training run per family."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from adapinn.experiments.build import build
from adapinn.experiments.config import ConfigError, NetworkConfig, build_config
from adapinn.experiments.registry import WEIGHTINGS, weighting_from_spec
from adapinn.nn import build_network
from adapinn.problems.base import Condition, Problem
from adapinn.problems.derivatives import first_derivative
from adapinn.problems.domains import Box
from adapinn.samplers import Fixed, Uniform, unit_weights
from adapinn.train.trainer import Trainer
from adapinn.weighting import (
    NTK,
    Causal,
    EMABalance,
    GradNorm,
    PointwiseGradNorm,
    SelfAdaptive,
    WeightingContext,
    global_norm,
)
from adapinn.weighting.causal import causal_chunk_weights, time_chunks
from adapinn.weighting.pointgrads import point_jacobian_sq_norms, squared_residual_fn
from adapinn.weighting.pointwise_gradnorm import inverse_norm_weights

N_PDE, N_IC = 48, 12
SPECS = {"chain": {"schemes": [{"name": "gradnorm", "every": 1}, {"name": "causal"}]}}
"""Options for registered schemes that have no all-default construction."""


def example(name: str):
    """The registered scheme `name`, built from a config spec as a user would."""
    return weighting_from_spec({"name": name, **SPECS.get(name, {})})


def transport_problem(scale: float = 1.0) -> Problem:
    """scale (u_t + u_x) = 0 on [0,1] x [-1,1], u(0, x) = sin(pi x): a cheap two-term (t, x)
    problem; `scale` makes the PDE term's gradient dominate."""

    def pde(u, x):
        _, u_t = first_derivative(u, x, 0)
        _, u_x = first_derivative(u, x, 1)
        return scale * (u_t + u_x)

    def ic(u, x):
        return u(x) - jnp.sin(jnp.pi * x[1])

    return Problem(
        name="transport", domain=Box((0.0, -1.0), (1.0, 1.0)),
        conditions={"pde": Condition(Box((0.0, -1.0), (1.0, 1.0)), pde),
                    "ic": Condition(Box((0.0, -1.0), (0.0, 1.0)), ic)},
        input_names=("t", "x"), exact=lambda x: jnp.sin(jnp.pi * (x[1] - x[0])),
    )


def small_net(key: int = 0) -> eqx.Module:
    return build_network(NetworkConfig(width=8, depth=2), 2, 1, (), jax.random.key(key))


def make_trainer(weighting, lr: float = 1e-3, scale: float = 1.0, **kw) -> Trainer:
    """The transport problem on fixed sets that are whole batches (every scheme accepts it)."""
    problem = transport_problem(scale)
    samplers = {"pde": Fixed(problem.conditions["pde"].domain, N_PDE, size=N_PDE),
                "ic": Fixed(problem.conditions["ic"].domain, N_IC, size=N_IC)}
    return Trainer(problem, samplers, weighting, optax.adam(lr), **kw)


def batches_of(trainer: Trainer, state) -> dict:
    return trainer.sample(state, jax.random.key(5))


def context_of(trainer: Trainer, model, batches, step: int = 0) -> WeightingContext:
    squared = {n: trainer.problem.residuals(model, n, b.points) for n, b in batches.items()}
    return trainer.context(model, batches, squared, jnp.asarray(step, jnp.int32))


def probe(trainer: Trainer, fn, step: int = 0, key: int = 1) -> Any:
    """`fn(context, weighting_state)` on a fresh state's batches, inside one jit (fast)."""
    state = trainer.init(small_net(), jax.random.key(key))

    @eqx.filter_jit
    def run(model, batches, w_state):
        return fn(context_of(trainer, model, batches, step), w_state)

    return run(state.model, batches_of(trainer, state), state.weighting_state)


def signature(tree: Any) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, [(jnp.shape(x), jnp.result_type(x), getattr(x, "weak_type", False))
                     for x in leaves]


# ---------------------------------------------------------------- conformance suite


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_conformance(name):
    """State structure and dtypes unchanged, weights finite and >= 0, compiles once."""
    trainer = make_trainer(example(name))
    state = trainer.init(small_net(), jax.random.key(1))
    batches = batches_of(trainer, state)
    traces = []

    @eqx.filter_jit
    def update(model, batches, w_state, step):
        traces.append(1)
        squared = {n: trainer.problem.residuals(model, n, b.points) for n, b in batches.items()}
        weights, new = trainer.weighting.update(w_state, trainer.context(model, batches,
                                                                          squared, step))
        return weights, new

    w_state = state.weighting_state
    for step in range(3):
        moved = {n: unit_weights(b.points * 0.9) for n, b in batches.items()}
        weights, new_state = update(state.model, moved, w_state, jnp.asarray(step, jnp.int32))
        assert signature(new_state) == signature(w_state)
        assert set(weights) == set(trainer.names)
        for n, w in weights.items():
            assert jnp.shape(w) in [(), (batches[n].points.shape[0],)], (n, jnp.shape(w))
            assert bool(jnp.all(jnp.isfinite(w))) and bool(jnp.all(w >= 0)), (n, w)
        w_state = new_state
    assert len(traces) == 1
    if trainer.weighting.trainable:
        grads = jax.tree_util.tree_map(jnp.ones_like, w_state)
        assert signature(trainer.weighting.ascend(w_state, grads)) == signature(w_state)


def test_every_scheme_builds_from_config():
    for name in WEIGHTINGS:
        config = build_config({"weighting": {"name": name, **SPECS.get(name, {})},
                               "sampler": {"name": "fixed", "size": 64},
                               "network": {"width": 8, "depth": 1}, "train": {"batch_size": 64}})
        run = build(config, with_reference=False)
        assert type(run.trainer.weighting) is WEIGHTINGS[name]


# ---------------------------------------------------------------- term-level schemes


@pytest.mark.parametrize("mode", ["mean", "sum"])
def test_gradnorm_equalises_weighted_gradient_norms(mode):
    """After one refresh (momentum 0): w_k ||grad L_k|| = mean_j (or sum_j) ||grad L_j||."""
    trainer = make_trainer(GradNorm(every=1, momentum=0.0, normalisation=mode, floor=1e-9),
                           scale=20.0)

    def fn(context, w_state):
        norms = {n: global_norm(g) for n, g in context.term_gradients().items()}
        return norms, trainer.weighting.update(w_state, context)[0]

    norms, weights = probe(trainer, fn)
    norms = {n: float(v) for n, v in norms.items()}
    assert max(norms.values()) > 2 * min(norms.values())  # a real imbalance to remove
    weighted = [float(weights[n]) * norms[n] for n in norms]
    expected = np.mean(list(norms.values())) if mode == "mean" else sum(norms.values())
    np.testing.assert_allclose(weighted, [expected] * len(weighted), rtol=1e-5)


def test_gradnorm_paper_rule_balances_mean_entries_against_the_residual_max():
    """Algorithm 1 of Wang, Teng, Perdikaris 2021: w_hat_k = max|grad L_r| / mean|grad L_k|
    over parameter entries, w_r = 1; so mean|w_k grad L_k| = max|grad L_r| afterwards."""
    trainer = make_trainer(GradNorm(every=1, momentum=0.0, normalisation="paper", floor=1e-9),
                           scale=20.0)

    def fn(context, w_state):
        return context.term_gradients(), trainer.weighting.update(w_state, context)[0]

    grads, weights = probe(trainer, fn)
    flat = {n: np.abs(np.asarray(ravel_pytree(g)[0])) for n, g in grads.items()}
    assert float(weights["pde"]) == 1.0
    top = flat["pde"].max()
    np.testing.assert_allclose(float(weights["ic"]), top / flat["ic"].mean(), rtol=1e-5)
    np.testing.assert_allclose(float(weights["ic"]) * flat["ic"].mean(), top, rtol=1e-5)
    # the rule differs from the mean-of-norms one: max|.| / mean|.| is not a ratio of norms
    norms = {n: np.linalg.norm(v) for n, v in flat.items()}
    assert abs(float(weights["ic"]) - np.mean(list(norms.values())) / norms["ic"]) > 0.1


def test_gradnorm_paper_rule_needs_the_residual_term():
    with pytest.raises(ConfigError, match="residual term 'pde'"):
        GradNorm(normalisation="paper").init(["interior", "ic"])
    GradNorm(normalisation="paper", residual_term="interior").init(["interior", "ic"])


@pytest.mark.parametrize("scheme", [
    GradNorm(every=1, momentum=0.0), GradNorm(every=1, momentum=0.0, normalisation="sum"),
    GradNorm(every=1, momentum=0.0, normalisation="paper"), EMABalance(every=1)],
    ids=["gradnorm-mean", "gradnorm-sum", "gradnorm-paper", "ema_balance"])
def test_a_term_with_an_exactly_zero_gradient_gets_a_bounded_weight(scheme):
    """Relative floor a / (b + 1e-5 a): a zero gradient gives weight 1e5 (not 1e12 x noise);
    the other terms keep the formula's value to 1e-5."""
    weights, _ = scheme.update(scheme.init(["pde", "ic"]),
                               fake_context(0, {"pde": 3.0, "ic": 0.0}))
    assert np.isfinite(float(weights["ic"]))
    np.testing.assert_allclose(float(weights["ic"]), 1e5, rtol=1e-6)
    assert float(weights["pde"]) <= 2.0  # mean 1.5 / 3, sum 3 / 3, paper 1, EMA 0.5


def test_ntk_zero_trace_is_floored_and_all_zero_traces_give_unit_weights():
    ntk = NTK(floor=1e-5)
    weights = ntk.target_weights({"pde": jnp.asarray(4.0), "ic": jnp.asarray(0.0)})
    np.testing.assert_allclose(float(weights["ic"]), 1e5, rtol=1e-6)
    np.testing.assert_allclose(float(weights["pde"]), 2.0 / (4.0 + 2e-5), rtol=1e-6)
    flat = ntk.target_weights({"pde": jnp.asarray(0.0), "ic": jnp.asarray(0.0)})
    assert float(flat["pde"]) == float(flat["ic"]) == 1.0  # nothing to balance: no 0 / 0


def test_ntk_weights_equalise_traces():
    """w_k tr(K_k) = mean_j tr(K_j) after one refresh with momentum 0."""
    trainer = make_trainer(NTK(every=1, momentum=0.0, chunk=16, floor=1e-9), scale=20.0)
    traces, weights = probe(trainer, lambda context, w_state: (
        trainer.weighting.traces(context), trainer.weighting.update(w_state, context)[0]))
    traces = {n: float(t) for n, t in traces.items()}
    assert traces["pde"] > 10 * traces["ic"]  # a real imbalance to remove
    weighted = [float(weights[n]) * traces[n] for n in traces]
    np.testing.assert_allclose(weighted, [np.mean(list(traces.values()))] * 2, rtol=1e-5)


def test_ntk_moving_average_and_cadence():
    trainer = make_trainer(NTK(every=3, momentum=0.9))
    old = {"pde": jnp.asarray(2.0), "ic": jnp.asarray(3.0)}

    def fn(context, w_state):
        target = trainer.weighting.target_weights(trainer.weighting.traces(context))
        return target, trainer.weighting.update(old, context)[0]

    _, held = probe(trainer, fn, step=1)
    assert float(held["pde"]) == 2.0 and float(held["ic"]) == 3.0  # step 1: no refresh
    target, new = probe(trainer, fn, step=3)
    np.testing.assert_allclose(float(new["pde"]), 0.9 * 2.0 + 0.1 * float(target["pde"]),
                               rtol=1e-6)


@pytest.mark.parametrize("chunk", [1, 7, 16])
def test_chunked_trace_equals_unchunked_and_explicit_jacobian(chunk):
    trainer = make_trainer(NTK())

    def fn(context, w_state):
        f, points = context.point_residual("pde"), context.points["pde"]
        flat, unravel = ravel_pytree(context.params)
        jac = jax.jacrev(lambda v: jax.vmap(lambda x: f(unravel(v), x))(points))(flat)
        return (point_jacobian_sq_norms(f, context.params, points, chunk),
                point_jacobian_sq_norms(f, context.params, points, None), jac)

    chunked, whole, jac = probe(trainer, fn)
    assert jac.shape[:2] == (N_PDE, 1) and jac.shape[2] > 100  # the materialised (n, m, P) Jacobian
    np.testing.assert_allclose(chunked, whole, rtol=1e-5)
    np.testing.assert_allclose(chunked, jnp.sum(jac**2, axis=(1, 2)), rtol=1e-4)


def fake_context(step: int, scale: dict[str, float]) -> WeightingContext:
    """A context whose term gradients have norms `scale[k]` (3-vectors (0.6, 0.8, 0) * s)."""
    direction = jnp.asarray([0.6, 0.8, 0.0])
    return WeightingContext(
        step=jnp.asarray(step, jnp.int32),
        squared_residuals={n: jnp.ones(4) for n in scale},
        points={n: jnp.zeros((4, 2)) for n in scale},
        term_gradients=lambda: {n: {"w": s * direction} for n, s in scale.items()},
    )


def test_ema_balance_tracks_the_ema_formula():
    """g_hat <- 0.999 g_hat + 0.001 ||grad L_k||; at rebalancing w_k = mean_j g_hat_j / g_hat_k,
    held in between."""
    scheme = EMABalance(alpha=0.999, every=2, floor=1e-9)
    state = scheme.init(["pde", "ic"])
    ema = {"pde": 0.0, "ic": 0.0}
    weights = {"pde": 1.0, "ic": 1.0}
    for step in range(5):
        scale = {"pde": 10.0 * (step + 1), "ic": 0.5}
        new_weights, state = scheme.update(state, fake_context(step, scale))
        ema = {n: 0.999 * ema[n] + 0.001 * scale[n] for n in ema}
        if step % 2 == 0:
            mean = (ema["pde"] + ema["ic"]) / 2
            weights = {n: mean / ema[n] for n in ema}
        for n in ema:
            np.testing.assert_allclose(float(state["ema"][n]), ema[n], rtol=1e-5)
            np.testing.assert_allclose(float(new_weights[n]), weights[n], rtol=1e-5)
    # balanced: the weighted EMA gradient scales are equal
    assert abs(weights["pde"] * ema["pde"] - weights["ic"] * ema["ic"]) < 1e-6


# ---------------------------------------------------------------- causal


def causal_context(t: jax.Array, squared: jax.Array,
                   importance: jax.Array | None = None) -> WeightingContext:
    points = jnp.stack([t, jnp.zeros_like(t)], axis=1)
    return WeightingContext(
        step=jnp.asarray(0), squared_residuals={"pde": squared, "ic": jnp.ones(3)},
        points={"pde": points, "ic": jnp.zeros((3, 2))}, term_gradients=lambda: {},
        importance=None if importance is None else {"pde": importance, "ic": jnp.ones(3)},
    )


UNIT = jnp.asarray([0.0, 1.0])  # the state of a causal scheme on t in [0, 1]


def test_causal_weights_non_increasing_in_time():
    key_t, key_r = jax.random.split(jax.random.key(0))
    t = jax.random.uniform(key_t, (320,))
    squared = jax.random.uniform(key_r, (320,)) * 0.1
    scheme = Causal(n_chunks=32, tol=1.0)
    weights, _ = jax.jit(scheme.update)(scheme.init(["pde", "ic"]), causal_context(t, squared))
    ordered = weights["pde"][jnp.argsort(t)]
    assert bool(jnp.all(jnp.diff(ordered) <= 0))
    assert float(ordered[0]) == 1.0 and float(ordered[-1]) < 0.5
    assert float(weights["ic"]) == 1.0


def test_causal_slabs_have_fixed_edges_from_the_time_interval():
    t = jnp.asarray([0.0, 0.5, 0.99, 1.0, 1.5, 2.0])
    np.testing.assert_array_equal(time_chunks(t, 4, jnp.asarray([0.0, 2.0])),
                                  [0, 1, 1, 2, 3, 3])  # t_1 itself in the last slab


def test_causal_weights_reach_one_when_earlier_chunks_are_solved():
    t = jnp.linspace(0.0, 1.0, 320)
    squared = jnp.where(t < 0.5, 0.0, 1.0)
    scheme = Causal(n_chunks=32, tol=1.0)
    weights = scheme.update(UNIT, causal_context(t, squared))[0]["pde"]
    np.testing.assert_array_equal(weights[t < 0.5], 1.0)
    first_unsolved = int(jnp.argmax(t >= 0.5))
    assert float(weights[first_unsolved]) == 1.0  # nothing unsolved before its chunk
    per_chunk = causal_chunk_weights(squared, time_chunks(t, 32, UNIT), 32, 1.0)
    np.testing.assert_allclose(per_chunk[16:], jnp.exp(-jnp.arange(16.0)), rtol=1e-6)


def test_causal_weights_do_not_depend_on_where_the_sampler_puts_its_points():
    """The same residual field seen through two batches: a uniform grid (q = 1) and one that
    doubles every point with t < 0.5 at half the importance each (what a sampler crowding
    early times does). Per-slab losses, hence the weights at each time, are identical; the
    old equal-count-by-rank chunks moved with the crowding."""
    t = (jnp.arange(256) + 0.5) / 256
    field = lambda s: 0.2 + jnp.sin(3.0 * s) ** 2  # noqa: E731
    early = t < 0.5
    t2 = jnp.concatenate([t, t[early]])
    q2 = jnp.concatenate([jnp.where(early, 0.5, 1.0), jnp.full(int(early.sum()), 0.5)])
    scheme = Causal(n_chunks=16, tol=2.0)
    w1 = scheme.update(UNIT, causal_context(t, field(t)))[0]["pde"]
    w2 = scheme.update(UNIT, causal_context(t2, field(t2), q2))[0]["pde"]
    np.testing.assert_allclose(w2[:256], w1, rtol=1e-6)
    np.testing.assert_allclose(w2[256:], w1[early], rtol=1e-6)
    # without the importance weights the crowded slabs would still agree (their points are
    # the same field), but the rank rule would not: 16 equal-count chunks of t2
    ranks = jnp.argsort(jnp.argsort(t2)) * 16 // t2.shape[0]
    rank_rule = causal_chunk_weights(field(t2), ranks, 16, 2.0)[ranks]
    assert float(jnp.max(jnp.abs(rank_rule[:256] - w1))) > 1e-2


def test_causal_importance_weights_enter_the_slab_losses():
    t = jnp.asarray([0.1, 0.2, 0.6, 0.7])  # two slabs of [0, 1]
    squared = jnp.asarray([1.0, 3.0, 0.0, 0.0])
    q = jnp.asarray([3.0, 1.0, 1.0, 1.0])
    w = Causal(n_chunks=2, tol=1.0).update(UNIT, causal_context(t, squared, q))[0]["pde"]
    np.testing.assert_allclose(w[2:], np.exp(-(3.0 * 1 + 1.0 * 3) / 4.0), rtol=1e-6)


def test_causal_empty_slabs_are_masked():
    """Points in slabs 0 and 2 of 4 only: slab 1 adds nothing, the weights stay finite."""
    t = jnp.asarray([0.1, 0.15, 0.6, 0.65])
    squared = jnp.asarray([1.0, 1.0, 2.0, 2.0])
    per_chunk = causal_chunk_weights(squared, time_chunks(t, 4, UNIT), 4, 1.0)
    assert bool(jnp.all(jnp.isfinite(per_chunk)))
    np.testing.assert_allclose(per_chunk, np.exp(-np.asarray([0.0, 1.0, 1.0, 3.0])), rtol=1e-6)


def test_causal_reads_the_time_interval_from_the_domain():
    problem = transport_problem()
    long = {"pde": Uniform(Box((0.0, -1.0), (2.5, 1.0)), 8),
            "ic": Uniform(problem.conditions["ic"].domain, 4)}
    np.testing.assert_allclose(Causal().init_for(long), [0.0, 2.5])
    with pytest.raises(ConfigError, match="no extent along time_axis 0"):
        Causal(term="ic").init_for(long)  # the ic face has t fixed
    with pytest.raises(ConfigError, match="time_axis 5"):
        Causal(time_axis=5).init_for(long)


def test_causal_rejects_an_unknown_term():
    with pytest.raises(ConfigError, match="not a condition"):
        Causal(term="res").init(["pde", "ic"])


# ---------------------------------------------------------------- point-level schemes


def test_inverse_norm_weights_formula_and_floor():
    norms = jnp.asarray([1e-3, 1.0, 2.0, 3.0])
    weights = inverse_norm_weights(norms, floor=0.5)
    floored = np.maximum(np.asarray(norms), 0.5 * float(jnp.mean(norms)))
    expected = (1 / floored) / np.mean(1 / floored)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    assert float(jnp.mean(weights)) == pytest.approx(1.0)


def explicit_grad_norms(fn, params, points: jax.Array) -> jax.Array:
    """||d f(x_i)/d theta|| for a scalar f, from the flattened (n, P) gradient matrix."""
    flat, unravel = ravel_pytree(params)
    grads = jax.vmap(lambda x: jax.grad(lambda f: fn(unravel(f), x)[0])(flat))(points)
    return jnp.linalg.norm(grads, axis=1)


def test_pointwise_gradnorm_mean_one_and_floor():
    scheme = PointwiseGradNorm(floor=0.9, chunk=16)
    trainer = make_trainer(scheme)

    def fn(context, w_state):
        nu = {n: explicit_grad_norms(squared_residual_fn(context.point_residual(n)),
                                     context.params, context.points[n]) for n in context.points}
        return scheme.update((), context)[0], nu

    weights, norms = probe(trainer, fn)
    for name in ("pde", "ic"):
        w, nu = weights[name], norms[name]
        assert float(jnp.mean(w)) == pytest.approx(1.0, rel=1e-5)
        below = nu < 0.9 * jnp.mean(nu)
        assert bool(jnp.any(below)), "the test needs points under the floor"
        np.testing.assert_allclose(w[below], jnp.max(w), rtol=1e-5)  # capped, all equal
        above = ~below
        np.testing.assert_allclose(w[above] * nu[above], w[above][0] * nu[above][0], rtol=1e-4)


def test_pointwise_gradnorm_only_weights_chosen_terms():
    scheme = PointwiseGradNorm(terms=("pde",))
    weights = probe(make_trainer(scheme), lambda context, _: scheme.update((), context)[0])
    assert jnp.shape(weights["pde"]) == (N_PDE,) and float(weights["ic"]) == 1.0
    with pytest.raises(ConfigError, match="not conditions"):
        PointwiseGradNorm(terms=("bc",)).init(["pde", "ic"])


def test_pointwise_gradnorm_refresh_cadence_holds_weights_between_refreshes():
    """every=3: the weights of step 0 are held on steps 1-2 (while the network moves) and
    recomputed on step 3; the held weights are those of a fresh computation at step 0."""
    scheme = PointwiseGradNorm(every=3)
    trainer = make_trainer(scheme, lr=1e-2)
    state = trainer.init(small_net(), jax.random.key(1))
    assert set(state.weighting_state) == {"pde", "ic"}
    fresh = probe(trainer, lambda context, _: PointwiseGradNorm().update((), context)[0])
    run = eqx.filter_jit(lambda t, s: t.run(s, 1))
    held = []
    for _ in range(4):
        state, _, _ = run(trainer, state)
        held.append(state.weighting_state["pde"])
    np.testing.assert_allclose(held[0], fresh["pde"], rtol=1e-5)
    np.testing.assert_array_equal(held[1], held[0])
    np.testing.assert_array_equal(held[2], held[0])
    assert float(jnp.max(jnp.abs(held[3] - held[0]))) > 1e-4  # recomputed for the new network
    assert float(jnp.mean(held[3])) == pytest.approx(1.0, rel=1e-5)


def test_pointwise_gradnorm_cadence_needs_fixed_sets():
    problem = transport_problem()
    pde, ic = problem.conditions["pde"].domain, problem.conditions["ic"].domain
    samplers = {"pde": Uniform(pde, 32), "ic": Fixed(ic, 8, size=8)}
    with pytest.raises(ConfigError, match="'pointwise_gradnorm'.*needs the 'fixed' sampler"):
        Trainer(problem, samplers, PointwiseGradNorm(every=10),
                optax.adam(1e-3)).init(small_net(), jax.random.key(0))
    Trainer(problem, samplers, PointwiseGradNorm(), optax.adam(1e-3)).init(  # every=1: any
        small_net(), jax.random.key(0))


# ---------------------------------------------------------------- SA-PINN


def test_sa_gradient_hook_is_dL_dlambda_and_ascends():
    """The trainer's hook hands SA dL/dlambda_i = 2 lambda_i r_i^2 / n, and lambda ascends."""
    trainer = make_trainer(SelfAdaptive(init_value=0.7))
    state = trainer.init(small_net(), jax.random.key(1))
    batches = batches_of(trainer, state)
    grads = eqx.filter_jit(eqx.filter_grad(
        lambda w: trainer.loss(state.model, batches, w, state.step)[0]))(state.weighting_state)
    for n, b in batches.items():
        r2 = trainer.problem.residuals(state.model, n, b.points)
        np.testing.assert_allclose(grads["lambda"][n], 2 * 0.7 * r2 / r2.shape[0], rtol=1e-5)
    new_state, _ = eqx.filter_jit(trainer.step)(state)
    for n in batches:
        step = new_state.weighting_state["lambda"][n] - 0.7
        assert bool(jnp.all(step > 0))  # ascent: every lambda with r != 0 grows
        np.testing.assert_allclose(step, 5e-3, rtol=1e-3)  # Adam's first step: lr * sign(g)


@pytest.mark.parametrize("mask", ["square", "polynomial", "sigmoid"])
def test_sa_masks(mask):
    scheme = SelfAdaptive(mask=mask, power=3.0, scale=2.0)
    lam = jnp.asarray([-1.0, 0.5, 2.0])
    expected = {"square": lam**2, "polynomial": 2.0 * jnp.abs(lam) ** 3,
                "sigmoid": 2.0 * jax.nn.sigmoid(lam)}[mask]
    np.testing.assert_allclose(scheme.mask_fn(lam), expected, rtol=1e-6)


def test_sa_weights_grow_where_residuals_are_large():
    """On a sharp transition, after some steps lambda is largest where r stays large."""
    box = Box((-1.0,), (1.0,))
    problem = Problem(name="step", domain=box, conditions={
        "pde": Condition(box, lambda u, x: u(x) - jnp.tanh(x[0] / 0.05))})
    net = build_network(NetworkConfig(width=16, depth=2), 1, 1, (), jax.random.key(0))
    trainer = Trainer(problem, {"pde": Fixed(box, 30, size=30, design="lhs")}, SelfAdaptive(),
                      optax.adam(1e-3))
    state = trainer.init(net, jax.random.key(1))
    state, metrics, first_bad = eqx.filter_jit(lambda t, s: t.run(s, 150))(trainer, state)
    assert int(first_bad) == -1
    points = state.sampler_states["pde"][:, 0]
    lam = state.weighting_state["lambda"]["pde"]
    centre = jnp.abs(points) < 0.1
    assert float(jnp.mean(lam[centre])) > float(jnp.mean(lam[~centre]))
    r2 = problem.residuals(state.model, "pde", state.sampler_states["pde"])
    assert float(jnp.corrcoef(lam, r2)[0, 1]) > 0.3


def test_sa_needs_whole_fixed_sets():
    problem = transport_problem()
    pde, ic = problem.conditions["pde"].domain, problem.conditions["ic"].domain
    with pytest.raises(ConfigError, match="needs the 'fixed' sampler.*not Uniform"):
        Trainer(problem, {"pde": Uniform(pde, 32), "ic": Fixed(ic, 8, size=8)}, SelfAdaptive(),
                optax.adam(1e-3)).init(small_net(), jax.random.key(0))
    with pytest.raises(ConfigError, match="batch_size 16 < sampler.size 32"):
        Trainer(problem, {"pde": Fixed(pde, 16, size=32), "ic": Fixed(ic, 8, size=8)},
                SelfAdaptive(), optax.adam(1e-3)).init(small_net(), jax.random.key(0))


def test_sa_from_config_uses_fixed_condition_sets():
    ok = build_config({"weighting": {"name": "sa"}, "sampler": {"name": "fixed", "size": 64},
                       "network": {"width": 8, "depth": 1},
                       "train": {"batch_size": 64, "condition_batch_size": 16}})
    run = build(ok, with_reference=False)
    assert run.state.weighting_state["lambda"]["pde"].shape == (64,)
    assert run.state.weighting_state["lambda"]["ic"].shape == (16,)
    bad = build_config({"weighting": {"name": "sa"}, "sampler": {"name": "uniform"}})
    with pytest.raises(ConfigError, match="needs the 'fixed' sampler"):
        build(bad, with_reference=False)


# ---------------------------------------------------------------- short training runs


@pytest.mark.parametrize("name, options", [
    ("ntk", {"every": 5, "chunk": 16}), ("ema_balance", {"every": 5}),
    ("causal", {"n_chunks": 8}), ("pointwise_gradnorm", {}), ("sa", {}),
])
def test_short_training_run(name, options):
    """A few dozen steps through Trainer.run: finite loss, the weights move, the loss drops."""
    trainer = make_trainer(WEIGHTINGS[name](**options), lr=3e-3)
    state = trainer.init(small_net(), jax.random.key(1))
    before = trainer.term_losses(state.model, batches_of(trainer, state))
    weights_of = eqx.filter_jit(lambda t, s: t.loss(s.model, batches_of(t, s),
                                                     s.weighting_state, s.step)[1][1])
    start, w0 = state, weights_of(trainer, state)
    state, metrics, first_bad = eqx.filter_jit(lambda t, s: t.run(s, 40))(trainer, state)
    after = trainer.term_losses(state.model, batches_of(trainer, state))
    assert int(first_bad) == -1 and bool(jnp.isfinite(metrics["loss"]))
    assert sum(after.values()) < sum(before.values())
    assert all(bool(jnp.isfinite(w)) for w in metrics["weights"].values())
    # the loss weights moved (step 0 -> step 40, point by point), and so did the network
    w1 = weights_of(trainer, state)
    moved = [float(jnp.max(jnp.abs(w1[n] - w0[n]))) > 1e-3 * float(jnp.max(jnp.abs(w0[n])))
             for n in w0]
    assert any(moved), (w0, w1)
    assert not eqx.tree_equal(state.model, start.model)
