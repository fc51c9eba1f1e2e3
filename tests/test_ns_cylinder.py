"""The DFG 2D-1 problem: its geometry and conditions, and drag / lift / pressure drop from a
model by line integrals (checked on fields whose forces are known in closed form)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from adapinn.problems.ns_cylinder import (
    CENTRE,
    DIAMETER,
    NU,
    RADIUS,
    U_MEAN,
    channel,
    forces,
    inflow_profile,
    navier_stokes,
)


class Field(eqx.Module):
    """(u, v, p) = (a y, 0, -b x): shear flow and a linear pressure."""

    a: float
    b: float

    def __call__(self, x):
        return jnp.stack([self.a * x[1], 0.0 * x[0], -self.b * x[0]])


def test_pressure_and_shear_forces_match_closed_forms():
    """p = -b x: F_x = oint -p n_body ds = b pi R^2 (divergence theorem), F_y = 0, delta_p =
    b (0.25 - 0.15). The shear u = a y has a constant stress tensor, whose integral against
    the normal of a closed curve vanishes. (Float32: c_L to 1e-5 of c_D's scale.)"""
    coef = 2 / (U_MEAN**2 * DIAMETER)
    out = forces(Field(0.0, 2.0))
    np.testing.assert_allclose(out["c_d"], coef * 2.0 * np.pi * RADIUS**2, rtol=1e-5)
    np.testing.assert_allclose(out["c_l"], 0.0, atol=1e-5)
    np.testing.assert_allclose(out["delta_p"], 2.0 * 0.1, rtol=1e-5)
    shear = forces(Field(3.0, 0.0))  # oint nu (grad u + grad u^T) n_body ds = 0 for this field
    np.testing.assert_allclose([shear["c_d"], shear["c_l"]], 0.0, atol=1e-5)


def test_geometry_and_boundary_pieces():
    fluid, inflow, walls, cylinder, outflow = channel()
    pts = np.asarray(fluid.sample(jax.random.key(0), 4000))
    r = np.linalg.norm(pts - np.asarray(CENTRE), axis=1)
    assert r.min() >= RADIUS - 1e-6 and pts[:, 0].max() <= 2.2 and pts[:, 1].max() <= 0.41
    w = np.asarray(walls.sample(jax.random.key(1), 500))
    assert np.all((np.abs(w[:, 1]) < 1e-6) | (np.abs(w[:, 1] - 0.41) < 1e-6))
    c = np.asarray(cylinder.sample(jax.random.key(2), 200))
    np.testing.assert_allclose(np.linalg.norm(c - np.asarray(CENTRE), axis=1), RADIUS, rtol=1e-5)
    np.testing.assert_allclose(float(inflow_profile(0.205)), 0.3, rtol=1e-6)  # U_max, mid


def test_poiseuille_flow_solves_the_equations():
    """u = 4 U y (H - y) / H^2, v = 0, p = -8 U nu x / H^2 is an exact channel solution."""
    h, u_max = 0.41, 0.3

    def flow(x):
        return jnp.stack([4 * u_max * x[1] * (h - x[1]) / h**2, 0.0 * x[0],
                          -8 * u_max * NU * x[0] / h**2])

    pts = channel()[0].sample(jax.random.key(3), 100)
    res = jax.vmap(lambda x: navier_stokes(flow, x, NU))(pts)
    assert float(jnp.abs(res).max()) < 1e-6


def test_rar_d_puts_points_near_the_cylinder_and_in_the_wake_without_collapsing():
    """Seed 004's refinement collapsed every point onto one. RAR-D on the channel, with a
    residual field peaked at the cylinder and along its wake (default k = 1, c = 1; measured
    1.8x uniform near the cylinder, 2.9x in the wake): the added points are distinct,
    inside the fluid, and the density near the cylinder and in the wake exceeds uniform."""
    from adapinn.samplers.rar import RARD

    fluid = channel()[0]
    centre = jnp.asarray(CENTRE)

    def field(p):
        near = jnp.exp(-jnp.sum((p - centre) ** 2, axis=1) / 0.003)
        wake = jnp.exp(-((p[:, 1] - 0.2) ** 2) / 0.002) * (p[:, 0] > 0.25) * jnp.exp(-p[:, 0])
        return near + wake + 0.01

    rar = RARD(fluid, 256, initial_size=256, capacity=1256, add_per_refresh=200,
               pool_size=20000)
    state = jax.jit(rar.init)(jax.random.key(0))
    grow = jax.jit(lambda s, k: rar.update(s, k, jnp.asarray(1, jnp.int32), field))
    for i in range(5):
        state = grow(state, jax.random.key(i + 1))
    added = np.asarray(state.points[256:int(state.count)])
    assert len(added) == 1000 and len(np.unique(added.round(6), axis=0)) == 1000
    assert np.asarray(fluid.contains(jnp.asarray(added))).all()
    near = np.linalg.norm(added - np.asarray(CENTRE), axis=1) < 0.15
    wake = (added[:, 0] > 0.25) & (added[:, 0] < 1.2) & (np.abs(added[:, 1] - 0.2) < 0.05)
    uniform = np.asarray(fluid.sample(jax.random.key(9), 20000))
    near_u = np.mean(np.linalg.norm(uniform - np.asarray(CENTRE), axis=1) < 0.15)
    wake_u = np.mean((uniform[:, 0] > 0.25) & (uniform[:, 0] < 1.2)
                     & (np.abs(uniform[:, 1] - 0.2) < 0.05))
    assert near.mean() > 1.5 * near_u and wake.mean() > 2 * wake_u, (near.mean(), near_u,
                                                                  wake.mean(), wake_u)


def test_the_problems_build_against_the_finite_element_reference(tmp_path, monkeypatch):
    """Reference at mesh level 0 (1.7 s): scattered points inside the fluid with (u, v, p);
    the inverse problem's wake sensors come from it, with nu unknown."""
    import pytest

    pytest.importorskip("skfem")
    from adapinn.problems.ns_cylinder import ns_cylinder, ns_cylinder_inverse

    monkeypatch.setenv("ADAPINN_CACHE_DIR", str(tmp_path))
    ref = ns_cylinder(reference_level=0).reference_data()
    fluid = channel()[0]
    assert ref.values.shape[1] == 3 and ref.grid is None
    assert float(np.mean(np.asarray(fluid.contains(ref.points, 1e-4)))) > 0.999
    inverse = ns_cylinder_inverse(reference_level=0, n_sensors=100, noise=0.0)
    sensors = inverse.conditions["data"].domain
    assert sensors.values.shape == (100, 2) and float(sensors.values[:, 0].max()) > 0.1
    assert inverse.declared_parameters["nu"].true == NU
    assert list(tmp_path.glob("ns_cylinder-fem-0.npz"))  # cached: the second build reads it


def test_a_short_forward_run_reports_errors_per_output_and_the_forces(tmp_path, monkeypatch):
    import pytest

    pytest.importorskip("skfem")
    from adapinn.experiments.config import build_config
    from adapinn.experiments.fit import fit

    monkeypatch.setenv("ADAPINN_CACHE_DIR", str(tmp_path / "cache"))
    config = build_config({"problem": {"name": "ns_cylinder", "reference_level": 0},
                           "network": {"width": 16, "depth": 2},
                           "train": {"steps": 20, "batch_size": 128, "condition_batch_size": 32,
                                     "eval_every": 10, "checkpoint_every": 10,
                                     "lbfgs_steps": 0}})
    summary = fit(config, tmp_path / "run", progress=False)
    assert {"rel_l2_u", "rel_l2_v", "rel_l2_p", "c_d", "c_l", "delta_p",
            "c_d_rel_error"} <= set(summary)
    assert np.isfinite(summary["c_d"]) and summary["c_d_rel_error"] > 0
    assert (tmp_path / "run" / "plots" / "error_maps.png").exists()
