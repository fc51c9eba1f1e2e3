"""R3 and causal R3 sampling, RBA weighting and their coupling, the sampler `observe` hook, and
the residual / error rank-correlation diagnostic: each method's defining property, then a
short end-to-end `adapinn.fit` on Burgers."""

from __future__ import annotations

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

import adapinn
from adapinn.errors import ConfigError
from adapinn.experiments.build import build
from adapinn.experiments.config import NetworkConfig
from adapinn.experiments.presets import resolve
from adapinn.nn import build_network
from adapinn.problems.base import Condition, Problem, ReferenceData
from adapinn.problems.derivatives import first_derivative
from adapinn.problems.domains import Box
from adapinn.samplers import R3, CausalR3, Fixed, Uniform
from adapinn.train.evaluate import relative_l2, residual_error_correlation, spearman
from adapinn.train.trainer import Trainer
from adapinn.weighting import RBA, SelfAdaptive, WeightingContext
from tests.conftest import TINY

BOX = Box((0.0, -1.0), (1.0, 1.0))  # (t, x)
N = 64


def ridge(points):
    """|r| field: a ridge at x = 0.3 on a small floor."""
    return jnp.exp(-20.0 * (points[:, 1] - 0.3) ** 2) + 0.01


def context(squared: dict, replaced: dict | None = None) -> WeightingContext:
    points = {n: jnp.zeros((r.shape[0], 2)) for n, r in squared.items()}
    return WeightingContext(step=jnp.asarray(0, jnp.int32), squared_residuals=squared,
                            points=points, term_gradients=lambda *a: {}, replaced=replaced)


def transport() -> Problem:
    """u_t + u_x = 0 on [0,1] x [-1,1], u(0, x) = sin(pi x)."""

    def pde(u, x):
        return first_derivative(u, x, 0)[1] + first_derivative(u, x, 1)[1]

    def ic(u, x):
        return u(x) - jnp.sin(jnp.pi * x[1])

    return Problem(name="transport", domain=BOX,
                   conditions={"pde": Condition(BOX, pde),
                               "ic": Condition(Box((0.0, -1.0), (0.0, 1.0)), ic)},
                   input_names=("t", "x"), exact=lambda x: jnp.sin(jnp.pi * (x[1] - x[0])))


def regression() -> Problem:
    """u = sin(pi (x - t)) as a residual without derivatives (cheap to compile)."""
    exact = transport().exact
    return Problem(name="regression", domain=BOX,
                   conditions={"pde": Condition(BOX, lambda u, x: u(x) - exact(x)),
                               "ic": Condition(Box((0.0, -1.0), (0.0, 1.0)),
                                               lambda u, x: u(x) - exact(x))},
                   input_names=("t", "x"), exact=exact)


def small_net(key: int = 0):
    return build_network(NetworkConfig(width=8, depth=2), 2, 1, (), jax.random.key(key))


# ------------------------------------------------------------------------------------ R3


def test_r3_keeps_exactly_the_points_above_the_mean_and_refills_the_rest():
    r3 = R3(BOX, N)
    state = r3.init(jax.random.key(0))
    observe, sample = jax.jit(r3.observe), jax.jit(r3.sample)
    for s in range(3):
        batch = sample(state, jax.random.key(9), jnp.asarray(s))
        np.testing.assert_array_equal(batch.points, state.points)  # the whole population
        np.testing.assert_array_equal(batch.weights, np.ones(N))
        r = np.asarray(ridge(batch.points))
        new = observe(state, batch, jnp.asarray(r**2), jax.random.key(100 + s), jnp.asarray(s))
        keep = r > r.mean()
        assert 0 < keep.sum() < N
        assert new.points.shape == (N, 2) and new.points.dtype == state.points.dtype
        old, pts = np.asarray(state.points), np.asarray(new.points)
        np.testing.assert_array_equal(pts[keep], old[keep])  # retained, in their slots
        assert not np.any(np.all(pts[~keep] == old[~keep], axis=1))  # released: all new
        assert np.all((pts >= np.asarray(BOX.low)) & (pts <= np.asarray(BOX.high)))
        np.testing.assert_array_equal(new.replaced, ~keep)
        np.testing.assert_array_equal(sample(new, jax.random.key(1), s).replaced, ~keep)
        state = new
    assert observe._cache_size() == 1
    assert r3.slots == N and r3.fixed_set_size is None and r3.observes
    assert not Uniform(BOX, N).observes


