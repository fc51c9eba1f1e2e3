"""Residual-based attention, RBA (Anagnostopoulos, Toscano, Stergiopulos, Karniadakis 2024,
"Residual-based attention in physics-informed neural networks", CMAME 421, 116805).

Every point i of a weighted condition carries a multiplier lambda_i, updated once per step
from the step's own residuals (no gradient, no extra evaluation):

    lambda_i <- gamma lambda_i + eta |r_i| / max_j |r_j|        (max over the condition's batch)
    L_k = mean_i (lambda_i r_i)^2          i.e. the point weight w_i = lambda_i^2 (stop-gradient)

The updated lambda weights the same step's loss (the authors' order). lambda is bounded by
eta / (1 - gamma) and grows towards it where the residual stays the largest. Defaults (the
paper and its code, soanagno/rba-pinns): gamma = 0.999, eta = 0.001, lambda_0 = 0 (their
"initialization mode 1", `rsum = 0`). `terms="all"` weights every condition (our choice, one
lambda per point of each, as SA-PINN here); `terms="pde"` weights the residual term only, as the
authors' code does (the other terms then keep weight 1).

lambda belongs to a point, so it must travel with it. RBA combines with samplers that have
persistent slots (`AbstractSampler.slots`: every batch is the sampler's whole point set, slot
i in row i): `fixed` with train.batch_size >= size (points never move), and `r3` /
`causal_r3`, which put in each batch the mask `Batch.replaced` of the slots they refilled since
the previous step; RBA resets lambda to lambda_0 there before the update, so a fresh point
starts with a fresh weight and a retained point keeps its history. Every other sampler is
refused with a ConfigError naming these (`init_for`); the builder gives the ic/bc terms
fixed sets (`point_state`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from adapinn.errors import ConfigError
from adapinn.weighting.base import (
    AbstractWeighting,
    WeightingContext,
    Weights,
    slot_set_size,
)


def rba_step(lam: Array, squared_residuals: Array, gamma: float, eta: float) -> Array:
    """One RBA update, lambda <- gamma lambda + eta |r| / max|r| (shape (n,)); a batch whose
    residuals are all 0 (or not finite) adds nothing."""
    r = jnp.sqrt(squared_residuals).astype(lam.dtype)
    r = jnp.where(jnp.isfinite(r), r, jnp.zeros_like(r))
    top = jnp.max(r)
    normalised = jnp.where(top > 0, r / jnp.where(top > 0, top, 1.0), jnp.zeros_like(r))
    return gamma * lam + eta * normalised


class RBA(AbstractWeighting):
    """Per-point multipliers lambda_i from the cumulative normalised residual; w = lambda^2.

    Attributes:
        gamma: decay of the cumulative residual (0.999).
        eta: step of the normalised residual (0.001).
        init_value: lambda_0, also the value a replaced point's lambda restarts from (0).
        terms: "all" conditions weighted, or the "pde" term only.
    """

    point_state: ClassVar[bool] = True

    gamma: float = eqx.field(static=True, default=0.999)
    eta: float = eqx.field(static=True, default=1e-3)
    init_value: float = eqx.field(static=True, default=0.0)
    terms: Literal["all", "pde"] = eqx.field(static=True, default="all")

    def __check_init__(self):
        if not 0.0 <= self.gamma < 1.0 or self.eta <= 0.0:
            raise ValueError(f"rba needs 0 <= gamma < 1 and eta > 0, got gamma={self.gamma}, "
                             f"eta={self.eta}")

    def weighted(self, name: str) -> bool:
        return self.terms == "all" or name == "pde"

    def init_sizes(self, sizes: Mapping[str, int]) -> dict[str, Any]:
        """State for conditions with `sizes[name]` points: {"lambda": {name: (n,)}}."""
        dtype = jnp.result_type(float)
        return {"lambda": {n: jnp.full((k,), self.init_value, dtype) for n, k in sizes.items()
                           if self.weighted(n)}}

    def init_for(self, samplers: Mapping[str, Any]) -> dict[str, Any]:
        return self.init_sizes({n: slot_set_size(n, s, "rba") for n, s in samplers.items()
                                if self.weighted(n)})

    def init(self, names: Sequence[str]) -> dict[str, Any]:
        raise ConfigError("weighting 'rba' is sized by its samplers: use init_for(samplers) "
                          "or init_sizes({name: n_points})")

    def update(self, state: dict, context: WeightingContext) -> tuple[Weights, dict]:
        replaced = context.replaced or {}
        lam_new = {}
        for name, lam in state["lambda"].items():
            squared = context.squared_residuals[name]
            if squared.shape != lam.shape:
                raise ValueError(f"weighting 'rba': condition {name!r} has {squared.shape[0]} "
                                 f"points but {lam.shape[0]} weights")
            if name in replaced:  # a released point's weight restarts with the new point
                lam = jnp.where(replaced[name], jnp.asarray(self.init_value, lam.dtype), lam)
            lam_new[name] = rba_step(lam, squared, self.gamma, self.eta).astype(lam.dtype)
        weights = {n: jnp.square(lam_new[n]) if n in lam_new else jnp.ones((), sq.dtype)
                   for n, sq in context.squared_residuals.items()}
        return weights, {"lambda": lam_new}
