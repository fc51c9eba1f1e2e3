"""Learning-rate annealing by gradient norms (Wang, Teng and Perdikaris 2021, "Understanding and
mitigating gradient flow pathologies in physics-informed neural networks", SISC 43(5); the
jaxpi convention).

Every `every` steps, with g_k = ||grad_theta L_k|| (global Euclidean norm over parameters):

    mean normalisation (jaxpi's code):   w_hat_k = mean_j g_j / g_k
    sum normalisation:                   w_hat_k = sum_j g_j / g_k
    paper normalisation (Algorithm 1):   w_hat_k = max_theta |grad L_r| / mean_theta |grad L_k|
                                         for every term k != r; w_hat_r = 1

where in the paper's rule max_theta / mean_theta run over the entries of the parameter vector and
r is the PDE residual term (`residual_term`, "pde"). Then w_k <- momentum * w_k + (1 - momentum)
w_hat_k. The normalisation is explicit because paper and code differ: after a mean or sum
refresh every weighted term gradient ||w_hat_k grad L_k|| equals mean_j g_j (mean) or sum_j g_j
(sum; K times larger weights for K terms); after a paper refresh every weighted term gradient
has the mean entry magnitude max|grad L_r|.

Every ratio is floored relative to its numerator, `a / (b + floor a)` (jaxpi's `mean / (g +
1e-5 mean)`; `base.balanced_ratio`): a term with an exactly zero gradient gets weight 1 / floor
= 1e5, never 1e12 times rounding noise. Default: mean (jaxpi). `tests/test_weighting.py`
checks the three identities and the floor.
"""

from collections.abc import Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.errors import ConfigError
from adapinn.weighting.base import (
    AbstractWeighting,
    WeightingContext,
    balanced_ratio,
    global_norm,
    moving_average,
)


def _entries(tree) -> list[Array]:
    return [jnp.abs(x) for x in jax.tree_util.tree_leaves(tree) if eqx.is_inexact_array(x)]


def max_abs_entry(tree) -> Array:
    """max_theta |x_theta| over every entry of the inexact leaves."""
    return jnp.max(jnp.stack([jnp.max(x) for x in _entries(tree)]))


def mean_abs_entry(tree) -> Array:
    """mean_theta |x_theta| over every entry of the inexact leaves."""
    entries = _entries(tree)
    return sum(jnp.sum(x) for x in entries) / sum(x.size for x in entries)


class GradNorm(AbstractWeighting):
    """Term weights that equalise the gradient magnitudes of the loss terms.

    Attributes:
        every: refresh period in steps (jaxpi: 1000).
        momentum: moving-average factor of the weights (0.9).
        normalisation: "mean" (jaxpi), "sum", or "paper" (Algorithm 1 of the paper).
        floor: relative floor of the ratios (the weights are capped at 1 / floor).
        residual_term: the PDE residual term r of the paper's rule.
    """

    rescales_terms = True

    every: int = eqx.field(static=True, default=1000)
    momentum: float = eqx.field(static=True, default=0.9)
    normalisation: Literal["mean", "sum", "paper"] = eqx.field(static=True, default="mean")
    floor: float = eqx.field(static=True, default=1e-5)
    residual_term: str = eqx.field(static=True, default="pde")

    def __check_init__(self):
        if not 0 < self.floor < 1:
            raise ValueError(f"gradnorm: floor must be in (0, 1), got {self.floor}")

    def init(self, names: Sequence[str]) -> dict:
        if self.normalisation == "paper" and self.residual_term not in names:
            raise ConfigError(
                f"weighting 'gradnorm' with normalisation 'paper' balances every term against "
                f"the residual term {self.residual_term!r}, which is not a condition of the "
                f"problem (conditions: {list(names)}); set weighting.residual_term"
            )
        return {name: jnp.ones(()) for name in names}

    def target_weights(self, grads: dict) -> dict:
        """w_hat_k of the gradients of the current step (the module docstring's rules)."""
        if self.normalisation == "paper":
            top = max_abs_entry(grads[self.residual_term])
            return {name: jnp.ones_like(top) if name == self.residual_term
                    else balanced_ratio(top, mean_abs_entry(g), self.floor)
                    for name, g in grads.items()}
        norms = {name: global_norm(g) for name, g in grads.items()}
        stacked = jnp.stack(list(norms.values()))
        total = {"mean": jnp.mean, "sum": jnp.sum}[self.normalisation](stacked)
        return {name: balanced_ratio(total, norm, self.floor) for name, norm in norms.items()}

    def update(self, state: dict, context: WeightingContext):
        def refresh(old):
            target = self.target_weights(context.term_gradients())
            return moving_average(old, target, self.momentum)

        due = context.step % self.every == 0
        state = jax.lax.cond(due, refresh, lambda old: dict(old), state)
        return dict(state), state
