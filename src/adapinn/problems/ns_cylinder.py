"""Steady flow past a cylinder, the DFG 2D-1 benchmark (Schaefer & Turek 1996), forward and
inverse; seed 004's cylinder case pinned to the standard benchmark (methods.md).

    (u.grad) u + grad p - nu Lap u = 0,  div u = 0   on [0, 2.2] x [0, 0.41] minus the disk
                                                      of radius 0.05 at (0.2, 0.2), nu = 1e-3
    inflow x = 0:        u = 4 U_m y (0.41 - y) / 0.41^2, v = 0, U_m = 0.3
    walls, cylinder:     u = v = 0
    outflow x = 2.2:     nu du/dx - p = 0, nu dv/dx = 0 (do-nothing, the benchmark's own; methods.md
                         says "zero-pressure outflow": the do-nothing condition is what the
                         published c_D, c_L, delta_p and our finite-element reference use)

Mean inflow velocity U = 0.2, D = 0.1, Re = U D / nu = 20. Outputs (u, v, p). Drag and lift
from a model by the line integral over the cylinder (`forces`):

    F = oint ( nu (grad u + grad u^T) n - p n ) ds    (n pointing into the cylinder... here:
        out of the fluid, i.e. towards the cylinder centre),  c_{D,L} = 2 F_{x,y} / (U^2 D)

The reference is the project's own P2/P1 finite-element solve (`adapinn.reference.ns_cylinder`,
needs scikit-fem), cached like the other references. Inverse (`ns_cylinder_inverse`): nu
unknown (softplus anchor), recovered from noisy velocity sensors in the wake of the reference
solution.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from adapinn.geometry import Box, Disk
from adapinn.problems.base import Condition, Problem, ReferenceData
from adapinn.problems.data import data_condition
from adapinn.problems.fused import fused_derivatives
from adapinn.problems.parameters import Parameter, noisy_sensors

LENGTH, HEIGHT = 2.2, 0.41
CENTRE, RADIUS = (0.2, 0.2), 0.05
NU, U_MAX = 1e-3, 0.3
U_MEAN, DIAMETER = 2 * U_MAX / 3, 2 * RADIUS


def inflow_profile(y):
    return 4 * U_MAX * y * (HEIGHT - y) / HEIGHT**2


def _derivatives(u, x):
    w, (dx, dy), lap = fused_derivatives(u, x, second={0: 1.0, 1: 1.0})
    return w, dx, dy, lap


def navier_stokes(u, x, nu):
    """(momentum x, momentum y, continuity) of the network (u, v, p) at x."""
    w, dx, dy, lap = _derivatives(u, x)
    return jnp.stack([w[0] * dx[0] + w[1] * dy[0] + dx[2] - nu * lap[0],
                      w[0] * dx[1] + w[1] * dy[1] + dy[2] - nu * lap[1],
                      dx[0] + dy[1]])


def channel() -> tuple:
    """(fluid domain, inflow face, walls, cylinder circle, outflow face)."""
    box = Box((0.0, 0.0), (LENGTH, HEIGHT))
    disk = Disk(CENTRE, RADIUS)
    return (box - disk, Box((0.0, 0.0), (0.0, HEIGHT)),
            box.boundary.where(lambda x: (x[..., 1] < 1e-9) | (x[..., 1] > HEIGHT - 1e-9)),
            disk.boundary, Box((LENGTH, 0.0), (LENGTH, HEIGHT)))


def _conditions(pde) -> tuple:
    """(fluid domain, {"pde": pde on it, inflow, walls, cylinder, outflow}), from one
    `channel()` (each CSG domain estimates its acceptance once, at construction)."""
    fluid, inflow, walls, cylinder, outflow = channel()

    def outflow_residual(u, x):  # the true viscosity: boundary data does not encode nu
        _, dx, _, _ = _derivatives(u, x)
        w = u(x)
        return jnp.stack([NU * dx[0] - w[2], NU * dx[1]])

    return fluid, {
        "pde": Condition(fluid, pde),
        "inflow": Condition(inflow, lambda u, x: u(x)[:2] - jnp.stack(
            [inflow_profile(x[1]), jnp.zeros_like(x[1])])),
        "walls": Condition(walls, lambda u, x: u(x)[:2]),
        "cylinder": Condition(cylinder, lambda u, x: u(x)[:2]),
        "outflow": Condition(outflow, outflow_residual),
    }


def reference_data(level: int | None = None) -> ReferenceData:
    """The finite-element reference at its nodes (scattered points inside the fluid), on mesh
    `level` of `adapinn.reference.ns_cylinder` (None: its default, 2)."""
    sol = fem_reference(level)
    values = np.stack([sol["u"], sol["v"], sol["p"]], axis=1)
    dtype = jnp.result_type(float)
    return ReferenceData(jnp.asarray(sol["points"], dtype), jnp.asarray(values, dtype))


def fem_reference(level: int | None = None) -> dict:
    """The project's P2/P1 finite-element solution (cached on disk; needs scikit-fem)."""
    from adapinn.reference.cache import cache_dir
    from adapinn.reference.ns_cylinder import ns_cylinder_reference

    kwargs = {} if level is None else {"level": level}
    path = cache_dir() / f"ns_cylinder-fem-{'default' if level is None else level}.npz"
    if path.is_file():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    sol = {k: np.asarray(v) for k, v in ns_cylinder_reference(**kwargs).items()
           if not isinstance(v, dict)}  # arrays and scalars (rel_err is recomputable)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **sol)
    tmp.replace(path)
    return sol


