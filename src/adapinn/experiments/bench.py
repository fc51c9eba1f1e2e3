"""`adapinn bench pinnacle`: PINNacle's cases (Hao et al., NeurIPS 2024 D&B, arXiv 2306.08827)
run under one protocol, against PINNacle's published L2RE.

    adapinn bench pinnacle --cases Burgers1d-C,Poisson2d-C --protocol pinnacle --seeds 3 \\
        --out runs/bench-pinnacle

Protocols (what every case's run is):
- `pinnacle`: PINNacle's own setting, the reproduction: a 5 x 100 tanh MLP (Glorot normal),
  Adam with a constant lr 1e-3, 20,000 full-batch steps on fixed Sobol sets of 8192 interior
  points and 2048 points per boundary / initial condition (times the case's multiplier, 4 for
  Heat2d-MS), every loss weight 1. PINNacle draws Hammersley points; Sobol is our low-discrepancy
  stand-in (the framework's `fixed` design), an equally space-filling set.
- `default`: the plain `RunConfig()` of the problem at 20,000 Adam steps (what a user gets
  without tuning anything).
- `robust`: the generic `robust` preset (the same settings for every problem,
  `adapinn.experiments.presets.GENERIC_PRESETS`), at most 20,000 optimiser steps.
- `recipe`: the case's packaged config `pinnacle_<case>.yaml`, preset `recipe` (any sampler,
  weighting, network and optimiser of the framework, at most 20,000 optimiser steps, Adam and
  L-BFGS counted together).

Every run is its own folder `OUT/runs/CASE__PROTOCOL__sSEED` and runs in a fresh subprocess, as
the arms of `compare` do (`compare.run_arm`): rerunning the same command skips finished runs
and resumes interrupted ones. `OUT/results.csv` has one row per finished run
(`case,protocol,seed,l2re,steps,train_time_s`) and `OUT/report.md` one line per case and
protocol: PINNacle's vanilla PINN and best method, adapinn's L2RE (mean +- std over seeds, the
relative L2 pooled over all outputs, PINNacle's convention), steps, training time, steps/s and
the run's error plot.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from adapinn.errors import ConfigError
from adapinn.experiments.config import RunConfig, build_config
from adapinn.experiments.presets import resolve

PROTOCOLS = ("pinnacle", "default", "robust", "recipe")
SUITES = ("pinnacle",)
PINNACLE_STEPS = 20_000
RUNS = "runs"
RESULTS_FILE = "results.csv"
REPORT_FILE = "report.md"
PUBLISHED_FILE = "pinnacle_l2re.csv"


def cases() -> dict:
    """PINNacle's cases by PINNacle name ({"Burgers1d-C": PinnacleCase, ...})."""
    from adapinn.problems.pinnacle import CASE_INFO

    return dict(CASE_INFO)


def pinnacle_overrides(multiplier: int) -> list[str]:
    """The config items of PINNacle's protocol (module docstring)."""
    n_pde, n_cond = 8192 * multiplier, 2048 * multiplier
    return ["network.name=mlp", "network.width=100", "network.depth=5",
            "network.activation=tanh", "network.fourier_features=0", "network.periodic=false",
            "network.factorized=false", "network.dtype=float32",
            "sampler.name=fixed", f"sampler.size={n_pde}", "sampler.design=sobol",
            "weighting.name=fixed", "aggregator.name=sum",
            f"train.batch_size={n_pde}", f"train.condition_batch_size={n_cond}",
            "train.condition_points=fixed",
            "train.lr=1e-3", "train.decay_rate=1.0", "train.warmup_steps=0",
            f"train.steps={PINNACLE_STEPS}", "train.lbfgs_steps=0", "train.grad_clip=null"]


def case_config(case, protocol: str, seed: int, overrides: Sequence[str] = ()) -> RunConfig:
    """The complete run config of one case under one protocol; `overrides` (--set) last."""
    from adapinn.experiments import registry

    base = {"problem": {"name": case.problem}}
    if protocol == "pinnacle":
        items = pinnacle_overrides(case.point_multiplier) + [
            f"train.eval_every={PINNACLE_STEPS // 10}",
            f"train.checkpoint_every={PINNACLE_STEPS // 4}"]
        config = build_config(base, None, items + list(overrides), seed)
    elif protocol == "default":
        config = build_config(base, None, [f"train.steps={PINNACLE_STEPS}", *overrides], seed)
    elif protocol == "robust":
        config = resolve(case.problem, "robust", list(overrides), seed)
    elif protocol == "recipe":
        config = resolve(f"pinnacle_{case.problem.removeprefix('pinnacle_')}", "recipe",
                         list(overrides), seed)
    else:
        raise ConfigError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    return registry.complete(config)


def published() -> dict[str, dict[str, float]]:
    """PINNacle's published mean L2RE {case: {method: value}} (arXiv v2 tables; packaged with
    PINNacle's MIT licence)."""
    path = resources.files("adapinn.problems.pinnacle") / "data" / PUBLISHED_FILE
    table = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            case = row.pop("case")
            family = row.pop("family")
            name = case if family == "High dim" else f"{family}{case}"
            table[name] = {m: float(v) for m, v in row.items() if v.strip()}
    return table


@dataclass(frozen=True)
class BenchRun:
    case: str
    protocol: str
    seed: int

    @property
    def folder(self) -> str:
        return f"{self.case}__{self.protocol}__s{self.seed}"


def select_cases(names: str | None) -> list[str]:
    """The cases asked for (comma list of PINNacle names), all by default."""
    known = cases()
    if not names:
        return list(known)
    asked = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in asked if n not in known]
    if unknown:
        raise ConfigError(f"unknown PINNacle case(s) {', '.join(unknown)}; valid: "
                          f"{', '.join(known)}")
    return asked


