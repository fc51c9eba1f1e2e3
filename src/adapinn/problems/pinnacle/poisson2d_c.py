"""PINNacle's Poisson2d-C (Hao et al., "PINNacle", NeurIPS 2024 D&B, arXiv 2306.08827; class
`Poisson2D_Classic` of PINNacle's src/pde/poisson.py, scale 1).

    u_xx + u_yy = 0   on  Omega = [-0.5, 0.5]^2 minus the 4 disks of radius 0.1
                          centred at (+-0.3, +-0.3),
    u = 1 on the square's boundary ("bc_square"),   u = 0 on the 4 circles ("bc_disks").

Reference: PINNacle's COMSOL solution `poisson1_cg_data.dat`, u at its 1246 unstructured FEM
nodes (where PINNacle scores). Our own method-of-fundamental-solutions solve agrees with it to
9e-5 (max; tests/test_pinnacle_problems.py).

Points: PINNacle draws 8192 interior and 2048 boundary points. Its boundary sampler
(DeepXDE's nested `CSGDifference`, which halves the count at each subtracted disk) puts about
1/16 of them (128) on the square and 128, 256, 512, 1024 on the disks at (0.3, 0.3),
(-0.3, 0.3), (0.3, -0.3), (-0.3, -0.3). Here both terms keep the framework's batch size
(`Condition.batch_size` None) and the disks' points are uniform in arc length: each term is a
mean, so only the disks' relative weight inside "bc_disks" differs from PINNacle (equal here,
1 : 2 : 4 : 8 there). PINNacle's counts are in `adapinn.problems.pinnacle.CASE_INFO`.
"""

from __future__ import annotations

import jax.numpy as jnp

from adapinn.geometry import AbstractDomain, Box, CSGUnion, Difference, Disk
from adapinn.problems.base import Condition, Problem, ReferenceData
from adapinn.problems.data import check_inside
from adapinn.problems.derivatives import laplacian
from adapinn.problems.pinnacle.files import load_table

HALF = 0.5
RADIUS = 0.1
CENTRES = ((0.3, 0.3), (-0.3, 0.3), (0.3, -0.3), (-0.3, -0.3))  # PINNacle's order
FILE = "poisson1_cg_data.dat"


def geometry() -> tuple[AbstractDomain, AbstractDomain, AbstractDomain]:
    """(the square minus the disks, the square's boundary, the union of the circles)."""
    square = Box((-HALF, -HALF), (HALF, HALF))
    disks = tuple(Disk(c, RADIUS) for c in CENTRES)
    # = square - d1 - d2 - d3 - d4 and c1 | c2 | c3 | c4, built in one step each (every
    # intermediate rejection domain would estimate its acceptance rate)
    return Difference(square, disks), square.boundary, CSGUnion(*(d.boundary for d in disks))


def reference_data(domain: AbstractDomain) -> ReferenceData:
    """u at the file's FEM nodes (checked to lie in `domain`)."""
    table = load_table(FILE)
    check_inside(table[:, :2], domain, FILE)
    dtype = jnp.result_type(float)
    return ReferenceData(jnp.asarray(table[:, :2], dtype), jnp.asarray(table[:, 2:], dtype))


def pinnacle_poisson2d_c() -> Problem:
    """Poisson2d-C: Laplace on the square with 4 holes (module docstring)."""
    domain, square, circles = geometry()
    return Problem(
        name="pinnacle_poisson2d_c",
        domain=domain,
        conditions={
            "pde": Condition(domain, lambda u, x: laplacian(u, x)[1]),
            "bc_square": Condition(square, lambda u, x: u(x) - 1.0),
            "bc_disks": Condition(circles, lambda u, x: u(x)),
        },
        input_names=("x", "y"),
        reference=lambda: reference_data(domain),
    )
