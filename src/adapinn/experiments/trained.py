"""Trained models you can use: load a run folder, predict at any points, export a portable
function.

    model = adapinn.load("runs/heat")            # the last checkpoint of the run
    values = model(points)                       # (n, d) -> (n, m), numpy, in batches
    model.export("heat.jaxexport")               # jax.export: runs without adapinn

`load` rebuilds the run from its saved `config.yaml` (the registry's problem, a problem file
`path.py:factory`, or the `problem=` you pass for a problem defined in a script), then reads
`checkpoint.eqx` into it on this process's default device, whatever number of devices trained
it. The exported file is `jax.export`'s serialisation of `x -> model(x)` for any number of
points (a symbolic batch dimension); load it with

    from jax import export
    f = export.deserialize(open("heat.jaxexport", "rb").read())
    values = f.call(points)                      # points (n, d) in the model's dtype
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from adapinn.errors import ConfigError
from adapinn.experiments.config import RunConfig, load_yaml, validate
from adapinn.problems.base import Problem
from adapinn.train import checkpoint, records
from adapinn.train.evaluate import predict

_predict = eqx.filter_jit(predict)


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A trained network with its problem and config: `model(points) -> values`.

    Attributes:
        network: the Equinox network (one point (d,) -> outputs (m,)).
        problem: the problem it was trained on.
        config: the exact run config.
        meta: the checkpoint's record (adam_steps, lbfgs_iterations, rel_l2, ...).
        run_dir: the run folder it was loaded from (None for a model from `fit`).
    """

    network: eqx.Module
    problem: Problem
    config: RunConfig
    meta: dict = dataclasses.field(default_factory=dict)
    run_dir: Path | None = None

    @property
    def dim(self) -> int:
        return self.problem.dim

    @property
    def n_outputs(self) -> int:
        return self.problem.n_outputs

    @property
    def dtype(self) -> Any:
        return jnp.float64 if self.config.network.dtype == "float64" else jnp.float32

    def _precision(self):
        return jax.enable_x64(True) if self.dtype == jnp.float64 else contextlib.nullcontext()

    def points_of(self, points: Any) -> np.ndarray:
        """`points` as an (n, d) array of this model's dtype, or a ValueError saying why not."""
        x = np.asarray(points, dtype=np.float64 if self.dtype == jnp.float64 else np.float32)
        if x.ndim == 1 and x.shape[0] == self.dim:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.dim:
            names = ", ".join(self.problem.input_names) or f"{self.dim} coordinates"
            raise ValueError(
                f"points of shape {x.shape}: the model of problem {self.problem.name!r} takes "
                f"(n, {self.dim}) points ({names})"
            )
        if not np.all(np.isfinite(x)):
            row = int(np.argwhere(~np.isfinite(x))[0, 0])
            raise ValueError(f"points: row {row} is not finite ({x[row].tolist()})")
        return x

    def __call__(self, points: Any, chunk: int = 8192) -> np.ndarray:
        """Outputs (n, m) at `points` (n, d) (or one point (d,)), `chunk` points at a time."""
        x = self.points_of(points)
        if x.shape[0] == 0:
            return np.zeros((0, self.n_outputs), x.dtype)
        with self._precision():
            return np.asarray(_predict(self.network, jnp.asarray(x), chunk))

    def export(self, path: str | Path) -> Path:
        """Write `jax.export`'s serialisation of `x -> model(x)` for (n, d) points, n symbolic
        (see the module docstring for loading it)."""
        from jax import export

        network = self.network
        with self._precision():
            spec = jax.ShapeDtypeStruct(export.symbolic_shape(f"n, {self.dim}"), self.dtype)
            exported = export.export(jax.jit(lambda x: jax.vmap(network)(x)))(spec)
            data = exported.serialize()
        path = Path(path)
        path.write_bytes(data)
        return path


def load(run_dir: str | Path, problem: Problem | None = None) -> TrainedModel:
    """The trained model of a run folder (its last checkpoint).

    Args:
        run_dir: a folder written by `adapinn run` / `fit`.
        problem: the `Problem` object, for a run of a problem defined in a script (`fit(...,
            problem=...)`); registry and file problems are rebuilt from the config.

    Raises:
        FileNotFoundError: no config.yaml or no checkpoint in the folder.
        ConfigError: the saved config no longer builds.
    """
    from adapinn.experiments import registry
    from adapinn.experiments.build import build

    run_dir = Path(run_dir)
    config_file = run_dir / records.CONFIG_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run folder: no {records.CONFIG_FILE}")
    if not checkpoint.exists(run_dir):
        raise FileNotFoundError(
            f"{str(run_dir)!r} holds no checkpoint ({checkpoint.STATE_FILE}): the run stopped "
            "before its first one; resume it with `adapinn run ... --resume`")
    config = validate(load_yaml(config_file))
    if problem is None and registry.is_user_problem(config.problem.name):
        raise ConfigError(
            f"the run in {str(run_dir)!r} trained problem {config.problem.name!r}, defined in a "
            "script: pass it, `adapinn.load(run_dir, problem=...)`")
    x64 = config.network.dtype == "float64"
    with jax.enable_x64(True) if x64 else contextlib.nullcontext():
        run = build(config, with_reference=False, problem=problem)
        state, meta, _ = checkpoint.load(run_dir, run.state)
    return TrainedModel(state.model, run.problem, config, meta, run_dir)
