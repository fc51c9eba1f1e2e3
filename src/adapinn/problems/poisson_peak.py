"""Poisson equation with a sharp peak (methods.md section 6): a solution that uniform
collocation points miss.

    -(u_xx + u_yy) = f   on [0, 1]^2,
    exact  u = exp(-alpha ((x - 0.5)^2 + (y - 0.5)^2)),   alpha = 1000,
    u = exact on the boundary ("bc", ~e^-250 there).

The forcing f = -Lap u is computed from the exact solution by forward-mode automatic
differentiation (`laplacian`), never written out by hand (methods.md section 8).
Reference: the exact solution (on the default 128 x 128 grid of `Problem.reference_data`).
"""

from __future__ import annotations

import jax.numpy as jnp

from adapinn.problems.base import Condition, Problem
from adapinn.problems.derivatives import laplacian
from adapinn.problems.domains import Box


def poisson_peak(alpha: float = 1000.0) -> Problem:
    """-Lap u = f on [0, 1]^2 with exact u = exp(-alpha |x - (0.5, 0.5)|^2) (module docstring)."""

    def exact(x):
        return jnp.exp(-alpha * jnp.sum((x - 0.5) ** 2))

    def pde(u, x):
        return laplacian(exact, x)[1] - laplacian(u, x)[1]

    box = Box((0.0, 0.0), (1.0, 1.0))
    return Problem(
        name="poisson_peak",
        domain=box,
        conditions={
            "pde": Condition(box, pde),
            "bc": Condition(box.boundary, lambda u, x: u(x) - exact(x)),
        },
        input_names=("x", "y"),
        exact=exact,
    )
