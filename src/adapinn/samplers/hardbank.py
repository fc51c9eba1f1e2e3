"""Hybrid residual sampling with a persistent hard bank (seed 000, "Adaptive Residual Sampling
for PINNs"; methods.md section 1).

Each batch of B points is

    round(p(step) B) points drawn uniformly, with replacement, from the bank
    B - round(p(step) B) fresh uniform points

Every `refresh_every` steps a pool of `pool_mult * B` uniform candidates is scored, and the
top `top_frac` fraction by |r| (`lax.top_k`) is written into the bank of `bank_mult * B`
points, replacing random slots (`replace="random"`) or the slots with the lowest stored
scores (`replace="lowest"`; a slot's score is |r| when it was written, 0 for the initial
uniform bank). Refreshes start one period before `start_step`, so no pool is scored while
the bank is unused.

The mixing fraction follows

    p(s) = 0                                    s < start_step
    p(s) = p_max * ramp((s - start_step) / ramp_steps)   capped at p_max

with ramp(t) = min(t, 1) ("linear") or (1 - cos(pi min(t, 1))) / 2 ("cosine"): the default
`schedule="ramp"`. Two schedules react to evidence instead of holding p_max to the end:

    "anneal"   p(s) = p_ramp(s) (1 - ramp((s - anneal_start) / anneal_steps))
               the ramp up as above, then back down to 0 over the window [anneal_start,
               anneal_start + anneal_steps] (same ramp shape); our defaults end it at 90K
               steps, where seed 000's residual arm fell behind uniform on Allen-Cahn.
    "benefit"  p(s) = p_ramp(s) gate, gate in the state (1 at the start). At each refresh,
               before the bank is written,
                   ratio = mean |r| over `benefit_probe` random bank slots written by earlier
                           refreshes (the initial uniform slots carry no evidence)
                           / mean |r| over the refresh's uniform pool (scored anyway)
                   gate <- 1                       if ratio >= benefit_threshold (or no
                                                   written slot was probed, or the pool's
                                                   mean is 0)
                   gate <- benefit_decay * gate    otherwise
               (our construction). The bank pays while its points stay markedly harder than
               uniform ones; once training on them has brought them down to the uniform level
               (the late-stage regime in which seed 000 found residual sampling hurting),
               sampling them only biases the batch, so p decays geometrically towards 0; if
               they become hard again the gate re-opens at once. The probe costs
               `benefit_probe` (default B) residuals per refresh, 1/pool_mult of the pool's.

Shapes are static: the batch holds B uniform points whose first round(p_max B) slots are
overwritten by bank points under the mask `index < round(p B)`.

Importance weights (`importance_weights=True`, our construction): the batch is a draw from the
mixture q(x) = (1 - p') + p' b(x) (densities relative to uniform, p' = round(pB)/B), with the
bank's empirical measure b replaced by its histogram on a regular grid of about `iw_cells`
cells over the bounding box (b = (n_cell(x) / bank size) / m_cell(x), with m_cell the cell's
share of the domain's measure: 1 / n_cells for a box, estimated once from 2^18 uniform domain
points for any other domain, so cells cut by a hole or a curved boundary are not
over-weighted). Each point gets w = 1/q(x),
so mean(w r^2) is an unbiased estimate of the uniform mean of r^2 whenever r^2 is constant on
each cell (the bias is the within-cell variation of r^2 around bank points). With more than
log2(iw_cells) free dimensions the grid has one cell and w = 1.

Defaults (methods.md): B from the run, pool 50 B, top_frac 0.05, bank 50 B, refresh 200 steps,
p_max 0.2, start 15,000 steps. Our choices: linear ramp over 5,000 steps, random replacement,
4096 histogram cells; "anneal" from 50,000 over 40,000 steps; "benefit" threshold 2, decay 0.5
per refresh, a probe of B bank slots.
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.problems.domains import Box
from adapinn.samplers.base import AbstractSampler, Batch, ScoreFn
from adapinn.samplers.density import cell_index, finite_scores


class HardBankState(eqx.Module):
    """bank (K, d); scores (K,) |r| at insertion; counts (n_cells,) bank histogram; with
    `schedule="benefit"` also gate (the factor on p) and ratio (the last bank / uniform mean
    |r|, inf before any evidence), float32 scalars; None otherwise."""

    bank: Array
    scores: Array
    counts: Array
    gate: Array | None = None
    ratio: Array | None = None


class HardBank(AbstractSampler):
    """(1 - p) fresh uniform + p from a persistent bank of the highest-residual candidates."""

    refresh_every: int = eqx.field(static=True, default=200)
    pool_mult: int = eqx.field(static=True, default=50)
    top_frac: float = eqx.field(static=True, default=0.05)
    bank_mult: int = eqx.field(static=True, default=50)
    replace: Literal["random", "lowest"] = eqx.field(static=True, default="random")
    start_step: int = eqx.field(static=True, default=15_000)
    p_max: float = eqx.field(static=True, default=0.2)
    ramp: Literal["linear", "cosine"] = eqx.field(static=True, default="linear")
    ramp_steps: int = eqx.field(static=True, default=5000)
    importance_weights: bool = eqx.field(static=True, default=False)
    iw_cells: int = eqx.field(static=True, default=4096)
    schedule: Literal["ramp", "anneal", "benefit"] = eqx.field(static=True, default="ramp")
    anneal_start: int = eqx.field(static=True, default=50_000)
    anneal_steps: int = eqx.field(static=True, default=40_000)
    benefit_threshold: float = eqx.field(static=True, default=2.0)
    benefit_decay: float = eqx.field(static=True, default=0.5)
    benefit_probe: int | None = eqx.field(static=True, default=None)

    def cell_mass(self) -> Array | None:
        """m_cell (n_cells,): each cell's share of the domain, estimated from 2^18 uniform
        points with a fixed key (None for a box: exactly 1 / n_cells). Evaluated eagerly even
        inside a trace (`ensure_compile_time_eval`): a constant of the compiled step."""
        if self.bins == 1 or isinstance(self.domain, Box):
            return None
        with jax.ensure_compile_time_eval():
            n_cells = self.bins ** self.domain.bounding_box.n_free
            probe = self.domain.sample(jax.random.key(0), 1 << 18)
            cells = cell_index(self.domain, probe, self.bins)
            return jnp.zeros(n_cells).at[cells].add(1.0) / probe.shape[0]

    def __check_init__(self):
        if not 0.0 <= self.p_max <= 1.0:
            raise ValueError(f"p_max must lie in [0, 1], got {self.p_max}")
        if not 0.0 < self.top_frac <= 1.0:
            raise ValueError(f"top_frac must lie in (0, 1], got {self.top_frac}")
        if self.n_top > self.bank_size:
            raise ValueError(
                f"the refresh writes {self.n_top} points but the bank holds only "
                f"{self.bank_size}; raise bank_mult or lower top_frac * pool_mult"
            )
        if self.replace not in ("random", "lowest") or self.ramp not in ("linear", "cosine"):
            raise ValueError("replace must be random|lowest and ramp linear|cosine")
        if self.schedule not in ("ramp", "anneal", "benefit"):
            raise ValueError(f"schedule must be ramp|anneal|benefit, got {self.schedule!r}")
        if self.anneal_start < 0 or self.anneal_steps < 0:
            raise ValueError("anneal_start and anneal_steps must be non-negative")
        if not 0.0 <= self.benefit_decay < 1.0 or self.benefit_threshold <= 0.0:
            raise ValueError("benefit_decay must lie in [0, 1) and benefit_threshold be > 0")
        if self.benefit_probe is not None and self.benefit_probe < 1:
            raise ValueError(f"benefit_probe must be positive, got {self.benefit_probe}")

    @property
    def bank_size(self) -> int:
        return self.bank_mult * self.batch_size

    @property
    def pool_size(self) -> int:
        return self.pool_mult * self.batch_size

    @property
    def n_top(self) -> int:
        return max(1, round(self.top_frac * self.pool_size))

    @property
    def n_bank_max(self) -> int:
        """Most bank points a batch can hold: round(p_max B)."""
        return round(self.p_max * self.batch_size)

    @property
    def bins(self) -> int:
        """Histogram cells per free axis (1 when importance weighting is off)."""
        if not self.importance_weights:
            return 1
        d = max(self.domain.bounding_box.n_free, 1)
        return max(1, int(self.iw_cells ** (1.0 / d) + 1e-9))

    @property
    def n_probe(self) -> int:
        """Bank slots scored per refresh by the "benefit" schedule (default B)."""
        return self.benefit_probe or self.batch_size

    def _ramp_shape(self, s: Array, steps: int) -> Array:
        """ramp((s) / steps) in [0, 1] (a step at s = 0 when steps = 0), float32."""
        t = jnp.clip(s / max(steps, 1), 0.0, 1.0)
        if steps == 0:
            t = jnp.where(s >= 0, 1.0, 0.0)
        return t if self.ramp == "linear" else 0.5 * (1.0 - jnp.cos(jnp.pi * t))

    def mix_fraction(self, step: Array) -> Array:
        """p(step) of the step-count schedule: 0 before start_step, the ramp to p_max, and
        for "anneal" the ramp back down to 0 (float32 scalar; "benefit" multiplies it by the
        state's gate, `fraction`)."""
        s = jnp.asarray(step, jnp.float32) - self.start_step
        shape = self._ramp_shape(s, self.ramp_steps)
        p = jnp.where(s >= 0, jnp.minimum(self.p_max * shape, self.p_max), 0.0)
        if self.schedule == "anneal":
            a = jnp.asarray(step, jnp.float32) - self.anneal_start
            p = p * (1.0 - self._ramp_shape(a, self.anneal_steps))
        return p

    def fraction(self, state: HardBankState | None, step: Array) -> Array:
        """The p a batch of `state` at `step` uses: `mix_fraction`, times the gate for
        "benefit" (float32 scalar)."""
        p = self.mix_fraction(step)
        if self.schedule == "benefit" and state is not None and state.gate is not None:
            p = p * state.gate
        return p

    def n_from_bank(self, step: Array, state: HardBankState | None = None) -> Array:
        """round(p B), the number of bank points in the batch (int32 scalar)."""
        m = jnp.round(self.fraction(state, step) * self.batch_size).astype(jnp.int32)
        return jnp.minimum(m, self.n_bank_max)

    def init(self, key: Array) -> HardBankState:
        bank = self.domain.sample(key, self.bank_size)
        scores = jnp.zeros(self.bank_size, bank.dtype)
        if self.schedule != "benefit":
            return HardBankState(bank, scores, self._histogram(bank))
        return HardBankState(bank, scores, self._histogram(bank), jnp.ones((), jnp.float32),
                             jnp.full((), jnp.inf, jnp.float32))

    def sample(self, state: HardBankState, key: Array, step: Array) -> Batch:
        k_fresh, k_bank = jax.random.split(key)
        points = self.domain.sample(k_fresh, self.batch_size)
        m = self.n_from_bank(step, state)
        if self.n_bank_max > 0:
            idx = jax.random.randint(k_bank, (self.n_bank_max,), 0, self.bank_size)
            use_bank = (jnp.arange(self.n_bank_max) < m)[:, None]
            head = jnp.where(use_bank, state.bank[idx], points[: self.n_bank_max])
            points = points.at[: self.n_bank_max].set(head)
        return Batch(points, self._weights(state, points, m))

    def refresh(self, state: HardBankState, key: Array, step: Array,
                score_fn: ScoreFn) -> HardBankState:
        """The base cadence, skipped until one period before `start_step`."""
        base = super().refresh
        warm = step + self.refresh_every >= self.start_step
        return jax.lax.cond(warm, lambda s: base(s, key, step, score_fn), lambda s: s, state)

    def update(self, state: HardBankState, key: Array, step: Array,
               score_fn: ScoreFn) -> HardBankState:
        if self.schedule == "benefit":  # a third key; the first two as without it
            k_pool, k_slots, k_probe = jax.random.split(key, 3)
        else:
            k_pool, k_slots = jax.random.split(key)
        pool = self.domain.sample(k_pool, self.pool_size)
        pool_scores = finite_scores(score_fn(pool))
        top_scores, top = jax.lax.top_k(pool_scores, self.n_top)
        slots = self._slots(state, k_slots)
        bank = state.bank.at[slots].set(pool[top])
        scores = state.scores.at[slots].set(top_scores.astype(state.scores.dtype))
        if self.schedule != "benefit":
            return HardBankState(bank, scores, self._histogram(bank))
        gate, ratio = self._benefit(state, k_probe, score_fn, jnp.mean(pool_scores))
        return HardBankState(bank, scores, self._histogram(bank), gate, ratio)

    def _benefit(self, state: HardBankState, key: Array, score_fn: ScoreFn,
                 uniform_mean: Array) -> tuple[Array, Array]:
        """(gate, ratio) of the "benefit" rule (module docstring), from `n_probe` random
        slots of the bank before this refresh writes it; only slots written by an earlier
        refresh (score > 0) count."""
        idx = jax.random.randint(key, (self.n_probe,), 0, self.bank_size)
        written = (state.scores[idx] > 0).astype(jnp.float32)
        probe = finite_scores(score_fn(state.bank[idx])).astype(jnp.float32)
        n_written = jnp.sum(written)
        bank_mean = jnp.sum(written * probe) / jnp.maximum(n_written, 1.0)
        uniform_mean = uniform_mean.astype(jnp.float32)
        evidence = (n_written > 0) & (uniform_mean > 0)
        ratio = jnp.where(evidence, bank_mean / jnp.where(uniform_mean > 0, uniform_mean, 1.0),
                          jnp.inf)
        gate = jnp.where(ratio >= self.benefit_threshold, 1.0,
                         self.benefit_decay * state.gate).astype(jnp.float32)
        return gate, ratio

    def _slots(self, state: HardBankState, key: Array) -> Array:
        """The n_top distinct bank slots to overwrite."""
        if self.replace == "lowest":
            return jax.lax.top_k(-state.scores, self.n_top)[1]
        return jax.random.choice(key, self.bank_size, (self.n_top,), replace=False)

    def _histogram(self, bank: Array) -> Array:
        """Bank counts per cell, shape (bins^d,); a single cell when weighting is off."""
        if self.bins == 1:
            return jnp.full((1,), self.bank_size, jnp.int32)
        cells = cell_index(self.domain, bank, self.bins)
        n_cells = self.bins ** self.domain.bounding_box.n_free
        return jnp.zeros(n_cells, jnp.int32).at[cells].add(1)

    def _weights(self, state: HardBankState, points: Array, m: Array) -> Array:
        """1 / q(x), q = (1 - p') + p' b(x) (see the module docstring); ones when off."""
        ones = jnp.ones(points.shape[0], points.dtype)
        if not self.importance_weights:
            return ones
        p = m.astype(points.dtype) / self.batch_size
        n_cells = state.counts.shape[0]
        if n_cells == 1:
            return ones
        cells = cell_index(self.domain, points, self.bins)
        density = state.counts[cells].astype(points.dtype) / self.bank_size
        cell_mass = self.cell_mass()
        if cell_mass is None:
            density = density * n_cells
        else:
            mass = cell_mass[cells].astype(points.dtype)
            density = jnp.where(mass > 0, density / jnp.where(mass > 0, mass, 1.0), 0.0)
        return 1.0 / ((1.0 - p) + p * density)
