"""Point-level gradient-norm weights (seed 002; the per-point form of Wang, Teng and
Perdikaris 2021, SISC 43(5), after Chen et al.'s GradNorm, ICML 2018).

With nu_i = ||d r(x_i)^2 / d theta|| the gradient norm of point i's squared residual, every
point of a term is weighted inversely to it, with a floor on nu against noise amplification
(points whose gradient is numerically tiny would otherwise get huge weights), and the weights
of the term normalised to mean 1:

    nu'_i = max(nu_i, floor * mean_j nu_j)
    w_i   = (1 / nu'_i) / mean_j (1 / nu'_j)

so mean_i w_i = 1 (the term's total weight is unchanged) and max_i w_i / min_i w_i <=
max_i nu'_i / (floor * mean_j nu_j). The floor relative to the mean (0.1) is our choice.

Cost: one parameter gradient per point per recomputation (`chunk` points at a time, see
`pointgrads`). With `every=1` (default) the weights are
recomputed every step and belong to the step's points, so any sampler works. With
`every=N > 1` they are recomputed on steps 0, N, 2N, ... and held in between, which needs the
same points at every step: the `fixed` sampler with the whole set as the batch (as SA-PINN;
a ConfigError names the conflict otherwise). Our addition: seed 002 recomputes every step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.errors import ConfigError
from adapinn.weighting.base import (
    AbstractWeighting,
    WeightingContext,
    Weights,
    fixed_set_size,
    prior_weight,
)
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
        every: recompute the weights every this many steps (> 1 needs fixed point sets).
    """

    floor: float = eqx.field(static=True, default=0.1)
    chunk: int = eqx.field(static=True, default=128)
    terms: tuple[str, ...] = eqx.field(static=True, default=(), converter=tuple)
    every: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        if self.every < 1:
            raise ValueError(f"pointwise_gradnorm: every must be >= 1, got {self.every}")

    @property
    def point_state(self) -> bool:  # type: ignore[override]
        return self.every > 1

    def chosen(self, names: Sequence[str]) -> tuple[str, ...]:
        """The conditions this scheme weights (ConfigError for a term that is not one)."""
        unknown = set(self.terms) - set(names)
        if unknown:
            raise ConfigError(f"weighting 'pointwise_gradnorm': terms {sorted(unknown)} are not "
                              f"conditions of the problem; conditions: {list(names)}")
        return tuple(n for n in names if not self.terms or n in self.terms)

    def init(self, names: Sequence[str]) -> Any:
        self.chosen(names)
        if self.every > 1:
            raise ConfigError("pointwise_gradnorm with every > 1 holds one weight per point: "
                              "use init_for(samplers)")
        return ()

    def init_for(self, samplers: Mapping[str, Any]) -> Any:
        """() when recomputed every step; else the held weights, one per point of each
        weighted condition (its sampler must be `fixed`)."""
        if self.every == 1:
            return self.init(tuple(samplers))
        return {n: jnp.ones(fixed_set_size(n, samplers[n], "pointwise_gradnorm"))
                for n in self.chosen(tuple(samplers))}

    def point_norms(self, context: WeightingContext, name: str) -> Array:
        """nu_i = ||d (w'_i r(x_i)^2) / d theta|| for the points of `name`, shape (n,) (w' the
        earlier schemes' weights in a chain, else 1; constant, so w'_i ||d r_i^2 / d theta||)."""
        fn = squared_residual_fn(context.point_residual(name))
        norms = jnp.sqrt(point_jacobian_sq_norms(fn, context.params, context.points[name],
                                                 self.chunk))
        return prior_weight(context, name) * norms

    def fresh_weights(self, context: WeightingContext) -> Weights:
        """The inverse-norm weights of this step's points, per weighted condition."""
        return {name: inverse_norm_weights(self.point_norms(context, name), self.floor)
                for name in self.chosen(tuple(context.points))}

    def update(self, state: Any, context: WeightingContext) -> tuple[Weights, Any]:
        require_point_access(context, "pointwise_gradnorm")
        if self.every == 1:
            point_weights = self.fresh_weights(context)
        else:
            state = jax.lax.cond(context.step % self.every == 0,
                                 lambda old: self.fresh_weights(context), dict, state)
            point_weights = state
        ones = {n: jnp.asarray(1.0, r.dtype) for n, r in context.squared_residuals.items()}
        return {**ones, **point_weights}, state
