"""Samplers: a conformance suite over every registered sampler (state shapes fixed by
`update`, compiles once, same key -> same points, points in the domain), then one behaviour
test per defining property, on synthetic residual fields |r(x)| = known function."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from adapinn.experiments import registry
from adapinn.problems import Box
from adapinn.samplers import GLF, RAD, RARD, RARG, Fixed, HardBank, RSmote
from adapinn.samplers.density import gumbel_top_k, horvitz_thompson_weights, rad_weights
from adapinn.samplers.fixed import latin_hypercube, sobol
from adapinn.samplers.hardbank import HardBankState
from adapinn.samplers.pointset import uniform_set
from adapinn.samplers.rar import Buffer
from adapinn.samplers.rsmote import nearest_neighbours

BOX = Box((0.0, -1.0), (1.0, 1.0))  # (t, x)
BATCH = 32
SMALL = {  # fast settings per registry name (unknown names: defaults)
    "fixed": {"size": 128},
    "hardbank": {"start_step": 0, "ramp_steps": 0, "pool_mult": 8, "bank_mult": 4,
                 "refresh_every": 5, "importance_weights": True},
    "hardbank_stream": {"start_step": 0, "ramp_steps": 0, "pool_mult": 8, "bank_mult": 4,
                        "refresh_every": 5, "importance_weights": True},
    "rad": {"pool_size": 1000, "set_size": 128, "refresh_every": 5, "importance_weights": True},
    "rar_g": {"pool_size": 500, "initial_size": 64, "capacity": 96, "add_per_refresh": 8,
              "refresh_every": 5},
    "rar_d": {"pool_size": 500, "initial_size": 64, "capacity": 96, "add_per_refresh": 8,
              "refresh_every": 5},
    "rsmote": {"set_size": 128, "refresh_every": 5},
    "glf": {"set_size": 128, "refresh_every": 5, "alpha": 1e-2},
}


@pytest.fixture(autouse=True)
def strict_dtypes() -> Iterator[None]:
    """Dtype promotion errors (rank promotion stays lax: Box.from_unit broadcasts)."""
    with jax.numpy_dtype_promotion("strict"):
        yield


def peak(points: jax.Array, xp=jnp) -> jax.Array:
    """A synthetic residual field: a ridge at x = 0.3 on a small floor (xp: jnp or np)."""
    return xp.exp(-20.0 * (points[:, 1] - 0.3) ** 2) + 0.01


def inside(points, low=BOX.low, high=BOX.high) -> bool:
    """All points in the closed box (host-side, no tolerance)."""
    pts = np.asarray(points)
    return bool(np.all((pts >= np.asarray(low)) & (pts <= np.asarray(high))))


def key(i: int) -> jax.Array:
    return jax.random.PRNGKey(i)


def step(i: int) -> jax.Array:
    return jnp.asarray(i, jnp.int32)


class Recorder:
    """A score function that records (at run time, also under jit / cond) what it scored."""

    def __init__(self, field: Callable[[jax.Array], jax.Array] = peak):
        self.field, self.calls = field, []

    def __call__(self, points: jax.Array) -> jax.Array:
        jax.debug.callback(lambda p: self.calls.append(np.asarray(p)), points)
        return self.field(points)


# ---------------------------------------------------------------- conformance (all samplers)


class Harness:
    """One sampler with its jitted sample / refresh and their trace counters."""

    def __init__(self, name: str):
        cls = registry.SAMPLERS[name]
        self.sampler = cls(domain=BOX, batch_size=BATCH, **SMALL.get(name, {}))
        self.traces = {"sample": 0, "refresh": 0}
        self.sample = jax.jit(self._sample)
        self.refresh = jax.jit(self._refresh)
        self.period = max(self.sampler.refresh_every, 1)
        self.initial = self.sampler.init(key(0))  # eager: `fixed` designs run on the host

    def _sample(self, state, k, s):
        self.traces["sample"] += 1
        return self.sampler.sample(state, k, s)

    def _refresh(self, state, k, s):
        """The step's sampler updates as the trainer makes them: `observe` of a batch (for
        the samplers that observe), then `refresh`."""
        self.traces["refresh"] += 1
        if self.sampler.observes:
            batch = self.sampler.sample(state, k, s)
            state = self.sampler.observe(state, batch, peak(batch.points) ** 2, k, s)
        return self.sampler.refresh(state, k, s, peak)

    def refreshed(self, rounds: int = 2):
        state = self.initial
        for r in range(1, rounds + 1):
            state = self.refresh(state, key(100 + r), step(r * self.period))
        return state


@pytest.fixture(scope="module")
def harnesses() -> dict[str, Harness]:
    return {}


@pytest.fixture(params=sorted(registry.SAMPLERS))
def harness(request, harnesses) -> Harness:
    name = request.param
    if name not in harnesses:
        harnesses[name] = Harness(name)
    return harnesses[name]


def _signature(tree) -> list[tuple]:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return [str(treedef)] + [(x.shape, x.dtype) for x in leaves]


def test_update_keeps_state_shapes_and_dtypes(harness):
    state = harness.initial
    new = harness.refresh(state, key(1), step(harness.period))  # due: runs `update`
    assert _signature(new) == _signature(state)
    assert _signature(harness.refreshed()) == _signature(state)
    if harness.sampler.refresh_every > 0:  # an adaptive sampler's refresh changes its state
        changed = [not np.array_equal(a, b) for a, b in
                   zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(new))]
        assert any(changed)


def test_sample_and_refresh_compile_once(harness):
    states = [harness.initial, harness.refreshed()]
    for i, state in enumerate(states):
        for s in (0, 3, harness.period, 10 * harness.period + 1):
            harness.sample(state, key(i + s), step(s))
            harness.refresh(state, key(i + s), step(s))
    assert harness.traces == {"sample": 1, "refresh": 1}


def test_same_key_same_points(harness):
    state = harness.refreshed()
    a = harness.sample(state, key(7), step(3))
    b = harness.sample(state, key(7), step(3))
    c = harness.sample(state, key(8), step(3))
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.weights, b.weights)
    if harness.sampler.slots is None:  # not a whole persistent set (r3): the key draws
        assert not np.array_equal(a.points, c.points)
    again = harness.refreshed()  # the refresh itself is deterministic in its key
    for x, y in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(again)):
        np.testing.assert_array_equal(x, y)


def test_points_inside_domain_with_valid_weights(harness):
    for state in (harness.initial, harness.refreshed(rounds=4)):
        batch = harness.sample(state, key(3), step(4 * harness.period + 1))
        assert batch.points.ndim == 2 and batch.points.shape[1] == BOX.dim
        assert batch.weights.shape == (batch.points.shape[0],)
        weights = np.asarray(batch.weights)
        assert inside(batch.points) and np.all(np.isfinite(weights) & (weights > 0))


# ---------------------------------------------------------------------------- fixed designs


def test_latin_hypercube_has_exactly_one_point_per_stratum_per_coordinate():
    """McKay et al. 1979: floor(n u_ij) over i is a permutation of 0..n-1 for every j, with
    the point placed uniformly inside its stratum (not at its centre)."""
    n, d = 50, 3
    unit = np.asarray(latin_hypercube(key(0), n, d))
    assert unit.shape == (n, d) and np.all((unit >= 0) & (unit < 1))
    strata = np.floor(unit * n).astype(int)
    for j in range(d):
        np.testing.assert_array_equal(np.sort(strata[:, j]), np.arange(n))
    assert not np.array_equal(strata[:, 0], strata[:, 1])  # independent permutations
    offsets = unit * n - strata
    assert offsets.std() > 0.2  # U(0, 1) within the stratum (std 0.29), not centred
    # the sampler maps the design onto the domain: strata of the box's sides
    pts = np.asarray(Fixed(BOX, 16, size=n, design="lhs").init(key(1)))
    low, high = np.asarray(BOX.low), np.asarray(BOX.high)
    box_strata = np.floor((pts - low) / (high - low) * n).astype(int)
    for j in range(2):
        np.testing.assert_array_equal(np.sort(box_strata[:, j]), np.arange(n))


def test_sobol_is_deterministic_in_its_key_and_balanced():
    """Scrambled Sobol (Owen scrambling keeps the (0, m, 2)-net property of the first two
    coordinates): for n = 2^m every dyadic interval of length 1/n of each coordinate, and every
    cell of a 2^(m/2) x 2^(m/2) grid, holds exactly one point."""
    n = 256
    a, b, c = (np.asarray(sobol(key(i), n, 2)) for i in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    for pts in (a, c):
        assert np.all((pts >= 0) & (pts < 1))
        for j in range(2):
            np.testing.assert_array_equal(np.sort(np.floor(pts[:, j] * n)), np.arange(n))
        cells = np.floor(pts * 16).astype(int)
        assert len({tuple(cell) for cell in cells}) == n  # 16 x 16 cells, one point each
        np.testing.assert_allclose(pts.mean(axis=0), 0.5, atol=0.01)
    design = np.asarray(Fixed(BOX, 16, size=n, design="sobol").init(key(3)))
    np.testing.assert_allclose(design, np.asarray(BOX.from_unit(jnp.asarray(a))), atol=1e-6)


# ---------------------------------------------------------------------------- shared maths


def test_rad_weights_formula_and_degenerate_fields():
    s = jnp.asarray([0.0, 1.0, 3.0])
    np.testing.assert_allclose(rad_weights(s, 1.0, 1.0), [1.0, 1.75, 3.25], rtol=1e-6)
    np.testing.assert_allclose(rad_weights(s, 2.0, 0.0), s**2 / jnp.mean(s**2), rtol=1e-6)
    np.testing.assert_allclose(rad_weights(jnp.zeros(4), 1.0, 0.0), np.ones(4))
    assert bool(jnp.all(jnp.isfinite(rad_weights(jnp.asarray([jnp.nan, 1.0]), 1.0, 1.0))))


def test_gumbel_top_k_is_sequential_draws_without_replacement():
    """P(first draw = i) = w_i / sum w, and the n indices are distinct."""
    w = jnp.asarray([1.0, 2.0, 3.0, 4.0])
    draws = jax.vmap(lambda k: gumbel_top_k(k, jnp.log(w), 2)[0])(
        jax.random.split(key(0), 20_000))
    assert np.all(np.asarray(draws[:, 0]) != np.asarray(draws[:, 1]))
    freq = np.bincount(np.asarray(draws[:, 0]), minlength=4) / draws.shape[0]
    np.testing.assert_allclose(freq, w / w.sum(), atol=0.015)


def test_nearest_neighbours_match_brute_force():
    pts = jax.random.uniform(key(0), (50, 3))
    got = np.sort(np.asarray(nearest_neighbours(pts, 4, chunk=7)), axis=1)
    d = np.linalg.norm(np.asarray(pts)[:, None] - np.asarray(pts)[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    np.testing.assert_array_equal(got, np.sort(np.argsort(d, axis=1)[:, :4], axis=1))


# -------------------------------------------------------------------------------- hard bank


def test_hardbank_writes_exactly_the_top_candidates_random_policy():
    hb = HardBank(BOX, 8, pool_mult=50, top_frac=0.05, bank_mult=5, replace="random")
    state, rec = jax.jit(hb.init)(key(0)), Recorder()
    new = jax.jit(lambda s: hb.update(s, key(1), step(200), rec))(state)
    jax.effects_barrier()
    pool = rec.calls[0]
    assert pool.shape == (400, 2) and len(rec.calls) == 1
    top = np.argsort(-peak(pool, np))[:20]
    changed = np.flatnonzero(np.any(np.asarray(new.bank) != np.asarray(state.bank), axis=1))
    assert len(changed) == 20
    assert _rows(np.asarray(new.bank)[changed]) == _rows(pool[top])
    np.testing.assert_allclose(np.sort(np.asarray(new.scores)[changed]),
                               np.sort(peak(pool[top], np)), rtol=1e-5)


def test_hardbank_lowest_policy_replaces_the_lowest_stored_scores():
    hb = HardBank(BOX, 8, pool_mult=50, top_frac=0.05, bank_mult=5, replace="lowest")
    state, rec = jax.jit(hb.init)(key(0)), Recorder()
    update = jax.jit(lambda s, k: hb.update(s, k, step(200), rec))
    for r in range(1, 4):
        before = state
        state = update(state, key(r))
        jax.effects_barrier()
        lowest = np.argsort(np.asarray(before.scores), kind="stable")[:20]
        kept = np.setdiff1d(np.arange(40), lowest)
        pool = rec.calls[-1]
        top = np.argsort(-peak(pool, np))[:20]
        np.testing.assert_array_equal(np.asarray(state.bank)[kept], np.asarray(before.bank)[kept])
        assert _rows(np.asarray(state.bank)[np.sort(lowest)]) == _rows(pool[top])
    assert np.min(np.asarray(state.scores)) > 0.0  # all 40 initial (score 0) slots replaced


def _rows(a: np.ndarray) -> set[tuple]:
    return {tuple(np.round(r, 6)) for r in a}


@pytest.mark.parametrize("ramp", ["linear", "cosine"])
def test_hardbank_schedule_and_cap(ramp):
    hb = HardBank(BOX, 1000, start_step=100, p_max=0.2, ramp=ramp, ramp_steps=50)
    steps = np.array([0, 99, 100, 110, 125, 149, 150, 400, 10**6])
    t = np.clip((steps - 100) / 50, 0, 1)
    shape = t if ramp == "linear" else 0.5 * (1 - np.cos(np.pi * t))
    want = np.where(steps >= 100, 0.2 * shape, 0.0)
    got = np.array([float(hb.mix_fraction(step(int(s)))) for s in steps])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got.max() <= 0.2 + 1e-7


def test_hardbank_batch_holds_round_pB_bank_points():
    b = 250
    hb = HardBank(BOX, b, start_step=10, p_max=0.2, ramp_steps=40)
    marker = jnp.asarray([0.123, 0.456])  # uniform draws never hit it exactly
    state = HardBankState(jnp.tile(marker, (hb.bank_size, 1)), jnp.zeros(hb.bank_size),
                          jnp.ones(1, jnp.int32))
    sample = jax.jit(hb.sample)
    for s in (0, 9, 10, 13, 27, 49, 50, 1000):
        batch = sample(state, key(s), step(s))
        n_bank = int(np.sum(np.all(np.asarray(batch.points) == np.asarray(marker), axis=1)))
        p = 0.0 if s < 10 else 0.2 * min((s - 10) / 40, 1.0)
        assert n_bank == round(p * b), (s, n_bank)


def test_hardbank_refresh_waits_until_one_period_before_start():
    hb = HardBank(BOX, 8, pool_mult=4, bank_mult=4, start_step=1000, refresh_every=200)
    state, rec = jax.jit(hb.init)(key(0)), Recorder()
    refresh = jax.jit(lambda s, i: hb.refresh(s, key(5), i, rec))
    same = refresh(state, step(600))
    jax.effects_barrier()
    assert not rec.calls
    np.testing.assert_array_equal(same.bank, state.bank)
    refresh(state, step(800))
    jax.effects_barrier()
    assert len(rec.calls) == 1


def test_hardbank_importance_weights_are_unbiased_for_cellwise_constant_fields():
    """E[mean(w f)] = integral of f over the unit-measure domain when f is constant per cell."""
    hb = HardBank(BOX, 1000, start_step=0, ramp_steps=0, p_max=0.5, pool_mult=5,
                  top_frac=0.2, bank_mult=2, importance_weights=True, iw_cells=16)
    f = lambda pts: 1.0 + _cells(pts).astype(jnp.float32)  # noqa: E731

    @jax.jit
    def estimates(keys):
        state = hb.update(hb.init(key(0)), key(1), step(200), peak)

        def one(k):
            batch = hb.sample(state, k, step(10))
            return jnp.mean(batch.weights * f(batch.points)), jnp.mean(f(batch.points))

        return jax.vmap(one)(keys)

    weighted, plain = (np.asarray(x) for x in estimates(jax.random.split(key(2), 100)))
    exact = 8.5  # mean of 1 + cell index over the 16 equal cells
    assert abs(weighted.mean() - exact) < 4 * weighted.std() / np.sqrt(100) + 1e-3
    assert abs(plain.mean() - exact) > 0.1  # without weights the bank biases the mean


def _cells(pts: jax.Array) -> jax.Array:
    """Index of the 4 x 4 grid cell over BOX."""
    i = jnp.clip(jnp.floor(pts[:, 0] * 4), 0, 3).astype(jnp.int32)
    j = jnp.clip(jnp.floor((pts[:, 1] + 1) * 2), 0, 3).astype(jnp.int32)
    return i + 4 * j


# ---------------------------------------------------------------------------------- RAD


LINE = Box((0.0,), (1.0,))


def test_rad_draws_follow_the_rad_density_chi_square():
    """|r| = x^2 on [0, 1], k = 1, c = 1: p(x) = (3 x^2 + 1) / 2."""
    rad = RAD(LINE, 500, pool_size=200_000, set_size=500, k=1.0, c=1.0)
    update = jax.jit(lambda s, k: rad.update(s, k, step(1), lambda p: p[:, 0] ** 2))
    state = jax.jit(rad.init)(key(0))
    xs = np.concatenate([np.asarray(update(state, key(i)).points[:, 0]) for i in range(20)])
    edges = np.linspace(0, 1, 11)
    observed = np.histogram(xs, edges)[0]
    cdf = (edges**3 + edges) / 2
    expected = np.diff(cdf) * len(xs)
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    uniform = np.full(10, len(xs) / 10)
    assert stats.chisquare(observed, uniform).pvalue < 1e-6  # the test has power


def test_rad_importance_weights_give_unbiased_pool_means():
    """Horvitz-Thompson weights: E[mean_set(w f)] = integral of f, even at a 50% sampling
    fraction where w ~ 1/(N q) alone would be biased."""
    rad = RAD(LINE, 500, pool_size=1000, set_size=500, importance_weights=True)
    field = lambda p: p[:, 0] ** 2  # noqa: E731

    def estimate(k):
        state = rad.update(jax.jit(rad.init)(key(0)), k, step(1), field)
        f = state.points[:, 0] ** 4
        return jnp.mean(state.weights * f), jnp.mean(f)

    weighted, plain = jax.jit(jax.vmap(estimate))(jax.random.split(key(1), 400))
    se = float(weighted.std()) / np.sqrt(400)
    assert abs(float(weighted.mean()) - 0.2) < 4 * se + 2e-3
    assert float(plain.mean()) > 0.25  # unweighted: biased towards large residuals


def test_horvitz_thompson_weights_sum_to_pool_size_in_expectation():
    logits = jnp.log(jnp.arange(1.0, 11.0))

    def total(k):
        idx, kappa = gumbel_top_k(k, logits, 3)
        return jnp.sum(horvitz_thompson_weights(logits, idx, kappa)) / 3

    means = jax.vmap(total)(jax.random.split(key(0), 20_000))
    assert abs(float(means.mean()) - 1.0) < 0.02


# ---------------------------------------------------------------------------------- RAR


def test_rar_g_adds_exactly_the_top_m_and_stops_at_capacity():
    rar = RARG(BOX, 16, initial_size=10, capacity=25, add_per_refresh=8, pool_size=300)
    state, rec = jax.jit(rar.init)(key(0)), Recorder()
    update = jax.jit(lambda s, k: rar.update(s, k, step(1), rec))
    for r, count in enumerate((18, 25, 25), start=1):
        before, n_calls = state, len(rec.calls)
        state = update(state, key(r))
        jax.effects_barrier()
        assert int(state.count) == count
        start = int(before.count)
        np.testing.assert_array_equal(state.points[:start], before.points[:start])
        if start == rar.capacity:
            assert len(rec.calls) == n_calls  # a full buffer scores nothing
            continue
        pool = rec.calls[-1]
        top = np.argsort(-peak(pool, np))[: count - start]
        np.testing.assert_array_equal(state.points[start:count], pool[top])


def test_rar_batches_use_only_active_rows():
    rar = RARG(BOX, 64, initial_size=5, capacity=50)
    state = Buffer(jnp.concatenate([jnp.zeros((5, 2)), jnp.ones((45, 2))]),
                   jnp.asarray(5, jnp.int32))
    batch = rar.sample(state, key(0), step(0))
    np.testing.assert_array_equal(batch.points, np.zeros((64, 2)))


def test_rar_d_adds_distinct_pool_points_favouring_high_residuals():
    rar = RARD(LINE, 16, initial_size=10, capacity=2010, add_per_refresh=2000, pool_size=4000)
    rec = Recorder(lambda p: p[:, 0] ** 4)
    state = jax.jit(lambda s: rar.update(s, key(1), step(1), rec))(jax.jit(rar.init)(key(0)))
    jax.effects_barrier()
    added = np.asarray(state.points[10:2010, 0])
    assert int(state.count) == 2010 and len(np.unique(added)) == 2000
    assert set(np.round(added, 7)) <= set(np.round(rec.calls[0][:, 0], 7))
    assert np.mean(added) > 0.55  # drawn by |r|^k/mean + c, skewed towards x = 1


def test_rar_d_draws_follow_the_rad_density_chi_square():
    """Wu et al. 2023, RAR-D: the m added points follow p(x) ∝ |r|^k / mean|r|^k + c; with
    |r| = x^2 on [0, 1], k = 1, c = 1: p(x) = (3 x^2 + 1) / 2 (m << pool: draws without
    replacement follow the density). Same check as RAD's."""
    rar = RARD(LINE, 16, initial_size=10, capacity=510, add_per_refresh=500,
               pool_size=200_000, k=1.0, c=1.0)
    state = jax.jit(rar.init)(key(0))
    grow = jax.jit(lambda k: rar.update(state, k, step(1), lambda p: p[:, 0] ** 2).points)
    xs = np.concatenate([np.asarray(grow(key(i))[10:510, 0]) for i in range(1, 21)])
    edges = np.linspace(0, 1, 11)
    observed = np.histogram(xs, edges)[0]
    expected = np.diff((edges**3 + edges) / 2) * len(xs)
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    greedy_free = np.diff(edges**4) * len(xs)  # p ∝ x^3 (k = 3, c = 0): a wrong rule
    assert stats.chisquare(observed, greedy_free).pvalue < 1e-6
    assert stats.chisquare(observed, np.full(10, len(xs) / 10)).pvalue < 1e-6  # has power


