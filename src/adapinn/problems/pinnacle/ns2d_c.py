"""PINNacle's NS2d-C, the lid-driven cavity (Hao et al., "PINNacle", NeurIPS 2024 D&B,
arXiv 2306.08827; class `NS2D_LidDriven` of PINNacle's src/pde/ns.py, a = 4, nu = 1/100).

    u u_x + v u_y + p_x - nu (u_xx + u_yy) = 0,
    u v_x + v v_y + p_y - nu (v_xx + v_yy) = 0,
    u_x + v_y = 0                                   on [0, 1]^2,  nu = 1/100,
    lid y = 1:             u = a x (1 - x), v = 0, a = 4     ("lid"),
    other three walls:     u = v = 0                          ("walls"),
    pressure gauge:        p(0, 0) = 0                        ("gauge").

Outputs (u, v, p). The gauge is its own condition, a one-row data term (`data_condition`, the
framework's form of PINNacle's one-point `PointSetBC`): its one row is drawn
`condition_batch_size` times per step, every copy the same point, so the term's mean equals
PINNacle's one-point MSE (a batch of 1 would not split over several devices). The lid's
corners belong to "lid" (PINNacle's `boundary_top`); its profile vanishes there, so they agree
with "walls".

Reference: PINNacle's COMSOL solution `lid_driven_a4.dat`, (u, v, p) at its 10201 nodes, a
101 x 101 tensor grid refined towards the walls (the file lists the nodes out of grid order;
they are sorted into it here). It satisfies the PDE to ~4e-4 of the size of its terms and the
lid profile to 3e-4 (tests/test_pinnacle_problems.py).

Points: PINNacle draws 8192 interior and 2048 boundary points (about 512 on the lid and 1536 on
the walls, by length) and 1 gauge point. Here every condition keeps the framework's batch size
(`Condition.batch_size` None); PINNacle's counts are in `adapinn.problems.pinnacle.CASE_INFO`.
"""

from __future__ import annotations

import jax.numpy as jnp

from adapinn.problems.base import Condition, Problem, ReferenceData
from adapinn.problems.data import data_condition
from adapinn.problems.domains import Box, Union
from adapinn.problems.ns_cylinder import navier_stokes
from adapinn.problems.pinnacle.files import load_table, tensor_grid

NU, LID = 1 / 100, 4.0
FILE = "lid_driven_a4.dat"


def lid_profile(x):
    """u = a x (1 - x) on the lid y = 1."""
    return LID * x * (1 - x)


def reference_data() -> ReferenceData:
    """(u, v, p) at the file's nodes, in grid order (x slowest) with the grid's axes."""
    table = load_table(FILE)
    axes, order = tensor_grid(table[:, :2])
    values = table[order, 2:].reshape(len(axes[0]), len(axes[1]), 3)
    return ReferenceData.from_grid(axes, values)


def pinnacle_ns2d_c() -> Problem:
    """NS2d-C: the lid-driven cavity at nu = 1/100 (module docstring)."""
    box = Box((0.0, 0.0), (1.0, 1.0))
    walls = Union(Box((0.0, 0.0), (0.0, 1.0)), Box((1.0, 0.0), (1.0, 1.0)),
                  Box((0.0, 0.0), (1.0, 0.0)))
    return Problem(
        name="pinnacle_ns2d_c",
        domain=box,
        conditions={
            "pde": Condition(box, lambda u, x: navier_stokes(u, x, NU)),
            "lid": Condition(Box((0.0, 1.0), (1.0, 1.0)), lambda u, x: u(x)[:2] - jnp.stack(
                [lid_profile(x[0]), jnp.zeros_like(x[0])])),
            "walls": Condition(walls, lambda u, x: u(x)[:2]),
            "gauge": data_condition(jnp.zeros((1, 2)), jnp.zeros((1, 1)), outputs=(2,)),
        },
        input_names=("x", "y"),
        n_outputs=3,
        output_names=("u", "v", "p"),
        reference=reference_data,
    )
