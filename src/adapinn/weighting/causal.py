"""Causal training weights (Wang, Sankaran and Perdikaris 2024, "Respecting causality for
training physics-informed neural networks", CMAME 421).

The time interval [t_0, t_1] of term `term`'s domain (its bounding box along `time_axis`) is
cut into `n_chunks` equal slabs with fixed edges t_0 + c (t_1 - t_0) / n_chunks; point i goes to
the slab holding its time, c_i = floor(n_chunks (t_i - t_0) / (t_1 - t_0)) (clipped to the last
slab at t_1). With the importance weights q_i of the batch (1 for a uniform draw), the loss of
slab c is the self-normalised estimate of its mean squared residual

    L_c = sum_{i in c} q_i r_i^2 / sum_{i in c} q_i        (0 for an empty slab: masked)

and

    w_c = exp(-tol * sum_{c' < c} L_c')        (stop-gradient; w_0 = 1)

every point of the term gets its slab's weight: a late time is trained only once all earlier
times have small residual. Other terms get weight 1. Fixed edges and importance weights make
the schedule a property of the solution, not of the sampler: an adaptive sampler that crowds
points into early times changes how many points a slab holds, not its loss estimate or its
weight (the paper's fixed time grid; before this rule, chunks were equal-count ranks in t, which
moved with the sampler). An empty slab contributes nothing to the sums and carries no points.
Defaults (tol = 1, 32 chunks) follow methods.md. The state is the interval (t_0, t_1), read
from the sampler's domain by `init_for`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.errors import ConfigError
from adapinn.weighting.base import AbstractWeighting, WeightingContext, Weights


def time_chunks(t: Array, n_chunks: int, t_range: Array) -> Array:
    """Slab index in [0, n_chunks) of every time in `t` (n,), for the fixed equal slabs of
    `t_range` = (t_0, t_1); times outside are clipped to the first / last slab."""
    t0, t1 = t_range[0], t_range[1]
    index = jnp.floor((t - t0) / (t1 - t0) * n_chunks).astype(jnp.int32)
    return jnp.clip(index, 0, n_chunks - 1)


def causal_chunk_weights(squared: Array, chunk: Array, n_chunks: int, tol: float,
                         importance: Array | None = None) -> Array:
    """w_c = exp(-tol * sum_{c'<c} L_c'), L_c = sum_{i in c} q_i r_i^2 / sum_{i in c} q_i
    (0 for an empty slab); shape (n_chunks,).

    Args:
        squared: (n,) squared residuals.
        chunk: (n,) slab index of each point.
        n_chunks: number of slabs.
        tol: causality parameter epsilon of the paper.
        importance: (n,) importance weights q (None: all 1).
    """
    q = jnp.ones_like(squared) if importance is None else importance.astype(squared.dtype)
    sums = jax.ops.segment_sum(q * squared, chunk, num_segments=n_chunks)
    mass = jax.ops.segment_sum(q, chunk, num_segments=n_chunks)
    losses = jnp.where(mass > 0, sums / jnp.where(mass > 0, mass, 1.0), 0.0)
    before = jnp.cumsum(losses) - losses
    return jnp.exp(-tol * before)


class Causal(AbstractWeighting):
    """Point-level weights on `term` that respect temporal causality.

    Attributes:
        n_chunks: number of time slabs (32).
        tol: causality parameter epsilon (1.0).
        time_axis: the coordinate that is time (0: inputs are (t, x...)).
        term: the condition to weight ("pde").
    """

    n_chunks: int = eqx.field(static=True, default=32)
    tol: float = eqx.field(static=True, default=1.0)
    time_axis: int = eqx.field(static=True, default=0)
    term: str = eqx.field(static=True, default="pde")

    def _check_term(self, names: Sequence[str]) -> None:
        if self.term not in names:
            raise ConfigError(f"weighting 'causal': term {self.term!r} is not a condition of "
                              f"the problem; conditions: {list(names)}")

    def init(self, names: Sequence[str]) -> Array:
        """Without the samplers the interval is unknown: the unit interval (tests only);
        the trainer calls `init_for`."""
        self._check_term(names)
        return jnp.asarray([0.0, 1.0])

    def init_for(self, samplers: Mapping[str, Any]) -> Array:
        """(t_0, t_1): the bounds of `term`'s domain along `time_axis`."""
        self._check_term(tuple(samplers))
        box = samplers[self.term].domain.bounding_box
        if not 0 <= self.time_axis < box.dim:
            raise ConfigError(f"weighting 'causal': time_axis {self.time_axis} is not an axis "
                              f"of the {box.dim}-D domain of {self.term!r}")
        t0, t1 = box.low[self.time_axis], box.high[self.time_axis]
        if not t1 > t0:
            raise ConfigError(
                f"weighting 'causal': the domain of {self.term!r} has no extent along "
                f"time_axis {self.time_axis} ([{t0}, {t1}]); set weighting.time_axis to the "
                "time coordinate"
            )
        return jnp.asarray([t0, t1], jnp.result_type(float))

    def update(self, state: Array, context: WeightingContext) -> tuple[Weights, Array]:
        squared = context.squared_residuals[self.term]
        t = context.points[self.term][:, self.time_axis]
        chunk = time_chunks(t, self.n_chunks, state.astype(t.dtype))
        importance = None if context.importance is None else context.importance[self.term]
        per_chunk = causal_chunk_weights(squared, chunk, self.n_chunks, self.tol, importance)
        weights = {n: jnp.asarray(1.0, r.dtype) for n, r in context.squared_residuals.items()}
        weights[self.term] = jax.lax.stop_gradient(per_chunk[chunk])
        return weights, state
