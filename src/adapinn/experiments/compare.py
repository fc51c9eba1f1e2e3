"""Compute-normalised comparison of samplers: one run ("arm") per sampler x weighting x seed,
everything else fixed, on equal step budgets (`train.steps = S`) or equal training-time
budgets (`train.time_budget_s = T`), then one report (`adapinn.experiments.report`).

    adapinn compare burgers --samplers uniform,hardbank:start_step=0,rad --seeds 3 \\
        --budget-seconds 600 --out runs/cmp-burgers

An entry of --samplers / --weightings is a registry name optionally followed by its options,
`name:key=value:key=value` (values parsed as YAML; no commas), so two variants of one sampler
can be compared. Options of the whole comparison (`--set`) apply to every arm after the arm's
sampler and weighting names, before the arm's own options.

Rules that keep the arms comparable and the report filled in:
- The L-BFGS finish is off in every arm (`train.lbfgs_steps=0`) unless the command sets it,
  `--set train.lbfgs_steps=N`; then the report says so (a time budget then includes it).
- Equal-steps budgets fit `train.eval_every` (about 10 evaluations; a run also evaluates at
  its last step) and `train.checkpoint_every` (about 4) to the budget, so the rel. L2 columns
  at 1/4, 1/2, 3/4 of it exist, unless the command sets them with --set (`fit_cadences`).
- A sampler or weighting cadence longer than a step budget (`refresh_every`, `start_step`,
  `every`) is reported as a warning naming the option to lower (`budget_warnings`).
- Every arm's config is complete (`registry.complete`): its config.yaml lists every option.

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
from adapinn.train import loggers


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
               budget: Sequence[str], group: str | None = None,
               budget_steps: int | None = None) -> RunConfig:
    """The arm's complete config (`registry.complete`): names first, the L-BFGS finish off,
    then the shared --set, the arm's options, the budget. With `budget_steps` the evaluation
    and checkpoint cadences are fitted to the budget (`fit_cadences`). With `train.loggers`
    on, the arm's tracker group is `group` (the comparison's folder name) unless
    `train.logger_group` is set; its run name is the arm's folder."""
    from adapinn.experiments import registry

    items = [f"sampler.name={arm.sampler.name}",
             f"train.snapshot_points={DEFAULT_SNAPSHOT_POINTS}",
             "train.lbfgs_steps=0"]  # Adam only, unless --set train.lbfgs_steps=N
    if arm.weighting is not None:
        items.append(f"weighting.name={arm.weighting.name}")
    items += list(overrides)
    items += [f"sampler.{o}" for o in arm.sampler.options]
    if arm.weighting is not None:
        items += [f"weighting.{o}" for o in arm.weighting.options]
    config = resolve(problem, preset, items + list(budget), arm.seed)
    _check_options(config)
    if budget_steps is not None:
        fit_cadences(config, budget_steps, set_keys(overrides))
    if config.train.loggers and config.train.logger_group is None and group:
        config.train.logger_group = group
    return registry.complete(config)


def set_keys(overrides: Sequence[str]) -> set[str]:
    """The dotted keys the user's --set items name ('train.eval_every=5' -> 'train.eval_every')."""
    return {item.split("=", 1)[0].strip() for item in overrides if "=" in item}


EVALS_PER_BUDGET = 10
"""An equal-steps arm evaluates about this many times (unless train.eval_every is --set)."""


