"""Where a sampler puts its points: at each evaluation (when `train.snapshot_points > 0`) a run
saves a random subset of one freshly drawn "pde" batch, with its loss weights, and the
absolute error of the model on a coarse (at most 64 x 64) subgrid of the reference, as
`snapshots/points_STEP.npz`. Drawing uses a key folded from the state's key, so training is
unaffected. `adapinn.experiments.compare` plots them over the error map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax import Array

from adapinn.samplers.base import AbstractSampler, Batch
from adapinn.train.evaluate import predict

FOLDER = "snapshots"
MAX_AXIS = 64


@eqx.filter_jit
def _draw(sampler: AbstractSampler, state: Any, key: Array, step: Array) -> Batch:
    return sampler.sample(state, key, step)


def save(out: Path, run: Any, state: Any, step: int, n_points: int) -> Path:
    """Write `snapshots/points_{step:08d}.npz` for the run's "pde" sampler.

    Args:
        out: run folder.
        run: the `adapinn.experiments.build.Run` (trainer, problem, reference).
        state: the current `TrainState` (host copy is fine).
        step: the global step (used in the file name and as the subset seed).
        n_points: at most this many points are kept.

    Returns:
        The file written. Keys: points (n, d), weights (n,), step, input_names, and for a 2-D
        reference: on a grid, axis0, axis1 and error (len(axis0), len(axis1)); on scattered
        points, error_points (k, 2) and error (k,) (at most MAX_AXIS^2 of them).
    """
    sampler = run.trainer.samplers["pde"]
    key = jax.random.fold_in(jax.numpy.asarray(state.key), 0x5EED)
    batch = _draw(sampler, state.sampler_states["pde"], key, jax.numpy.asarray(state.step))
    points, weights = np.asarray(batch.points), np.asarray(batch.weights)
    keep = np.random.default_rng(step).permutation(len(points))[:n_points]
    names = run.problem.input_names or tuple(f"x{i}" for i in range(run.problem.dim))
    data = {"points": points[keep], "weights": weights[keep], "step": np.asarray(step),
            "input_names": np.asarray(names)}
    data.update(_coarse_error(run.reference, state.model))
    folder = Path(out) / FOLDER
    folder.mkdir(exist_ok=True)
    path = folder / f"points_{step:08d}.npz"
    np.savez(path, **data)
    return path


def _coarse_error(reference: Any, model: Any) -> dict[str, np.ndarray]:
    """|u_model - u_ref| (first output) on every k-th node of a 2-D reference grid, or at up
    to MAX_AXIS^2 scattered 2-D reference points; an empty dict otherwise."""
    if reference is None or reference.points.shape[1] != 2:
        return {}
    if reference.grid is None:
        n = reference.points.shape[0]
        pick = np.random.default_rng(0).permutation(n)[:MAX_AXIS**2]
        points = np.asarray(reference.points)[pick]
        values = np.asarray(reference.values).reshape(n, -1)[pick, 0]
        pred = np.asarray(predict(model, jax.numpy.asarray(points)))[:, 0]
        return {"error_points": points, "error": np.abs(pred - values)}
    a, b = reference.grid
    ia = np.arange(0, len(a), max(1, -(-len(a) // MAX_AXIS)))
    ib = np.arange(0, len(b), max(1, -(-len(b) // MAX_AXIS)))
    flat = (ia[:, None] * len(b) + ib[None, :]).ravel()
    points = np.asarray(reference.points)[flat]
    values = np.asarray(reference.values)[flat, 0]
    pred = np.asarray(predict(model, jax.numpy.asarray(points)))[:, 0]
    error = np.abs(pred - values).reshape(len(ia), len(ib))
    return {"axis0": np.asarray(a)[ia], "axis1": np.asarray(b)[ib], "error": error}


def load(run_dir: Path) -> list[dict[str, np.ndarray]]:
    """All snapshots of a run, in step order."""
    files = sorted((Path(run_dir) / FOLDER).glob("points_*.npz"))
    out = []
    for f in files:
        with np.load(f) as data:
            out.append({k: data[k] for k in data.files})
    return out
