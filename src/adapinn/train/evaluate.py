"""Relative L2 error against a reference: ||u_theta - u_ref||_2 / ||u_ref||_2 over the
reference points, predicted in chunks so memory stays bounded."""

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
