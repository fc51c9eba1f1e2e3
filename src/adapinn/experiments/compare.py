"""Compute-normalised comparison of samplers: one run ("arm") per sampler x weighting x seed,
everything else fixed, on equal step budgets (`train.steps = S`) or equal training-time
budgets (`train.time_budget_s = T`), then one report (`adapinn.experiments.report`).

    adapinn compare burgers --samplers uniform,hardbank:start_step=0,rad --seeds 3 \\
        --budget-seconds 600 --out runs/cmp-burgers

An entry of --samplers / --weightings is a registry name optionally followed by its options,
`name:key=value:key=value` (values parsed as YAML; no commas), so two variants of one sampler
can be compared. Options of the whole comparison (`--set`) apply to every arm after the arm's
sampler and weighting names, before the arm's own options.

Arms that differ in more than one registry entry (e.g. R3 with RBA weights chained to the
config's own) come from a YAML file instead, `--arms FILE` (`load_arms`): a mapping from arm
name to its `sampler` and optional `weighting` sections, each a registry name or a mapping
with `name` and options (lists and nested mappings allowed):

    uniform: {sampler: uniform}
    hardbank_iw: {sampler: {name: hardbank, importance_weights: true}}
    rba: {sampler: r3, weighting: {name: chain, schemes: [{name: causal}, {name: rba}]}}

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

Equal time anchored on a reference (`--budget-steps S --equal-time`, seed 000's protocol): the
first sampler's arms run S steps; every other arm's time budget is the training time of the
first sampler's arm with the same weighting and seed (`train.time_budget_s`, steps
unbounded), read from its summary when the arm starts, so an adaptive sampler buys its
overhead with fewer steps. The first sampler's arms run first.
"""

from __future__ import annotations

import json
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


def _section_spec(arm: str, section: str, value: object) -> Spec:
    """An arms-file section ('uniform' or {name: hardbank, p_max: 0.3}) as a Spec whose
    options are key=JSON (JSON is YAML, so lists and mappings survive the override parser)."""
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ConfigError(f"arm {arm!r}: {section} must be a registry name or a mapping with "
                          f"'name', e.g. {section}: {{name: hardbank, p_max: 0.3}}; got "
                          f"{value!r}")
    options = {k: v for k, v in value.items() if k != "name"}
    return Spec(value["name"], tuple(f"{k}={json.dumps(v)}" for k, v in options.items()))


def load_arms(path: str | Path) -> list[tuple[str, Spec, Spec | None]]:
    """(name, sampler, weighting or None) per arm of an arms file, in the file's order."""
    path = Path(path)
    entries = load_yaml(path, "arms file")
    if not entries:
        raise ConfigError(f"arms file {str(path)!r} must map arm names to sections, e.g. "
                          "'uniform: {sampler: uniform}'")
    arms = []
    for name, body in entries.items():
        if not isinstance(body, dict) or "sampler" not in body or set(body) - {"sampler",
                                                                               "weighting"}:
            raise ConfigError(f"arm {name!r} in {str(path)!r} needs a 'sampler' and at most a "
                              f"'weighting' section; got {body!r}")
        weighting = body.get("weighting")
        arms.append((str(name), _section_spec(name, "sampler", body["sampler"]),
                     None if weighting is None else _section_spec(name, "weighting",
                                                                  weighting)))
    return arms


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


