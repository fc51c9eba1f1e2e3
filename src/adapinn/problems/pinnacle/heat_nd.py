"""PINNacle's HNd, heat in five dimensions (Hao et al., "PINNacle", NeurIPS 2024 D&B,
arXiv 2306.08827; class `HeatND` of PINNacle's src/pde/heat.py, dim = 5, T = 1).

    u_t = (1/d) Delta_x u + f   on the unit ball B of R^5 times t in [0, 1],
    f(t, x) = -(1/d) |x|^2 exp(|x|^2 / 2 + t),
    exact  u(t, x) = exp(|x|^2 / 2 + t),
    u(0, x) = exp(|x|^2 / 2)  ("ic"),   du/dn = u* on the sphere |x| = 1  ("bc", Neumann:
    PINNacle's boundary condition hands DeepXDE's Neumann term the reference solution, and on
    the unit sphere du*/dn = x.grad u* = |x|^2 u* = u* indeed).

Inputs (t, x_0..x_4) (PINNacle's are (x, t)). Published best L2RE 1.19e-4 (L-BFGS), vanilla
PINN 0.361. The residual (1/d) Delta u - u_t + f is one fused forward pass
(`fused_derivatives`). Evaluation: u* at 16,384 uniform points of the cylinder, drawn once.
Points: PINNacle multiplies its counts by 4 here (`CASE_INFO["HNd"].point_multiplier`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from adapinn.geometry import Ball, Interval
from adapinn.problems.base import Condition, Problem
from adapinn.problems.fused import fused_derivatives

DIM, T_END = 5, 1.0


def exact_solution(z):
    """exp(|x|^2 / 2 + t) at one point z = (t, x)."""
    return jnp.exp(jnp.sum(z[1:] ** 2) / 2 + z[0])


def source(z):
    """PINNacle's f = -(1/d) |x|^2 exp(|x|^2 / 2 + t)."""
    d = z.shape[0] - 1
    return -jnp.sum(z[1:] ** 2) / d * exact_solution(z)


def heat_residual(u, z):
    """(1/d) Delta_x u - u_t + f at one point z = (t, x)."""
    d = z.shape[0] - 1
    diffusion = fused_derivatives(u, z, second=dict.fromkeys(range(1, d + 1), 1.0 / d),
                                  first={0: -1.0})[2]
    return diffusion + source(z)


def normal_derivative_residual(u, z):
    """du/dn - u* on the lateral boundary, n = x / |x| (the sphere's outward normal)."""
    x = z[1:]
    normal = jnp.concatenate([jnp.zeros(1, z.dtype), x / jnp.linalg.norm(x)])
    return jax.jvp(u, (z,), (normal,))[1] - exact_solution(z)


def pinnacle_heat_nd(dim: int = DIM) -> Problem:
    """HNd on (t, x), x in the unit ball of R^dim (module docstring)."""
    ball = Ball((0.0,) * dim, 1.0)
    cylinder = Interval(0.0, T_END) * ball
    return Problem(
        name="pinnacle_heat_nd",
        domain=cylinder,
        conditions={"pde": Condition(cylinder, heat_residual),
                    "ic": Condition(cylinder.initial, lambda u, z: u(z) - exact_solution(z)),
                    "bc": Condition(cylinder.lateral, normal_derivative_residual)},
        input_names=("t",) + tuple(f"x{i}" for i in range(dim)),
        exact=exact_solution,
    )