def bench(suite: str = "pinnacle", case_names: str | None = None,
          protocol: str = "pinnacle", seeds: int = 1, out: Path | str | None = None,
          overrides: Sequence[str] = (), echo: Callable[[str], None] = print) -> dict:
    """Run (or resume, or skip) every case x seed under `protocol`; write results.csv and
    report.md in `out`. Returns {BenchRun: status}."""
    from adapinn.experiments.compare import _make_folder, _tail, run_arm

    if suite not in SUITES:
        raise ConfigError(f"unknown benchmark suite {suite!r}; valid: {', '.join(SUITES)}")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    out = Path(out or Path("runs") / f"bench-{suite}")
    table = cases()
    runs = [BenchRun(c, protocol, s) for c in select_cases(case_names) for s in range(seeds)]
    configs = {r: case_config(table[r.case], protocol, r.seed, overrides) for r in runs}
    _make_folder(out / RUNS)
    status = {}
    for i, r in enumerate(runs, 1):
        echo(f"[{i}/{len(runs)}] {r.folder} ...")
        status[r] = run_arm(out / RUNS / r.folder, configs[r], out / ".jax_cache")
        echo(f"[{i}/{len(runs)}] {r.folder}: {status[r]}")
        if status[r] == "failed":
            echo(_tail(out / RUNS / r.folder / "run.log"))
    write_results(out)
    echo(f"report: {write_report(out)}")
    return status


def finished(out: Path) -> list[tuple[BenchRun, dict]]:
    """Every finished run under OUT/runs with its summary, in folder order."""
    done = []
    for folder in sorted((out / RUNS).glob("*__*__s*")):
        summary_file = folder / "summary.json"
        if not summary_file.exists():
            continue
        case, protocol, seed = folder.name.rsplit("__", 2)
        done.append((BenchRun(case, protocol, int(seed[1:])),
                     json.loads(summary_file.read_text())))
    return done


def write_results(out: Path) -> Path:
    """OUT/results.csv: case,protocol,seed,l2re,steps,train_time_s (every finished run)."""
    path = out / RESULTS_FILE
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["case", "protocol", "seed", "l2re", "steps", "train_time_s"])
        for r, s in finished(out):
            writer.writerow([r.case, r.protocol, r.seed, f"{s['rel_l2']:.6g}",
                             optimiser_steps(s), f"{s['train_time_s']:.1f}"])
    return path


def optimiser_steps(summary: dict) -> int:
    """Adam steps plus L-BFGS iterations of a run (PINNacle's budget counts both)."""
    return int(summary.get("steps_done", 0)) + int(summary.get("lbfgs_iterations_done") or 0)


def _stat(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{np.mean(values):.3g} ± {np.std(values, ddof=1):.2g}"


def best_published(methods: dict[str, float]) -> tuple[str, float]:
    """(name, L2RE) of PINNacle's best method on a case."""
    name = min(methods, key=methods.get)
    return name, methods[name]


def write_report(out: Path) -> Path:
    """OUT/report.md: one line per case and protocol against PINNacle's published L2RE."""
    table, runs = published(), finished(out)
    groups: dict[tuple[str, str], list[tuple[BenchRun, dict]]] = {}
    for r, s in runs:
        groups.setdefault((r.case, r.protocol), []).append((r, s))
    lines = ["# PINNacle benchmark", "",
             "L2RE: relative L2 error pooled over all outputs at the last step (PINNacle's "
             "convention); PINNacle's figures are the published means of 3 runs (arXiv "
             "2306.08827 v2). Steps count Adam steps and L-BFGS iterations together.", "",
             "| case | protocol | PINNacle PINN | PINNacle best | adapinn L2RE | vs best | seeds "
             "| steps | train time (s) | steps/s | plot |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (case, protocol), members in sorted(groups.items()):
        methods = table.get(case, {})
        vanilla = f"{methods['PINN']:.3g}" if "PINN" in methods else "n/a"
        best_name, best = best_published(methods) if methods else ("n/a", float("nan"))
        l2 = [s["rel_l2"] for _, s in members]
        times = [s["train_time_s"] for _, s in members]
        rates = [s["steps_per_s"] for _, s in members if s.get("steps_per_s")]
        plot = _plot_link(out, members[0][0])
        ratio = f"{np.mean(l2) / best:.2f}x" if methods else "n/a"
        lines.append(
            f"| {case} | {protocol} | {vanilla} | {best_name} {best:.3g} | {_stat(l2)} | "
            f"{ratio} | {len(members)} | {optimiser_steps(members[0][1])} | "
            f"{np.mean(times):.0f} | {np.mean(rates):.1f} | {plot} |"
            if rates else
            f"| {case} | {protocol} | {vanilla} | {best_name} {best:.3g} | {_stat(l2)} | "
            f"{ratio} | {len(members)} | {optimiser_steps(members[0][1])} | "
            f"{np.mean(times):.0f} | n/a | {plot} |")
    if not groups:
        lines.append("| (no finished runs) |||||||||||")
    path = out / REPORT_FILE
    path.write_text("\n".join(lines) + "\n")
    return path


def _plot_link(out: Path, run: BenchRun) -> str:
    """A markdown link to the run's error map (or prediction) plot, relative to OUT."""
    plots = out / RUNS / run.folder / "plots"
    for stem in ("error_maps", "slices", "lines", "prediction", "convergence"):
        found = sorted(plots.glob(f"{stem}*.png"))
        if found:
            return f"[{stem}]({found[0].relative_to(out).as_posix()})"
    return "n/a"
