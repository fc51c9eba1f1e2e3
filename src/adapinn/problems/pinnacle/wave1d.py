"""PINNacle's Wave1d-C (Hao et al., "PINNacle", NeurIPS 2024 D&B, arXiv 2306.08827; class
`Wave1D` of PINNacle's src/pde/wave.py, C = 2, a = 4, scale 1).

    u_tt - C^2 u_xx = 0,   C = 2,   x in [0, 1], t in [0, 1],
    exact  u(t, x) = sin(pi x) cos(2 pi t) + 0.5 sin(a pi x) cos(2 a pi t),   a = 4,
    u(0, x) = sin(pi x) + 0.5 sin(4 pi x)  ("ic"),   u_t(0, x) = 0  ("ic_t"),
    u(t, 0) = u(t, 1) = 0  ("bc", PINNacle's Dirichlet data: the exact solution there).

Inputs are ordered (t, x) (PINNacle's are (x, t)). PINNacle writes u_t(0, x) = 0 as a Neumann
condition with the outward normal -e_t, i.e. -u_t = 0: the same term.

Reference: the exact solution on PINNacle's test set, DeepXDE's `uniform_points(2500,
boundary=False)` of the unit square: the 50 x 50 grid of interior points k / 51, k = 1..50.

Points: PINNacle treats this case as a steady problem on the (x, t) square: 8192 interior and
2048 boundary points spread over the whole perimeter, so "ic" and "ic_t" share the ~512 points
of the t = 0 edge, "bc" gets ~1024 and the t = 1 edge's ~512 enter only the PDE loss. Here each
condition keeps the framework's batch size (`Condition.batch_size` None; each term is a mean,
so the counts change resolution, not balance); PINNacle's counts are in
`adapinn.problems.pinnacle.CASE_INFO`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from adapinn.problems.base import Condition, Problem, ReferenceData
from adapinn.problems.derivatives import first_derivative
from adapinn.problems.domains import Box, Union
from adapinn.problems.fused import fused_derivatives

C, A = 2.0, 4.0


def exact_solution(x):
    """u(t, x) = sin(pi x) cos(2 pi t) + 0.5 sin(a pi x) cos(2 a pi t) at one point (t, x)."""
    t, s = x[0], x[1]
    return (jnp.sin(jnp.pi * s) * jnp.cos(2 * jnp.pi * t)
            + 0.5 * jnp.sin(A * jnp.pi * s) * jnp.cos(2 * A * jnp.pi * t))


def wave_residual(u, x):
    """u_tt - C^2 u_xx at one point x = (t, x)."""
    return fused_derivatives(u, x, second={0: 1.0, 1: -C**2})[2]


def reference_data() -> ReferenceData:
    """The exact solution on PINNacle's 50 x 50 interior test grid (k / 51 on both axes)."""
    axis = np.arange(1, 51) / 51
    grid = ReferenceData.from_grid((axis, axis), np.zeros((50, 50)))
    return ReferenceData(grid.points, jax.vmap(exact_solution)(grid.points)[:, None], grid.grid)


def pinnacle_wave1d() -> Problem:
    """Wave1d-C on (t, x) (module docstring)."""
    box = Box((0.0, 0.0), (1.0, 1.0))
    return Problem(
        name="pinnacle_wave1d",
        domain=box,
        conditions={
            "pde": Condition(box, wave_residual),
            "ic": Condition(Box((0.0, 0.0), (0.0, 1.0)), lambda u, x: u(x) - exact_solution(x)),
            "ic_t": Condition(Box((0.0, 0.0), (0.0, 1.0)),
                              lambda u, x: first_derivative(u, x, 0)[1]),
            "bc": Condition(Union(Box((0.0, 0.0), (1.0, 0.0)), Box((0.0, 1.0), (1.0, 1.0))),
                            lambda u, x: u(x) - exact_solution(x)),
        },
        input_names=("t", "x"),
        exact=exact_solution,
        reference=reference_data,
    )
