"""Domains, forward-mode derivatives and the built-in problems."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adapinn import Box, Condition, Problem, Union, first_derivative, laplacian, second_derivative
from adapinn.problems import allen_cahn, burgers, gradient


def test_box_samples_inside_and_faces_stay_fixed():
    face = Box((0.0, -1.0), (0.0, 1.0))
    pts = face.sample(jax.random.PRNGKey(0), 500)
    assert pts.shape == (500, 2)
    assert bool(jnp.all(pts[:, 0] == 0.0))
    assert bool(jnp.all(face.contains(pts)))
    assert float(pts[:, 1].min()) < -0.9 and float(pts[:, 1].max()) > 0.9


def test_box_rejects_inverted_bounds():
    with pytest.raises(ValueError, match="high must be >= low"):
        Box((0.0, 1.0), (1.0, 0.0))


def test_union_samples_parts_in_proportion_to_measure():
    left, right = Box((0.0, -1.0), (1.0, -1.0)), Box((0.0, 1.0), (3.0, 1.0))
    pts = Union(left, right).sample(jax.random.PRNGKey(1), 20_000)
    share_right = float(jnp.mean(pts[:, 1] == 1.0))
    assert abs(share_right - 0.75) < 0.02
    assert bool(jnp.all(Union(left, right).contains(pts)))


def test_reflect_folds_points_back_into_the_box():
    box = Box((0.0, -1.0), (1.0, 1.0))
    x = jnp.array([[1.2, -1.5], [-0.3, 0.5], [0.5, 3.5]])
    y = box.reflect(x)
    np.testing.assert_allclose(y, [[0.8, -0.5], [0.3, 0.5], [0.5, -0.5]], atol=1e-6)


def _u(x):
    return jnp.sin(2.0 * x[0]) * jnp.exp(x[1]) + x[0] ** 3 * x[1] ** 2


def test_forward_mode_derivatives_match_reverse_mode():
    x = jnp.array([0.3, -0.7])
    value, d1 = first_derivative(_u, x, 0)
    _, d1b, d2 = second_derivative(_u, x, 1)
    hess = jax.hessian(_u)(x)
    np.testing.assert_allclose(value, _u(x), rtol=1e-6)
    np.testing.assert_allclose(d1, jax.grad(_u)(x)[0], rtol=1e-5)
    np.testing.assert_allclose(d1b, jax.grad(_u)(x)[1], rtol=1e-5)
    np.testing.assert_allclose(d2, hess[1, 1], rtol=1e-5)
    np.testing.assert_allclose(gradient(_u, x)[1], jax.grad(_u)(x), rtol=1e-5)
    np.testing.assert_allclose(laplacian(_u, x)[1], jnp.trace(hess), rtol=1e-5)


@pytest.mark.parametrize("make", [burgers, allen_cahn])
def test_builtin_problems_have_named_conditions_in_their_domain(make):
    problem = make()
    assert "pde" in problem.conditions and "ic" in problem.conditions
    for cond in problem.conditions.values():
        pts = cond.domain.sample(jax.random.PRNGKey(2), 64)
        assert bool(jnp.all(problem.domain.contains(pts)))
    ic_pts = problem.conditions["ic"].domain.sample(jax.random.PRNGKey(3), 16)
    assert bool(jnp.all(ic_pts[:, 0] == 0.0))


def test_burgers_ic_and_bc_residuals_vanish_for_the_true_boundary_values():
    problem = burgers()
    ic = problem.conditions["ic"]
    x = jnp.array([0.0, 0.37])
    assert abs(float(ic.residual(lambda y: -jnp.sin(jnp.pi * y[1]), x))) < 1e-6
    bc = problem.conditions["bc"]
    pts = bc.domain.sample(jax.random.PRNGKey(0), 32)
    assert bool(jnp.all(jnp.abs(pts[:, 1]) == 1.0))


def test_allen_cahn_pde_residual_of_a_steady_state_is_zero():
    """u = 1 solves u_t - 1e-4 u_xx + 5u^3 - 5u = 0."""
    problem = allen_cahn()
    r = problem.conditions["pde"].residual(lambda x: jnp.ones(()), jnp.array([0.2, 0.1]))
    assert abs(float(r)) < 1e-6
    assert dict(problem.periodic) == {1: 2.0}


def test_allen_cahn_periodic_bc_penalty_is_zero_for_periodic_u():
    problem = allen_cahn(periodic_bc=True)
    bc = problem.conditions["bc"]
    r = bc.residual(lambda x: jnp.cos(jnp.pi * x[1]) * x[0], jnp.array([0.4, -1.0]))
    np.testing.assert_allclose(r, 0.0, atol=1e-5)


def test_problem_rejects_condition_of_wrong_dimension():
    with pytest.raises(ValueError, match="dimension"):
        cond = Condition(Box((0, 0), (1, 1)), lambda u, x: u(x))
        Problem("bad", Box((0.0,), (1.0,)), {"pde": cond})


def test_exact_solution_gives_reference_grid():
    problem = Problem("lin", Box((0.0, 0.0), (1.0, 1.0)),
                      {"pde": Condition(Box((0, 0), (1, 1)), lambda u, x: u(x))},
                      exact=lambda x: x[0] + x[1])
    ref = problem.reference_data(resolution=5)
    assert ref.points.shape == (25, 2) and ref.values.shape == (25, 1)
    np.testing.assert_allclose(ref.values[:, 0], ref.points.sum(-1), atol=1e-6)
