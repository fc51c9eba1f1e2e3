"""RAD: residual-based adaptive distribution (Wu, Zhu, Tan, Kartha, Lu 2023, CMAME 403,
115671, section 3.2).

Every `refresh_every` steps a pool of `pool_size` uniform candidates is scored and the
training set of `set_size` points is drawn from the pool, without replacement, by the density

    p(x) ∝ |r(x)|^k / mean_pool(|r|^k) + c          (Wu et al. 2023, eq. (2); k = 1, c = 1)

Batches are drawn from the set (the whole set when `batch_size >= set_size`).

With `importance_weights=True` each point carries w_i = n / (N pi_i), pi_i its exact inclusion
probability in the Gumbel-top-k draw given the threshold (Kool et al. 2020), so that the
residual loss mean_i(w_i r_i^2) stays an unbiased estimate of the pool mean, hence of the
uniform mean; for n << N, w_i ~ 1 / (N q_i) with q the normalised density over the pool.

Defaults (methods.md): k = 1, c = 1, pool 100,000, set 2,000. `refresh_every` = 1000 is our
choice (the paper resamples after each training round).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.samplers.base import ScoreFn
from adapinn.samplers.density import (
    gumbel_top_k,
    horvitz_thompson_weights,
    log_weights,
    rad_weights,
)
from adapinn.samplers.pointset import PointSet, SetSampler


class RAD(SetSampler):
    """Training set redrawn from a scored uniform pool with p ∝ |r|^k / mean|r|^k + c."""

    pool_size: int = eqx.field(static=True, default=100_000)
    k: float = eqx.field(static=True, default=1.0)
    c: float = eqx.field(static=True, default=1.0)
    importance_weights: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if self.pool_size < self.set_size:
            raise ValueError(
                f"pool_size ({self.pool_size}) must be at least set_size ({self.set_size})"
            )
        if self.k < 0 or self.c < 0:
            raise ValueError(f"k and c must be non-negative, got k={self.k}, c={self.c}")

    def update(self, state: PointSet, key: Array, step: Array, score_fn: ScoreFn) -> PointSet:
        k_pool, k_draw = jax.random.split(key)
        pool = self.domain.sample(k_pool, self.pool_size)
        logits = log_weights(rad_weights(score_fn(pool), self.k, self.c))
        idx, kappa = gumbel_top_k(k_draw, logits, self.set_size)
        if self.importance_weights:
            weights = horvitz_thompson_weights(logits, idx, kappa).astype(pool.dtype)
        else:
            weights = jnp.ones(self.set_size, pool.dtype)
        return PointSet(pool[idx], weights)
