"""Run records: the run folder, metrics.jsonl, summary.json and resource readings."""

from __future__ import annotations

import json
import os
import resource
import shutil
from pathlib import Path
from typing import Any

import jax

from adapinn.errors import ConfigError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
OWNED = (CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, "checkpoint.eqx", "checkpoint.json",
         "run.log", "plots", "snapshots", "tensorboard", "wandb")


def row(step: int, phase: str, metrics: dict, lr: float, errors: dict | None,
        times: dict) -> dict:
    """One metrics.jsonl row: step, phase, clocks, the errors (`rel_l2`, per output
    `rel_l2_NAME`, `max_abs_error`; rel_l2 None without a reference), lr, loss, and per-term
    losses and weights (`loss_NAME`, `weight_NAME`)."""
    out: dict[str, Any] = {"step": step, "phase": phase, **times, "rel_l2": None,
                           **(errors or {}), "lr": lr, "loss": float(metrics["loss"])}
    out.update({f"loss_{k}": float(v) for k, v in metrics["terms"].items()})
    out.update({f"weight_{k}": float(v) for k, v in metrics.get("weights", {}).items()})
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_peak_mb() -> float | None:
    """Peak memory in use on the first local device in MiB (GPU / TPU allocators report it;
    None on the CPU, whose peak is `peak_rss_mb`)."""
    stats = jax.local_devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**20


def compiled_temp_mb(compiled) -> float | None:
    """XLA's temporary buffers of a compiled program in MiB (`memory_analysis`), or None."""
    try:
        analysis = compiled.memory_analysis()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    temp = getattr(analysis, "temp_size_in_bytes", None) if analysis is not None else None
    return None if temp is None else temp / 2**20


def check_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber an existing run unless asked, without touching anything (a run checks
    its folder before it is built, and writes nothing until then)."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; pick one")
    has_run = (out / CONFIG_FILE).exists()
    if has_run and not (resume or overwrite):
        raise ConfigError(
            f"output folder {str(out)!r} already holds a run; pass --resume to continue it, "
            "--overwrite to replace it, or choose another --out"
        )
    if resume and not has_run:
        raise ConfigError(f"--resume: {str(out)!r} holds no run to resume")
    _check_writable(out)


def _check_writable(out: Path) -> None:
    """`out` is a folder that can be made and written (a ConfigError, not a traceback)."""
    near = out
    while not near.exists() and near != near.parent:  # the nearest existing ancestor
        near = near.parent
    if not near.is_dir():
        where = "is a file" if near == out else f"lies under the file {str(near)!r}"
        raise ConfigError(f"run folder {str(out)!r} {where}; choose another --out")
    if not os.access(near, os.W_OK | os.X_OK):
        raise ConfigError(f"run folder {str(out)!r} cannot be written (no write permission "
                          f"in {str(near)!r}); choose another --out")


def prepare(out: Path, resume: bool, overwrite: bool) -> None:
    """`check_folder`, then make the folder; with `overwrite`, remove only the files a run
    writes (never anything else the user keeps in the folder)."""
    check_folder(out, resume, overwrite)
    if overwrite:
        for name in OWNED:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _before(row: dict, adam_steps: int, lbfgs_iterations: int) -> bool:
    """The row was logged before a checkpoint of `adam_steps` and `lbfgs_iterations`."""
    if "lbfgs_iteration" in row:  # a row of the L-BFGS finish
        return row["lbfgs_iteration"] <= lbfgs_iterations
    return row["step"] <= adam_steps


class MetricsLog:
    """Append-only metrics.jsonl; on resume, rows logged after the checkpoint are dropped.

    `keep_until` is (Adam steps, L-BFGS iterations) of the checkpoint, or None (a new run)."""

    def __init__(self, path: Path, keep_until: tuple[int, int] | None = None):
        self.path = path
        self.rows: list[dict] = []
        if keep_until is not None and path.exists():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            self.rows = [r for r in rows if _before(r, *keep_until)]
        path.write_text("".join(json.dumps(r) + "\n" for r in self.rows))

    def append(self, row: dict) -> None:
        self.rows.append(row)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    @property
    def best(self) -> dict | None:
        scored = [r for r in self.rows if r.get("rel_l2") is not None]
        return min(scored, key=lambda r: r["rel_l2"]) if scored else None


def write_summary(out: Path, summary: dict) -> None:
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1) + "\n")
