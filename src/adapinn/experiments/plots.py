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


def _row_height(width_span: float, height_span: float, panel_width: float = 4.4) -> float:
    """Figure height per row of equal-aspect maps: the map's own shape plus title and labels
    (a 5:1 channel gets short rows instead of empty space)."""
    ratio = height_span / max(width_span, 1e-300)
    return min(3.8, panel_width * ratio + 1.3) if 0.05 < ratio < 5 else 3.8


def _aspect(ax, a, b) -> None:
    """Equal aspect for space-space maps whose sides are comparable; free for (t, x) maps."""
    ratio = (b[-1] - b[0]) / max(a[-1] - a[0], 1e-300)
    if 0.2 < ratio < 5:
        ax.set_aspect("equal")


def comparison_panels(pred: np.ndarray, ref: np.ndarray, name: str) -> list[tuple]:
    """(title, values, colour map, (vmin, vmax), colour-bar label) of the three panels of one
    output: prediction and reference on one scale (they compare by eye), |error| from 0."""
    both = (float(min(pred.min(), ref.min())), float(max(pred.max(), ref.max())))
    err = np.abs(pred - ref)
    return [(f"prediction {name}", pred, "viridis", both, name),
            (f"reference {name}", ref, "viridis", both, name),
            (f"|error| of {name}", err, "magma", (0.0, float(err.max())), f"|{name} error|")]


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
    span = pts.max(axis=0) - pts.min(axis=0)
    fig = new_figure((14, _row_height(span[0], span[1]) * len(outputs)))
    axes = np.atleast_2d(fig.subplots(len(outputs), 3))
    for row, name in enumerate(outputs):
        panels = comparison_panels(pred_all[:, row], ref_all[:, row], name)
        for ax, (title, values, cmap, (lo, hi), label) in zip(axes[row], panels):
            mesh = ax.tripcolor(tri, values, cmap=cmap, vmin=lo, vmax=hi, shading="gouraud")
            fig.colorbar(mesh, ax=ax, label=label, shrink=0.9)
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
        panels = comparison_panels(pred_all[:, row].reshape(shape),
                                   ref_all[:, row].reshape(shape), name)
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


def _exact_values(problem: Problem, points) -> np.ndarray | None:
    if problem.exact is None:
        return None
    import jax

    return np.asarray(jax.vmap(problem.exact)(points)).reshape(points.shape[0], -1)


def time_slices(model, problem: Problem, path: Path, n_slices: int = 3,
                resolution: int = 96) -> bool:
    """3-D problems ((t, x, y) or (x, y, z)): maps over axes 1, 2 at `n_slices` values of axis
    0 (first, middle, last), one row per slice: prediction, exact solution (same scale) and
    |error| when `problem.exact` is known, else the prediction only; blank outside the domain.
    Drawn for the first output."""
    if problem.dim != 3:
        return False
    box = problem.domain.bounding_box
    a, b = (np.linspace(box.low[i], box.high[i], resolution) for i in (1, 2))
    plane = np.stack([m.ravel() for m in np.meshgrid(a, b, indexing="ij")], axis=-1)
    levels = np.linspace(box.low[0], box.high[0], n_slices)
    names = problem.input_names or ("x0", "x1", "x2")
    name = problem.outputs[0]
    cols = 3 if problem.exact is not None else 1
    fig = new_figure((4.8 * cols, 3.6 * n_slices))
    axes = np.atleast_2d(fig.subplots(n_slices, cols)).reshape(n_slices, cols)
    for row, level in enumerate(levels):
        pts = jnp.asarray(np.column_stack([np.full(len(plane), level), plane]),
                          jnp.result_type(float))
        inside = np.asarray(problem.domain.contains(pts))
        pred = np.asarray(predict(model, pts)).reshape(len(plane), -1)[:, 0]
        fields = [(f"prediction {name}", pred, "viridis", name)]
        exact = _exact_values(problem, pts)
        if exact is not None:
            err = np.abs(pred - exact[:, 0])
            fields += [(f"exact {name}", exact[:, 0], "viridis", name),
                       (f"|error| of {name}", err, "magma", f"|{name} error|")]
        both = (float(min(f[1][inside].min() for f in fields[:2])),
                float(max(f[1][inside].max() for f in fields[:2]))) if inside.any() else (0, 1)
        for col, (title, values, cmap, label) in enumerate(fields):
            shown = np.where(inside, values, np.nan).reshape(len(a), len(b))
            limits = both if cmap == "viridis" else (0.0, float(np.nanmax(shown)))
            _panel(fig, axes[row, col], a, b, shown, f"{title}, {names[0]} = {level:.3g}",
                   (names[1], names[2]), cmap, limits, label)
            _aspect(axes[row, col], a, b)
    fig.savefig(path, dpi=110)
    return True


