"""The two-body high-dimensional benchmarks of STDE and SDGD (Shi et al., NeurIPS 2024; Hu et
al. 2024, "Tackling the curse of dimensionality with physics-informed neural networks"), on
the unit ball B of R^d with u = 0 on the sphere:

    twobody_poisson:      Delta u             = f,
    twobody_allen_cahn:   Delta u + u - u^3   = f,
    twobody_sine_gordon:  Delta u + sin(u)    = f,

    exact  u*(x) = (1 - |x|^2) sum_{i=1}^{d-1} c_i sin(y_i + cos(y_{i+1}) + y_{i+1} cos(y_i)),

with c_i ~ N(0, 1) from `seed` and y = x, or y = sqrt(d) x with `scale` (then every argument is
O(1) at any d and the problem stays non-linear; unscaled, at d = 100 the solution is close to
(1 - |x|^2)(a + b.x), a trivial fit). The forcing f is the operator applied to u* by
automatic differentiation, never written by hand: in O(d) through u*'s structure
(`twobody_exact_laplacian`, checked against the generic exact Laplacian in tests).

The boundary condition is built into the model by default (`hard_boundary`), as SDGD and STDE
train: u = (1 - |x|^2) N(x) (`Problem.output_transform`), so only the PDE residual is
trained; `hard_boundary=False` trains N itself with a boundary loss on the sphere.

Points: `RadialBall`, r ~ U(0, 1) times a uniform direction (STDE's protocol); the evaluation
set is 16,384 points of that law drawn once (key 0, `Problem.reference_data`). The Laplacian
of the network is `problem.operator` (exact, stde, hte) with `problem.operator_samples`
(`adapinn.problems.operators`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from adapinn.geometry.ball import RadialBall
from adapinn.problems.base import Condition, Problem
from adapinn.problems.operators import laplacian_operator

REACTIONS: dict[str, Callable] = {
    "poisson": lambda u: 0.0 * u,
    "allen_cahn": lambda u: u - u**3,
    "sine_gordon": jnp.sin,
}


def _pair(a, b):
    """The pair function h(a, b) = sin(a + cos b + b cos a)."""
    return jnp.sin(a + jnp.cos(b) + b * jnp.cos(a))


def _pair_sum(x, c, factor):
    """g(x) = sum_i c_i h(y_i, y_{i+1}), y = factor x: u* without its boundary factor."""
    y = factor * x
    return jnp.sum(jnp.asarray(c, x.dtype) * _pair(y[:-1], y[1:]))


def _coefficients_and_factor(dim: int, seed: int, scale: bool) -> tuple[np.ndarray, float]:
    if dim < 2:
        raise ValueError(f"the two-body problems need dim >= 2, got {dim}")
    return np.random.default_rng(seed).standard_normal(dim - 1), math.sqrt(dim) if scale else 1.0


def twobody_exact(dim: int, seed: int = 0, scale: bool = False) -> Callable:
    """u*(x) of the module docstring for one point x of R^dim."""
    c, factor = _coefficients_and_factor(dim, seed, scale)

    def exact(x):
        return (1.0 - jnp.sum(x**2)) * _pair_sum(x, c, factor)

    return exact


def twobody_exact_laplacian(dim: int, seed: int = 0, scale: bool = False) -> Callable:
    """(u*(x), Delta u*(x)) in O(d) by automatic differentiation of u*'s structure: with
    b = 1 - |x|^2 and g = sum_i c_i h(y_i, y_{i+1}) (y = factor x),

        Delta (b g) = g Delta b + 2 grad b . grad g + b Delta g,

    Delta b = -2d and grad b = -2x; grad g by one reverse pass; Delta g = factor^2 sum_i c_i
    (h_aa + h_bb)(y_i, y_{i+1}), the 2 x 2 Hessians of the pair function h by `jax.hessian`
    (vmapped over the pairs). Every derivative is autodiff; a generic exact Laplacian costs
    O(d^2) per point (about 1 s for 100 points at d = 1000 on 2 cores)."""
    c, factor = _coefficients_and_factor(dim, seed, scale)

    def pair_laplacian(a, b):
        hess = jax.hessian(lambda ab: _pair(ab[0], ab[1]))(jnp.stack([a, b]))
        return hess[0, 0] + hess[1, 1]

    def value_and_laplacian(x):
        y = factor * x
        g_value, g_grad = jax.value_and_grad(_pair_sum)(x, c, factor)
        g_lap = factor**2 * jnp.sum(jnp.asarray(c, x.dtype)
                                    * jax.vmap(pair_laplacian)(y[:-1], y[1:]))
        bump = 1.0 - jnp.sum(x**2)
        value = bump * g_value
        return value, -2.0 * dim * g_value - 4.0 * jnp.dot(x, g_grad) + bump * g_lap

    return value_and_laplacian


def twobody(reaction: str, dim: int = 10, operator: str = "exact", operator_samples: int = 16,
            scale: bool = False, seed: int = 0, hard_boundary: bool = True) -> Problem:
    """Delta u + R(u) = f on the unit ball of R^dim, u = 0 on the sphere (module docstring)."""
    react = REACTIONS[reaction]
    exact = twobody_exact(dim, seed, scale)
    exact_value_and_laplacian = twobody_exact_laplacian(dim, seed, scale)
    lap = laplacian_operator(operator, operator_samples)

    def forcing(x):
        value, exact_lap = exact_value_and_laplacian(x)
        return exact_lap + react(value)

    def pde(u, x, *, key=None):
        value, estimate = lap(u, x, key)
        return estimate + react(value) - forcing(x)

    ball = RadialBall((0.0,) * dim, 1.0)
    conditions = {"pde": Condition(ball, pde)}
    if not hard_boundary:
        conditions["bc"] = Condition(ball.boundary, lambda u, x: u(x))
    return Problem(
        name=f"twobody_{reaction}",
        domain=ball,
        conditions=conditions,
        input_names=tuple(f"x{i}" for i in range(dim)),
        exact=exact,
        output_transform=_vanish_on_sphere if hard_boundary else None,
    )


def _vanish_on_sphere(x, raw):
    """(1 - |x|^2) N(x): zero on the unit sphere."""
    return (1.0 - jnp.sum(x**2)) * raw


def twobody_poisson(dim: int = 10, operator: str = "exact", operator_samples: int = 16,
                    scale: bool = False, seed: int = 0, hard_boundary: bool = True) -> Problem:
    """Delta u = f on the unit ball of R^dim (STDE / SDGD two-body Poisson)."""
    return twobody("poisson", dim, operator, operator_samples, scale, seed, hard_boundary)


def twobody_allen_cahn(dim: int = 10, operator: str = "exact", operator_samples: int = 16,
                       scale: bool = False, seed: int = 0, hard_boundary: bool = True
                       ) -> Problem:
    """Delta u + u - u^3 = f on the unit ball of R^dim (STDE / SDGD two-body Allen-Cahn)."""
    return twobody("allen_cahn", dim, operator, operator_samples, scale, seed, hard_boundary)


def twobody_sine_gordon(dim: int = 10, operator: str = "exact", operator_samples: int = 16,
                        scale: bool = False, seed: int = 0, hard_boundary: bool = True
                        ) -> Problem:
    """Delta u + sin(u) = f on the unit ball of R^dim (STDE / SDGD two-body sine-Gordon)."""
    return twobody("sine_gordon", dim, operator, operator_samples, scale, seed, hard_boundary)


def trivial_baseline(problem: Problem) -> float:
    """Rel. L2 on the evaluation set of the best fit (1 - |x|^2)(a + b.x) (least squares):
    the score any network must beat to have learnt more than the boundary factor."""
    ref = problem.reference_data()
    x, target = np.asarray(ref.points, np.float64), np.asarray(ref.values[:, 0], np.float64)
    bump = 1.0 - np.sum(x**2, axis=1, keepdims=True)
    design = bump * np.hstack([np.ones((x.shape[0], 1)), x])
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    return float(np.linalg.norm(design @ coef - target) / np.linalg.norm(target))


__all__ = ["trivial_baseline", "twobody_allen_cahn", "twobody_exact", "twobody_exact_laplacian",
           "twobody_poisson", "twobody_sine_gordon"]
