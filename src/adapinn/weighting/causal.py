"""Causal training weights (Wang, Sankaran and Perdikaris 2024, "Respecting causality for
training physics-informed neural networks", CMAME 421).

The residual batch of term `term` is split by its time coordinate into `n_chunks` ordered
chunks of (nearly) equal size: the points are ranked by t and point i of n goes to chunk
floor(rank_i * n_chunks / n). With L_c the mean squared residual of chunk c,

    w_c = exp(-tol * sum_{c' < c} L_c')        (stop-gradient; w_0 = 1)

and every point of the term gets its chunk's weight: a late time is trained only once all
earlier times have small residual. Other terms get weight 1. Ranking by t (instead of a
fixed grid in t) needs no knowledge of the domain and keeps the chunks equally filled with any
sampler. Defaults (tol = 1, 32 chunks) follow methods.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.errors import ConfigError
from adapinn.weighting.base import AbstractWeighting, WeightingContext, Weights


def time_chunks(t: Array, n_chunks: int) -> Array:
    """Chunk index in [0, n_chunks) of every point, by rank of its time t, shape (n,)."""
    n = t.shape[0]
    ranks = jnp.argsort(jnp.argsort(t))
    return (ranks * n_chunks) // n


def causal_chunk_weights(squared: Array, chunk: Array, n_chunks: int, tol: float) -> Array:
    """w_c = exp(-tol * sum_{c'<c} L_c'), L_c = mean of `squared` over chunk c; shape (n_chunks,).

    Args:
        squared: (n,) squared residuals.
        chunk: (n,) chunk index of each point.
        n_chunks: number of chunks.
        tol: causality parameter epsilon of the paper.
    """
    sums = jax.ops.segment_sum(squared, chunk, num_segments=n_chunks)
    counts = jax.ops.segment_sum(jnp.ones_like(squared), chunk, num_segments=n_chunks)
    losses = sums / jnp.maximum(counts, 1)
    before = jnp.cumsum(losses) - losses
    return jnp.exp(-tol * before)


class Causal(AbstractWeighting):
    """Point-level weights on `term` that respect temporal causality.

    Attributes:
        n_chunks: number of time chunks (32).
        tol: causality parameter epsilon (1.0).
        time_axis: the coordinate that is time (0: inputs are (t, x...)).
        term: the condition to weight ("pde").
    """

    n_chunks: int = eqx.field(static=True, default=32)
    tol: float = eqx.field(static=True, default=1.0)
    time_axis: int = eqx.field(static=True, default=0)
    term: str = eqx.field(static=True, default="pde")

    def init(self, names: Sequence[str]) -> tuple:
        if self.term not in names:
            raise ConfigError(f"weighting 'causal': term {self.term!r} is not a condition of "
                              f"the problem; conditions: {list(names)}")
        return ()

    def update(self, state: tuple, context: WeightingContext) -> tuple[Weights, tuple]:
        squared = context.squared_residuals[self.term]
        chunk = time_chunks(context.points[self.term][:, self.time_axis], self.n_chunks)
        per_chunk = causal_chunk_weights(squared, chunk, self.n_chunks, self.tol)
        weights = {n: jnp.asarray(1.0, r.dtype) for n, r in context.squared_residuals.items()}
        weights[self.term] = jax.lax.stop_gradient(per_chunk[chunk])
        return weights, state
