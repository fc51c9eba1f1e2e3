"""Normal derivatives for Neumann and Robin conditions, in forward mode.

du/dn (x) = grad u(x) . n is one Jacobian-vector product of u along n (`jax.jvp`), cheaper than
a full gradient and in the style of `adapinn.problems.derivatives`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from jax import Array


def normal_derivative(u: Callable[[Array], Array], x: Array, normal: Array) -> Array:
    """grad u(x) . normal for a function `u` of ONE point; `x` and `normal` are one point (d,)
    (a scalar or u-shaped result) or a batch (n, d) (then u is vmapped over the rows)."""
    if x.ndim == 2:
        return jax.vmap(lambda xi, ni: jax.jvp(u, (xi,), (ni,))[1])(x, normal.astype(x.dtype))
    return jax.jvp(u, (x,), (normal.astype(x.dtype),))[1]
