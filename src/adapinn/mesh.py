"""What a traced function needs to know about the data mesh: the "data" axis that points are
split over, and two helpers that every layer may call unconditionally (outside a mesh context
they are the plain single-device computation).

Inside a traced step, `shard_points` constrains the leading axis of sampled batches (and of
anything else with one row per point) to the "data" axis, and `map_points` evaluates a per-point
function on a candidate pool in bounded chunks, each chunk split over the devices. Points are
always drawn GLOBALLY from the global key and only then constrained, so the random stream, and
hence the whole run, does not depend on the number of devices. Building meshes and placing
states on them is the trainer's job (`adapinn.train.sharding`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.sharding import PartitionSpec as P

DATA = "data"
"""Name of the mesh axis that batches and candidate pools are split over."""


def data_shards() -> int:
    """Size of the "data" axis of the mesh in context while tracing (1 without a mesh)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or DATA not in mesh.axis_names:
        return 1
    return int(mesh.shape[DATA])


def shard_points(tree: Any) -> Any:
    """Constrain the leading axis of every array leaf to the "data" mesh axis.

    Leaves that are scalars or whose leading size is not divisible by the number of devices
    are left alone (replicated), as is everything outside a mesh context. Use it on anything
    with one row per collocation point: batches, candidate pools, per-point scores.
    """
    n_dev = data_shards()
    if n_dev == 1:
        return tree

    def constrain(x):
        if not eqx.is_array(x) or x.ndim == 0 or x.shape[0] % n_dev:
            return x
        return jax.lax.with_sharding_constraint(x, P(DATA))

    return jax.tree.map(constrain, tree)


def map_points(fn: Callable[[Array], Any], points: Array, chunk: int) -> Any:
    """`fn` (one point (d,) -> pytree) over `points` (n, d) in chunks, split over devices.

    Without a mesh this is `lax.map(fn, points, batch_size=chunk)`. With D devices each chunk
    holds `chunk` points PER DEVICE: the pool (padded with copies of its last point to a
    multiple of D * chunk) is viewed as (D, n_chunks, chunk, d) with D on "data", so device k
    maps its own contiguous block and no point moves between devices. Global reductions over
    the result (top-k, sums, densities) are then ordinary XLA ops on a sharded array.

    Returns:
        The stacked outputs, leading axis n, in the order of `points`.
    """
    n_dev, n = data_shards(), points.shape[0]
    if n_dev == 1 or n == 0:
        return jax.lax.map(fn, points, batch_size=chunk)
    per_dev = min(chunk, -(-n // n_dev))
    n_chunks = -(-n // (n_dev * per_dev))
    total = n_dev * n_chunks * per_dev
    padded = jnp.concatenate([points, jnp.repeat(points[-1:], total - n, axis=0)])
    blocks = jax.lax.with_sharding_constraint(
        padded.reshape(n_dev, n_chunks, per_dev, *points.shape[1:]), P(DATA))
    chunks = jax.lax.with_sharding_constraint(jnp.moveaxis(blocks, 0, 1), P(None, DATA))

    def body(c: Array) -> Any:
        out = jax.vmap(jax.vmap(fn))(jax.lax.with_sharding_constraint(c, P(DATA)))
        return jax.tree.map(lambda y: jax.lax.with_sharding_constraint(y, P(DATA)), out)

    out = jax.lax.map(body, chunks)
    return jax.tree.map(
        lambda y: jnp.moveaxis(y, 1, 0).reshape(total, *y.shape[3:])[:n], out)
