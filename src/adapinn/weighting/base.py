"""The weighting interface, optax-style: `init` then `update` once per step.

    state            = weighting.init(names)
    weights, state   = weighting.update(state, context)

`weights[name]` is a scalar (term-level) or an (n,) array (point-level); the trainer forms
L = sum_k mean(weights[k] * importance_k * r_k^2). Weights are returned under stop-gradient:
the network never descends through them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

Weights = dict[str, Array]


class WeightingContext(eqx.Module):
    """What a weighting may look at during one step.

    Attributes:
        step: the global step (int32 scalar).
        squared_residuals: per-point r^2 of each condition, shape (n_k,), stop-gradient.
        points: the batch of each condition, shape (n_k, d).
        term_gradients: `() -> {name: grad_theta L_k}`, computed only when called (under
            `lax.cond` in the schemes that refresh periodically).
    """

    step: Array
    squared_residuals: dict[str, Array]
    points: dict[str, Array]
    term_gradients: Callable[[], dict[str, Any]] = eqx.field(static=True)


class AbstractWeighting(eqx.Module):
    """Maps the step's residuals (and, on demand, gradients) to loss weights."""

    def init(self, names: Sequence[str]) -> Any:
        return ()

    def update(self, state: Any, context: WeightingContext) -> tuple[Weights, Any]:
        raise NotImplementedError


def global_norm(tree: Any) -> Array:
    """Euclidean norm of all inexact leaves of a pytree."""
    leaves = [x for x in jax.tree_util.tree_leaves(tree) if eqx.is_inexact_array(x)]
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves))