def test_causal_gate_and_beta_update_follow_the_formula():
    domain = Box((0.0, -1.0), (2.0, 1.0))  # t in [0, 2]: t_hat = t / 2
    c = CausalR3(domain, N)
    state = c.init(jax.random.key(0))
    assert float(state.beta) == -0.5
    t = np.asarray(state.points[:, 0], np.float64)
    g = (1 - np.tanh(5.0 * (t / 2 + 0.5))) / 2  # in float64 (1 - tanh cancels in float32)
    np.testing.assert_allclose(c.gate(state, state.points), g, rtol=1e-5, atol=1e-7)
    batch = c.sample(state, jax.random.key(1), 0)
    np.testing.assert_allclose(batch.weights, g**2, rtol=1e-4, atol=1e-12)  # mean((g r)^2)
    # beta's update, from beta = 0 (so that float32 resolves the small increments)
    c0 = CausalR3(domain, N, beta0=0.0)
    state = c0.init(jax.random.key(0))
    g = (1 - np.tanh(5.0 * t / 2)) / 2
    batch = c0.sample(state, jax.random.key(1), 0)
    for target in (0.01, 0.23):  # mean F^2: exp(-tol mean F^2) clipped at 0.1, then not
        r = np.sqrt(target / np.mean(g**2)) * (1.0 + np.sin(7.0 * t))
        new = c0.observe(state, batch, jnp.asarray(r**2, jnp.float32), jax.random.key(2), 0)
        fitness = r * g
        np.testing.assert_array_equal(np.asarray(new.replaced), ~(fitness > fitness.mean()))
        push = min(np.exp(-20.0 * np.mean(fitness**2)), 0.1)
        np.testing.assert_allclose(float(new.beta), 1e-3 * push, rtol=1e-4)
    assert push < 0.05  # the second case was not clipped
    with pytest.raises(ValueError, match="time"):
        CausalR3(Box((0.0, -1.0), (0.0, 1.0)), N)


# ----------------------------------------------------------------------------------- RBA


def test_rba_follows_the_recursion_and_ascends_where_the_residual_stays_large():
    rba = RBA()
    r = np.array([0.1, 0.5, 2.0, 0.0], np.float32)
    state = rba.init_sizes({"pde": 4, "ic": 2})
    update = jax.jit(rba.update)
    lam, previous = np.zeros(4), np.zeros(4)
    for k in range(1, 6):
        weights, state = update(state, context({"pde": jnp.asarray(r**2),
                                                "ic": jnp.ones(2)}))
        lam = 0.999 * lam + 0.001 * r / r.max()
        np.testing.assert_allclose(state["lambda"]["pde"], lam, rtol=1e-5)
        np.testing.assert_allclose(weights["pde"], lam**2, rtol=1e-5)
        closed = 0.001 * (1 - 0.999**k) / (1 - 0.999) * r / r.max()
        np.testing.assert_allclose(lam, closed, rtol=1e-6)
        assert np.all(lam[:3] > previous[:3]) and lam[3] == 0.0  # ascends where r stays
        previous = lam.copy()
    assert np.argmax(lam) == 2
    pde_only, _ = RBA(terms="pde").update(RBA(terms="pde").init_sizes({"pde": 4}),
                                          context({"pde": jnp.asarray(r**2),
                                                   "ic": jnp.ones(2)}))
    assert float(pde_only["ic"]) == 1.0


def test_rba_resets_the_weight_of_a_replaced_point():
    rba = RBA()
    lam0 = jnp.asarray([0.5, 0.5, 0.5], jnp.float32)
    r = np.array([1.0, 1.0, 2.0], np.float32)
    replaced = jnp.asarray([False, True, False])
    _, state = rba.update({"lambda": {"pde": lam0}},
                          context({"pde": jnp.asarray(r**2)}, {"pde": replaced}))
    want = np.array([0.999 * 0.5 + 0.0005, 0.0005, 0.999 * 0.5 + 0.001])
    np.testing.assert_allclose(state["lambda"]["pde"], want, rtol=1e-6)


def test_rba_through_the_trainer_carries_lambda_with_the_r3_points():
    """Trainer.step: R3 observes the loss's own residuals (of the model before the update),
    and RBA resets lambda exactly at the slots R3 refilled."""
    problem = regression()
    samplers = {"pde": R3(BOX, N), "ic": Fixed(problem.conditions["ic"].domain, 16, size=16)}
    trainer = Trainer(problem, samplers, RBA(), optax.adam(1e-3))
    state0 = trainer.init(small_net(), jax.random.key(1))
    keys = trainer.step_keys(state0.key)
    assert "observe/pde" in keys and "observe/ic" not in keys
    values = [tuple(np.asarray(jax.random.key_data(k)).ravel()) for k in keys.values()]
    assert len(set(values)) == len(values)  # the observe key is a new one
    step = eqx.filter_jit(trainer.step)
    abs_r = eqx.filter_jit(lambda s: jnp.sqrt(problem.residuals(
        s.model, "pde", s.sampler_states["pde"].points)))
    state1, _ = step(state0)
    r0 = np.asarray(abs_r(state0))
    keep = r0 > r0.mean()
    np.testing.assert_array_equal(state1.sampler_states["pde"].replaced, ~keep)
    np.testing.assert_array_equal(np.asarray(state1.sampler_states["pde"].points)[keep],
                                  np.asarray(state0.sampler_states["pde"].points)[keep])
    state2, _ = step(state1)
    r1 = np.asarray(abs_r(state1))
    lam1 = np.asarray(state1.weighting_state["lambda"]["pde"])
    want = 0.999 * np.where(keep, lam1, 0.0) + 0.001 * r1 / r1.max()
    np.testing.assert_allclose(state2.weighting_state["lambda"]["pde"], want, rtol=1e-4)


