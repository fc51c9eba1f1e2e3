"""A high-dimensional elliptic problem with a peak at the origin (the DAS / RSmote lineage:
Tang, Wan, Yang 2023, "DAS-PINNs"; seed 001):

    -Delta u = f,   exact  u*(x) = exp(-10 |x|^2),   u = u* on the boundary ("bc"),

on the cube [-1, 1]^d for d <= 10, on the unit ball for larger d (on the cube u* underflows
to 0 at every sample for d >= 50, a degenerate problem). The ball is `RadialBall` (r ~ U(0,1)
times a uniform direction), so the peak is seen at every d. f = -Delta u* by the exact
Taylor-mode Laplacian; the network's Laplacian is `problem.operator`
(`adapinn.problems.operators`). Evaluation: 16,384 points of the domain's law, drawn once.
"""

from __future__ import annotations

import jax.numpy as jnp

from adapinn.geometry.ball import RadialBall
from adapinn.geometry.box import Box
from adapinn.problems.base import Condition, Problem
from adapinn.problems.operators import exact_laplacian, laplacian_operator

CUBE_MAX_DIM = 10


def elliptic_peak(dim: int = 10, operator: str = "exact", operator_samples: int = 16,
                  alpha: float = 10.0) -> Problem:
    """-Delta u = f with u* = exp(-alpha |x|^2) (module docstring)."""

    def exact(x):
        return jnp.exp(-alpha * jnp.sum(x**2))

    lap = laplacian_operator(operator, operator_samples)

    def pde(u, x, *, key=None):
        return exact_laplacian(exact, x)[1] - lap(u, x, key)[1]

    domain = (Box((-1.0,) * dim, (1.0,) * dim) if dim <= CUBE_MAX_DIM
              else RadialBall((0.0,) * dim, 1.0))
    return Problem(
        name="elliptic_peak",
        domain=domain,
        conditions={"pde": Condition(domain, pde),
                    "bc": Condition(domain.boundary, lambda u, x: u(x) - exact(x))},
        input_names=tuple(f"x{i}" for i in range(dim)),
        exact=exact,
    )
