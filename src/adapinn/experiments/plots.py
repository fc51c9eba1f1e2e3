"""Run plots: prediction / reference / absolute error maps, and rel. L2 against steps and
against wall-clock. Matplotlib's Agg backend: no display needed."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from adapinn.problems.base import Problem, ReferenceData  # noqa: E402
from adapinn.train.evaluate import predict  # noqa: E402


def error_maps(model, reference: ReferenceData, problem: Problem, path: Path) -> None:
    """Three panels over a 2-D reference grid: prediction, reference, |prediction - reference|."""
    if reference.grid is None or len(reference.grid) != 2:
        return
    a, b = reference.grid
    shape = (len(a), len(b))
    pred = np.asarray(predict(model, reference.points))[:, 0].reshape(shape)
    ref = np.asarray(reference.values)[:, 0].reshape(shape)
    names = problem.input_names or ("x0", "x1")
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True)
    panels = [("prediction", pred, "viridis"), ("reference", ref, "viridis"),
              ("absolute error", np.abs(pred - ref), "magma")]
    for ax, (title, values, cmap) in zip(axes, panels):
        mesh = ax.pcolormesh(a, b, values.T, cmap=cmap, shading="auto")
        fig.colorbar(mesh, ax=ax)
        ax.set(title=title, xlabel=names[0], ylabel=names[1])
    fig.savefig(path, dpi=110)
    plt.close(fig)


def convergence(rows: list[dict], path: Path, label: str = "") -> None:
    """rel. L2 against steps and against training wall-clock (log scale)."""
    rows = [r for r in rows if r.get("rel_l2") is not None]
    if not rows:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    steps = [r["step"] for r in rows]
    times = [r["wall_time_s"] for r in rows]
    errors = [r["rel_l2"] for r in rows]
    for ax, xs, xlabel in ((axes[0], steps, "step"), (axes[1], times, "training time [s]")):
        ax.semilogy(xs, errors, label=label or None)
        ax.set(xlabel=xlabel, ylabel="relative L2 error")
        ax.grid(True, which="both", alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def weights(rows: list[dict], path: Path) -> None:
    """Each logged loss weight against steps."""
    keys = sorted({k for r in rows for k in r if k.startswith("weight_")})
    if not keys:
        return
    fig, ax = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
    for key in keys:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.semilogy(*zip(*pts), label=key.removeprefix("weight_"))
    ax.set(xlabel="step", ylabel="weight")
    ax.legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_run_plots(out: Path, model, reference, rows, problem) -> None:
    folder = Path(out) / "plots"
    folder.mkdir(exist_ok=True)
    error_maps(model, reference, problem, folder / "error_maps.png")
    convergence(rows, folder / "convergence.png")
    weights(rows, folder / "weights.png")
