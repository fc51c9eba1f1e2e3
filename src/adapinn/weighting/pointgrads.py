"""Per-point parameter gradients in bounded memory.

The per-point quantities of the point-level and NTK schemes need one gradient per collocation
point. Stacking them for a batch of B points costs B x P floats (8192 x 265K x 4 B = 8.7 GB for
seed 000's network; jaxpi ran out of 47.9 GB this way). Here `lax.map(..., batch_size=chunk)`
vmaps over `chunk` points at a time and reduces every per-point gradient to a scalar before
the next chunk, so memory is O(chunk x P) whatever B is. Inside a data mesh the chunks are
split over the devices (`adapinn.mesh.map_points`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from adapinn import mesh
from adapinn.weighting.base import PointResidual, WeightingContext


def _squared_norm(tree: Any) -> Array:
    """sum of squares of all leaves of a pytree (a Frobenius norm squared)."""
    return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(tree))


def point_jacobian_sq_norms(fn: PointResidual, params: Any, points: Array,
                            chunk: int | None = 256) -> Array:
    """||d f(theta, x_i) / d theta||_F^2 for every point, `chunk` points at a time.

    For a scalar residual this is the NTK diagonal K_ii = <grad r_i, grad r_i>; for a vector
    residual (m components) the sum over components.

    Args:
        fn: `f(params, x) -> (m,)`, one point's residual.
        params: the pytree `fn` differentiates (the network's trainable leaves).
        points: (n, d) points.
        chunk: points per vmapped chunk; None evaluates all n at once (materialises n x P).

    Returns:
        (n,) squared Frobenius norms of the per-point Jacobians.
    """

    def one(x: Array) -> Array:
        return _squared_norm(jax.jacrev(fn)(params, x))

    if chunk is None:
        return jax.vmap(one)(points)
    return mesh.map_points(one, points, min(chunk, points.shape[0]))


def squared_residual_fn(fn: PointResidual) -> PointResidual:
    """x -> [sum_c r_c(x)^2]: the per-point squared residual, shape (1,)."""
    return lambda params, x: jnp.sum(jnp.square(fn(params, x)))[None]


def require_point_access(context: WeightingContext, scheme: str) -> None:
    """Raise unless the context carries `params` and `point_residual`."""
    if context.point_residual is None or context.params is None:
        raise ValueError(
            f"weighting {scheme!r} needs per-point residual functions: build the "
            "WeightingContext with `params` and `point_residual` (Trainer.context does)"
        )
