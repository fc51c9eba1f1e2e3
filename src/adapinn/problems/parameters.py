"""Unknown PDE coefficients (inverse problems): trainable scalars declared by the problem.

A problem declares `parameters={"Re": Parameter(initial=20.0, transform="softplus", beta=50,
true=40.0)}`; a residual that takes a third argument receives their current values,
`residual(u, x, params)` with `params["Re"]` a scalar. The trainable leaf is the raw value k,
mapped to the coefficient c by

    softplus (seed 004's anchor):  c = beta * softplus(k) = beta * log(1 + e^k)   (c > 0)
    exp:                           c = exp(k)                                    (c > 0)
    none:                          c = k

and k starts at the inverse map of `initial`. The model that trains is `WithParameters(network,
raw)`: it evaluates like the network, and its `raw` leaves are optimised with the network's
(their own learning rate and an optional frozen warm-up: `adapinn.train.optim.adam`).

Sensor data for benchmarks with a known solution: `noisy_sensors(exact, points, noise, seed)`
adds Gaussian noise of standard deviation `sigma_j = noise * std_i(u_j(x_i))` to every
component j (10% noise: noise = 0.1), from its own seed, independent of the network's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

Transform = Literal["softplus", "exp", "none"]


class Parameter(eqx.Module):
    """One unknown scalar coefficient.

    Attributes:
        initial: the initial guess of the coefficient c (not of the raw value).
        transform: softplus (c = beta softplus(k)), exp, or none (module docstring).
        beta: the softplus anchor's scale (seed 004's beta).
        true: the true value when known (benchmarks): logged beside the estimate.
        bound: the Cramer-Rao bound of the sensor design (the smallest standard deviation any
            unbiased estimator of c can have with that noise; `cramer_rao_bound`), when known.
    """

    initial: float = eqx.field(static=True)
    transform: Transform = eqx.field(static=True, default="softplus")
    beta: float = eqx.field(static=True, default=1.0)
    true: float | None = eqx.field(static=True, default=None)
    bound: float | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.transform not in ("softplus", "exp", "none"):
            raise ValueError(f"parameter transform must be softplus, exp or none, got "
                             f"{self.transform!r}")
        if self.transform != "none" and self.initial <= 0:
            raise ValueError(f"a {self.transform} parameter is positive; initial must be > 0, "
                             f"got {self.initial}")
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")

    def value(self, raw: Array) -> Array:
        """c from the raw value k."""
        if self.transform == "softplus":
            return self.beta * jax.nn.softplus(raw)
        if self.transform == "exp":
            return jnp.exp(raw)
        return raw

    def raw_initial(self) -> float:
        """k with value(k) = initial."""
        if self.transform == "softplus":
            y = self.initial / self.beta
            return float(y + np.log(-np.expm1(-y)))  # softplus^-1, stable for large y
        if self.transform == "exp":
            return float(np.log(self.initial))
        return float(self.initial)


class WithParameters(eqx.Module):
    """A network with the trainable raw values of the problem's unknown coefficients."""

    network: eqx.Module
    raw: dict[str, Array]
    declared: dict[str, Parameter] = eqx.field(static=True)

    def __call__(self, x: Array) -> Array:
        return self.network(x)

    def values(self) -> dict[str, Array]:
        """The current coefficients c (scalars)."""
        return {n: self.declared[n].value(k) for n, k in self.raw.items()}


def with_parameters(network: eqx.Module, declared: dict[str, Parameter],
                    dtype=None) -> WithParameters:
    """Wrap `network` with raw values at the declared initial guesses."""
    dtype = dtype or jnp.result_type(float)
    raw = {n: jnp.asarray(p.raw_initial(), dtype) for n, p in declared.items()}
    return WithParameters(network, raw, dict(declared))


def parameter_values(model) -> dict[str, Array]:
    """The coefficients of a model (empty for a plain network)."""
    return model.values() if isinstance(model, WithParameters) else {}


def noisy_sensors(exact: Callable[[Array], Array], points: Array, noise: float,
                  seed: int) -> tuple[Array, Array]:
    """(points, values + N(0, sigma_j^2)) with sigma_j = noise * std of component j over the
    sensors (module docstring); `seed` is the noise's own."""
    points = jnp.asarray(points)
    clean = jax.vmap(exact)(points).reshape(points.shape[0], -1)
    sigma = noise * jnp.std(clean, axis=0)
    eps = jax.random.normal(jax.random.key(seed), clean.shape, clean.dtype)
    return points, clean + sigma * eps


def cramer_rao_bound(observe: Callable[[Array], Array], theta: Array,
                     sigma: Array) -> np.ndarray:
    """Cramer-Rao bound of Gaussian sensors: the standard deviations sqrt(diag(F^-1)) with

        F = J^T diag(1 / sigma^2) J,   J = d observe(theta) / d theta

    where `observe(theta)` (n, k) is the noise-free sensor signal as a function of the
    coefficients theta (p,), and sigma (k,) the noise per component. No unbiased estimator of
    theta from these sensors has a smaller standard deviation (Kay 1993, ch. 3)."""
    theta = jnp.atleast_1d(jnp.asarray(theta))
    jac = jax.jacfwd(lambda t: observe(t).reshape(-1))(theta)  # (n k, p)
    k = jnp.asarray(sigma).shape[0]
    weights = jnp.tile(1.0 / jnp.asarray(sigma) ** 2, jac.shape[0] // k)
    fisher = jac.T @ (weights[:, None] * jac)
    return np.sqrt(np.diag(np.linalg.inv(np.asarray(fisher, np.float64))))
