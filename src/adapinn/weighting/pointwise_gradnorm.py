"""Point-level gradient-norm weights (seed 002; the per-point form of Wang, Teng and
Perdikaris 2021, SISC 43(5), after Chen et al.'s GradNorm, ICML 2018).

With nu_i = ||d r(x_i)^2 / d theta|| the gradient norm of point i's squared residual, every
point of a term is weighted inversely to it, with a floor on nu against noise amplification
(points whose gradient is numerically tiny would otherwise get huge weights), and the weights
of the term normalised to mean 1:

    nu'_i = max(nu_i, floor * mean_j nu_j)
    w_i   = (1 / nu'_i) / mean_j (1 / nu'_j)

so mean_i w_i = 1 (the term's total weight is unchanged) and max_i w_i / min_i w_i <=
max_i nu'_i / (floor * mean_j nu_j). The floor relative to the mean (0.1) is our choice. The
weights are recomputed every step (they belong to the step's points), `chunk` points at a
time (see `pointgrads`).
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from adapinn.errors import ConfigError
from adapinn.weighting.base import AbstractWeighting, WeightingContext, Weights
from adapinn.weighting.pointgrads import (
    point_jacobian_sq_norms,
    require_point_access,
    squared_residual_fn,
)


def inverse_norm_weights(norms: Array, floor: float, eps: float = 1e-30) -> Array:
    """w_i = (1/nu'_i) / mean_j(1/nu'_j) with nu'_i = max(nu_i, floor * mean(nu)); shape (n,)."""
    floored = jnp.maximum(norms, floor * jnp.mean(norms) + eps)
    inverse = 1.0 / floored
    return inverse / jnp.mean(inverse)


class PointwiseGradNorm(AbstractWeighting):
    """Per-point weights inversely proportional to ||d r_i^2 / d theta||, mean 1 per term.

    Attributes:
        floor: lower bound on nu_i relative to the term's mean nu (caps the weights).
        chunk: points per vmapped chunk of per-point gradients.
        terms: the conditions to weight; empty means all (the others get weight 1).
    """

    floor: float = eqx.field(static=True, default=0.1)
    chunk: int = eqx.field(static=True, default=128)
    terms: tuple[str, ...] = eqx.field(static=True, default=(), converter=tuple)

    def init(self, names: Sequence[str]) -> tuple:
        unknown = set(self.terms) - set(names)
        if unknown:
            raise ConfigError(f"weighting 'pointwise_gradnorm': terms {sorted(unknown)} are not "
                              f"conditions of the problem; conditions: {list(names)}")
        return ()

    def point_norms(self, context: WeightingContext, name: str) -> Array:
        """nu_i = ||d r(x_i)^2 / d theta|| for the points of `name`, shape (n,)."""
        fn = squared_residual_fn(context.point_residual(name))
        return jnp.sqrt(point_jacobian_sq_norms(fn, context.params, context.points[name],
                                                self.chunk))

    def update(self, state: tuple, context: WeightingContext) -> tuple[Weights, tuple]:
        require_point_access(context, "pointwise_gradnorm")
        chosen = self.terms or tuple(context.points)
        weights = {}
        for name, squared in context.squared_residuals.items():
            if name in chosen:
                weights[name] = inverse_norm_weights(self.point_norms(context, name), self.floor)
            else:
                weights[name] = jnp.asarray(1.0, squared.dtype)
        return weights, state
