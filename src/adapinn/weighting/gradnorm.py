"""Learning-rate annealing by gradient norms (Wang, Teng and Perdikaris 2021, SISC 43(5);
the jaxpi convention).

Every `every` steps, with g_k = ||grad_theta L_k||:

    mean normalisation (jaxpi's code):   w_hat_k = mean_j g_j / g_k
    sum normalisation:                   w_hat_k = sum_j g_j / g_k
    max normalisation (the paper):       w_hat_k = max_j g_j / g_k   (relative to the residual
                                                                      in the paper; here all terms)

then w_k <- momentum * w_k + (1 - momentum) * w_hat_k. The normalisation is explicit because
paper and code differ: after a refresh every weighted term gradient ||w_hat_k grad L_k|| equals
mean_j g_j (mean), sum_j g_j (sum; K times larger weights for K terms) or max_j g_j (max).
Default: mean (jaxpi). `tests/test_weighting.py` checks the mean and sum identities.
"""

from collections.abc import Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp

from adapinn.weighting.base import (
    AbstractWeighting,
    WeightingContext,
    global_norm,
    moving_average,
)


class GradNorm(AbstractWeighting):
    """Term weights that equalise the gradient norms of the loss terms."""

    every: int = eqx.field(static=True, default=1000)
    momentum: float = eqx.field(static=True, default=0.9)
    normalisation: Literal["mean", "sum", "max"] = eqx.field(static=True, default="mean")
    eps: float = eqx.field(static=True, default=1e-12)

    def init(self, names: Sequence[str]) -> dict:
        return {name: jnp.ones(()) for name in names}

    def target_weights(self, grads: dict) -> dict:
        """w_hat_k = agg_j g_j / g_k for the gradients of the current step."""
        norms = {name: global_norm(g) for name, g in grads.items()}
        stacked = jnp.stack(list(norms.values()))
        total = {"mean": jnp.mean, "sum": jnp.sum, "max": jnp.max}[self.normalisation](stacked)
        return {name: total / (norm + self.eps) for name, norm in norms.items()}

    def update(self, state: dict, context: WeightingContext):
        def refresh(old):
            target = self.target_weights(context.term_gradients())
            return moving_average(old, target, self.momentum)

        due = context.step % self.every == 0
        state = jax.lax.cond(due, refresh, lambda old: dict(old), state)
        return dict(state), state
