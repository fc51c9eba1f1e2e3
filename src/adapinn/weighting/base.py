"""The weighting interface, optax-style: `init` then `update` once per step.

    state            = weighting.init_for(samplers)      # = init(names) unless overridden
    weights, state   = weighting.update(state, context)
    state            = weighting.ascend(state, grads)    # only when `trainable` (SA-PINN)

`weights[name]` is a scalar (term-level) or an (n,) array (point-level); the trainer forms
L = sum_k mean(weights[k] * importance_k * r_k^2). Weights are returned under stop-gradient:
the network never descends through them. A `trainable` weighting (SA-PINN) is the exception:
its weights depend only on its own state, the trainer differentiates L with respect to that
state too and hands the gradient to `ascend` (gradient ascent: the weights maximise L).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.errors import ConfigError

Weights = dict[str, Array]
PointResidual = Callable[[Any, Array], Array]
"""`f(params, x) -> r(x)`, the residual of one point flattened to shape (m,), as a function of
the network's trainable leaves `params`."""


class WeightingContext(eqx.Module):
    """What a weighting may look at during one step.

    Attributes:
        step: the global step (int32 scalar).
        squared_residuals: per-point r^2 of each condition, shape (n_k,), stop-gradient.
        points: the batch of each condition, shape (n_k, d).
        prior_weights: inside a `chain`, the product of the weights of the schemes before this
            one (stop-gradient), scalars or (n_k,) arrays; None outside a chain (all 1). Every
            gradient-based scheme measures the loss weighted by them (`prior_weight`).
        importance: the batch's importance weights q_k,i of each condition (the sampler's
            `Batch.weights`, mean 1 for a uniform draw), shape (n_k,); None: all 1.
        term_gradients: `(weights=None) -> {name: grad_theta L_k}` with
            L_k = mean_i(w_k,i q_k,i r_k,i^2) (w = 1 by default), computed only when called (under
            `lax.cond` in the schemes that refresh periodically).
        params: the network's trainable leaves (stop-gradient), the argument of
            `point_residual`; None when the caller provides no per-point access.
        point_residual: `name -> f(params, x)`, the residual of ONE point of condition `name`
            as a function of the parameters; per-point gradients d r(x_i)/d theta are taken of
            it in chunks (`adapinn.weighting.pointgrads`), never for the whole batch at once.
        replaced: for the conditions whose sampler has persistent slots and replaces points
            (R3), the (n_k,) bool mask of slots refilled since the previous step
            (`Batch.replaced`); a weighting carrying one value per point resets it there
            (RBA). None, or a condition missing: no slot was replaced.
    """

    step: Array
    squared_residuals: dict[str, Array]
    points: dict[str, Array]
    term_gradients: Callable[..., dict[str, Any]] = eqx.field(static=True)
    params: Any = None
    importance: dict[str, Array] | None = None
    prior_weights: dict[str, Array] | None = None
    point_residual: Callable[[str], PointResidual] | None = eqx.field(static=True, default=None)
    replaced: dict[str, Array] | None = None


class AbstractWeighting(eqx.Module):
    """Maps the step's residuals (and, on demand, gradients) to loss weights.

    Class attributes:
        trainable: the weights are a function of the state that the trainer must
            differentiate and hand to `ascend` (SA-PINN); False for every other scheme.
        point_state: the state holds one entry per collocation point, so every condition
            must see the same fixed point set at every step (the trainer's builder then uses
            fixed samplers for the ic/bc terms).
        rescales_terms: the weights include per-term factors (see the attribute).
    """

    trainable: ClassVar[bool] = False
    point_state: ClassVar[bool] = False
    rescales_terms: ClassVar[bool] = False
    """The scheme multiplies whole terms by per-term factors (gradnorm, ntk, ema_balance,
    non-uniform fixed weights): factors that GTN (`surgery.PCGrad`) divides out again."""

    def init(self, names: Sequence[str]) -> Any:
        return ()

    def init_for(self, samplers: Mapping[str, Any]) -> Any:
        """The initial state for these samplers (by condition name); default `init(names)`.
        Schemes whose state is sized by the batches (SA-PINN) override it."""
        return self.init(tuple(samplers))

    def update(self, state: Any, context: WeightingContext) -> tuple[Weights, Any]:
        raise NotImplementedError

    def ascend(self, state: Any, grads: Any) -> Any:
        """One ascent step on the trainable state, given dL/dstate (same structure)."""
        return state


