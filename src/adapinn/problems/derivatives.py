"""Derivatives of a network with respect to its inputs, in forward mode.

A residual is written for ONE point `x` and a function `u(x)`; these helpers push tangent
vectors through `u` with `jax.jvp` (nested for second derivatives) instead of
reverse-over-reverse `jax.grad`. For a network with few inputs this is cheaper: one nested jvp
gives u, du/dx_i and d2u/dx_i2 together, and XLA shares the primal pass between calls.
"""

import importlib.util
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import Array

from adapinn.problems.fused import fused_derivatives

PointFunction = Callable[[Array], Array]


def _unit(x: Array, axis: int) -> Array:
    return jnp.zeros_like(x).at[axis].set(1.0)


def first_derivative(u: PointFunction, x: Array, axis: int) -> tuple[Array, Array]:
    """Return (u(x), du/dx_axis) with one forward-mode pass."""
    return jax.jvp(u, (x,), (_unit(x, axis),))


def second_derivative(
    u: PointFunction, x: Array, axis: int
) -> tuple[Array, Array, Array]:
    """Return (u(x), du/dx_axis, d2u/dx_axis^2) with one nested forward-mode pass."""
    e = _unit(x, axis)
    (value, first), (_, second) = jax.jvp(lambda y: jax.jvp(u, (y,), (e,)), (x,), (e,))
    return value, first, second


def gradient(u: PointFunction, x: Array) -> tuple[Array, Array]:
    """Return (u(x), grad u(x)) for scalar u, the gradient by forward mode (d tangents)."""
    value, lin = jax.linearize(u, x)
    return value, jax.vmap(lin)(jnp.eye(x.shape[0], dtype=x.dtype))


def laplacian(
    u: PointFunction, x: Array, axes: tuple[int, ...] | None = None
) -> tuple[Array, Array]:
    """Return (u(x), sum_i d2u/dx_i^2) over `axes` (all axes by default). Over all axes with
    the optional `folx` installed, by its forward Laplacian (`folx_laplacian`: 1.6x fewer
    FLOPs at d = 2, 2.7x at d = 100 for a tanh MLP's training gradient, `benchmarks/
    operators.py`); otherwise, for a subset of axes, or for a function folx cannot trace, by
    the fused forward pass (`fused.fused_derivatives`: the value, the len(axes) first
    derivatives and the sum of the second ones pushed through u together).
    `nested_laplacian` (forward over forward) is the reference in tests."""
    if has_folx() and (axes is None or tuple(axes) == tuple(range(x.shape[0]))):
        try:
            return folx_laplacian(u, x)
        except (NotImplementedError, TypeError, ValueError, KeyError):
            pass  # an op folx lacks, or a function whose output folx lost track of
    axes = tuple(range(x.shape[0])) if axes is None else tuple(axes)
    value, _, lap = fused_derivatives(u, x, second=dict.fromkeys(axes, 1.0))
    return value, lap


def has_folx() -> bool:
    """The optional `folx` package is installed (`pip install adapinn[folx]`)."""
    return importlib.util.find_spec("folx") is not None


def folx_laplacian(u: PointFunction, x: Array) -> tuple[Array, Array]:
    """(u(x), Delta u(x)) by folx's forward Laplacian (Li et al. 2023, "Forward Laplacian":
    value, gradient and Laplacian pushed through each operation together, the d second-order
    terms summed as they go); needs the optional `folx`."""
    from folx import forward_laplacian

    result = forward_laplacian(u)(x)
    if not hasattr(result, "laplacian"):  # folx lost track of x (e.g. a jet inside u)
        raise TypeError("folx could not trace this function's Laplacian")
    return result.x, result.laplacian


def nested_laplacian(
    u: PointFunction, x: Array, axes: tuple[int, ...] | None = None
) -> tuple[Array, Array]:
    """Return (u(x), sum_i d2u/dx_i^2) over `axes` (all by default), forward over forward."""
    axes = tuple(range(x.shape[0])) if axes is None else axes
    basis = jnp.eye(x.shape[0], dtype=x.dtype)[jnp.asarray(axes)]

    def second_along(e):
        return jax.jvp(lambda y: jax.jvp(u, (y,), (e,))[1], (x,), (e,))[1]

    return u(x), jnp.sum(jax.vmap(second_along)(basis), axis=0)
