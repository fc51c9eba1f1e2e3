"""The comparison report: `report.md` with one table row per group (sampler x weighting; mean
and spread over seeds), rel. L2 against steps and against training time for all arms, and
snapshots of where each sampler put its points over the error map at that step.

Columns: rel. L2 at 1/4, 1/2 and 3/4 of the budget (the last evaluation at or before it, in
steps or in training seconds), final and best rel. L2, steps done, training time (Adam +
L-BFGS, compile and evaluation excluded), ms per Adam step, overhead = (s/step) / (s/step of
the uniform arm with the same weighting and seed), peak RSS of the arm's process. Asked for
with `Plan.at_steps` / `Plan.targets`: rel. L2 at given steps, and the training time until
rel. L2 first reached a target (mean over the seeds that reached it, "k/n" when not all did).
Where the runs logged `rank_corr_residual_error` (Spearman rho between |r| and the pointwise
error, `train.evaluate`), a figure draws it against steps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from adapinn.experiments import snapshots
from adapinn.experiments.arms import ARMS, Arm, Plan
from adapinn.experiments.plots import new_figure  # Figure + Agg canvas: the backend is untouched

FRACTIONS = (0.25, 0.5, 0.75)
SNAPSHOT_COLUMNS = 3


@dataclass
class Result:
    """A finished arm: its summary and its metrics rows."""

    arm: Arm
    folder: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def seconds_per_step(self) -> float | None:
        rate = self.summary.get("steps_per_s")
        return 1.0 / rate if rate else None

    def at(self, key: str, limit: float) -> float | None:
        """rel. L2 of the last evaluation with `key` (step or wall_time_s) <= limit."""
        rows = [r for r in self.rows if r.get("rel_l2") is not None and r[key] <= limit]
        return rows[-1]["rel_l2"] if rows else None

    def time_to(self, target: float) -> float | None:
        """Training seconds at the first evaluation with rel. L2 <= target (None if never)."""
        return next((r["wall_time_s"] for r in self.rows
                     if r.get("rel_l2") is not None and r["rel_l2"] <= target), None)


def load(out: Path, plan: Plan) -> list[Result]:
    """Results of the arms that have a summary (failed or missing arms are left out)."""
    results = []
    for arm in plan.arms:
        folder = out / ARMS / arm.folder
        if not (folder / "summary.json").exists():
            continue
        summary = json.loads((folder / "summary.json").read_text())
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        results.append(Result(arm, folder, summary, rows))
    return results


def _stat(values: list[float | None], fmt: str = "{:.3e}") -> str:
    """'mean ± std' over seeds ('mean' for one value, 'n/a' when none)."""
    vals = [v for v in values if v is not None and np.isfinite(v)]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return fmt.format(vals[0])
    return f"{fmt.format(np.mean(vals))} ± {fmt.format(np.std(vals, ddof=1))}"


def _reached(times: list[float | None]) -> str:
    """Mean ± std of the times of the seeds that reached a target, 'k/n' when not all did."""
    cell = _stat(times, "{:.0f}")
    done = sum(t is not None for t in times)
    return cell if done == len(times) else f"{cell} ({done}/{len(times)})"


def _overhead(result: Result, results: list[Result]) -> float | None:
    """(s/step) / (s/step of uniform with the same seed and weighting; for an arm of an
    arms file whose weighting no uniform arm shares, the uniform arm with the config's)."""
    uniform = [r for r in results if r.arm.sampler.label == "uniform"
               and r.arm.seed == result.arm.seed]
    base = ([r for r in uniform if r.arm.weighting == result.arm.weighting]
            or [r for r in uniform if result.arm.name is not None and r.arm.weighting is None])
    if not base or not base[0].seconds_per_step or not result.seconds_per_step:
        return None
    return result.seconds_per_step / base[0].seconds_per_step


def _budget(plan: Plan, results: list[Result]) -> tuple[str, float]:
    """('step', S) or ('wall_time_s', T): the axis and size of the budget (with equal_time,
    the reference arms' mean training time)."""
    if plan.equal_time:
        times = [r.summary["train_time_s"] for r in results
                 if r.arm.group == plan.arms[0].group]
        if times:
            return "wall_time_s", round(float(np.mean(times)))
    if plan.budget_seconds is not None:
        return "wall_time_s", float(plan.budget_seconds)
    if plan.budget_steps is not None:
        return "step", float(plan.budget_steps)
    return "step", float(max((r.summary.get("steps_done", 0) for r in results), default=0))


def table(plan: Plan, results: list[Result]) -> str:
    """The markdown table, one row per group."""
    key, size = _budget(plan, results)
    unit = "s" if key == "wall_time_s" else ""
    marks = [f"{size * f:g}{unit}" for f in FRACTIONS]
    head = (["arm", "seeds"] + [f"rel. L2 @ {m}" for m in marks]
            + [f"rel. L2 @ step {s}" for s in plan.at_steps]
            + [f"time to {t:g} [s]" for t in plan.targets]
            + ["final rel. L2", "best rel. L2", "steps", "train time [s]", "ms/step",
               "overhead vs uniform", "peak RSS [MB]"])
    coefficients = sorted({n for r in results for n in r.summary.get("parameters", {})})
    head += [f"{n} rel. error" for n in coefficients] + [f"{n} CR bound" for n in coefficients]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group in dict.fromkeys(a.group for a in plan.arms):
        rs = [r for r in results if r.arm.group == group]
        if not rs:
            lines.append(f"| {group} | 0 | " + " | ".join(["n/a"] * (len(head) - 2)) + " |")
            continue
        cells = [group, str(len(rs))]
        cells += [_stat([r.at(key, size * f) for r in rs]) for f in FRACTIONS]
        cells += [_stat([r.at("step", s) if r.summary.get("steps_done", 0) >= s else None
                         for r in rs]) for s in plan.at_steps]
        cells += [_reached([r.time_to(t) for r in rs]) for t in plan.targets]
        cells += [_stat([r.summary.get(k) for r in rs]) for k in ("rel_l2", "best_rel_l2")]
        cells += [_stat([r.summary.get("steps_done") for r in rs], "{:.0f}"),
                  _stat([r.summary.get("train_time_s") for r in rs], "{:.1f}"),
                  _stat([1e3 * r.seconds_per_step if r.seconds_per_step else None
                         for r in rs], "{:.2f}"),
                  _stat([_overhead(r, results) for r in rs], "{:.2f}x"),
                  _stat([r.summary.get("peak_rss_mb") for r in rs], "{:.0f}")]
        for field in ("rel_error", "crb_rel"):  # an inverse problem's coefficients
            cells += [_stat([r.summary.get("parameters", {}).get(n, {}).get(field)
                             for r in rs], "{:.2%}") for n in coefficients]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def convergence(results: list[Result], key: str, path: Path) -> None:
    """rel. L2 of every arm against `key` (step or wall_time_s): one colour per group."""
    groups = list(dict.fromkeys(r.arm.group for r in results))
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    fig = new_figure((7, 4.2))
    ax = fig.subplots()
    for r in results:
        rows = [row for row in r.rows if row.get("rel_l2") is not None]
        if not rows:
            continue
        i = groups.index(r.arm.group)
        first = r is next(x for x in results if x.arm.group == r.arm.group)
        ax.semilogy([row[key] for row in rows], [row["rel_l2"] for row in rows],
                    color=colours[i % len(colours)], alpha=0.85,
                    label=r.arm.group if first else None)
    ax.set(xlabel="step" if key == "step" else "training time [s]",
           ylabel="relative L2 error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)


CORRELATION = "rank_corr_residual_error"
SMOOTH = 9
"""The correlation figure draws the running mean over this many evaluations."""


def correlation_figure(results: list[Result], path: Path) -> bool:
    """Spearman rho(|r|, pointwise error) against steps, one colour per group; False (and no
    file) when no run logged it."""
    series = [(r, [(row["step"], row[CORRELATION]) for row in r.rows
                   if row.get(CORRELATION) is not None]) for r in results]
    series = [(r, s) for r, s in series if s]
    if not series:
        return False
    groups = list(dict.fromkeys(r.arm.group for r, _ in series))
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    fig = new_figure((7, 4.2))
    ax = fig.subplots()
    for r, s in series:
        i = groups.index(r.arm.group)
        first = r is next(x for x, _ in series if x.arm.group == r.arm.group)
        steps, rho = np.array(s).T
        window = min(SMOOTH, len(rho))
        smooth = np.convolve(rho, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, color=colours[i % len(colours)], alpha=0.85,
                lw=1.2, label=r.arm.group if first else None)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set(xlabel="step", ylabel="Spearman rho(|residual|, |error|)", ylim=(-1, 1))
    ax.set_title(f"Does the residual point at the error? (evaluation set, running mean of "
                 f"{SMOOTH} evaluations)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    return True


def _pick(snaps: list[dict]) -> list[dict]:
    """Up to SNAPSHOT_COLUMNS snapshots: first, middle, last."""
    if len(snaps) <= SNAPSHOT_COLUMNS:
        return snaps
    idx = np.linspace(0, len(snaps) - 1, SNAPSHOT_COLUMNS).round().astype(int)
    return [snaps[i] for i in idx]


def snapshot_figure(results: list[Result], path: Path) -> str | None:
    """Points of the first seed of each group over |u - u_ref| at the same step (where the
    snapshot has an error map); returns the figure's caption, None when nothing to draw."""
    firsts = list({r.arm.group: r for r in reversed(results)}.values())[::-1]
    panels = [(r, _pick(snapshots.load(r.folder))) for r in firsts]
    panels = [(r, s) for r, s in panels if s]
    if not panels:
        return None
    cols = max(len(s) for _, s in panels)
    fig = new_figure((3.6 * cols, 2.9 * len(panels)))
    axes = fig.subplots(len(panels), cols, squeeze=False)
    for row, (r, snaps) in enumerate(panels):
        for col in range(cols):
            ax = axes[row, col]
            if col >= len(snaps):
                ax.axis("off")
                continue
            _snapshot_panel(fig, ax, snaps[col])
            title = r.arm.group if len(r.arm.group) <= 44 else r.arm.group[:41] + "..."
            ax.set_title(f"{title}, step {int(snaps[col]['step'])}", fontsize=7)
    fig.savefig(path, dpi=100)
    on_error = all("axis0" in s or "error_points" in s for _, snaps in panels for s in snaps)
    where = ("over the absolute error at that step" if on_error else
             "in the plane of the first two inputs (no error map: the reference is not on a "
             "2-D grid)")
    return f"Where the samplers put their points (a drawn batch, subsampled) {where}:"


def _snapshot_panel(fig, ax, snap: dict) -> None:
    """The sampler's points (cyan) over |u - u_ref| (colour bar), axes named."""
    if "axis0" in snap:
        mesh = ax.pcolormesh(snap["axis0"], snap["axis1"], snap["error"].T, cmap="magma",
                             shading="auto")
    elif "error_points" in snap:
        e = snap["error_points"]
        mesh = ax.scatter(e[:, 0], e[:, 1], c=snap["error"], s=4, marker="s", cmap="magma",
                          linewidths=0)
    else:
        mesh = None
    if mesh is not None:
        bar = fig.colorbar(mesh, ax=ax)
        bar.set_label("|u - u_ref|", fontsize=7)
        bar.ax.tick_params(labelsize=6)
    pts = snap["points"]
    if pts.shape[1] >= 2:
        ax.scatter(pts[:, 0], pts[:, 1], s=5, c="cyan", edgecolors="black", linewidths=0.2)
    names = [str(n) for n in snap.get("input_names", ["x0", "x1"])]
    if len(names) >= 2:
        ax.set_xlabel(names[0], fontsize=7)
        ax.set_ylabel(names[1], fontsize=7)
    ax.tick_params(labelsize=7)


def write(out: Path, plan: Plan) -> Path:
    """Write report.md and its figures into `out`; returns the report's path."""
    out = Path(out)
    results = load(out, plan)
    convergence(results, "step", out / "convergence_steps.png")
    convergence(results, "wall_time_s", out / "convergence_time.png")
    snaps_caption = snapshot_figure(results, out / "snapshots.png")
    has_corr = correlation_figure(results, out / "correlation.png")
    path = out / "report.md"
    path.write_text(_markdown(plan, results, snaps_caption, has_corr))
    return path


def _lbfgs_note(plan: Plan) -> str:
    """What the budget covers: Adam only (compare's default), or Adam and an L-BFGS finish
    (asked for with --set train.lbfgs_steps=N)."""
    iterations = sorted({c.train.lbfgs_steps for c in plan.configs.values()})
    if not any(iterations):
        return "Adam only (no L-BFGS finish)."
    n = "/".join(str(i) for i in iterations)
    if plan.budget_seconds is not None:
        return (f"L-BFGS finish on (train.lbfgs_steps={n}): the time budget includes it "
                "(Adam and L-BFGS together).")
    return (f"L-BFGS finish on (train.lbfgs_steps={n}): each arm runs it after its Adam "
            "steps; train time includes it.")


def _markdown(plan: Plan, results: list[Result], snaps_caption: str | None,
              has_corr: bool = False) -> str:
    if plan.equal_time:
        budget = (f"equal training time: {plan.arms[0].group} runs "
                  f"{plan.budget_steps} steps, every other arm its training time (same "
                  "weighting and seed)")
    elif plan.budget_seconds is not None:
        budget = f"equal training time: {plan.budget_seconds:g} s per arm"
    else:
        budget = f"equal steps: {plan.budget_steps} per arm"
    failed = [a.folder for a in plan.arms if plan.status.get(a) == "failed"]
    parts = [f"# Sampler comparison: {plan.problem}", "",
             f"Budget: {budget}. Arms: {len(plan.arms)}, finished: {len(results)}.",
             _lbfgs_note(plan),
             f"Command: `{plan.command}`" if plan.command else "", "",
             table(plan, results), "",
             "Mean ± sample std over seeds. Overhead: seconds per Adam step relative to the "
             "uniform arm (same weighting and seed). Times are wall-clock on a possibly shared "
             "machine; peak RSS is each arm's own process.", "",
             "![rel. L2 vs steps](convergence_steps.png)", "",
             "![rel. L2 vs training time](convergence_time.png)", ""]
    if snaps_caption:
        parts += [snaps_caption, "", "![snapshots](snapshots.png)", ""]
    if has_corr:
        parts += ["Rank correlation between the residual and the error over training (1: the "
                  "largest residuals sit where the error is largest):", "",
                  "![rank correlation](correlation.png)", ""]
    if failed:
        parts += ["Failed arms (see their run.log): " + ", ".join(failed), ""]
    return "\n".join(parts)