# ---------------------------------------------------------------------------------- RSmote


def test_rsmote_synthetic_points_lie_on_segments_between_positive_neighbours():
    rs = RSmote(BOX, 32, set_size=100, lam=0.3, k_nn=3)
    state, rec = jax.jit(rs.init)(key(0)), Recorder()
    new = jax.jit(lambda s: rs.update(s, key(1), step(1000), rec))(state)
    jax.effects_barrier()
    old, pts = np.asarray(state.points), np.asarray(new.points)
    np.testing.assert_array_equal(rec.calls[0], old)  # scores the set itself, nothing else
    assert pts.shape == old.shape and inside(pts)
    positives = old[np.argsort(-peak(old, np))[:30]]
    segments = _knn_segments(positives, 3)
    synthetic = [p for p in pts if not np.any(np.all(old == p, axis=1))]
    assert 0 < len(synthetic) <= rs.n_syn
    for p in synthetic:
        assert min(_segment_distance(p, a, b) for a, b in segments) < 1e-5


def _knn_segments(points: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return [(points[i], points[j]) for i in range(len(points)) for j in np.argsort(d[i])[:k]]


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    t = np.clip(np.dot(p - a, b - a) / max(np.dot(b - a, b - a), 1e-30), 0.0, 1.0)
    return float(np.linalg.norm(p - (a + t * (b - a))))


def test_rsmote_rebalances_towards_the_high_residual_class():
    rs = RSmote(LINE, 32, set_size=1000, lam=0.45)
    update = jax.jit(lambda s: rs.update(s, key(1), step(1000), lambda p: p[:, 0]))
    state = update(jax.jit(rs.init)(key(0)))
    frac_high = float(np.mean(np.asarray(state.points[:, 0]) > 0.55))
    assert 0.45 < frac_high < 0.56  # about half positive-class (x > 0.55) after balancing


# -------------------------------------------------------------------------------------- GLF


def test_glf_candidates_tight_at_high_and_wide_at_low_residual_anchors():
    glf = GLF(BOX, 8, set_size=2, alpha=1e-3, n_candidates=200)
    anchors = jnp.asarray([[0.5, 0.0], [0.5, 0.0]])
    cands = glf.candidates(key(0), anchors, jnp.asarray([1.0, 1e-4]))
    cands, anchors = np.asarray(cands), np.asarray(anchors)
    spread = np.linalg.norm(cands - anchors[:, None, :], axis=-1).mean(axis=1)
    assert spread[0] < 3e-3  # h = 1e-3: local refinement
    assert spread[1] > 0.2  # h = 10: global exploration
    assert inside(cands.reshape(-1, 2))


def test_glf_resampling_follows_the_rad_weights_of_the_inherited_residuals():
    """Luo et al.: the next set is drawn from anchors and candidates with probability
    ∝ |r|^k / mean(|r|^k) + c, each candidate inheriting its anchor's |r|. Half the anchors
    score 3, half 1, and h = alpha / |r| ~ 1e-6 keeps candidates on their anchor's side. With
    k = 2, c = 1: w = 9/5 + 1 = 2.8 and 1/5 + 1 = 1.2, so a drawn point is high-residual with
    probability 0.7 (M = 199: 64 of 12,800 are drawn, so without replacement hardly matters);
    k = 1 would give 0.625 and c = 0 would give 0.9."""
    glf = GLF(LINE, 16, set_size=64, alpha=1e-6, n_candidates=199, k=2.0, c=1.0)
    anchors = jnp.concatenate([jnp.linspace(0.05, 0.45, 32), jnp.linspace(0.55, 0.95, 32)])
    state = uniform_set(anchors[:, None])
    field = lambda p: jnp.where(p[:, 0] > 0.5, 3.0, 1.0)  # noqa: E731
    draw = jax.jit(jax.vmap(lambda k: glf.update(state, k, step(1000), field).points[:, 0]))
    xs = np.asarray(draw(jax.random.split(key(0), 40)))  # (40, 64)
    high = int(np.sum(xs > 0.5))
    observed, total = np.array([high, xs.size - high]), xs.size
    assert stats.chisquare(observed, [0.7 * total, 0.3 * total]).pvalue > 1e-3
    for wrong in (0.625, 0.9, 0.5):  # k = 1; c = 0; uniform
        assert stats.chisquare(observed, [wrong * total, (1 - wrong) * total]).pvalue < 1e-4
    # candidates (not just anchors) are drawn, about M / (M + 1) of the time
    is_anchor = np.isin(xs, np.asarray(anchors))  # candidates sit ~3e-7 off: not equal
    assert 0.9 < 1 - is_anchor.mean() <= 1.0


def test_glf_scores_only_the_anchors_and_resamples_from_them_and_their_candidates():
    glf = GLF(BOX, 32, set_size=64, alpha=1e-2, n_candidates=3)
    state, rec = jax.jit(glf.init)(key(0)), Recorder()
    new = jax.jit(lambda s: glf.update(s, key(1), step(1000), rec))(state)
    jax.effects_barrier()
    assert len(rec.calls) == 1
    np.testing.assert_array_equal(rec.calls[0], state.points)  # n points, no new residuals
    assert new.points.shape == state.points.shape
    assert len(np.unique(np.asarray(new.points), axis=0)) == 64  # without replacement
    assert inside(new.points)
