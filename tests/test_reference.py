"""Tests of the reference solvers (Cole-Hopf Burgers, ETDRK4 Allen-Cahn) and their cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapinn.reference import (
    allen_cahn_reference,
    burgers_reference,
    burgers_solution,
    cached_reference,
    compute_reference,
    reference_path,
)
from adapinn.reference.allen_cahn import _projected_coefficients
from adapinn.reference.burgers import DEFAULT_NU

SHARED = Path(__file__).parents[2] / "shared" / "reference"


def rel_l2(u: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(u - ref) / np.linalg.norm(ref))


def load_shared(name: str) -> dict[str, np.ndarray]:
    path = SHARED / f"{name}.mat"
    if not path.is_file():
        pytest.skip(f"independent reference data not available: {path}")
    from scipy.io import loadmat

    return loadmat(path)


# --- (a) acceptance against the independent chebfun grids (full 201 x 512 grid) ---


@pytest.mark.parametrize(
    ("name", "solver", "tol"),
    [("burgers", burgers_reference, 1e-4), ("allen_cahn", allen_cahn_reference, 1e-5)],
)
def test_against_chebfun(name: str, solver, tol: float) -> None:
    data = load_shared(name)
    t, x, u = solver()
    assert u.shape == data["usol"].shape == (201, 512)
    assert u.dtype == np.float64
    np.testing.assert_allclose(t, data["t"].ravel(), atol=1e-14)
    np.testing.assert_allclose(x, data["x"].ravel(), atol=1e-14)
    assert rel_l2(u, data["usol"]) <= tol


# --- (b) self-convergence and exactness, no shared data needed ---


def test_burgers_quadrature_converged() -> None:
    t = np.array([0.05, 0.3, 0.6, 1.0])
    x = np.linspace(-1.0, 1.0, 257)
    coarse = burgers_solution(t, x, n_quad=100)
    fine = burgers_solution(t, x, n_quad=400)
    default = burgers_solution(t, x)
    assert rel_l2(coarse, fine) < 1e-8
    assert np.max(np.abs(default - fine)) < 1e-12


def test_burgers_matches_trapezoid_rule() -> None:
    """Independent quadrature: the trapezoid rule is spectrally accurate on the real line."""
    nu = DEFAULT_NU
    t, x = 1.0, np.linspace(-0.05, 0.05, 41)  # across the shock
    s = np.arange(-30.0, 30.0, 2e-3)
    y = x[:, None] - np.sqrt(4 * nu * t) * s[None, :]
    expo = -(s**2) - np.cos(np.pi * y) / (2 * np.pi * nu)
    scaled = np.exp(expo - expo.max(axis=1, keepdims=True))
    trap = -(np.sin(np.pi * y) * scaled).sum(axis=1) / scaled.sum(axis=1)
    np.testing.assert_allclose(burgers_solution([t], x)[0], trap, atol=1e-12)


def test_burgers_initial_and_boundary_conditions() -> None:
    t, x, u = burgers_reference(nt=11, nx=65)
    assert u.shape == (11, 65)
    interior = np.abs(x) < 1.0
    np.testing.assert_array_equal(u[0, interior], -np.sin(np.pi * x[interior]))
    np.testing.assert_array_equal(u[:, [0, -1]], 0.0)
    assert np.all(np.abs(u) <= 1.0 + 1e-12)
    np.testing.assert_allclose(u, -u[:, ::-1], atol=1e-13)  # odd in x


def test_burgers_pde_residual_away_from_shock() -> None:
    nu, h, k = DEFAULT_NU, 1e-3, 1e-4
    x = np.linspace(-0.9, 0.9, 37)
    x = x[np.abs(x) > 0.2]
    t = np.array([0.1, 0.4, 0.8])
    tt = np.concatenate([t - k, t, t + k])
    xx = np.concatenate([x - h, x, x + h])
    u = burgers_solution(tt, xx).reshape(3, t.size, 3, x.size)
    u_t = (u[2, :, 1] - u[0, :, 1]) / (2 * k)
    u_x = (u[1, :, 2] - u[1, :, 0]) / (2 * h)
    u_xx = (u[1, :, 2] - 2 * u[1, :, 1] + u[1, :, 0]) / h**2
    residual = u_t + u[1, :, 1] * u_x - nu * u_xx
    scale = np.max(np.abs(u_t)) + np.max(np.abs(u[1, :, 1] * u_x))
    assert np.max(np.abs(residual)) < 1e-5 * scale


def test_allen_cahn_time_convergence() -> None:
    _, _, u1 = allen_cahn_reference(nt=21, nx=129, n_modes=256, dt=5e-3)
    _, _, u2 = allen_cahn_reference(nt=21, nx=129, n_modes=256, dt=2.5e-3)
    _, _, u3 = allen_cahn_reference(nt=21, nx=129, n_modes=256, dt=1.25e-3)
    e1, e2 = rel_l2(u1, u3), rel_l2(u2, u3)
    assert e2 < 1e-8
    assert e1 / e2 > 8.0  # fourth order: ideally ~17 against the finer solution


def test_allen_cahn_initial_condition_and_periodicity() -> None:
    t, x, u = allen_cahn_reference(nt=5, nx=101, n_modes=256, dt=5e-3)
    np.testing.assert_array_equal(t, np.linspace(0.0, 1.0, 5))
    np.testing.assert_array_equal(u[0], x**2 * np.cos(np.pi * x))
    np.testing.assert_allclose(u[1:, 0], u[1:, -1], atol=1e-13)  # x = -1 and x = 1
    assert np.all(np.abs(u) <= 1.0 + 1e-6)


def test_allen_cahn_interpolation_is_trigonometric() -> None:
    """At the solver's own grid points the interpolant reproduces the grid values."""
    n = 64
    t, x, u = allen_cahn_reference(nt=3, nx=2 * n + 1, n_modes=n, dt=5e-3)
    on_grid = u[:, ::2]
    _, _, u_grid = allen_cahn_reference(nt=3, nx=n + 1, n_modes=n, dt=5e-3)
    np.testing.assert_allclose(on_grid, u_grid, atol=1e-13)
    midpoints = u[1, 1::2]
    linear = 0.5 * (u_grid[1, :-1] + u_grid[1, 1:])
    assert not np.allclose(midpoints, linear, atol=1e-10)


