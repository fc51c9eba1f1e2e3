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

with ramp(t) = min(t, 1) ("linear") or (1 - cos(pi min(t, 1))) / 2 ("cosine").

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
4096 histogram cells.
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
    """bank (K, d); scores (K,) |r| at insertion; counts (n_cells,) bank histogram."""

    bank: Array
    scores: Array
    counts: Array


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

    def mix_fraction(self, step: Array) -> Array:
        """p(step): 0 before start_step, then the ramp to p_max (float32 scalar)."""
        s = jnp.asarray(step, jnp.float32) - self.start_step
        t = jnp.clip(s / max(self.ramp_steps, 1), 0.0, 1.0)
        if self.ramp_steps == 0:
            t = jnp.where(s >= 0, 1.0, 0.0)
        shape = t if self.ramp == "linear" else 0.5 * (1.0 - jnp.cos(jnp.pi * t))
        return jnp.where(s >= 0, jnp.minimum(self.p_max * shape, self.p_max), 0.0)

    def n_from_bank(self, step: Array) -> Array:
        """round(p(step) B), the number of bank points in the batch (int32 scalar)."""
        m = jnp.round(self.mix_fraction(step) * self.batch_size).astype(jnp.int32)
        return jnp.minimum(m, self.n_bank_max)

    def init(self, key: Array) -> HardBankState:
        bank = self.domain.sample(key, self.bank_size)
        scores = jnp.zeros(self.bank_size, bank.dtype)
        return HardBankState(bank, scores, self._histogram(bank))

    def sample(self, state: HardBankState, key: Array, step: Array) -> Batch:
        k_fresh, k_bank = jax.random.split(key)
        points = self.domain.sample(k_fresh, self.batch_size)
        m = self.n_from_bank(step)
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
        k_pool, k_slots = jax.random.split(key)
        pool = self.domain.sample(k_pool, self.pool_size)
        top_scores, top = jax.lax.top_k(finite_scores(score_fn(pool)), self.n_top)
        slots = self._slots(state, k_slots)
        bank = state.bank.at[slots].set(pool[top])
        scores = state.scores.at[slots].set(top_scores.astype(state.scores.dtype))
        return HardBankState(bank, scores, self._histogram(bank))

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
