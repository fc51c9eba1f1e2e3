"""Viscous Burgers' equation (Raissi et al. 2019; jaxpi; seed 000).

    u_t + u u_x - (0.01 / pi) u_xx = 0,   x in [-1, 1], t in [0, 1],
    u(0, x) = -sin(pi x),   u(t, -1) = u(t, 1) = 0.

Reference: the exact Cole-Hopf solution evaluated by quadrature (`adapinn.reference`).
"""

import jax.numpy as jnp

from adapinn.problems.base import Condition, Problem, ReferenceData
from adapinn.problems.domains import Box, Union
from adapinn.problems.fused import fused_derivatives


def burgers(nu: float = 0.01 / jnp.pi, nt: int = 201, nx: int = 512) -> Problem:
    """Burgers on (t, x) with viscosity `nu`; evaluated on an (nt, nx) reference grid."""

    def pde(u, x):
        value, (u_x,), transport = fused_derivatives(u, x, second={1: -nu}, first={0: 1.0})
        return transport + value * u_x  # transport = u_t - nu u_xx

    def reference() -> ReferenceData:
        from adapinn.reference import compute_reference

        t, xs, sol = compute_reference("burgers", nt=nt, nx=nx)
        return ReferenceData.from_grid((t, xs), sol)

    return Problem(
        name="burgers",
        domain=Box((0.0, -1.0), (1.0, 1.0)),
        conditions={
            "pde": Condition(Box((0.0, -1.0), (1.0, 1.0)), pde),
            "ic": Condition(Box((0.0, -1.0), (0.0, 1.0)),
                            lambda u, x: u(x) + jnp.sin(jnp.pi * x[1])),
            "bc": Condition(Union(Box((0.0, -1.0), (1.0, -1.0)), Box((0.0, 1.0), (1.0, 1.0))),
                            lambda u, x: u(x)),
        },
        input_names=("t", "x"),
        reference=reference if nu == 0.01 / jnp.pi else None,
    )
