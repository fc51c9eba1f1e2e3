"""Helmholtz benchmark with a manufactured solution (methods.md section 6; the high-frequency
case of Wang, Teng & Perdikaris 2021, "Understanding and mitigating gradient pathologies").

    u_xx + u_yy + k^2 u = q   on [-1, 1]^2,   k = 1,
    exact  u = sin(a_1 pi x) sin(a_2 pi y),   a_1 = 1, a_2 = 4,
    u = exact on the boundary ("bc", zero for integer a_1, a_2).

The forcing q = Lap u + k^2 u is computed from the exact solution by forward-mode automatic
differentiation (`laplacian`), never written out by hand (methods.md section 8).
Reference: the exact solution (on the default 128 x 128 grid of `Problem.reference_data`).
"""

from __future__ import annotations

import jax.numpy as jnp

from adapinn.problems.base import Condition, Problem
from adapinn.problems.derivatives import laplacian
from adapinn.problems.domains import Box


def helmholtz(a1: float = 1.0, a2: float = 4.0, k: float = 1.0) -> Problem:
    """Helmholtz on [-1, 1]^2 with exact u = sin(a1 pi x) sin(a2 pi y) (module docstring)."""

    def exact(x):
        return jnp.sin(a1 * jnp.pi * x[0]) * jnp.sin(a2 * jnp.pi * x[1])

    def operator(u, x):
        value, lap = laplacian(u, x)
        return lap + k**2 * value

    def pde(u, x):
        return operator(u, x) - operator(exact, x)

    box = Box((-1.0, -1.0), (1.0, 1.0))
    return Problem(
        name="helmholtz",
        domain=box,
        conditions={
            "pde": Condition(box, pde),
            "bc": Condition(box.boundary, lambda u, x: u(x) - exact(x)),
        },
        input_names=("x", "y"),
        exact=exact,
    )
