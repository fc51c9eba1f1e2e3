"""PINNacle's Heat2d-MS, multi-scale heat (Hao et al., "PINNacle", NeurIPS 2024 D&B,
arXiv 2306.08827; class `Heat2D_Multiscale` of PINNacle's src/pde/heat.py).

    u_t - k_x u_xx - k_y u_yy = 0,   k_x = 1 / (500 pi)^2,  k_y = 1 / pi^2,
    on [0, 1]^2 x [0, 5]  ((x, y) x t),
    exact  u(t, x, y) = sin(20 pi x) sin(pi y) exp(-(k_x (20 pi)^2 + k_y pi^2) t)
                      = sin(20 pi x) sin(pi y) exp(-1.0016 t),
    u(0, x, y) = sin(20 pi x) sin(pi y)  ("ic"),   u = 0 on the square's boundary  ("bc").

Inputs are ordered (t, x, y) (PINNacle's are (x, y, t)).

Reference: the exact solution on PINNacle's test set, DeepXDE's
`GeometryXTime.uniform_points(20000, boundary=False)`: the 8 x 8 interior grid k / 9 of the
square at the 313 times t = 5 j / 313, j = 1..313 (20032 points).

Points: PINNacle multiplies its point counts by 4 for this case (`training_points(mul=4)`):
32768 interior, 8192 lateral-boundary and 8192 initial points. Here both conditions keep the
framework's batch size (`Condition.batch_size` None; a protocol that reproduces PINNacle
scales the counts with `CASE_INFO["Heat2d-MS"].point_multiplier`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from adapinn.geometry import Box, Interval
from adapinn.problems.base import Condition, Problem, ReferenceData
from adapinn.problems.fused import fused_derivatives

T_END = 5.0
K_X, K_Y = 1 / (500 * np.pi) ** 2, 1 / np.pi**2
W_X, W_Y = 20 * np.pi, np.pi  # PINNacle's init_coef
DECAY = K_X * W_X**2 + K_Y * W_Y**2


def exact_solution(x):
    """sin(20 pi x) sin(pi y) exp(-(k_x (20 pi)^2 + k_y pi^2) t) at one point (t, x, y)."""
    return jnp.sin(W_X * x[1]) * jnp.sin(W_Y * x[2]) * jnp.exp(-DECAY * x[0])


def heat_residual(u, x):
    """u_t - k_x u_xx - k_y u_yy at one point (t, x, y)."""
    return fused_derivatives(u, x, second={1: -K_X, 2: -K_Y}, first={0: 1.0})[2]


def reference_data() -> ReferenceData:
    """The exact solution on PINNacle's test set: times 5 j / 313 x the 8 x 8 grid k / 9."""
    t, s = T_END * np.arange(1, 314) / 313, np.arange(1, 9) / 9
    grid = ReferenceData.from_grid((t, s, s), np.zeros((313, 8, 8)))
    return ReferenceData(grid.points, jax.vmap(exact_solution)(grid.points)[:, None], grid.grid)


def pinnacle_heat2d_ms() -> Problem:
    """Heat2d-MS on (t, x, y) (module docstring)."""
    box = Box((0.0, 0.0, 0.0), (T_END, 1.0, 1.0))
    cylinder = Box((0.0, 0.0), (1.0, 1.0)) * Interval(0.0, T_END)
    return Problem(
        name="pinnacle_heat2d_ms",
        domain=box,
        conditions={
            "pde": Condition(box, heat_residual),
            "ic": Condition(Box((0.0, 0.0, 0.0), (0.0, 1.0, 1.0)),
                            lambda u, x: u(x) - exact_solution(x)),
            "bc": Condition(cylinder.lateral, lambda u, x: u(x)),
        },
        input_names=("t", "x", "y"),
        exact=exact_solution,
        reference=reference_data,
    )