def fit_cadences(config: RunConfig, steps: int, explicit: set[str] = frozenset()) -> None:
    """Fit `train.eval_every` and `train.checkpoint_every` to a budget of `steps` Adam steps,
    in place, so that the rel. L2 at 1/4, 1/2, 3/4 of the budget exist: about
    EVALS_PER_BUDGET evaluations (a run always evaluates at its last step too) and about four
    checkpoints. The new cadences keep the fused chunk (the gcd with `train.scan_steps`)
    large: a multiple of scan_steps, or a divisor of it when the budget is smaller. Keys the
    user set with --set (`explicit`) are left alone."""
    tc = config.train
    if "train.eval_every" not in explicit and tc.eval_every > max(1, steps // EVALS_PER_BUDGET):
        tc.eval_every = _nice_cadence(max(1, steps // EVALS_PER_BUDGET), tc.scan_steps)
    quarter = tc.eval_every * max(1, (steps // 4) // tc.eval_every)
    if "train.checkpoint_every" not in explicit and tc.checkpoint_every > quarter:
        tc.checkpoint_every = quarter


def _nice_cadence(target: int, scan_steps: int) -> int:
    """The largest cadence <= target that is a multiple of scan_steps or divides it."""
    if target >= scan_steps:
        return target // scan_steps * scan_steps
    return max(d for d in range(1, target + 1) if scan_steps % d == 0)


CADENCES = {
    "sampler": {"refresh_every": "never refreshes its points",
                "start_step": "never starts drawing from its bank"},
    "weighting": {"every": "never updates its weights"},
}
"""Options (in steps) that do nothing when they exceed a step budget, and what that means."""


def budget_warnings(p: Plan) -> list[str]:
    """Lines that warn about an equal-steps budget shorter than an arm's sampler or weighting
    cadence (e.g. RAD's refresh_every=1000 on 500 steps: RAD trains on its first set only),
    naming the option to lower. One line per group and option (seeds share their config)."""
    if p.budget_steps is None:
        return []
    lines, steps, firsts = [], p.budget_steps, {}
    for arm in p.arms:
        firsts.setdefault(arm.group, arm)
    for arm in firsts.values():
        config = p.configs[arm]
        sections = {"sampler": [config.sampler.options],
                    "weighting": [config.weighting.options,
                                  *[s for s in config.weighting.options.get("schemes") or []
                                    if isinstance(s, dict)]]}
        for section, options_list in sections.items():
            for options in options_list:
                for option, effect in CADENCES[section].items():
                    value = options.get(option)
                    if isinstance(value, int) and not isinstance(value, bool) and value > steps:
                        suggestion = 0 if option == "start_step" else max(1, steps // 10)
                        lines.append(
                            f"warning: {arm.group}: {section}.{option}={value} exceeds the "
                            f"budget of {steps} steps, so it {effect}; lower it (e.g. "
                            f"{option}={suggestion} in the arm's --{section}s entry)")
    return lines


def _check_options(config: RunConfig) -> None:
    """Unknown sampler / weighting names or options fail here, before any arm runs."""
    from adapinn.experiments import registry

    cls = registry.lookup(registry.SAMPLERS, "sampler", config.sampler.name)
    registry.validate_options(cls, "sampler", config.sampler.name, config.sampler.options)
    registry.build_weighting(config)


def plan(problem: str, samplers: str, weightings: str | None = None, seeds: int = 1,
         budget_steps: int | None = None, budget_seconds: float | None = None,
         overrides: Sequence[str] = (), preset: str | None = None,
         group: str | None = None) -> Plan:
    """Resolve every arm's config (a config error, or a tracker of `train.loggers` that is not
    installed, surfaces before anything runs); `group` groups the arms' tracker runs."""
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
    configs = {a: arm_config(problem, a, preset, overrides, budget, group, budget_steps)
               for a in arms}
    loggers.check_available(dict.fromkeys(n for c in configs.values() for n in c.train.loggers))
    return Plan(problem, arms, configs, budget_steps, budget_seconds)


def arm_state(folder: Path, config: RunConfig) -> str:
    """'done' (summary with this config), 'resume' (a run was started here) or 'new'.
    Both configs are compared complete (`registry.complete`; a run saves its config complete,
    an older run may not have)."""
    from adapinn.experiments import registry

    saved = folder / "config.yaml"
    if not saved.exists():
        return "new"
    try:
        same = (registry.complete(validate(load_yaml(saved))).model_dump()
                == registry.complete(config).model_dump())
    except ConfigError:  # not a config of this version: the run's own resume check decides
        same = False
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
    out = Path(out or Path("runs") / f"compare-{Path(problem).stem}")
    p = plan(problem, samplers, weightings, seeds, budget_steps, budget_seconds,
             overrides, preset, group=out.resolve().name)
    p.command = command
    for line in budget_warnings(p):
        echo(line)
    _make_folder(out / ARMS)
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


def _make_folder(path: Path) -> None:
    """mkdir -p, with a ConfigError (not a traceback) when `path` cannot be made."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError, PermissionError) as err:
        raise ConfigError(f"cannot make the comparison folder {str(path.parent)!r} "
                          f"({err.strerror}: {err.filename}); choose another --out") from None


def _tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log, indented (why an arm failed)."""
    text = path.read_text().splitlines()[-lines:] if path.exists() else ["(no log)"]
    return "\n".join("    " + line for line in text)
