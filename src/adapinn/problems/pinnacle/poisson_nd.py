"""PINNacle's PNd, Poisson in five dimensions (Hao et al., "PINNacle", NeurIPS 2024 D&B,
arXiv 2306.08827; class `PoissonND` of PINNacle's src/pde/poisson.py, dim = 5).

    Delta u + f = 0   on [0, 1]^5,   f(x) = (pi^2 / 4) sum_i sin(pi x_i / 2),
    exact  u(x) = sum_i sin(pi x_i / 2),   u = u* on the boundary ("bc", Dirichlet).

f is PINNacle's definition of the problem; `tests/test_pinnacle_problems.py` checks that it is
-Delta u* by automatic differentiation. Published best L2RE 4.58e-4 (LRA), vanilla PINN 3.04e-3.
Evaluation: u* at 16,384 uniform points of the cube, drawn once (`Problem.reference_data`).
Points: PINNacle multiplies its counts by 4 here (`CASE_INFO["PNd"].point_multiplier`).
"""

from __future__ import annotations

import jax.numpy as jnp

from adapinn.geometry import Box
from adapinn.problems.base import Condition, Problem
from adapinn.problems.derivatives import laplacian

DIM = 5


def exact_solution(x):
    """sum_i sin(pi x_i / 2) at one point."""
    return jnp.sum(jnp.sin(jnp.pi / 2 * x))


def source(x):
    """PINNacle's f = (pi^2 / 4) sum_i sin(pi x_i / 2)."""
    return jnp.pi**2 / 4 * jnp.sum(jnp.sin(jnp.pi / 2 * x))


def pinnacle_poisson_nd(dim: int = DIM) -> Problem:
    """PNd: Delta u + f = 0 on [0, 1]^dim with Dirichlet data u* (module docstring)."""
    cube = Box((0.0,) * dim, (1.0,) * dim)
    return Problem(
        name="pinnacle_poisson_nd",
        domain=cube,
        conditions={"pde": Condition(cube, lambda u, x: laplacian(u, x)[1] + source(x)),
                    "bc": Condition(cube.boundary, lambda u, x: u(x) - exact_solution(x))},
        input_names=tuple(f"x{i}" for i in range(dim)),
        exact=exact_solution,
    )