def ns_cylinder(reference_level: int = 2) -> Problem:
    """Steady flow past a cylinder, DFG 2D-1 (Re = 20), against our finite-element solve."""
    fluid, conditions = _conditions(lambda u, x: navier_stokes(u, x, NU))
    return Problem(
        name="ns_cylinder", domain=fluid, conditions=conditions,
        input_names=("x", "y"), n_outputs=3, output_names=("u", "v", "p"),
        reference=lambda: reference_data(reference_level), diagnostics=benchmark_quantities,
    )


def benchmark_quantities(model) -> dict[str, float]:
    """c_D, c_L, delta_p of the model (`forces`) and their errors against the published values
    (Schaefer-Turek / Nabh: 5.57953523384, 0.010618948146, 0.11752016697)."""
    published = {"c_d": 5.57953523384, "c_l": 0.010618948146, "delta_p": 0.11752016697}
    got = forces(model)
    return {**got, **{f"{k}_rel_error": abs(got[k] / v - 1) for k, v in published.items()}}


def wake_sensors(n_sensors: int, seed: int) -> np.ndarray:
    """`n_sensors` points drawn uniformly in the wake box [0.3, 1.0] x [0.05, 0.36]."""
    return np.asarray(Box((0.3, 0.05), (1.0, 0.36)).sample(jax.random.key(seed), n_sensors))


def ns_cylinder_inverse(n_sensors: int = 500, noise: float = 0.1, noise_seed: int = 0,
                        nu_initial: float = 3e-3, nu_beta: float = 1e-3,
                        reference_level: int = 2) -> Problem:
    """Inverse DFG 2D-1: recover nu from noisy velocity sensors in the cylinder's wake.

    `nu = nu_beta softplus(k)` starting at `nu_initial`; the sensors are interpolated from
    the finite-element reference; the boundary conditions are kept (they do not encode nu)."""
    from adapinn.reference.ns_cylinder import ns_cylinder_interpolate

    sol = fem_reference(reference_level)
    points = wake_sensors(n_sensors, noise_seed + 1)
    at = ns_cylinder_interpolate(sol, points)  # the P2 finite-element function
    clean = jnp.asarray(np.stack([at["u"], at["v"]], axis=1))
    _, values = noisy_sensors(lambda i: clean[i], jnp.arange(n_sensors), noise, noise_seed)
    fluid, conditions = _conditions(
        lambda u, x, params: navier_stokes(u, x, params["nu"]))
    return Problem(
        name="ns_cylinder_inverse", domain=fluid,
        conditions={**conditions,
                    "data": data_condition(jnp.asarray(points), values, outputs=(0, 1))},
        input_names=("x", "y"), n_outputs=3, output_names=("u", "v", "p"),
        parameters={"nu": Parameter(nu_initial, "softplus", beta=nu_beta, true=NU)},
        reference=lambda: reference_data(reference_level),
    )


def forces(model, n: int = 1024) -> dict[str, float]:
    """c_D, c_L by the line integral over the cylinder and delta_p = p(0.15, 0.2) -
    p(0.25, 0.2) from a model (n quadrature points, trapezoidal in the angle)."""
    theta = jnp.linspace(0.0, 2 * jnp.pi, n, endpoint=False)
    normal = -jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)  # out of the fluid
    pts = jnp.asarray(CENTRE) - RADIUS * normal

    def traction(x, nrm):
        jac = jax.jacfwd(model)(x)  # (3, 2): rows u, v, p
        grad = jac[:2]
        stress = NU * (grad + grad.T) - model(x)[2] * jnp.eye(2)
        return stress @ nrm

    t = jax.vmap(traction)(pts, normal)
    force = -jnp.sum(t, axis=0) * (2 * jnp.pi * RADIUS / n)  # force of the fluid on the body
    coef = 2 * force / (U_MEAN**2 * DIAMETER)
    p = jax.vmap(model)(jnp.asarray([[0.15, 0.2], [0.25, 0.2]]))[:, 2]
    return {"c_d": float(coef[0]), "c_l": float(coef[1]), "delta_p": float(p[0] - p[1])}
