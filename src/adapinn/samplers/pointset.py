"""A fixed-size training set with per-point loss weights: the state of the resampling samplers
(RAD, RSmote, GLF). Each step draws a batch from the set (all of it when
`batch_size >= set_size`, else a uniform subset without replacement, as `Fixed` does); `update`
replaces the whole set, never its shape.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from adapinn.samplers.base import AbstractSampler, Batch
from adapinn.samplers.density import draw_rows


class PointSet(eqx.Module):
    """The current training set (n, d) and its loss weights (n,) (1 without reweighting)."""

    points: Array
    weights: Array


def uniform_set(points: Array) -> PointSet:
    return PointSet(points, jnp.ones(points.shape[0], points.dtype))


class SetSampler(AbstractSampler):
    """Base of the samplers whose state is one `PointSet` of `set_size` points.

    The set starts uniform; subclasses implement `update`. `refresh_every` defaults to 1000
    steps (our choice: one resampling round per 1000 Adam steps, the RSmote / RAD protocol).
    """

    refresh_every: int = eqx.field(static=True, default=1000)
    set_size: int = eqx.field(static=True, default=2000)

    def __check_init__(self):
        if self.set_size < 1:
            raise ValueError(f"set_size must be positive, got {self.set_size}")

    def init(self, key: Array) -> PointSet:
        return uniform_set(self.domain.sample(key, self.set_size))

    def sample(self, state: PointSet, key: Array, step: Array) -> Batch:
        idx = draw_rows(key, state.points, self.batch_size)
        return Batch(state.points[idx], state.weights[idx])