def test_rba_and_sa_refuse_samplers_that_move_their_points():
    problem = transport()
    moving = {"pde": Uniform(BOX, N), "ic": Fixed(problem.conditions["ic"].domain, 16, size=16)}
    with pytest.raises(ConfigError, match="'r3'"):
        Trainer(problem, moving, RBA(), optax.adam(1e-3)).init(small_net(), jax.random.key(0))
    r3 = {**moving, "pde": R3(BOX, N)}
    with pytest.raises(ConfigError, match="fixed"):
        Trainer(problem, r3, SelfAdaptive(), optax.adam(1e-3)).init(small_net(),
                                                                    jax.random.key(0))
    config = resolve("burgers", None, TINY + ["sampler.name=hardbank", "weighting.name=rba"])
    with pytest.raises(ConfigError, match="rba"):
        build(config, with_reference=False)


# ---------------------------------------------------------------------------- diagnostic


def test_spearman_is_one_for_monotone_and_near_zero_for_independent_fields():
    rho = jax.jit(spearman)  # one compile: every pair below has n = 4096
    x = np.asarray(jax.random.uniform(jax.random.key(0), (4096,)))
    y = np.asarray(jax.random.uniform(jax.random.key(1), (4096,)))
    assert float(rho(x, np.exp(3 * x))) == pytest.approx(1.0, abs=1e-6)
    assert float(rho(x, -(x**3))) == pytest.approx(-1.0, abs=1e-6)
    assert abs(float(rho(x, y))) < 0.05
    tied = np.round(4 * x) / 4  # ties: average ranks, as scipy
    assert float(rho(tied, y + x)) == pytest.approx(stats.spearmanr(tied, y + x)[0], abs=1e-5)
    assert np.isnan(float(rho(np.ones_like(x), x)))


def test_residual_error_correlation_on_constructed_residuals():
    """|r| a monotone function of |u - u_ref| gives 1 (independent fields give ~0: the
    Spearman test above)."""
    exact = transport().exact

    def problem(name, residual):
        return Problem(name="toy", domain=BOX, conditions={name: Condition(BOX, residual)},
                       exact=exact)

    model = small_net(3)
    monotone = problem("pde", lambda u, x: 2.0 * (u(x) - exact(x)) ** 3)
    reference = monotone.reference_data(resolution=80)  # 6400 points > 4096: subsampled
    assert isinstance(reference, ReferenceData) and reference.points.shape[0] == 6400
    assert residual_error_correlation(model, monotone, reference) == pytest.approx(1.0,
                                                                                  abs=1e-5)
    no_pde = problem("ic", lambda u, x: u(x))
    assert residual_error_correlation(model, no_pde, reference) is None


# ---------------------------------------------------------------------------- end to end


def _uniform_loss(problem: Problem, model) -> float:
    """Unweighted residual loss on one fixed uniform set per condition."""

    @eqx.filter_jit
    def loss(model):
        return sum(jnp.mean(problem.residuals(model, name, cond.domain.sample(
            jax.random.key(100 + i), 512))) for i, (name, cond) in
            enumerate(problem.conditions.items()))

    return float(loss(model))


@pytest.mark.parametrize("sampler,weighting", [
    ("r3", "rba"),  # both new methods and their coupling, in the default suite
    pytest.param("causal_r3", "fixed", marks=pytest.mark.slow),  # another ~10 s compile
])
def test_fit_burgers_with_the_new_methods(tmp_path, sampler, weighting):
    """A few hundred steps through `adapinn.fit`: the model improves on a fixed uniform set
    (the population's own loss need not fall: R3 keeps the hardest points) and in rel. L2,
    and every evaluation row holds the rank-correlation diagnostic in [-1, 1]."""
    overrides = TINY + ["train.steps=300", "train.eval_every=100", "train.scan_steps=100",
                        "train.checkpoint_every=300", f"sampler.name={sampler}",
                        f"weighting.name={weighting}"]
    config = resolve("burgers", None, overrides)
    initial = build(config)
    summary = adapinn.fit(config, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in
            (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [100, 200, 300]
    for row in rows:
        rho = row["rank_corr_residual_error"]
        assert rho is not None and -1.0 <= rho <= 1.0
    trained = summary.model.network
    before = _uniform_loss(initial.problem, initial.state.model)
    assert _uniform_loss(initial.problem, trained) < before
    assert summary["rel_l2"] < relative_l2(initial.state.model, initial.reference)
