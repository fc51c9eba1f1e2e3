"""A reaction-diffusion front moving through [-1, 1]^d (the GLF lineage, seed 003):

    u_t = Delta_x u + u (1 - u) + f   on [0, 1] x [-1, 1]^d,
    exact  u*(t, x) = (1 + exp(kappa (n.x - p(t))))^-2,   n = (1, ..., 1) / sqrt(d),
    p(t) = -0.5 + t,

with u = u* at t = 0 ("ic") and on the spatial boundary ("bc"); f = u*_t - Delta u* - u*(1 - u*)
by automatic differentiation (the time derivative by jvp, the Laplacian by Taylor mode), never
by hand. kappa = 5 or 20 (a sharp front that uniform points do see). The network's spatial
Laplacian is `problem.operator` (`adapinn.problems.operators`). Inputs (t, x_0..x_{d-1}).
Evaluation: 16,384 uniform points of the space-time box, drawn once.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from adapinn.geometry.box import Box, Interval
from adapinn.problems.base import Condition, Problem
from adapinn.problems.operators import exact_laplacian, laplacian_operator


def reaction_diffusion_nd(dim: int = 20, kappa: float = 5.0, operator: str = "exact",
                          operator_samples: int = 16) -> Problem:
    """u_t = Delta u + u(1 - u) + f with the moving front u* (module docstring)."""
    normal = 1.0 / math.sqrt(dim)

    def exact(z):
        t, x = z[0], z[1:]
        return (1.0 + jnp.exp(kappa * (normal * jnp.sum(x) - (t - 0.5)))) ** -2

    lap = laplacian_operator(operator, operator_samples)

    def parts(u, z, laplacian):
        """(u, u_t, Delta_x u) at z = (t, x)."""
        value, u_t = jax.jvp(u, (z,), (jnp.zeros_like(z).at[0].set(1.0),))
        _, lap_x = laplacian(lambda x: u(jnp.concatenate([z[:1], x])), z[1:])
        return value, u_t, lap_x

    def forcing(z):
        value, u_t, lap_x = parts(exact, z, exact_laplacian)
        return u_t - lap_x - value * (1.0 - value)

    def pde(u, z, *, key=None):
        value, u_t, lap_x = parts(u, z, lambda f, x: lap(f, x, key))
        return u_t - lap_x - value * (1.0 - value) - forcing(z)

    box = Box((0.0,) + (-1.0,) * dim, (1.0,) + (1.0,) * dim)
    initial = Box((0.0,) + (-1.0,) * dim, (0.0,) + (1.0,) * dim)
    space = Box((-1.0,) * dim, (1.0,) * dim)
    walls = space.boundary * Interval(0.0, 1.0)
    return Problem(
        name="reaction_diffusion_nd",
        domain=box,
        conditions={"pde": Condition(box, pde),
                    "ic": Condition(initial, lambda u, z: u(z) - exact(z)),
                    "bc": Condition(walls, lambda u, z: u(z) - exact(z))},
        input_names=("t",) + tuple(f"x{i}" for i in range(dim)),
        exact=exact,
    )