def prior_weight(context: WeightingContext, name: str) -> Array | float:
    """The earlier schemes' weight of term `name` in a chain (scalar or (n,)); 1.0 alone."""
    return 1.0 if context.prior_weights is None else context.prior_weights[name]


def global_norm(tree: Any) -> Array:
    """Euclidean norm of all inexact leaves of a pytree."""
    leaves = [x for x in jax.tree_util.tree_leaves(tree) if eqx.is_inexact_array(x)]
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves))


def balanced_ratio(target: Array, value: Array, floor: float) -> Array:
    """`target / (value + floor * target)`: the balancing weight that brings `value` up to
    `target`, with a floor relative to the target (jaxpi's `mean / (g + 1e-5 mean)`), so a
    term whose gradient (or kernel trace) is exactly zero gets the finite weight `1 / floor`
    instead of `target / 1e-12` times rounding noise. 1 where the target itself is 0 (every
    term flat: nothing to balance)."""
    safe = jnp.where(target > 0, target, 1.0)
    return jnp.where(target > 0, safe / (value + floor * safe), jnp.ones_like(value))


def moving_average(old: Weights, target: Weights, momentum: float) -> Weights:
    """w <- momentum * w + (1 - momentum) * w_hat, in the dtype of the old weights."""
    return {k: (momentum * old[k] + (1 - momentum) * target[k]).astype(old[k].dtype)
            for k in old}


def fixed_set_size(name: str, sampler: Any, scheme: str) -> int:
    """Size of the fixed point set a sampler returns whole at every step, or a ConfigError
    naming the weighting `scheme` that needs it (the schemes with `point_state`).

    A sampler declares such a set by its `fixed_set_size` attribute (the `fixed` sampler: its
    `size`; None for samplers that move their points)."""
    size = getattr(sampler, "fixed_set_size", None)
    if size is None:
        raise ConfigError(
            f"weighting {scheme!r} keeps one weight per point, so condition {name!r} needs "
            f"the 'fixed' sampler (with train.batch_size >= sampler.size), not "
            f"{type(sampler).__name__}: it cannot be combined with a sampler that moves its "
            "points"
        )
    if sampler.batch_size < size:
        raise ConfigError(
            f"weighting {scheme!r} needs the whole fixed set in every batch: condition "
            f"{name!r} has batch_size {sampler.batch_size} < sampler.size {size}; set "
            f"train.batch_size >= {size} or sampler.size <= {sampler.batch_size}"
        )
    return size


def slot_set_size(name: str, sampler: Any, scheme: str) -> int:
    """Number of persistent slots of a sampler whose every batch is its whole point set in
    slot order (`sampler.slots`: the `fixed` sampler with batch_size >= size, or R3, which
    marks the slots it refills in `Batch.replaced`), or a ConfigError naming the weighting
    `scheme` that carries one value per point with the point (RBA) and the fix."""
    size = getattr(sampler, "slots", None)
    if size is not None:
        return size
    if getattr(sampler, "fixed_set_size", None) is not None:
        return fixed_set_size(name, sampler, scheme)  # a fixed set drawn in subsets: say so
    raise ConfigError(
        f"weighting {scheme!r} carries one weight per point with the point, so condition "
        f"{name!r} needs a sampler whose every batch is its whole persistent point set: "
        "'fixed' (with train.batch_size >= sampler.size) or 'r3' / 'causal_r3' (which mark "
        f"the points they replace), not {type(sampler).__name__}"
    )
