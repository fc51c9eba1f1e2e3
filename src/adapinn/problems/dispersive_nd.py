"""A third-order dispersive equation in many dimensions (methods.md section 6, `dispersive_nd`):

    u_t + sum_i d3u/dx_i^3 = f   on [0, 1] x [-1, 1]^d   (d = 10 by default),
    exact  u*(t, x) = sin(k.x + (sum_i k_i^3) t),   k_i ~ U[0.5, 1.5] fixed by `seed`,

a plane wave of the linear dispersive (Airy-type) operator, so f = u*_t + sum_i d3u*/dx_i^3 is
0; it is still computed from u* by automatic differentiation (the time derivative by jvp, the
third derivatives by order-3 Taylor jets, `operators.third_derivatives`), never by hand, so a
change of u* cannot leave a wrong forcing behind. Dirichlet data from u*: at t = 0 ("ic") and
on the lateral boundary x_i = +-1 ("bc"). Inputs (t, x_0..x_{d-1}). The network's d third
derivatives cost d order-3 jets per point. Evaluation: 16,384 uniform points of the
space-time box, drawn once (`Problem.exact`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from adapinn.geometry.box import Box, Interval
from adapinn.problems.base import Condition, Problem
from adapinn.problems.operators import third_derivatives


def wave_numbers(dim: int, seed: int = 0) -> np.ndarray:
    """k_i ~ U[0.5, 1.5], i < dim, from numpy's generator seeded by `seed`."""
    return np.random.default_rng(seed).uniform(0.5, 1.5, dim)


def dispersive_operator(u, z):
    """u_t + sum_i d3u/dx_i^3 at z = (t, x) (the x axes are 1..d)."""
    _, u_t = jax.jvp(u, (z,), (jnp.zeros_like(z).at[0].set(1.0),))
    _, thirds = third_derivatives(u, z, tuple(range(1, z.shape[0])))
    return u_t + jnp.sum(thirds, axis=0)


def dispersive_nd(dim: int = 10, seed: int = 0) -> Problem:
    """u_t + sum_i u_{x_i x_i x_i} = f with the plane wave u* (module docstring)."""
    if dim < 1:
        raise ValueError(f"dispersive_nd: dim must be >= 1, got {dim}")
    k = jnp.asarray(wave_numbers(dim, seed))
    speed = float(jnp.sum(k**3))

    def exact(z):
        return jnp.sin(jnp.dot(k.astype(z.dtype), z[1:]) + speed * z[0])

    def pde(u, z):
        return dispersive_operator(u, z) - dispersive_operator(exact, z)

    box = Box((0.0,) + (-1.0,) * dim, (1.0,) + (1.0,) * dim)
    initial = Box((0.0,) + (-1.0,) * dim, (0.0,) + (1.0,) * dim)
    walls = Box((-1.0,) * dim, (1.0,) * dim).boundary * Interval(0.0, 1.0)
    return Problem(
        name="dispersive_nd",
        domain=box,
        conditions={"pde": Condition(box, pde),
                    "ic": Condition(initial, lambda u, z: u(z) - exact(z)),
                    "bc": Condition(walls, lambda u, z: u(z) - exact(z))},
        input_names=("t",) + tuple(f"x{i}" for i in range(dim)),
        exact=exact,
    )
