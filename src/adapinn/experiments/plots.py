"""Run plots: prediction / reference / absolute error maps, and rel. L2 against steps and
against wall-clock.

Figures are `matplotlib.figure.Figure` objects drawn on their own Agg canvas (`new_figure`):
no display needed, and neither pyplot nor `matplotlib.use` is touched, so importing this module
(or `report`) leaves the user's backend (e.g. a notebook's inline one) as it was. See
Matplotlib's "Embedding in a web application server" example (matplotlib.org), which draws
with `Figure` for the same reason."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
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


def _panel(fig, ax, a, b, values, title, names, cmap, limits, label) -> None:
    mesh = ax.pcolormesh(a, b, values.T, cmap=cmap, shading="auto", vmin=limits[0],
                         vmax=limits[1])
    fig.colorbar(mesh, ax=ax, label=label)
    ax.set(title=title, xlabel=names[0], ylabel=names[1])


def _aspect(ax, a, b) -> None:
    """Equal aspect for space-space maps whose sides are comparable; free for (t, x) maps."""
    ratio = (b[-1] - b[0]) / max(a[-1] - a[0], 1e-300)
    if 0.2 < ratio < 5:
        ax.set_aspect("equal")


def scattered_error_maps(model, reference: ReferenceData, problem: Problem,
                         path: Path) -> bool:
    """`error_maps` for a 2-D reference on scattered points: a Delaunay triangulation of the
    points, triangles whose centroid is outside the domain masked (holes stay blank)."""
    from matplotlib.tri import Triangulation

    pts = np.asarray(reference.points)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
        return False
    tri = Triangulation(pts[:, 0], pts[:, 1])
    centroids = pts[tri.triangles].mean(axis=1)
    tri.set_mask(~np.asarray(problem.domain.contains(jnp.asarray(centroids))))
    pred_all = np.asarray(predict(model, reference.points)).reshape(len(pts), -1)
    ref_all = np.asarray(reference.values).reshape(len(pts), -1)
    names, outputs = problem.input_names or ("x0", "x1"), problem.outputs
    fig = new_figure((14, 3.8 * len(outputs)))
    axes = np.atleast_2d(fig.subplots(len(outputs), 3))
    for row, name in enumerate(outputs):
        pred, ref = pred_all[:, row], ref_all[:, row]
        both = (float(min(pred.min(), ref.min())), float(max(pred.max(), ref.max())))
        err = np.abs(pred - ref)
        panels = [(f"prediction {name}", pred, "viridis", both, name),
                  (f"reference {name}", ref, "viridis", both, name),
                  (f"|error| of {name}", err, "magma", (0.0, float(err.max())), f"|{name} error|")]
        for ax, (title, values, cmap, (lo, hi), label) in zip(axes[row], panels):
            mesh = ax.tripcolor(tri, values, cmap=cmap, vmin=lo, vmax=hi, shading="gouraud")
            fig.colorbar(mesh, ax=ax, label=label)
            ax.set(title=title, xlabel=names[0], ylabel=names[1], aspect="equal")
    fig.savefig(path, dpi=110)
    return True


def error_maps(model, reference: ReferenceData, problem: Problem, path: Path) -> bool:
    """Per output (one row each): prediction, reference (one colour scale for both, so they
    compare by eye), |prediction - reference| (from 0), over a 2-D reference grid (or
    triangulated scattered points, `scattered_error_maps`). False (and nothing written) for
    other dimensions."""
    if reference.grid is None:
        return scattered_error_maps(model, reference, problem, path)
    if len(reference.grid) != 2:
        return False
    a, b = reference.grid
    shape = (len(a), len(b))
    pred_all = np.asarray(predict(model, reference.points)).reshape(len(a) * len(b), -1)
    ref_all = np.asarray(reference.values).reshape(len(a) * len(b), -1)
    names = problem.input_names or ("x0", "x1")
    outputs = problem.outputs
    fig = new_figure((14, 3.8 * len(outputs)))
    axes = np.atleast_2d(fig.subplots(len(outputs), 3))
    for row, name in enumerate(outputs):
        pred, ref = pred_all[:, row].reshape(shape), ref_all[:, row].reshape(shape)
        both = (float(min(pred.min(), ref.min())), float(max(pred.max(), ref.max())))
        err = np.abs(pred - ref)
        panels = [(f"prediction {name}", pred, "viridis", both, name),
                  (f"reference {name}", ref, "viridis", both, name),
                  (f"|error| of {name}", err, "magma", (0.0, float(err.max())), f"|{name} error|")]
        for ax, (title, values, cmap, limits, label) in zip(axes[row], panels):
            _panel(fig, ax, a, b, values, title, names, cmap, limits, label)
            _aspect(ax, a, b)
    fig.savefig(path, dpi=110)
    return True


def prediction_maps(model, problem: Problem, path: Path, resolution: int = 160) -> bool:
    """Without a reference: each output over a grid of the 2-D domain's bounding box, blank
    outside the domain (holes stay blank). False for other dimensions."""
    if problem.dim != 2:
        return False
    box = problem.domain.bounding_box
    a, b = (np.linspace(lo, hi, resolution) for lo, hi in zip(box.low, box.high))
    grid = np.stack([m.ravel() for m in np.meshgrid(a, b, indexing="ij")], axis=-1)
    points = jnp.asarray(grid, jnp.result_type(float))
    inside = np.asarray(problem.domain.contains(points))
    values = np.asarray(predict(model, points)).reshape(len(grid), -1)
    names, outputs = problem.input_names or ("x0", "x1"), problem.outputs
    fig = new_figure((5.2 * len(outputs), 4.2))
    axes = np.atleast_1d(fig.subplots(1, len(outputs)))
    for ax, (col, name) in zip(axes, enumerate(outputs)):
        field = np.where(inside, values[:, col], np.nan).reshape(len(a), len(b))
        finite = field[np.isfinite(field)]
        limits = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        _panel(fig, ax, a, b, field, f"prediction {name} (no reference)", names, "viridis",
               limits, name)
        _aspect(ax, a, b)
    fig.savefig(path, dpi=110)
    return True


def _lbfgs_start(rows: list[dict]) -> dict | None:
    """Where the first L-BFGS phase begins: {"step": the Adam steps before it, "wall_time_s":
    the training time of the last row before it}; None without an L-BFGS row."""
    first = next((i for i, r in enumerate(rows) if r.get("phase") == "lbfgs"), None)
    if first is None:
        return None
    row = rows[first]
    before = rows[first - 1] if first > 0 else row
    return {"step": row["step"] - row.get("lbfgs_iteration", row.get("lbfgs_iters", 0)),
            "wall_time_s": before.get("wall_time_s", row.get("wall_time_s", 0.0))}


def convergence(rows: list[dict], path: Path, label: str = "") -> bool:
    """rel. L2 against steps and against training wall-clock (log scale), with a dashed line
    where the L-BFGS finish begins. False (nothing written) without rel. L2 rows."""
    rows = [r for r in rows if r.get("rel_l2") is not None]
    if not rows:
        return False
    fig = new_figure((11, 3.8))
    axes = fig.subplots(1, 2)
    fig.suptitle(f"relative L2 error{': ' + label if label else ''}")
    lbfgs = _lbfgs_start(rows)
    errors = [r["rel_l2"] for r in rows]
    for ax, key, xlabel in ((axes[0], "step", "step (Adam steps + L-BFGS iterations)"),
                            (axes[1], "wall_time_s", "training time [s]")):
        ax.semilogy([r[key] for r in rows], errors, marker="o" if len(rows) < 20 else None,
                    label="rel. L2")
        if lbfgs is not None:
            ax.axvline(lbfgs[key], color="grey", linestyle="--", label="L-BFGS starts")
        ax.set(xlabel=xlabel, ylabel="relative L2 error")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    return True


def losses(rows: list[dict], path: Path) -> bool:
    """The total loss and each term's unweighted loss against steps (log scale)."""
    keys = ["loss"] + sorted({k for r in rows for k in r if k.startswith("loss_")})
    series = {k: [(r["step"], r[k]) for r in rows if r.get(k) is not None] for k in keys}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return False
    fig = new_figure((6.5, 3.8))
    ax = fig.subplots()
    for i, (key, pts) in enumerate(series.items()):
        ax.semilogy(*zip(*pts), label="total (weighted)" if key == "loss" else
                    key.removeprefix("loss_"), linestyle=_STYLES[i % len(_STYLES)],
                    marker="o" if len(pts) < 20 else None)
    lbfgs = _lbfgs_start(rows)
    if lbfgs is not None:
        ax.axvline(lbfgs["step"], color="grey", linestyle="--", label="L-BFGS starts")
    ax.set(xlabel="step", ylabel="loss", title="training losses")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    return True


