"""Data parallelism on a one-axis device mesh: points split over "data", everything else
replicated; XLA inserts the collectives (the sharded mean of the loss becomes an all-reduce of
the gradients). No pmap, no hand-written communication.

    mesh = data_mesh()                      # all visible devices (of all processes)
    state = replicate(state, mesh)          # params, optimiser, sampler states on every device
    with jax.set_mesh(mesh):                # while tracing: points split over "data"
        compiled = jax.jit(step, ...).lower(state).compile()

Inside the traced step, the helpers of `adapinn.mesh` (`shard_points`, `map_points`, re-exported
here) split points over the "data" axis; this module builds the mesh and places states on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from adapinn.errors import ConfigError
from adapinn.mesh import DATA, data_shards, map_points, shard_points  # noqa: F401 (re-exported)


def data_mesh(n_devices: int | None = None) -> Mesh:
    """A one-axis mesh ("data",) over `n_devices` devices (default: all, of all processes).

    With several processes, every process contributes the same number of its own devices.
    Raises ConfigError for a count that is not available or not divisible by the processes.
    """
    devices = jax.devices()
    n_proc = jax.process_count()
    n = len(devices) if n_devices is None else n_devices
    if not 1 <= n <= len(devices):
        raise ConfigError(
            f"--devices {n}: this job sees {len(devices)} {devices[0].platform} device(s); "
            f"choose 1 to {len(devices)}"
        )
    if n % n_proc:
        raise ConfigError(
            f"--devices {n} must be a multiple of the {n_proc} processes of this job (each "
            "process uses the same number of its own devices)"
        )
    per_process = n // n_proc
    chosen = [d for p in range(n_proc)
              for d in [d for d in devices if d.process_index == p][:per_process]]
    return Mesh(np.array(chosen), (DATA,), axis_types=(AxisType.Auto,))



def use_mesh(mesh: Mesh | None) -> contextlib.AbstractContextManager:
    """`jax.set_mesh(mesh)`, or a no-op context for `None`."""
    return contextlib.nullcontext() if mesh is None else jax.set_mesh(mesh)



def _put_replicated(x: Any, sharding: NamedSharding) -> Any:
    if not eqx.is_array(x):
        return x
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = _put_replicated(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    # Every process holds the same full value (same seed, same code): assemble the global
    # array from the process-local copies.
    return jax.make_array_from_process_local_data(sharding, np.asarray(x))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place every array leaf of `tree` on all devices of `mesh` (a replicated global array).

    Call it on the initial (or restored) train state before the loop, so that the compiled
    step sees the same input shardings on every call and compiles once.
    """
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(lambda x: _put_replicated(x, sharding), tree)


def shard_global(tree: Any, mesh: Mesh) -> Any:
    """Global arrays whose leading axis is split over "data", from array leaves that hold the
    same full value on every process (e.g. a fixed L-BFGS collocation set made from the seed);
    each device receives only its own rows."""
    split = NamedSharding(mesh, P(DATA))

    def put(x):
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, split, lambda index: host[index])

    return jax.tree.map(put, tree)


def jit_replicated(fn: Callable, mesh: Mesh | None, donate: tuple[int, ...] = ()) -> Any:
    """`jax.jit(fn)` whose inputs and outputs are all replicated over `mesh` (`replicate`), so
    that a compiled step accepts its own output; plain `jax.jit(fn)` for `mesh=None`. The
    arguments numbered in `donate` give their buffers to the outputs."""
    if mesh is None:
        return jax.jit(fn, donate_argnums=donate)
    everywhere = NamedSharding(mesh, P())
    return jax.jit(fn, in_shardings=everywhere, out_shardings=everywhere,
                   donate_argnums=donate)


def check_divisible(sizes: Mapping[str, int], n_devices: int) -> None:
    """Raise ConfigError unless every per-step point count splits evenly over the devices.

    Args:
        sizes: what is split -> how many points, e.g. {"train.batch_size": 1024}.
        n_devices: size of the data axis.
    """
    bad = {k: v for k, v in sizes.items() if v % n_devices}
    if bad:
        lines = [f"{k}={v} (nearest multiples: {v // n_devices * n_devices or n_devices}, "
                 f"{(v // n_devices + 1) * n_devices})" for k, v in bad.items()]
        raise ConfigError(
            f"the global batch is split over {n_devices} devices, so it must be divisible by "
            f"{n_devices}: " + "; ".join(lines) + ". Change the batch size or pick another "
            "device count with --devices."
        )


def for_one_process(tree: Any) -> Any:
    """The tree itself when this is the only process (evaluation then runs on the device
    arrays as they are: no host round trip of the model), else `local_copy`."""
    return tree if jax.process_count() == 1 else local_copy(tree)


def local_copy(tree: Any) -> Any:
    """A host (numpy) copy of the array leaves of a replicated tree, for work that only one
    process does (evaluation, plots, checkpoints) and that must not launch a computation that
    the other processes would have to join."""
    return jax.device_get(tree)
