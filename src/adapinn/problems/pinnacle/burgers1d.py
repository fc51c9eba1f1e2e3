"""PINNacle's Burgers1d-C (Hao et al., "PINNacle", NeurIPS 2024 D&B, arXiv 2306.08827;
class `Burgers1D` of PINNacle's src/pde/burgers.py).

    u_t + u u_x - nu u_xx = 0,   nu = 0.01 / pi,   x in [-1, 1], t in [0, 1],
    u(0, x) = -sin(pi x)  ("ic"),   u(t, -1) = u(t, 1) = 0  ("bc").

Inputs are ordered (t, x) (PINNacle's are (x, t)). Reference (default, "pinnacle"): PINNacle's
COMSOL solution `burgers1d.dat`, u on the 11 x 101 grid t = 0, 0.1, ..., 1 times
x = -1, -0.98, ..., 1, the 1111 points PINNacle scores on. That file is itself about 1.3%
(relative L2; max 0.09 at the shock x = 0, t = 0.4) away from the exact Cole-Hopf solution:
an error floor for any L2RE measured against it. `reference="cole_hopf"` scores on the same
points against the exact solution (`adapinn.reference.burgers`) instead.

Points: PINNacle draws 8192 interior, 2048 boundary (x = +-1, random t) and 2048 initial
points; here every condition keeps the framework's batch size (`Condition.batch_size` None):
the loss is a mean per term, so the count changes only resolution, not balance. PINNacle's
counts are in `adapinn.problems.pinnacle.CASE_INFO` for a protocol that wants them.
"""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp
import numpy as np

from adapinn.problems.base import Condition, Problem, ReferenceData
from adapinn.problems.domains import Box, Union
from adapinn.problems.fused import fused_derivatives
from adapinn.problems.pinnacle.files import load_table, snapshot_times

NU = 0.01 / np.pi
FILE = "burgers1d.dat"


def burgers_residual(u, x):
    """u_t + u u_x - nu u_xx at one point x = (t, x)."""
    value, (u_x,), transport = fused_derivatives(u, x, second={1: -NU}, first={0: 1.0})
    return transport + value * u_x  # transport = u_t - nu u_xx


def reference_data(reference: Literal["pinnacle", "cole_hopf"] = "pinnacle") -> ReferenceData:
    """u on the file's (t, x) grid: the file's values, or the exact Cole-Hopf solution."""
    table = load_table(FILE)
    t, xs = snapshot_times(FILE), table[:, 0]
    if reference == "cole_hopf":
        from adapinn.reference.burgers import burgers_solution

        return ReferenceData.from_grid((t, xs), burgers_solution(t, xs, nu=NU))
    return ReferenceData.from_grid((t, xs), table[:, 1:].T)


def pinnacle_burgers1d(reference: Literal["pinnacle", "cole_hopf"] = "pinnacle") -> Problem:
    """Burgers1d-C on (t, x) (module docstring); scored against `reference`."""
    box = Box((0.0, -1.0), (1.0, 1.0))
    return Problem(
        name="pinnacle_burgers1d",
        domain=box,
        conditions={
            "pde": Condition(box, burgers_residual),
            "ic": Condition(Box((0.0, -1.0), (0.0, 1.0)),
                            lambda u, x: u(x) + jnp.sin(jnp.pi * x[1])),
            "bc": Condition(Union(Box((0.0, -1.0), (1.0, -1.0)), Box((0.0, 1.0), (1.0, 1.0))),
                            lambda u, x: u(x)),
        },
        input_names=("t", "x"),
        reference=lambda: reference_data(reference),
    )
