"""Errors against a reference, predicted in chunks so memory stays bounded:

    rel_l2          ||u_theta - u_ref||_F / ||u_ref||_F   over all points and outputs (pooled:
                                                          PINNacle's convention, one norm)
    rel_l2_NAME     ||u_theta,j - u_ref,j||_2 / ||u_ref,j||_2   per output j (when m > 1)
    max_abs_error   max_ij |u_theta,ij - u_ref,ij|
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.problems.base import ReferenceData


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
