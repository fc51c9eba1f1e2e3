"""Self-adaptive PINN weights, SA-PINN (McClenny and Braga-Neto 2023, "Self-adaptive
physics-informed neural networks", JCP 474, 111722; seed 002).

Every point i of every condition k carries a trainable lambda_{k,i}; the loss is

    L(theta, lambda) = sum_k mean_i m(lambda_{k,i}) q_{k,i} r_k(x_{k,i}; theta)^2

and training is a saddle-point search: theta descends on L (the trainer's optimiser), lambda
ASCENDS on L with its own Adam (lr 5e-3): lambda <- lambda + Adam(dL/dlambda). Since
dL/dlambda_i = m'(lambda_i) q_i r_i^2 / n_k >= 0 for an increasing mask, weights grow fastest
where residuals stay large. Masks m: "square" lambda^2 (the paper's default), "polynomial"
scale * |lambda|^power, "sigmoid" scale * sigmoid(lambda). lambda starts at `init_value` (1.0,
our choice; the paper draws it per problem).

lambda_{k,i} belongs to point i, so every condition must see the same points, in the same
order, at every step: the `fixed` sampler with batch_size >= size (the whole set is the batch).
`init_for` checks this and sizes lambda from the samplers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import Array

from adapinn.errors import ConfigError
from adapinn.weighting.base import (
    AbstractWeighting,
    WeightingContext,
    Weights,
    fixed_set_size,
)


class SelfAdaptive(AbstractWeighting):
    """Trainable per-point weights m(lambda_i), ascended with their own Adam.

    Attributes:
        mask: "square" (lambda^2), "polynomial" (scale |lambda|^power), "sigmoid"
            (scale sigmoid(lambda)).
        lr: Adam learning rate of the ascent on lambda (5e-3).
        init_value: initial lambda of every point.
        power: exponent of the polynomial mask.
        scale: factor of the polynomial and sigmoid masks.
    """

    trainable: ClassVar[bool] = True
    point_state: ClassVar[bool] = True

    mask: Literal["square", "polynomial", "sigmoid"] = eqx.field(static=True, default="square")
    lr: float = eqx.field(static=True, default=5e-3)
    init_value: float = eqx.field(static=True, default=1.0)
    power: float = eqx.field(static=True, default=2.0)
    scale: float = eqx.field(static=True, default=1.0)

    @property
    def optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.lr)

    def mask_fn(self, lam: Array) -> Array:
        """m(lambda), elementwise."""
        if self.mask == "square":
            return jnp.square(lam)
        if self.mask == "polynomial":
            return self.scale * jnp.abs(lam) ** self.power
        if self.mask == "sigmoid":
            return self.scale * jax.nn.sigmoid(lam)
        raise ConfigError(f"weighting 'sa': unknown mask {self.mask!r}; valid: square, "
                          "polynomial, sigmoid")

    def init_sizes(self, sizes: Mapping[str, int]) -> dict[str, Any]:
        """State for conditions with `sizes[name]` points: lambda and its Adam state."""
        lam = {n: jnp.full((k,), self.init_value, jnp.result_type(float)) for n, k in sizes.items()}
        return {"lambda": lam, "opt": self.optimizer.init(lam)}

    def init_for(self, samplers: Mapping[str, Any]) -> dict[str, Any]:
        return self.init_sizes({n: fixed_set_size(n, s, "sa") for n, s in samplers.items()})

    def init(self, names: Sequence[str]) -> dict[str, Any]:
        raise ConfigError("weighting 'sa' is sized by its samplers: use init_for(samplers) or "
                          "init_sizes({name: n_points})")

    def update(self, state: dict, context: WeightingContext) -> tuple[Weights, dict]:
        for name, squared in context.squared_residuals.items():
            if squared.shape != state["lambda"][name].shape:
                raise ValueError(f"weighting 'sa': condition {name!r} has {squared.shape[0]} "
                                 f"points but {state['lambda'][name].shape[0]} weights")
        return {n: self.mask_fn(lam) for n, lam in state["lambda"].items()}, state

    def ascend(self, state: dict, grads: dict) -> dict:
        """lambda <- lambda + Adam(dL/dlambda): Adam on the negated gradient."""
        ascent = jax.tree_util.tree_map(jnp.negative, grads["lambda"])
        updates, opt = self.optimizer.update(ascent, state["opt"], state["lambda"])
        return {"lambda": optax.apply_updates(state["lambda"], updates), "opt": opt}
