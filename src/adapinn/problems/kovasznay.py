"""Kovasznay flow (Kovasznay 1948; NSFnets, Jin et al. 2021): steady incompressible
Navier-Stokes at Re = 40 with an exact solution, forward and inverse.

    u u_x + v u_y + p_x - (u_xx + u_yy) / Re = 0
    u v_x + v v_y + p_y - (v_xx + v_yy) / Re = 0
    u_x + v_y = 0                     on [-0.5, 1] x [-0.5, 1.5]

    lambda = Re / 2 - sqrt(Re^2 / 4 + 4 pi^2)
    u = 1 - e^{lambda x} cos(2 pi y),  v = lambda / (2 pi) e^{lambda x} sin(2 pi y),
    p = (1 - e^{2 lambda x}) / 2

Forward (`kovasznay`): u, v from the exact solution on the whole boundary, and p on the
outflow edge x = 1 (our choice: it fixes the pressure's free constant, so p is scored without
a shift). Inverse (`kovasznay_inverse`): Re unknown (softplus anchor c = beta softplus(k)),
recovered from `n_sensors` noisy velocity observations drawn uniformly in the domain (noise
sigma = noise * std per component, its own seed) and the PDE residual, with NO boundary data
(the boundary values encode Re). Noise convention: sigma_j = noise * std_i u_j(x_i) over the
sensors, per component, from `noise_seed` (independent of the network's seed). Its
`Parameter.bound` is the Cramer-Rao bound of the sensor design (1000 sensors, 10% noise:
0.11, i.e. 0.28% of Re = 40).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from adapinn.problems.base import Condition, Problem
from adapinn.problems.data import data_condition
from adapinn.problems.domains import Box
from adapinn.problems.fused import fused_derivatives
from adapinn.problems.parameters import Parameter, cramer_rao_bound, noisy_sensors

LOW, HIGH = (-0.5, -0.5), (1.0, 1.5)


def exact_solution(re: float):
    """x (2,) -> (u, v, p) of Kovasznay flow at Reynolds number `re`."""
    lam = re / 2 - jnp.sqrt(re**2 / 4 + 4 * jnp.pi**2)

    def solution(x):
        e = jnp.exp(lam * x[0])
        return jnp.stack([1 - e * jnp.cos(2 * jnp.pi * x[1]),
                          lam / (2 * jnp.pi) * e * jnp.sin(2 * jnp.pi * x[1]),
                          0.5 * (1 - jnp.exp(2 * lam * x[0]))])

    return solution


def navier_stokes(u, x, re):
    """The steady NS residual (momentum x, momentum y, continuity) of (u, v, p) at x."""
    w, (dx, dy), lap = fused_derivatives(u, x, second={0: 1.0, 1: 1.0})
    mom_x = w[0] * dx[0] + w[1] * dy[0] + dx[2] - lap[0] / re
    mom_y = w[0] * dx[1] + w[1] * dy[1] + dy[2] - lap[1] / re
    return jnp.stack([mom_x, mom_y, dx[0] + dy[1]])


def kovasznay(re: float = 40.0) -> Problem:
    """Steady Navier-Stokes, Kovasznay flow at Reynolds number `re` (exact solution).

    Velocity on the boundary, pressure on the outflow edge (module docstring)."""
    box = Box(LOW, HIGH)
    exact = exact_solution(re)
    outflow = Box((HIGH[0], LOW[1]), HIGH)
    return Problem(
        name="kovasznay", domain=box,
        conditions={
            "pde": Condition(box, lambda u, x: navier_stokes(u, x, re)),
            "bc": Condition(box.boundary, lambda u, x: u(x)[:2] - exact(x)[:2]),
            "p_out": Condition(outflow, lambda u, x: u(x)[2] - exact(x)[2]),
        },
        input_names=("x", "y"), n_outputs=3, output_names=("u", "v", "p"), exact=exact,
    )


def sensor_points(n_sensors: int, placement: str, seed: int):
    """`n_sensors` points in the domain: "random" (uniform, from `seed`) or "grid" (the
    nearest square lattice, ceil(sqrt(n))^2 points, cell-centred)."""
    box = Box(LOW, HIGH)
    if placement == "random":
        return box.sample(jax.random.key(seed), n_sensors)
    if placement == "grid":
        side = int(jnp.ceil(jnp.sqrt(n_sensors)))
        unit = (jnp.arange(side) + 0.5) / side
        grid = jnp.stack(jnp.meshgrid(unit, unit, indexing="ij"), axis=-1).reshape(-1, 2)
        return box.from_unit(grid)
    raise ValueError(f"sensor placement must be random or grid, got {placement!r}")


def kovasznay_inverse(re: float = 40.0, n_sensors: int = 1000, noise: float = 0.1,
                      noise_seed: int = 0, re_initial: float = 20.0,
                      re_beta: float = 10.0, placement: str = "random") -> Problem:
    """Inverse Kovasznay flow: recover Re from noisy velocity sensors, no boundary data.

    `Re = re_beta * softplus(k)` starting at `re_initial`; the true `re` makes the data;
    sensors placed `placement` (random or grid, `sensor_points`); module docstring."""
    box = Box(LOW, HIGH)
    exact = exact_solution(re)
    points = sensor_points(n_sensors, placement, noise_seed + 1)
    sensors, values = noisy_sensors(lambda x: exact(x)[:2], points, noise, noise_seed)
    bound = None
    if noise > 0:  # the best std any unbiased estimate of Re can reach with these sensors
        clean = jax.vmap(lambda x: exact(x)[:2])(points)
        bound = float(cramer_rao_bound(
            lambda t: jax.vmap(lambda x: exact_solution(t[0])(x)[:2])(points), jnp.asarray(re),
            noise * jnp.std(clean, axis=0))[0])
    return Problem(
        name="kovasznay_inverse", domain=box,
        conditions={
            "pde": Condition(box, lambda u, x, params: navier_stokes(u, x, params["Re"])),
            "data": data_condition(sensors, values, outputs=(0, 1)),
        },
        input_names=("x", "y"), n_outputs=3, output_names=("u", "v", "p"),
        parameters={"Re": Parameter(re_initial, "softplus", beta=re_beta, true=re,
                                    bound=bound)},
        exact=exact,
    )