_STYLES = ("-", "--", "-.", ":")


def weights(rows: list[dict], path: Path) -> bool:
    """Each logged loss weight against steps; line styles differ so equal weights stay
    visible (one line on top of another)."""
    keys = sorted({k for r in rows for k in r if k.startswith("weight_")})
    if not keys:
        return False
    fig = new_figure((6, 3.8))
    ax = fig.subplots()
    for i, key in enumerate(keys):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.semilogy(*zip(*pts), label=key.removeprefix("weight_"),
                    linestyle=_STYLES[i % len(_STYLES)], marker="o" if len(pts) < 20 else None)
    ax.set(xlabel="step", ylabel="weight (mean over points)", title="loss weights")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    return True


def write_run_plots(out: Path, model, reference, rows, problem) -> list[str]:
    """`out/plots/`: error_maps.png (a 2-D grid reference) or prediction.png (2-D problem
    without a reference), convergence.png (rows with rel_l2), losses.png, weights.png (rows
    with weight_* keys). A plot without its data is skipped; the names of the skipped maps
    and why are returned (fit logs them)."""
    folder = Path(out) / "plots"
    folder.mkdir(exist_ok=True)
    skipped = []
    if reference is not None:
        if not error_maps(model, reference, problem, folder / "error_maps.png"):
            skipped.append(f"error_maps.png: only drawn for 2-D problems (this one is "
                           f"{problem.dim}-D)")
    elif not prediction_maps(model, problem, folder / "prediction.png"):
        skipped.append(f"prediction.png: only drawn for 2-D problems (this one is "
                       f"{problem.dim}-D)")
    convergence(rows, folder / "convergence.png")
    losses(rows, folder / "losses.png")
    weights(rows, folder / "weights.png")
    return skipped
