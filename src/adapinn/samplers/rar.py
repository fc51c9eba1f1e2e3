"""Residual-based adaptive refinement: the training set grows by `add_per_refresh` points per
refresh until it reaches `capacity`.

- `rar_g` (greedy RAR; Lu, Meng, Mao, Karniadakis 2021, "DeepXDE", SIAM Review 63(1),
  Algorithm 2): score `pool_size` uniform candidates and add the m with the largest |r|.
- `rar_d` (Wu et al. 2023, CMAME 403, 115671, section 3.3): add m candidates drawn without
  replacement by the RAD density p(x) ∝ |r(x)|^k / mean(|r|^k) + c (k = 1, c = 1 as for RAD;
  our choice, the paper studies both hyperparameters).

The set is a fixed-capacity buffer whose first `count` rows are active (the mask is
`arange(capacity) < count`), so shapes never change and the step compiles once; a full buffer
skips the candidate scoring. Batches draw `batch_size` active rows uniformly with replacement.

Defaults (our choice, methods.md gives none): initial set 2,000, m = 10 per refresh,
capacity 4,000, pool 100,000 (DeepXDE's examples use 1e5 random candidates), refresh every
1,000 steps.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.samplers.base import AbstractSampler, Batch, ScoreFn, unit_weights
from adapinn.samplers.density import (
    draw_active,
    finite_scores,
    gumbel_top_k,
    log_weights,
    rad_weights,
)


class Buffer(eqx.Module):
    """`points` (capacity, d) of which the first `count` (int32 scalar) are active."""

    points: Array
    count: Array


class _RAR(AbstractSampler):
    """Shared buffer logic; subclasses choose which candidates to add (`select`)."""

    refresh_every: int = eqx.field(static=True, default=1000)
    initial_size: int = eqx.field(static=True, default=2000)
    capacity: int = eqx.field(static=True, default=4000)
    add_per_refresh: int = eqx.field(static=True, default=10)
    pool_size: int = eqx.field(static=True, default=100_000)

    def __check_init__(self):
        if not 1 <= self.initial_size <= self.capacity:
            raise ValueError(
                f"need 1 <= initial_size ({self.initial_size}) <= capacity ({self.capacity})"
            )
        if not 1 <= self.add_per_refresh <= self.pool_size:
            raise ValueError(
                f"need 1 <= add_per_refresh ({self.add_per_refresh}) <= pool_size "
                f"({self.pool_size})"
            )

    def init(self, key: Array) -> Buffer:
        points = self.domain.sample(key, self.capacity)  # inactive rows: harmless filler
        return Buffer(points, jnp.asarray(self.initial_size, jnp.int32))

    def sample(self, state: Buffer, key: Array, step: Array) -> Batch:
        return unit_weights(state.points[draw_active(key, state.count, self.batch_size)])

    def select(self, key: Array, scores: Array) -> Array:
        """Indices (add_per_refresh,) of the candidates to add."""
        raise NotImplementedError

    def update(self, state: Buffer, key: Array, step: Array, score_fn: ScoreFn) -> Buffer:
        return jax.lax.cond(
            state.count < self.capacity, lambda s: self._grow(s, key, score_fn), lambda s: s, state
        )

    def _grow(self, state: Buffer, key: Array, score_fn: ScoreFn) -> Buffer:
        k_pool, k_select = jax.random.split(key)
        pool = self.domain.sample(k_pool, self.pool_size)
        new = pool[self.select(k_select, finite_scores(score_fn(pool)))]
        slots = state.count + jnp.arange(self.add_per_refresh, dtype=jnp.int32)
        points = state.points.at[slots].set(new, mode="drop")  # beyond capacity: dropped
        count = jnp.minimum(state.count + self.add_per_refresh, self.capacity)
        return Buffer(points, count.astype(jnp.int32))


class RARG(_RAR):
    """Greedy RAR: add the m candidates with the largest |r| (top-m of the pool)."""

    def select(self, key: Array, scores: Array) -> Array:
        return jax.lax.top_k(scores, self.add_per_refresh)[1]


class RARD(_RAR):
    """RAR-D: add m candidates drawn without replacement by p ∝ |r|^k / mean|r|^k + c."""

    k: float = eqx.field(static=True, default=1.0)
    c: float = eqx.field(static=True, default=1.0)

    def select(self, key: Array, scores: Array) -> Array:
        logits = log_weights(rad_weights(scores, self.k, self.c))
        return gumbel_top_k(key, logits, self.add_per_refresh)[0]
