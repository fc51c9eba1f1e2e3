"""Laplacians for many input dimensions: exact by Taylor mode, or unbiased random estimates.

All of them push truncated Taylor series through `u` (`fused.taylor_streams`, Taylor mode):
the series of `u` along a direction v gives, in one pass, u(x), the directional derivative
J v and the second directional derivative v^T H v. The primal is shared by every direction
under `vmap`, so d directions cost about d first-and-second-order passes and no nested
transposes (the reverse-over-reverse Hessian trace costs d reverse passes of a reverse pass).

- `exact`: Delta u = sum_{i<d} e_i^T H e_i. With the optional `folx` package installed
  (`pip install adapinn[folx]`) by its forward Laplacian (Li et al. 2023, "Forward Laplacian":
  value, gradient and Laplacian pushed through each operation together, the d second-order
  terms summed as they go): 2.3x (d = 10) to 2.7x (d = 100) fewer XLA FLOPs for the training
  gradient of a 4 x 128 tanh MLP than d nested jvps or d Taylor jets, which cost the same
  (`benchmarks/operators.py`). Without folx, or for a function folx cannot trace, by d
  nested jvps (`derivatives.nested_laplacian`), which cost what the d Taylor jets of
  `taylor_laplacian` cost.
- `stde`: sparse stochastic Taylor derivative estimator (Shi et al., NeurIPS 2024, "Stochastic
  Taylor Derivative Estimator"): indices i_1..i_J drawn uniformly with replacement,
  Delta u ~ (d / J) sum_j d2u/dx_{i_j}^2; unbiased, E = Delta u. J = `samples`. As STDE
  does, the sampled axes are gathered from the first layer's weight, never multiplied in as
  one-hot tangents (`fused.axis_taylor_streams`): the cost of a sample does not grow with d
  beyond that gather.
- `hte`: Hutchinson's trace estimator by Taylor mode (Hutchinson 1989; HTE in Hu et al. 2024,
  "Hutchinson trace estimation for high-dimensional and high-order PDEs"): v_j Rademacher,
  Delta u ~ (1 / J) sum_j v_j^T H v_j; unbiased since E[v v^T] = I.

`third_derivatives(u, x)` gives the diagonal d3u/dx_i^3 of every axis by order-3 jets (the
dispersive operator sum_i d3u/dx_i^3).

A residual uses one through `laplacian_operator(method, samples)` and declares a keyword
`key` to receive a random key per point and step (`Problem.residuals`); the exact operator
ignores it, so the residual code does not change with the method.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.experimental import jet

from adapinn.problems.derivatives import laplacian
from adapinn.problems.fused import axis_taylor_streams, taylor_streams

PointFunction = Callable[[Array], Array]
METHODS = ("exact", "stde", "hte")


def taylor2(u: PointFunction, x: Array, v: Array) -> tuple[Array, Array, Array]:
    """(u(x), J v, v^T H v): the second-order Taylor streams of `u` at `x` along `v`, by
    `fused.taylor_streams` (jet's series without its products of weights by zero series:
    the same numbers, fewer FLOPs)."""
    value, firsts, second = taylor_streams(u, x, v[None], (1.0,))
    return value, firsts[0], second


def directional_second(u: PointFunction, x: Array, directions: Array) -> tuple[Array, Array]:
    """(u(x), v_j^T H v_j for each row v_j of `directions`), the primal shared."""
    seconds = jax.vmap(lambda v: taylor2(u, x, v)[2])(directions)
    return u(x), seconds


def taylor_laplacian(u: PointFunction, x: Array) -> tuple[Array, Array]:
    """(u(x), sum_i d2u/dx_i^2) by d second-order jets along the axes."""
    value, seconds = directional_second(u, x, jnp.eye(x.shape[0], dtype=x.dtype))
    return value, jnp.sum(seconds, axis=0)


def exact_laplacian(u: PointFunction, x: Array) -> tuple[Array, Array]:
    """(u(x), Delta u(x)): folx's forward Laplacian when installed, else d nested jvps
    (`adapinn.problems.derivatives.laplacian`)."""
    return laplacian(u, x)


def stde_laplacian(u: PointFunction, x: Array, key: Array, samples: int) -> tuple[Array, Array]:
    """(u(x), (d / J) sum_j d2u/dx_{i_j}^2) with i_j ~ U{0..d-1} iid (STDE, module docstring)."""
    d = x.shape[0]
    axes = jax.random.randint(key, (samples,), 0, d)
    # one axis jet per sample, the primal shared; no one-hot tangent is built: the first
    # dense layer gathers the sampled rows of its weight (`fused.AxisTangent`)
    seconds = jax.vmap(lambda i: axis_taylor_streams(u, x, i[None], (1.0,))[2])(axes)
    return u(x), d * jnp.mean(seconds, axis=0)


def hte_laplacian(u: PointFunction, x: Array, key: Array, samples: int) -> tuple[Array, Array]:
    """(u(x), (1 / J) sum_j v_j^T H v_j) with Rademacher v_j (HTE, module docstring)."""
    probes = jax.random.rademacher(key, (samples, x.shape[0]), dtype=x.dtype)
    value, seconds = directional_second(u, x, probes)
    return value, jnp.mean(seconds, axis=0)


def third_derivatives(u: PointFunction, x: Array, axes: tuple[int, ...] | None = None
                      ) -> tuple[Array, Array]:
    """(u(x), d3u/dx_i^3 for i in `axes` (all by default), stacked on the first axis)."""
    axes = tuple(range(x.shape[0])) if axes is None else axes
    basis = jnp.eye(x.shape[0], dtype=x.dtype)[jnp.asarray(axes)]

    def third(v):
        zero = jnp.zeros_like(v)
        return jet.jet(u, (x,), ((v, zero, zero),))[1][2]

    return u(x), jax.vmap(third)(basis)


class LaplacianOperator(eqx.Module):
    """`op(u, x, key=None) -> (u(x), Delta u or its estimate)`; `method` in METHODS and
    `samples` = J for the estimators. Without a key (evaluation, scoring, L-BFGS) an estimator
    uses the fixed key 0, so the same point gets the same estimate."""

    method: str = eqx.field(static=True, default="exact")
    samples: int = eqx.field(static=True, default=16)

    def __check_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown operator {self.method!r}; valid: {', '.join(METHODS)}")
        if self.samples < 1:
            raise ValueError(f"operator_samples must be >= 1, got {self.samples}")

    @property
    def stochastic(self) -> bool:
        return self.method != "exact"

    def __call__(self, u: PointFunction, x: Array, key: Array | None = None
                 ) -> tuple[Array, Array]:
        if self.method == "exact":
            return exact_laplacian(u, x)
        key = jax.random.key(0) if key is None else key
        estimate = stde_laplacian if self.method == "stde" else hte_laplacian
        return estimate(u, x, key, self.samples)


def laplacian_operator(method: str = "exact", samples: int = 16) -> LaplacianOperator:
    """The Laplacian of `problem.operator` / `problem.operator_samples` (module docstring)."""
    return LaplacianOperator(method, samples)
