"""Errors against a reference, predicted in chunks so memory stays bounded:

    rel_l2          ||u_theta - u_ref||_F / ||u_ref||_F   over all points and outputs (pooled:
                                                          PINNacle's convention, one norm)
    rel_l2_NAME     ||u_theta,j - u_ref,j||_2 / ||u_ref,j||_2   per output j (when m > 1)
    max_abs_error   max_ij |u_theta,ij - u_ref,ij|

and a diagnostic of seed 000's explanation for the late-stage penalty of residual sampling
(residual magnitude stops tracking the error):

    rank_corr_residual_error   Spearman rho(|r_pde(x_i)|, ||u_theta(x_i) - u_ref(x_i)||) over
                               the evaluation set (at most 4096 points, a fixed random subset)
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.problems.base import Problem, ReferenceData

RANK_CORR_POINTS = 4096
"""Most evaluation points the rank correlation uses (a fixed random subset beyond it)."""


def predict(model: eqx.Module, points: Array, chunk: int = 8192) -> Array:
    """Network outputs (n, m) at `points` (n, d)."""
    return jax.lax.map(model, points, batch_size=chunk)


@eqx.filter_jit
def _relative_l2(model: eqx.Module, points: Array, values: Array) -> Array:
    pred = predict(model, points).reshape(values.shape)
    return jnp.linalg.norm(pred - values) / jnp.linalg.norm(values)


def relative_l2(model: eqx.Module, reference: ReferenceData) -> float:
    """Relative L2 error of the model over the reference set."""
    return float(_relative_l2(model, reference.points, reference.values))


@eqx.filter_jit
def _errors(model: eqx.Module, points: Array, values: Array) -> tuple[Array, Array, Array]:
    pred = predict(model, points).reshape(values.shape)
    diff = pred - values
    pooled = jnp.linalg.norm(diff) / jnp.linalg.norm(values)
    per_output = jnp.linalg.norm(diff, axis=0) / jnp.linalg.norm(values, axis=0)
    return pooled, per_output, jnp.max(jnp.abs(diff))


def errors(model: eqx.Module, reference: ReferenceData,
           output_names: tuple[str, ...] = ()) -> dict[str, float]:
    """{"rel_l2": pooled, "rel_l2_NAME": per output (several outputs only), "max_abs_error"}
    (module docstring); `output_names` name the outputs (default u0, u1, ...)."""
    values = reference.values.reshape(reference.points.shape[0], -1)
    pooled, per_output, max_abs = _errors(model, reference.points, values)
    out = {"rel_l2": float(pooled)}
    if values.shape[1] > 1:
        names = output_names or tuple(f"u{j}" for j in range(values.shape[1]))
        out.update({f"rel_l2_{n}": float(v) for n, v in zip(names, per_output)})
    out["max_abs_error"] = float(max_abs)
    return out


def average_ranks(x: Array) -> Array:
    """0-based ranks of x (n,), ties sharing their average rank (as scipy's "average"):
    rank_i = (#{x_j < x_i} + #{x_j <= x_i} - 1) / 2, by two searches in the sorted array."""
    ordered = jnp.sort(x)
    below = jnp.searchsorted(ordered, x, side="left")
    up_to = jnp.searchsorted(ordered, x, side="right")
    return (below + up_to - 1).astype(jnp.result_type(float)) / 2


def spearman(a: Array, b: Array) -> Array:
    """Spearman's rank correlation of a and b (n,): the Pearson correlation of their average
    ranks, in [-1, 1]; NaN when either is constant or holds a non-finite value."""
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - jnp.mean(ra), rb - jnp.mean(rb)
    den = jnp.sqrt(jnp.sum(ra * ra) * jnp.sum(rb * rb))
    finite = jnp.all(jnp.isfinite(a)) & jnp.all(jnp.isfinite(b))
    rho = jnp.sum(ra * rb) / jnp.where(den > 0, den, 1.0)
    return jnp.where(finite & (den > 0), jnp.clip(rho, -1.0, 1.0), jnp.nan)


@eqx.filter_jit
def _residual_error_rank_corr(model: eqx.Module, problem: Problem, condition: str,
                              points: Array, values: Array, max_points: int) -> Array:
    n = points.shape[0]
    if n > max_points:  # the same subset at every evaluation
        idx = jax.random.choice(jax.random.key(0), n, (max_points,), replace=False)
        points, values = points[idx], values[idx]
    pred = predict(model, points).reshape(values.shape)
    error = jnp.linalg.norm((pred - values).reshape(points.shape[0], -1), axis=-1)

    def residual(x: Array) -> Array:
        return problem.residuals(model, condition, x[None])[0]

    abs_r = jnp.sqrt(jax.lax.map(residual, points, batch_size=1024))
    return spearman(abs_r, error)


def residual_error_correlation(model: eqx.Module, problem: Problem, reference: ReferenceData,
                               condition: str = "pde",
                               max_points: int = RANK_CORR_POINTS) -> float | None:
    """Spearman correlation between |r| of `condition` (the norm over its components) and
    the pointwise error ||u_theta - u_ref|| (the norm over outputs) on the evaluation set,
    subsampled to `max_points` points with a fixed key. 1: the residual ranks the points
    exactly as the error does (residual-guided sampling targets the error); 0: unrelated.

    Returns:
        rho in [-1, 1], or None when the problem has no such condition or rho is undefined
        (a constant field, a non-finite value).
    """
    if condition not in problem.conditions:
        return None
    values = reference.values.reshape(reference.points.shape[0], -1)
    rho = float(_residual_error_rank_corr(model, problem, condition, reference.points, values,
                                          max_points))
    return rho if math.isfinite(rho) else None
