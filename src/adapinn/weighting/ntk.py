"""Term weights from the trace of each term's neural tangent kernel (Wang, Yu and Perdikaris
2022, "When and why PINNs fail to train: a neural tangent kernel perspective", JCP 449).

Every `every` steps:

    tr(K_k)  ~  mean_i || d r_k(x_i) / d theta ||^2      (the mean of the kernel's diagonal)
    w_hat_k  =  mean_j tr(K_j) / tr(K_k)
    w_k     <-  momentum * w_k + (1 - momentum) * w_hat_k

For an initial or boundary term r = u - g, d r / d theta = d u / d theta, the paper's kernel
of the solution; for the PDE term it is the kernel of the residual operator. After a refresh
with momentum 0 every weighted kernel has the same trace: w_k tr(K_k) = mean_j tr(K_j).
Each ratio is floored relative to its numerator, `mean / (tr + floor mean)` (jaxpi's rule;
`base.balanced_ratio`), so a term with a vanishing kernel gets weight 1 / floor = 1e5 at most.
The mean over points (rather than the paper's sum) makes the trace independent of the batch
size. Per-point gradients are reduced `chunk` points at a time (see `pointgrads`), so memory is
O(chunk x n_params) rather than O(batch x n_params).
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.weighting.base import (
    AbstractWeighting,
    WeightingContext,
    Weights,
    balanced_ratio,
    moving_average,
    prior_weight,
)
from adapinn.weighting.pointgrads import point_jacobian_sq_norms, require_point_access


class NTK(AbstractWeighting):
    """Term weights that equalise the estimated NTK traces of the loss terms.

    Attributes:
        every: refresh period in steps (jaxpi: 1000).
        momentum: moving-average factor of the weights (0.9, as jaxpi).
        chunk: points per vmapped chunk of per-point gradients (bounds memory).
        floor: relative floor of the ratio (weights capped at 1 / floor).
    """

    rescales_terms = True

    every: int = eqx.field(static=True, default=1000)
    momentum: float = eqx.field(static=True, default=0.9)
    chunk: int = eqx.field(static=True, default=128)
    floor: float = eqx.field(static=True, default=1e-5)

    def __check_init__(self):
        if not 0 < self.floor < 1:
            raise ValueError(f"ntk: floor must be in (0, 1), got {self.floor}")

    def init(self, names: Sequence[str]) -> Weights:
        return {name: jnp.ones(()) for name in names}

    def traces(self, context: WeightingContext) -> dict[str, Array]:
        """tr(K_k) ~ mean_i w'_k,i ||d r_k(x_i)/d theta||^2 for every term, chunked (w' the
        earlier schemes' weights in a chain, else 1)."""
        require_point_access(context, "ntk")
        return {
            name: jnp.mean(prior_weight(context, name) * point_jacobian_sq_norms(
                context.point_residual(name), context.params, points, self.chunk))
            for name, points in context.points.items()
        }

    def target_weights(self, traces: dict[str, Array]) -> Weights:
        """w_hat_k = mean_j tr(K_j) / (tr(K_k) + floor mean_j tr(K_j))."""
        mean = jnp.mean(jnp.stack(list(traces.values())))
        return {name: balanced_ratio(mean, tr, self.floor) for name, tr in traces.items()}

    def update(self, state: Weights, context: WeightingContext) -> tuple[Weights, Weights]:
        def refresh(old: Weights) -> Weights:
            return moving_average(old, self.target_weights(self.traces(context)), self.momentum)

        due = context.step % self.every == 0
        state = jax.lax.cond(due, refresh, lambda old: dict(old), state)
        return dict(state), state