def test_allen_cahn_projected_initial_coefficients() -> None:
    n, m = 64, 2**16
    grid = -1.0 + 2.0 * np.arange(m) / m
    fine = np.fft.rfft(grid**2 * np.cos(np.pi * grid))[: n // 2 + 1] * (n / m)
    fine[-1] *= 2.0
    np.testing.assert_allclose(_projected_coefficients(n), fine, atol=1e-7)


def test_allen_cahn_step_size_rounding() -> None:
    """dt is the largest step: an interval of 0.1 with dt = 0.015 takes 7 steps of 0.1 / 7."""
    _, _, rounded = allen_cahn_reference(nt=11, nx=33, n_modes=64, dt=1.5e-2)
    _, _, exact = allen_cahn_reference(nt=11, nx=33, n_modes=64, dt=0.1 / 7)
    _, _, fine = allen_cahn_reference(nt=11, nx=33, n_modes=64, dt=1e-2)
    np.testing.assert_array_equal(rounded, exact)
    assert rel_l2(rounded, fine) < 1e-6


# --- (c) cache ---


def _small_burgers(nt: int = 5, nx: int = 9, n_quad: int = 60) -> tuple:
    _small_burgers.calls += 1  # type: ignore[attr-defined]
    return burgers_reference(nt=nt, nx=nx, n_quad=n_quad)


_small_burgers.calls = 0  # type: ignore[attr-defined]


def test_cache_roundtrip_and_corruption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPINN_CACHE_DIR", str(tmp_path))
    _small_burgers.calls = 0  # type: ignore[attr-defined]
    first = cached_reference("small", _small_burgers, nt=5)
    path = reference_path("small", _small_burgers, nt=5)
    assert path.is_file() and path.parent == tmp_path and path.name.startswith("small-")
    assert path == reference_path("small", _small_burgers, nt=5, nx=9, n_quad=60)
    assert path != reference_path("small", _small_burgers, nt=5, n_quad=61)
    second = cached_reference("small", _small_burgers, nt=5)
    assert _small_burgers.calls == 1
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert list(tmp_path.glob("*.tmp")) == []

    path.write_bytes(b"not an npz file")
    third = cached_reference("small", _small_burgers, nt=5)
    assert _small_burgers.calls == 2
    np.testing.assert_array_equal(third[2], first[2])
    cached_reference("small", _small_burgers, nt=5)
    assert _small_burgers.calls == 2


def test_cache_dir_fallbacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADAPINN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert reference_path("burgers").parent == tmp_path / "xdg" / "adapinn" / "reference"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".cache" / "adapinn" / "reference"
    assert reference_path("burgers").parent == expected


def test_compute_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPINN_CACHE_DIR", str(tmp_path))
    t, x, u = compute_reference("burgers", nt=6, nx=17)
    assert u.shape == (6, 17)
    assert reference_path("burgers", nt=6, nx=17).is_file()
    t2, x2, u2 = compute_reference("allen_cahn", nt=3, nx=17)
    assert u2.shape == (3, 17)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    with pytest.raises(ValueError, match="burgers.*allen_cahn"):
        compute_reference("heat")
