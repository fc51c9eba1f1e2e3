"""Poisson on a plate with four holes: -lap u = f, u = g on the outer edge and on every hole.
The manufactured solution u = sin(pi x) sin(pi y) + x y gives f and g (so rel. L2 is known).

    adapinn run examples/plate.yaml --out runs/plate
    adapinn predict runs/plate --points new_points.csv --out u.csv
"""

import jax.numpy as jnp

from adapinn import Condition, Problem, laplacian
from adapinn.geometry import Box, Disk


def exact(x):
    return jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * x[1]) + x[0] * x[1]


def plate(radius: float = 0.12):
    holes = [Disk(c, radius) for c in ((0.3, 0.3), (0.7, 0.3), (0.3, 0.7), (0.7, 0.7))]
    domain = Box((0.0, 0.0), (1.0, 1.0)) - holes[0] - holes[1] - holes[2] - holes[3]
    source = lambda x: 2 * jnp.pi**2 * jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * x[1])  # noqa: E731
    return Problem("plate", domain, {
        "pde": Condition(domain, lambda u, x: laplacian(u, x)[1] + source(x)),
        "bc": Condition(domain.boundary, lambda u, x: u(x) - exact(x)),
    }, input_names=("x", "y"), exact=exact)
