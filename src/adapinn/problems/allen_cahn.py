"""Allen-Cahn equation, the jaxpi / Raissi / seed 000 variant.

    u_t - 1e-4 u_xx + 5 u^3 - 5 u = 0,   x in [-1, 1] periodic, t in [0, 1],
    u(0, x) = x^2 cos(pi x).

Periodicity in x is exact when the network uses a periodic embedding (the default); set
`periodic_bc=True` to add the penalty u(t, -1) - u(t, 1) and u_x(t, -1) - u_x(t, 1) instead.
Reference: Fourier pseudo-spectral in x with ETDRK4 in time (`adapinn.reference`).
"""

import jax.numpy as jnp

from adapinn.problems.base import Condition, Problem, ReferenceData
from adapinn.problems.derivatives import first_derivative
from adapinn.problems.domains import Box
from adapinn.problems.fused import fused_derivatives


def _periodic_bc(u, x):
    right = x.at[1].set(1.0)
    left_value, left_slope = first_derivative(u, x, 1)
    right_value, right_slope = first_derivative(u, right, 1)
    return jnp.stack([left_value - right_value, left_slope - right_slope])


def allen_cahn(periodic_bc: bool = False, nt: int = 201, nx: int = 512) -> Problem:
    """Allen-Cahn on (t, x), periodic in x with period 2."""

    def pde(u, x):
        value, _, diffusion = fused_derivatives(u, x, second={1: -1e-4}, first={0: 1.0})
        return diffusion + 5.0 * value**3 - 5.0 * value  # diffusion = u_t - 1e-4 u_xx

    def ic(u, x):
        return u(x) - x[1] ** 2 * jnp.cos(jnp.pi * x[1])

    def reference() -> ReferenceData:
        from adapinn.reference import compute_reference

        t, xs, sol = compute_reference("allen_cahn", nt=nt, nx=nx)
        return ReferenceData.from_grid((t, xs), sol)

    conditions = {
        "pde": Condition(Box((0.0, -1.0), (1.0, 1.0)), pde),
        "ic": Condition(Box((0.0, -1.0), (0.0, 1.0)), ic),
    }
    if periodic_bc:
        conditions["bc"] = Condition(Box((0.0, -1.0), (1.0, -1.0)), _periodic_bc)
    return Problem(
        name="allen_cahn",
        domain=Box((0.0, -1.0), (1.0, 1.0)),
        conditions=conditions,
        input_names=("t", "x"),
        periodic={1: 2.0},
        reference=reference,
    )