def plan(problem: str, samplers: str | None, weightings: str | None = None, seeds: int = 1,
         budget_steps: int | None = None, budget_seconds: float | None = None,
         overrides: Sequence[str] = (), preset: str | None = None,
         group: str | None = None, equal_time: bool = False,
         at_steps: Sequence[int] = (), targets: Sequence[float] = (),
         arms_file: str | Path | None = None) -> Plan:
    """Resolve every arm's config (a config error, or a tracker of `train.loggers` that is not
    installed, surfaces before anything runs); `group` groups the arms' tracker runs.
    `equal_time`, `at_steps` and `targets`: see `Plan`; `arms_file` replaces `samplers` and
    `weightings` (`load_arms`)."""
    sampler_specs, weighting_specs = split_list(samplers), split_list(weightings)
    if arms_file is not None and (sampler_specs or weighting_specs):
        raise ConfigError("give the arms either as --samplers/--weightings or as --arms FILE")
    if arms_file is None and not sampler_specs:
        raise ConfigError("--samplers needs at least one sampler, e.g. uniform,hardbank")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    budget = budget_overrides(budget_steps, budget_seconds)
    if equal_time and budget_steps is None:
        raise ConfigError("--equal-time needs --budget-steps S: the first sampler's arms run "
                          "S steps and every other arm gets their training time")
    if any(s <= 0 for s in at_steps) or any(t <= 0 for t in targets):
        raise ConfigError("--at-steps and --targets take positive numbers, e.g. "
                          "--at-steps 30000,50000 --targets 1e-3,2e-4")
    if arms_file is not None:
        arms = [Arm(s, w, seed, name) for name, s, w in load_arms(arms_file)
                for seed in range(seeds)]
    else:
        arms = [Arm(s, w, seed) for s in sampler_specs for w in (weighting_specs or [None])
                for seed in range(seeds)]
    if len({a.folder for a in arms}) != len(arms):
        raise ConfigError("two arms share a name; list each sampler/weighting variant once")
    configs = {a: arm_config(problem, a, preset, overrides, budget, group, budget_steps)
               for a in arms}
    loggers.check_available(dict.fromkeys(n for c in configs.values() for n in c.train.loggers))
    return Plan(problem, arms, configs, budget_steps, budget_seconds, equal_time,
                tuple(sorted(at_steps)), tuple(sorted(targets, reverse=True)))


def equal_time_config(config: RunConfig, reference_folder: Path) -> RunConfig | None:
    """`config` with the training time of the finished run in `reference_folder` as its time
    budget and unbounded steps; None when that run has no summary."""
    summary = reference_folder / "summary.json"
    if not summary.exists():
        return None
    seconds = float(json.loads(summary.read_text())["train_time_s"])
    config = config.model_copy(deep=True)
    config.train.time_budget_s = seconds
    config.train.steps = UNBOUNDED_STEPS
    return config


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


def compare(problem: str, samplers: str | None, weightings: str | None = None, seeds: int = 1,
            budget_steps: int | None = None, budget_seconds: float | None = None,
            overrides: Sequence[str] = (), preset: str | None = None,
            out: Path | str | None = None, echo: Callable[[str], None] = print,
            command: str = "", equal_time: bool = False, at_steps: Sequence[int] = (),
            targets: Sequence[float] = (), arms_file: str | Path | None = None) -> Plan:
    """Plan, run every arm in turn (resumable), and write OUT/report.md; returns the plan
    with each arm's status."""
    out = Path(out or Path("runs") / f"compare-{Path(problem).stem}")
    p = plan(problem, samplers, weightings, seeds, budget_steps, budget_seconds,
             overrides, preset, group=out.resolve().name, equal_time=equal_time,
             at_steps=at_steps, targets=targets, arms_file=arms_file)
    p.command = command
    for line in budget_warnings(p):
        echo(line)
    _make_folder(out / ARMS)
    for i, arm in enumerate(p.arms, 1):
        echo(f"[{i}/{len(p.arms)}] {arm.folder} ...")
        reference = p.reference(arm)
        if reference is not None:
            config = equal_time_config(p.configs[arm], out / ARMS / reference.folder)
            if config is None:
                p.status[arm] = "failed"
                echo(f"[{i}/{len(p.arms)}] {arm.folder}: not run, its reference arm "
                     f"{reference.folder} has no summary (it failed: see its run.log)")
                continue
            p.configs[arm] = config
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
