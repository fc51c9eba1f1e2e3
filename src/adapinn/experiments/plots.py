"""Run plots: prediction / reference / absolute error maps, and rel. L2 against steps and
against wall-clock.

Figures are `matplotlib.figure.Figure` objects drawn on their own Agg canvas (`new_figure`):
no display needed, and neither pyplot nor `matplotlib.use` is touched, so importing this module
(or `report`) leaves the user's backend (e.g. a notebook's inline one) as it was. See
Matplotlib's "Embedding in a web application server" example (matplotlib.org), which draws
with `Figure` for the same reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from adapinn.problems.base import Problem, ReferenceData
from adapinn.train.evaluate import predict


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A constrained-layout `Figure` on its own `FigureCanvasAgg` (not registered with pyplot,
    so nothing to close: it is freed with its last reference)."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def error_maps(model, reference: ReferenceData, problem: Problem, path: Path) -> None:
    """Three panels over a 2-D reference grid: prediction, reference (one colour scale for
    both, so they compare by eye), |prediction - reference| (from 0)."""
    if reference.grid is None or len(reference.grid) != 2:
        return
    a, b = reference.grid
    shape = (len(a), len(b))
    pred = np.asarray(predict(model, reference.points))[:, 0].reshape(shape)
    ref = np.asarray(reference.values)[:, 0].reshape(shape)
    names = problem.input_names or ("x0", "x1")
    fig = new_figure((14, 3.8))
    axes = fig.subplots(1, 3)
    both = (float(min(pred.min(), ref.min())), float(max(pred.max(), ref.max())))
    err = np.abs(pred - ref)
    panels = [("prediction", pred, "viridis", both), ("reference", ref, "viridis", both),
              ("absolute error", err, "magma", (0.0, float(err.max())))]
    for ax, (title, values, cmap, (lo, hi)) in zip(axes, panels):  # one scale for u and u_ref
        mesh = ax.pcolormesh(a, b, values.T, cmap=cmap, shading="auto", vmin=lo, vmax=hi)
        fig.colorbar(mesh, ax=ax)
        ax.set(title=title, xlabel=names[0], ylabel=names[1])
    fig.savefig(path, dpi=110)


def convergence(rows: list[dict], path: Path, label: str = "") -> None:
    """rel. L2 against steps and against training wall-clock (log scale)."""
    rows = [r for r in rows if r.get("rel_l2") is not None]
    if not rows:
        return
    fig = new_figure((11, 3.8))
    axes = fig.subplots(1, 2)
    steps = [r["step"] for r in rows]
    times = [r["wall_time_s"] for r in rows]
    errors = [r["rel_l2"] for r in rows]
    for ax, xs, xlabel in ((axes[0], steps, "step"), (axes[1], times, "training time [s]")):
        ax.semilogy(xs, errors, label=label or None)
        ax.set(xlabel=xlabel, ylabel="relative L2 error")
        ax.grid(True, which="both", alpha=0.3)
    fig.savefig(path, dpi=110)


def weights(rows: list[dict], path: Path) -> None:
    """Each logged loss weight against steps."""
    keys = sorted({k for r in rows for k in r if k.startswith("weight_")})
    if not keys:
        return
    fig = new_figure((6, 3.8))
    ax = fig.subplots()
    for key in keys:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.semilogy(*zip(*pts), label=key.removeprefix("weight_"))
    ax.set(xlabel="step", ylabel="weight")
    ax.legend()
    fig.savefig(path, dpi=110)


def write_run_plots(out: Path, model, reference, rows, problem) -> None:
    """`out/plots/`: error_maps.png (2-D grid reference only), convergence.png (rows with
    rel_l2), weights.png (rows with weight_* keys); a plot without its data is skipped."""
    folder = Path(out) / "plots"
    folder.mkdir(exist_ok=True)
    error_maps(model, reference, problem, folder / "error_maps.png")
    convergence(rows, folder / "convergence.png")
    weights(rows, folder / "weights.png")
