"""Compute-normalised comparison of samplers: one run ("arm") per sampler x weighting x seed,
everything else fixed, on equal step budgets (`train.steps = S`) or equal training-time
budgets (`train.time_budget_s = T`), then one report (`adapinn.experiments.report`).

    adapinn compare burgers --samplers uniform,hardbank:start_step=0,rad --seeds 3 \\
        --budget-seconds 600 --set train.lbfgs_steps=0 --out runs/cmp-burgers

An entry of --samplers / --weightings is a registry name optionally followed by its options,
`name:key=value:key=value` (values parsed as YAML; no commas), so two variants of one sampler
can be compared. Options of the whole comparison (`--set`) apply to every arm after the arm's
sampler and weighting names, before the arm's own options.

Every arm is its own run folder `OUT/arms/NAME` and runs in a fresh subprocess
(`python -m adapinn.cli run`), so its peak RSS is its own. Rerunning the same command
continues: an arm whose summary.json exists with the same config is skipped, an interrupted
one is resumed from its checkpoint (`--resume`), the others start. The arms share JAX's
persistent compilation cache in OUT/.jax_cache (compile time is not part of the budgets).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from adapinn.experiments import report
from adapinn.experiments.arms import (
    ARMS,
    CACHE,
    DEFAULT_SNAPSHOT_POINTS,
    LOG_FILE,
    SPEC_FILE,
    UNBOUNDED_STEPS,
    Arm,
    Plan,
    Spec,
)
from adapinn.experiments.config import (
    ConfigError,
    RunConfig,
    dump,
    load_yaml,
    validate,
)
from adapinn.experiments.presets import resolve


def split_list(text: str | None) -> list[Spec]:
    """'a,b:k=1' -> [Spec('a'), Spec('b', ('k=1',))]; None or '' -> []."""
    return [Spec.parse(t) for t in (text or "").split(",") if t.strip()]


def budget_overrides(steps: int | None, seconds: float | None) -> list[str]:
    """Config overrides that make every arm spend the same budget."""
    if (steps is None) == (seconds is None):
        raise ConfigError("give exactly one budget: --budget-steps S or --budget-seconds T")
    if steps is not None:
        if steps <= 0:
            raise ConfigError(f"--budget-steps must be positive, got {steps}")
        return [f"train.steps={steps}"]
    if seconds <= 0:
        raise ConfigError(f"--budget-seconds must be positive, got {seconds}")
    return [f"train.time_budget_s={seconds}", f"train.steps={UNBOUNDED_STEPS}"]


def arm_config(problem: str, arm: Arm, preset: str | None, overrides: Sequence[str],
               budget: Sequence[str]) -> RunConfig:
    """The arm's config: names first, then the shared --set, the arm's options, the budget."""
    items = [f"sampler.name={arm.sampler.name}",
             f"train.snapshot_points={DEFAULT_SNAPSHOT_POINTS}"]
    if arm.weighting is not None:
        items.append(f"weighting.name={arm.weighting.name}")
    items += list(overrides)
    items += [f"sampler.{o}" for o in arm.sampler.options]
    if arm.weighting is not None:
        items += [f"weighting.{o}" for o in arm.weighting.options]
    config = resolve(problem, preset, items + list(budget), arm.seed)
    _check_options(config)
    return config


def _check_options(config: RunConfig) -> None:
    """Unknown sampler / weighting names or options fail here, before any arm runs."""
    from adapinn.experiments import registry

    cls = registry.lookup(registry.SAMPLERS, "sampler", config.sampler.name)
    registry.validate_options(cls, "sampler", config.sampler.name, config.sampler.options)
    registry.build_weighting(config)


def plan(problem: str, samplers: str, weightings: str | None = None, seeds: int = 1,
         budget_steps: int | None = None, budget_seconds: float | None = None,
         overrides: Sequence[str] = (), preset: str | None = None) -> Plan:
    """Resolve every arm's config (a config error surfaces before anything runs)."""
    sampler_specs, weighting_specs = split_list(samplers), split_list(weightings)
    if not sampler_specs:
        raise ConfigError("--samplers needs at least one sampler, e.g. uniform,hardbank")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    budget = budget_overrides(budget_steps, budget_seconds)
    arms = [Arm(s, w, seed) for s in sampler_specs for w in (weighting_specs or [None])
            for seed in range(seeds)]
    if len({a.folder for a in arms}) != len(arms):
        raise ConfigError("two arms share a name; list each sampler/weighting variant once")
    configs = {a: arm_config(problem, a, preset, overrides, budget) for a in arms}
    return Plan(problem, arms, configs, budget_steps, budget_seconds)


def arm_state(folder: Path, config: RunConfig) -> str:
    """'done' (summary with this config), 'resume' (a run was started here) or 'new'."""
    saved = folder / "config.yaml"
    if not saved.exists():
        return "new"
    same = validate(load_yaml(saved)).model_dump() == config.model_dump()
    return "done" if same and (folder / "summary.json").exists() else "resume"


def run_arm(folder: Path, config: RunConfig, cache: Path | None = None) -> str:
    """Run (or resume, or skip) one arm in a subprocess; returns skipped|ran|resumed|failed.

    `cache` is JAX's persistent compilation cache for the subprocess (unless the environment
    already sets JAX_COMPILATION_CACHE_DIR): arms that differ only in their seed compile the
    same program, so all but the first load it.
    """
    state = arm_state(folder, config)
    if state == "done":
        return "skipped"
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / SPEC_FILE
    spec.write_text(dump(config))
    cmd = [sys.executable, "-m", "adapinn.cli", "run", str(spec), "--out", str(folder),
           "--no-progress"] + (["--resume"] if state == "resume" else [])
    env = dict(os.environ)
    if cache is not None:
        env.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache))
    with (folder / "run.log").open("a") as log:
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                              check=False).returncode
    if code != 0 or not (folder / "summary.json").exists():
        return "failed"
    return "resumed" if state == "resume" else "ran"


def compare(problem: str, samplers: str, weightings: str | None = None, seeds: int = 1,
            budget_steps: int | None = None, budget_seconds: float | None = None,
            overrides: Sequence[str] = (), preset: str | None = None,
            out: Path | str | None = None, echo: Callable[[str], None] = print,
            command: str = "") -> Plan:
    """Plan, run every arm in turn (resumable), and write OUT/report.md; returns the plan
    with each arm's status."""
    p = plan(problem, samplers, weightings, seeds, budget_steps, budget_seconds,
             overrides, preset)
    p.command = command
    out = Path(out or Path("runs") / f"compare-{Path(problem).stem}")
    (out / ARMS).mkdir(parents=True, exist_ok=True)
    for i, arm in enumerate(p.arms, 1):
        echo(f"[{i}/{len(p.arms)}] {arm.folder} ...")
        p.status[arm] = run_arm(out / ARMS / arm.folder, p.configs[arm], out / CACHE)
        echo(f"[{i}/{len(p.arms)}] {arm.folder}: {p.status[arm]}")
        if p.status[arm] == "failed":
            echo(_tail(out / ARMS / arm.folder / "run.log"))
        with (out / LOG_FILE).open("a") as log:
            log.write(f"{arm.folder}\t{p.status[arm]}\n")
    path = report.write(out, p)
    echo(f"report: {path}")
    return p


def _tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log, indented (why an arm failed)."""
    text = path.read_text().splitlines()[-lines:] if path.exists() else ["(no log)"]
    return "\n".join("    " + line for line in text)
