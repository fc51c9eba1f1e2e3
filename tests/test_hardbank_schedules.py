"""The hard bank's evidence-driven schedules for p: "anneal" (ramp up, then down to 0 over a
window) and "benefit" (p held while bank points stay harder than uniform ones, decayed
geometrically when they do not); the default "ramp" keeps its numbers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adapinn.problems import Box
from adapinn.samplers import HardBank
from adapinn.samplers.hardbank import HardBankState

BOX = Box((0.0, -1.0), (1.0, 1.0))  # (t, x)
SMALL = {"pool_mult": 8, "bank_mult": 4, "top_frac": 0.05, "start_step": 0, "ramp_steps": 0}


def ridge(points):
    """|r|: a ridge at x = 0.3 on a small floor (mean over the box ~ 0.21, max 1.01)."""
    return jnp.exp(-20.0 * (points[:, 1] - 0.3) ** 2) + 0.01


def test_ramp_default_keeps_its_state_and_numbers():
    """No new state leaves, and the refresh is the original algorithm, bit for bit; the
    "benefit" schedule writes the same bank from the same key (its probe key is a third)."""
    hb = HardBank(BOX, 16, **SMALL)
    state = hb.init(jax.random.key(0))
    assert state.gate is None and state.ratio is None and len(jax.tree.leaves(state)) == 3
    key = jax.random.key(1)
    new = jax.jit(lambda s: hb.update(s, key, 200, ridge))(state)

    @jax.jit
    def original(state):  # the refresh as it was written before the schedules
        k_pool, k_slots = jax.random.split(key)
        pool = BOX.sample(k_pool, hb.pool_size)
        top_scores, top = jax.lax.top_k(ridge(pool), hb.n_top)
        slots = jax.random.choice(k_slots, hb.bank_size, (hb.n_top,), replace=False)
        return state.bank.at[slots].set(pool[top]), state.scores.at[slots].set(top_scores)

    bank, scores = original(state)
    np.testing.assert_array_equal(new.bank, bank)
    np.testing.assert_array_equal(new.scores, scores)
    benefit = HardBank(BOX, 16, schedule="benefit", **SMALL)
    other = jax.jit(lambda s: benefit.update(s, key, 200, ridge))(benefit.init(jax.random.key(0)))
    np.testing.assert_array_equal(other.bank, new.bank)


def test_anneal_ramps_up_then_reaches_zero_after_the_window():
    hb = HardBank(BOX, 1000, start_step=100, ramp_steps=50, p_max=0.2, schedule="anneal",
                  anneal_start=400, anneal_steps=200)
    steps = np.array([0, 99, 100, 125, 150, 399, 400, 450, 500, 599, 600, 601, 10**6])
    up = np.where(steps >= 100, 0.2 * np.clip((steps - 100) / 50, 0, 1), 0.0)
    down = 1 - np.clip((steps - 400) / 200, 0, 1)
    got = np.array([float(hb.mix_fraction(jnp.asarray(s))) for s in steps])
    np.testing.assert_allclose(got, up * down, atol=1e-7)
    assert got[steps == 150][0] == pytest.approx(0.2) and np.all(got[steps >= 600] == 0.0)
    assert int(hb.n_from_bank(jnp.asarray(600))) == 0
    assert np.all(np.diff(got[(steps >= 400)]) <= 0)  # only down inside the window
    cosine = HardBank(BOX, 1000, start_step=0, ramp_steps=0, ramp="cosine", schedule="anneal",
                      anneal_start=0, anneal_steps=100)
    np.testing.assert_allclose(float(cosine.mix_fraction(jnp.asarray(25))),
                               0.2 * (1 - 0.5 * (1 - np.cos(np.pi * 0.25))), rtol=1e-6)
    assert float(cosine.mix_fraction(jnp.asarray(100))) == 0.0


def _bank_at(hb: HardBank, points: jax.Array) -> HardBankState:
    """A benefit-schedule state whose bank holds `points`, all written by a refresh."""
    state = hb.init(jax.random.key(0))
    bank = jnp.resize(points, (hb.bank_size, 2))
    return HardBankState(bank, jnp.ones(hb.bank_size), state.counts, state.gate, state.ratio)


def test_benefit_decays_p_when_bank_points_are_no_harder_than_uniform_ones():
    hb = HardBank(BOX, 64, schedule="benefit", benefit_threshold=2.0, benefit_decay=0.5,
                  p_max=0.5, **SMALL)
    update = jax.jit(lambda s, k: hb.update(s, k, 200, ridge))
    # a bank of uniform points: ratio ~ 1 < 2, the gate halves at every refresh
    easy = _bank_at(hb, BOX.sample(jax.random.key(7), hb.bank_size))
    ratios, gates = [], []
    for i in range(3):
        new = update(easy, jax.random.key(10 + i))
        easy = HardBankState(easy.bank, easy.scores, easy.counts, new.gate, new.ratio)
        ratios.append(float(new.ratio))
        gates.append(float(new.gate))
    assert all(0.7 < r < 1.4 for r in ratios)
    np.testing.assert_allclose(gates, [0.5, 0.25, 0.125])
    assert float(hb.fraction(easy, jnp.asarray(10))) == pytest.approx(0.5 * 0.125)
    assert int(hb.n_from_bank(jnp.asarray(10), easy)) == round(0.5 * 0.125 * 64)
    # a bank on the ridge: ratio ~ 1.01 / 0.21 ~ 4.8 >= 2, the gate re-opens and stays at 1
    hard = _bank_at(hb, jnp.stack([jnp.linspace(0, 1, 50), jnp.full(50, 0.3)], axis=1))
    hard = HardBankState(hard.bank, hard.scores, hard.counts, easy.gate, easy.ratio)
    for i in range(2):
        new = update(hard, jax.random.key(20 + i))
        hard = HardBankState(hard.bank, hard.scores, hard.counts, new.gate, new.ratio)
        assert float(new.ratio) > 3.0 and float(new.gate) == 1.0
    assert float(hb.fraction(hard, jnp.asarray(10))) == pytest.approx(0.5)


def test_benefit_keeps_p_without_evidence():
    """The initial uniform bank (no slot written yet) is no evidence against the bank."""
    hb = HardBank(BOX, 64, schedule="benefit", **SMALL)
    state = hb.init(jax.random.key(0))
    assert float(state.gate) == 1.0 and np.isinf(float(state.ratio))
    new = jax.jit(lambda s: hb.update(s, jax.random.key(3), 200, ridge))(state)
    assert float(new.gate) == 1.0 and np.isinf(float(new.ratio))
    with pytest.raises(ValueError, match="schedule"):
        HardBank(BOX, 64, schedule="sometimes")


def test_streaming_bank_writes_the_top_fresh_points_of_each_step_and_scores_nothing():
    """hardbank_stream: after a step's `observe`, the bank holds the n_write fresh points of
    the batch with the largest |r| (here a ridge along x = 0.3); `refresh` scores no pool;
    before one period ahead of start_step nothing is written."""
    from adapinn.samplers import StreamingHardBank

    box = BOX
    hb = StreamingHardBank(box, 256, refresh_every=10, pool_mult=4, top_frac=0.1,
                           bank_mult=4, start_step=0, p_max=0.25, ramp_steps=0)
    assert hb.n_write == round(hb.n_top / 10) == 10 and hb.n_fresh == 192
    state = hb.init(jax.random.key(0))

    def no_pool(points):
        raise AssertionError("the streaming bank must not score a pool")

    assert hb.refresh(state, jax.random.key(1), jnp.asarray(10), no_pool) is state
    batch = hb.sample(state, jax.random.key(2), jnp.asarray(5))
    squared = ridge(batch.points) ** 2
    new = hb.observe(state, batch, squared, jax.random.key(3), jnp.asarray(5))
    fresh = np.asarray(batch.points[hb.n_bank_max:])
    best = fresh[np.argsort(-np.asarray(squared[hb.n_bank_max:]))[:hb.n_write]]
    changed = np.any(np.asarray(new.bank) != np.asarray(state.bank), axis=1)
    written = np.asarray(new.bank)[changed]
    assert 0 < written.shape[0] <= hb.n_write
    assert {tuple(p) for p in written.tolist()} <= {tuple(p) for p in best.tolist()}
    assert np.all(np.abs(written[:, 1] - 0.3) < np.quantile(np.abs(fresh[:, 1] - 0.3), 0.2))
    late = StreamingHardBank(box, 256, refresh_every=10, pool_mult=4, top_frac=0.1,
                             bank_mult=4, start_step=100)
    cold = late.observe(state, batch, squared, jax.random.key(3), jnp.asarray(5))
    assert np.array_equal(np.asarray(cold.bank), np.asarray(state.bank))
    with pytest.raises(ValueError, match="benefit schedule"):
        StreamingHardBank(box, 256, schedule="benefit")