def line_profiles(model, problem: Problem, path: Path, n: int = 400) -> bool:
    """1-D problems: prediction and exact solution over the interval. d > 3 (and d = 3
    without slices): along the bounding box's diagonal and along each of the first three axes
    through the centre, prediction and exact solution against the arc parameter. Points
    outside the domain are left out. Every output; needs nothing but the model (the exact
    curve when `problem.exact` is known)."""
    box = problem.domain.bounding_box
    low, high = np.asarray(box.low, float), np.asarray(box.high, float)
    centre = (low + high) / 2
    s = np.linspace(0.0, 1.0, n)
    names = problem.input_names or tuple(f"x{i}" for i in range(problem.dim))
    if problem.dim == 1:
        lines = [(names[0], low + s[:, None] * (high - low))]
    else:
        lines = [("diagonal, low -> high corner", low + s[:, None] * (high - low))]
        for axis in range(min(problem.dim, 3)):
            pts = np.tile(centre, (n, 1))
            pts[:, axis] = low[axis] + s * (high[axis] - low[axis])
            lines.append((f"{names[axis]} through the centre", pts))
    outputs = problem.outputs
    fig = new_figure((4.6 * len(lines), 3.4 * len(outputs)))
    axes = np.atleast_2d(fig.subplots(len(outputs), len(lines))).reshape(len(outputs),
                                                                         len(lines))
    for col, (title, pts) in enumerate(lines):
        pts = jnp.asarray(pts, jnp.result_type(float))
        inside = np.asarray(problem.domain.contains(pts))
        pred = np.asarray(predict(model, pts)).reshape(n, -1)
        exact = _exact_values(problem, pts)
        x = np.asarray(pts[:, 0]) if problem.dim == 1 else s
        for row, name in enumerate(outputs):
            ax = axes[row, col]
            ax.plot(x[inside], pred[inside, row], label="prediction")
            if exact is not None:
                ax.plot(x[inside], exact[inside, row], "--", label="exact")
            ax.set(title=title, xlabel=names[0] if problem.dim == 1 else
                   "position along the line (0 to 1)", ylabel=name)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
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


def parameters(rows: list[dict], problem: Problem, path: Path) -> bool:
    """Each unknown coefficient of an inverse problem against steps, with its true value
    (dashed) when known; one panel per coefficient."""
    declared = problem.declared_parameters
    names = [n for n in declared if any(f"param_{n}" in r for r in rows)]
    if not names:
        return False
    fig = new_figure((5.0 * len(names), 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    for ax, name in zip(axes, names):
        pts = [(r["step"], r[f"param_{name}"]) for r in rows if f"param_{name}" in r]
        ax.plot(*zip(*pts), marker="o" if len(pts) < 20 else None, label="estimate")
        if declared[name].true is not None:
            ax.axhline(declared[name].true, color="black", linestyle="--", label="true value")
        ax.set(xlabel="step", ylabel=name, title=f"unknown coefficient {name}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    return True


def write_run_plots(out: Path, model, reference, rows, problem) -> list[str]:
    """`out/plots/`: the solution plot that fits the problem's dimension, then
    convergence.png (rows with rel_l2), losses.png, weights.png (rows with weight_* keys),
    parameters.png (an inverse problem's coefficients against steps).

    Solution plot: 2-D, error_maps.png (reference on a grid or on scattered points) or
    prediction.png (no reference); 3-D, slices.png (`time_slices`: along the first axis,
    with the exact solution when known); 1-D and d > 3, lines.png (`line_profiles`). A plot
    without its data is skipped; the reasons are returned (fit logs them)."""
    folder = Path(out) / "plots"
    folder.mkdir(exist_ok=True)
    skipped = []
    if problem.dim == 2:
        if reference is not None:
            if not error_maps(model, reference, problem, folder / "error_maps.png"):
                skipped.append("error_maps.png: the reference has fewer than 3 points")
        else:
            prediction_maps(model, problem, folder / "prediction.png")
    elif problem.dim == 3:
        time_slices(model, problem, folder / "slices.png")
    else:
        line_profiles(model, problem, folder / "lines.png")
    convergence(rows, folder / "convergence.png")
    losses(rows, folder / "losses.png")
    weights(rows, folder / "weights.png")
    parameters(rows, problem, folder / "parameters.png")
    return skipped
