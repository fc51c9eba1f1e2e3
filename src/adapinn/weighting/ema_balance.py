"""Dynamic gradient balancing, DB-PINN (seed 004: "Resolving gradient pathologies in PINNs via
dynamic gradient surgery and adaptive refinement").

Every step, with g_k = ||grad_theta L_k|| the gradient norm of the unweighted term k:

    g_hat_k  <-  alpha * g_hat_k + (1 - alpha) * g_k          (alpha = 0.999, g_hat_k(0) = 0)

and every `every` steps (step 0 included) the weights are rebalanced so that every weighted
term has the same gradient scale, the mean one:

    w_k = mean_j g_hat_j / g_hat_k        =>  w_k g_hat_k = mean_j g_hat_j for every k.

The rebalancing formula is our choice (the seed says only "rebalanced so terms get gradients of
equal scale"). It needs no bias correction: the zero-initialised EMA is low by the same factor
(1 - alpha^t) for every term, which cancels in the ratio. Between rebalancings the weights are
held. The ratio is floored relative to its numerator, `mean / (g_hat + floor mean)`
(`base.balanced_ratio`): a term with a zero gradient gets weight 1 / floor = 1e5 at most.
Cost: one gradient per term per step (the EMA needs every step's norm).
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
    global_norm,
)


class EMABalance(AbstractWeighting):
    """Term weights from an exponential moving average of each term's gradient norm.

    Attributes:
        alpha: EMA factor of the gradient norms (seed 004: 0.999).
        every: rebalancing period in steps (seed 004: 50-100; ours 100).
        floor: relative floor of the ratio (weights capped at 1 / floor).
    """

    rescales_terms = True

    alpha: float = eqx.field(static=True, default=0.999)
    every: int = eqx.field(static=True, default=100)
    floor: float = eqx.field(static=True, default=1e-5)

    def __check_init__(self):
        if not 0 < self.floor < 1:
            raise ValueError(f"ema_balance: floor must be in (0, 1), got {self.floor}")

    def init(self, names: Sequence[str]) -> dict[str, Weights]:
        return {"ema": {n: jnp.zeros(()) for n in names},
                "weights": {n: jnp.ones(()) for n in names}}

    def balanced(self, ema: Weights) -> Weights:
        """w_k = mean_j g_hat_j / (g_hat_k + floor mean_j g_hat_j)."""
        mean = jnp.mean(jnp.stack(list(ema.values())))
        return {n: balanced_ratio(mean, g, self.floor).astype(g.dtype) for n, g in ema.items()}

    def update(self, state: dict, context: WeightingContext) -> tuple[Weights, dict]:
        norms = {n: global_norm(g) for n, g in context.term_gradients().items()}
        ema = {n: (self.alpha * g + (1 - self.alpha) * norms[n]).astype(g.dtype)
               for n, g in state["ema"].items()}
        due: Array = context.step % self.every == 0
        weights = jax.lax.cond(due, self.balanced, lambda _: dict(state["weights"]), ema)
        return dict(weights), {"ema": ema, "weights": weights}
