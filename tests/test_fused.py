"""Fused second-order forward mode against nested jvps and the Hessian (the reference)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adapinn.experiments.config import NetworkConfig
from adapinn.nn import build_network
from adapinn.problems.derivatives import first_derivative, second_derivative
from adapinn.problems.fused import fused_derivatives, taylor_streams


@jax.custom_vjp
def _sine_with_own_vjp(y):
    return jnp.sin(y)


_sine_with_own_vjp.defvjp(lambda y: (jnp.sin(y), y), lambda y, g: (g * jnp.cos(y),))

# functions covering each rule: linear maps, products of two streamed factors, elementwise
# nonlinearities, calls (jit, checkpoint, custom_jvp, custom_vjp), the general jvp rule
# (max, arctan2, where) and outputs without slope (floor)
FUNCTIONS = {
    "products": lambda y: jnp.stack([jnp.sin(y[0]) * jnp.exp(y[1]), y[0] ** 3 / (1 + y[1] ** 2),
                                     jnp.sum(jnp.concatenate([y, y[:1] * y[1:]]) ** 2), y @ y]),
    "calls": lambda y: jnp.stack([jax.nn.softplus(y[0] - y[1]), jax.jit(jnp.cosh)(y[1]),
                                  jax.nn.gelu(y[0]), jax.checkpoint(jnp.sin)(2 * y[0]),
                                  jax.nn.relu(y[1] + 1.0)]),
    "general": lambda y: jnp.stack([jnp.max(y * jnp.array([1.0, -2.0])),
                                    jnp.arctan2(y[0], y[1] + 3.0),
                                    jnp.where(y[0] > 0, y[1] ** 2, y[0]), jnp.floor(y[0]) + y[1]]),
    "scalar": lambda y: jnp.tanh(y[0] * y[1]) + jnp.log1p(y[0] ** 2),
    "constant": lambda y: jnp.ones(2),
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_transport_operator_matches_nested_jvps(name):
    """u, u_x and u_t - nu u_xx of one fused pass equal those of nested jvps."""
    f, x, nu = FUNCTIONS[name], jnp.array([0.3, -0.7]), 0.1
    value, (u_x,), op = fused_derivatives(f, x, second={1: -nu}, first={0: 1.0})
    _, u_t = first_derivative(f, x, 0)
    reference, u_x_ref, u_xx = second_derivative(f, x, 1)
    np.testing.assert_allclose(value, reference, atol=1e-6)
    np.testing.assert_allclose(u_x, u_x_ref, atol=1e-5)
    np.testing.assert_allclose(op, u_t - nu * u_xx, atol=1e-5)


def test_general_directions_give_the_hessian_quadratic_form_and_the_gradient():
    f = FUNCTIONS["products"]
    x = jnp.array([0.4, 0.2])
    directions = jnp.array([[1.0, 2.0], [0.5, -1.0]])
    c, w = (0.7, -1.3), jnp.array([2.0, -0.5])
    value, firsts, op = taylor_streams(f, x, directions, c, w)
    hessian, jacobian = jax.hessian(f)(x), jax.jacfwd(f)(x)
    expected = sum(ck * jnp.einsum("oij,i,j->o", hessian, v, v) for ck, v in zip(c, directions))
    np.testing.assert_allclose(op, expected + jacobian @ w, rtol=1e-5)
    np.testing.assert_allclose(firsts, (jacobian @ directions.T).T, rtol=1e-5)
    np.testing.assert_allclose(value, f(x))


def test_custom_vjp_function_is_differentiated_through_its_primal():
    """jvp refuses a custom_vjp function; the fused pass enters its primal instead."""
    f = lambda y: _sine_with_own_vjp(y[0] * y[1])
    g = lambda y: jnp.sin(y[0] * y[1])
    x = jnp.array([0.3, 0.9])
    _, firsts, op = fused_derivatives(f, x, second={1: 1.0, 0: 1.0})
    np.testing.assert_allclose(op, jnp.trace(jax.hessian(g)(x)), rtol=1e-5)
    np.testing.assert_allclose(firsts, jax.grad(g)(x)[::-1], rtol=1e-5)  # axes 1, 0


def test_pytree_output_keeps_its_structure():
    f = lambda y: {"a": y[0] * y[1], "b": jnp.sin(y)}
    value, firsts, op = fused_derivatives(f, jnp.array([0.1, 0.2]), second={0: 1.0})
    assert set(value) == {"a", "b"} and firsts["b"].shape == (1, 2) and op["a"].shape == ()
    np.testing.assert_allclose(firsts["a"], [0.2], rtol=1e-6)


def test_traced_coefficient_is_allowed():
    """A trainable coefficient (an inverse problem's Reynolds number) may scale L."""
    f = lambda y: jnp.sin(y[0]) * y[1] ** 2
    x = jnp.array([0.5, 1.5])
    grad = jax.grad(lambda c: fused_derivatives(f, x, second={1: c})[2])(2.0)
    np.testing.assert_allclose(grad, 2 * jnp.sin(0.5), rtol=1e-6)


@pytest.mark.parametrize("config", [
    NetworkConfig(width=16, depth=3, fourier_features=0),
    NetworkConfig(name="modified_mlp", width=16, depth=2, fourier_features=8)])
def test_training_gradient_of_a_network_matches_nested_jvps(config):
    """The parameter gradient of a Burgers residual loss through the fused pass (under vmap)
    equals that through nested jvps, for adapinn's networks."""
    model = build_network(config, 2, 1, (), jax.random.PRNGKey(0))
    points = jax.random.normal(jax.random.PRNGKey(1), (7, 2))

    def loss(m, fused):
        u = lambda y: m(y)[0]

        def residual(y):
            if fused:
                value, (u_x,), op = fused_derivatives(u, y, second={1: -0.01}, first={0: 1.0})
                return op + value * u_x
            _, u_t = first_derivative(u, y, 0)
            value, u_x, u_xx = second_derivative(u, y, 1)
            return u_t + value * u_x - 0.01 * u_xx

        return jnp.mean(jax.vmap(residual)(points) ** 2)

    fused = eqx.filter_grad(lambda m: loss(m, True))(model)
    nested = eqx.filter_grad(lambda m: loss(m, False))(model)
    for a, b in zip(jax.tree_util.tree_leaves(fused), jax.tree_util.tree_leaves(nested)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


def test_bad_axes_and_directions_are_refused():
    f = lambda y: y[0]
    with pytest.raises(ValueError, match="axis 2 out of range"):
        fused_derivatives(f, jnp.zeros(2), second={2: 1.0})
    with pytest.raises(ValueError, match="directions must be"):
        taylor_streams(f, jnp.zeros(2), jnp.ones((2, 3)), (1.0, 1.0))


def test_the_traced_program_does_not_grow_with_the_number_of_streams():
    """The K first streams travel stacked: the Laplacian's training gradient at d = 4 and at
    d = 64 (K = d streams) traces to the same number of equations."""
    def size(d):
        model = build_network(NetworkConfig(width=16, depth=3, fourier_features=0), d, 1, (),
                              jax.random.PRNGKey(0))
        params, static = eqx.partition(model, eqx.is_array)

        def loss(p):
            u = lambda y: eqx.combine(p, static)(y)[0]
            laplacian = lambda y: fused_derivatives(u, y, second=dict.fromkeys(range(d), 1.0))[2]
            return jnp.mean(jax.vmap(laplacian)(jnp.ones((3, d))) ** 2)

        return len(jax.make_jaxpr(jax.grad(loss))(params).jaxpr.eqns)

    assert size(4) == size(64)
