"""`fit(config, out)`: build a run from its config, train it (the phases of `adapinn.train`:
Adam chunks, optional rounds, optional L-BFGS finish), then write the summary and plots.
Everything a run produces lands in its folder."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import signal
import threading
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

from adapinn.errors import ConfigError
from adapinn.experiments import registry, snapshots
from adapinn.experiments.build import Run, build, schedule_of
from adapinn.experiments.config import RunConfig, dump
from adapinn.experiments.trained import TrainedModel
from adapinn.nn import count_parameters
from adapinn.problems.base import Problem
from adapinn.train import checkpoint, distributed, loggers, records, rounds, sharding
from adapinn.train.lbfgs import lbfgs_init, lbfgs_phase
from adapinn.train.loop import Session, adam_phase, compile_chunk
from adapinn.train.stop import STOP

log = logging.getLogger("adapinn")


def fit(config: RunConfig, out: Path | str, resume: bool = False, overwrite: bool = False,
        progress: bool = True, problem: Problem | None = None,
        devices: int | None = None) -> Summary:
    """Train the configured run into folder `out` and return its summary (a dict, also
    written as summary.json) whose `.model` is the trained model (`TrainedModel`:
    `summary.model(points) -> values`).

    Nothing is written until the run is built (a config error leaves no trace). float64 runs
    (`network.dtype`) train inside `jax.enable_x64(True)`, which ends with the run. Ctrl-C or
    SIGTERM saves a checkpoint of the last completed chunk and raises `TrainingInterrupted`.

    Resume rules: `resume=True` continues from the checkpoint with the saved config, of which
    only the budgets may change (`train.steps`, `train.time_budget_s`, `train.lbfgs_steps`,
    `train.lbfgs_batch_size`). More Adam steps continue Adam; a larger `train.lbfgs_steps`
    continues the L-BFGS finish (with its memory); more Adam steps after a finish has run are
    refused (they would train from the finished model).

    Args:
        config: the validated run configuration (saved as config.yaml in `out`).
        out: the run folder.
        resume: continue the run saved in `out` from its checkpoint.
        overwrite: replace the run saved in `out`.
        progress: show progress bars.
        problem: a user-defined `Problem` to train instead of the registry's `config.problem`
            (config.yaml then names it `problem.name`; `adapinn.load` needs it passed again).
            A problem in a file is `problem.name: path/to/file.py:factory` instead.
        devices: how many devices to split each batch over (default: all visible, of all
            processes; see `adapinn.train.sharding`). Only process 0 writes `out`.
    """
    if problem is not None and config.problem.name != problem.name:
        config = config.model_copy(update={"problem": type(config.problem)(name=problem.name)})
    config = registry.complete(config, problem=problem is None)  # config.yaml: exact
    x64 = config.network.dtype == "float64"
    with (jax.enable_x64(True) if x64 else contextlib.nullcontext(), _signals_interrupt(),
          contextlib.ExitStack() as cleanup):  # cleanup: closes the loggers, also on errors
        return _fit(config, Path(out), resume, overwrite, progress, problem, devices, cleanup)


def _fit(config: RunConfig, out: Path, resume: bool, overwrite: bool, progress: bool,
         problem: Problem | None, devices: int | None,
         cleanup: contextlib.ExitStack) -> dict:
    main, tc = distributed.is_main_process(), config.train
    mesh = sharding.data_mesh(devices)
    sharding.check_divisible(_split_sizes(tc), mesh.size)
    if main:
        records.check_folder(out, resume, overwrite)
        loggers.check_available(tc.loggers)
        if resume:
            _check_resumable(out, config, complete_problem=problem is None)
    wall_start = time.perf_counter()
    run = build(config, problem=problem)
    if main:  # built: now the folder may be written
        records.prepare(out, resume, overwrite)
        (out / records.CONFIG_FILE).write_text(dump(config))
    state, meta, lbfgs_state = _restore(run, out, resume)
    adam_done, lbfgs_done = meta["adam_steps"], meta["lbfgs_iterations"]
    state = sharding.replicate(state, mesh)  # placed once: the chunk compiles once
    state = jax.tree_util.tree_map(lambda x: x.copy() if eqx.is_array(x) else x, state)
    metrics_log = (records.MetricsLog(out / records.METRICS_FILE,
                                      keep_until=(adam_done, lbfgs_done) if resume else None)
                   if main else distributed.MemoryLog())
    tracker = cleanup.enter_context(_open_loggers(config, out, resume) if main
                                    else loggers.Loggers())
    if tracker:  # every row of the metrics log also goes to the loggers
        metrics_log = loggers.LoggedMetrics(metrics_log, tracker)
    session = Session(out, mesh, main, metrics_log, run.reference, wall_start,
                      float(meta.get("train_time_s", 0.0)), weights=meta.get("weights"),
                      output_names=run.problem.outputs, problem=run.problem,
                      adam_time=float(meta.get("adam_time_s", meta.get("train_time_s", 0.0))),
                      on_eval=_snapshot_hook(run, out) if main and tc.snapshot_points else None)
    chunk = math.gcd(tc.scan_steps, tc.eval_every, tc.checkpoint_every,
                     config.rounds.adam_steps if config.rounds.enabled else 0)
    # the copy above is ours alone, so each chunk may update it in place (donation)
    step_fn, compile_time = compile_chunk(run.trainer, state, chunk, mesh, donate=True)
    log.info("compiled %d-step chunk for %d device(s) in %.1f s", chunk, mesh.size,
             compile_time)
    session.chunk_temp_mb = step_fn.temp_mb

    rc = config.rounds
    state, step, _ = adam_phase(
        session, run.trainer, state, adam_done, step_fn, chunk, tc, schedule_of(config),
        progress=progress, desc=run.problem.name,
        round_due=lambda s: rounds.round_due(s, rc.adam_steps, tc.steps),
        end_round=functools.partial(_end_round, session, run) if rc.enabled else None)
    adam_time, adam_steps = session.adam_time, step
    if tc.lbfgs_steps > lbfgs_done:
        weights = {n: jnp.asarray((session.weights or {}).get(n, 1.0)) for n in run.trainer.names}
        state, _, lbfgs_done = lbfgs_phase(session, run.trainer, state, weights, step, tc,
                                           lbfgs_done, lbfgs_state, progress=progress,
                                           desc=run.problem.name)

    model = sharding.local_copy(state.model)  # the trained model, on the host (once)
    summary = Summary({**_summary(run, session, state, adam_steps, adam_time, compile_time),
                       **(run.problem.diagnostics(model) if run.problem.diagnostics else {}),
                       "lbfgs_iterations_done": lbfgs_done})
    if main:
        from adapinn.experiments import plots

        records.write_summary(out, summary)
        for why in plots.write_run_plots(out, model, run.reference, session.metrics_log.rows,
                                         run.problem):
            log.info("no %s", why)
    tracker.log_images({p.stem: p for p in sorted((out / "plots").glob("*.png"))})
    summary.model = TrainedModel(model, run.problem, config,
                                 {"adam_steps": adam_steps, "lbfgs_iterations": lbfgs_done},
                                 out if main else None)
    return summary


def _open_loggers(config: RunConfig, out: Path, resume: bool) -> loggers.Loggers:
    """The trackers of `train.loggers` (none: a no-op), named after the run folder."""
    tc = config.train
    return loggers.open_loggers(tc.loggers, out, config.model_dump(mode="json"),
                                name=out.resolve().name, group=tc.logger_group,
                                resumed=resume)


def _restore(run: Run, out: Path, resume: bool):
    """(state, checkpoint record, L-BFGS state or None): the checkpoint in `out` when resuming,
    else the fresh state (a record of zero steps)."""
    fresh = {"adam_steps": 0, "lbfgs_iterations": 0}
    if not resume:
        return run.state, fresh, None
    if not checkpoint.exists(out):
        log.warning("%s holds no checkpoint (the run stopped before its first one): starting "
                    "again from step 0", out)
        return run.state, fresh, None
    lbfgs_like = lbfgs_init(run.state.model) if run.config.train.lbfgs_steps > 0 else None
    state, meta, lbfgs_state = checkpoint.load(out, run.state, lbfgs_like)
    adam, iterations = meta["adam_steps"], meta["lbfgs_iterations"]
    if int(state.step) != adam:
        raise ConfigError(f"checkpoint in {str(out)!r} is inconsistent: its record says {adam} "
                          f"Adam steps, its state {int(state.step)}; start a new run")
    if iterations > 0 and run.config.train.steps > adam:
        raise ConfigError(
            f"--resume: the run in {str(out)!r} already ran its L-BFGS finish ({iterations} "
            f"iterations after {adam} Adam steps); more Adam steps (train.steps="
            f"{run.config.train.steps}) would train from the finished model. Keep "
            f"train.steps={adam} (a larger train.lbfgs_steps continues the finish) or start a "
            "new run")
    log.info("resuming %s after %d Adam steps and %d L-BFGS iterations", out, adam,
             iterations)
    return state, meta, lbfgs_state


@contextlib.contextmanager
def _signals_interrupt():
    """SIGINT (Ctrl-C) and SIGTERM request a stop (`train.loop.STOP`): the running phase
    finishes its chunk, saves a checkpoint and raises TrainingInterrupted. A second signal
    interrupts at once (KeyboardInterrupt wherever the program is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if STOP.is_set():
            raise KeyboardInterrupt
        STOP.set()

    STOP.clear()
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        STOP.clear()


def _end_round(session: Session, run: Run, state, weights: dict, step: int):
    rc = run.config.rounds
    return rounds.end_round(session, run.trainer, state, weights, step, rc.adam_steps,
                            rc.lbfgs_steps, rc.lbfgs_tol)


def _snapshot_hook(run: Run, out: Path):
    """Save the sampler's points at each evaluation (`train.snapshot_points`)."""

    def hook(state, step: int) -> None:
        snapshots.save(out, run, sharding.local_copy(state), step,
                       run.config.train.snapshot_points)

    return hook


class Summary(dict):
    """The run's summary (summary.json's keys) with the trained model as `.model`."""

    model: TrainedModel | None = None


def _summary(run: Run, session: Session, state, adam_steps: int,
             adam_time: float, compile_time: float) -> dict:
    """summary.json: what was run, how well it did, and what it cost."""
    config, tc = run.config, run.config.train
    rel, best = session.evaluate(state.model), session.metrics_log.best
    return {
        "problem": run.problem.name,
        **({"problem_file": registry.problem_file(config.problem.name)}
           if registry.is_problem_file(config.problem.name) else {}),
        "sampler": config.sampler.name,
        "weighting": config.weighting.name,
        "network": config.network.name,
        "n_params": count_parameters(state.model),
        "seed": config.seed,
        "steps": tc.steps,
        "lbfgs_steps": tc.lbfgs_steps,
        "rel_l2": rel,
        **{k: v for k, v in session.scores.items()  # per output, max abs.
           if k != "rel_l2" and not k.startswith("param_")},
        **_parameters(run.problem, session.scores),
        "best_rel_l2": best["rel_l2"] if best else rel,
        "best_step": best["step"] if best else adam_steps,
        "wall_time_s": time.perf_counter() - session.wall_start,
        "compile_time_s": compile_time,
        "train_time_s": session.train_time,
        "steps_done": adam_steps,
        "steps_per_s": adam_steps / adam_time if adam_time > 0 else None,
        "peak_rss_mb": records.peak_rss_mb(),
        "device_peak_mb": records.device_peak_mb(),
        "chunk_temp_mb": session.chunk_temp_mb,
        "device": str(jax.devices()[0].device_kind),
        "n_devices": session.mesh.size,
        "n_processes": jax.process_count(),
    }


def _parameters(problem: Problem, scores: dict) -> dict:
    """{"parameters": {NAME: {"value", "true", "rel_error"}}} of an inverse problem, else {}."""
    declared = problem.declared_parameters
    if not declared:
        return {}
    out = {}
    for name, p in declared.items():
        value = scores.get(f"param_{name}")
        rel = (abs(value - p.true) / abs(p.true) if value is not None and p.true else None)
        crb = p.bound / abs(p.true) if p.bound is not None and p.true else None
        out[name] = {"value": value, "true": p.true, "rel_error": rel, "crb_rel": crb}
    return {"parameters": out}


def _split_sizes(tc) -> dict[str, int]:
    """The per-step point counts that are split over the devices, by config key."""
    sizes = {"train.batch_size": tc.batch_size,
             "train.condition_batch_size": tc.condition_batch_size}
    if tc.lbfgs_steps > 0:
        sizes["train.lbfgs_batch_size"] = tc.lbfgs_batch_size
    return sizes


_RESUMABLE_BUDGETS = ("steps", "time_budget_s", "lbfgs_steps", "lbfgs_batch_size", "loggers",
                      "logger_group")


def _check_resumable(out: Path, config: RunConfig, complete_problem: bool = True) -> None:
    """A resumed run must use the saved config; only its budgets may change (train.steps,
    train.time_budget_s, and the L-BFGS finish: train.lbfgs_steps, train.lbfgs_batch_size).
    The saved config is completed like `config` first, so a folder whose config.yaml lacks
    some default options (written by hand, or by an older version) compares by value."""
    from adapinn.experiments.config import load_yaml, validate

    saved = registry.complete(validate(load_yaml(out / records.CONFIG_FILE)),
                              problem=complete_problem)
    a, b = saved.model_dump(), config.model_dump()
    for budget in _RESUMABLE_BUDGETS:
        a["train"][budget] = b["train"][budget] = None
    if a != b:
        diffs = [k for k in b if a.get(k) != b.get(k)]
        changeable = ", ".join(f"train.{budget}" for budget in _RESUMABLE_BUDGETS)
        raise ConfigError(
            f"--resume: the config differs from the one saved in {str(out)!r} (sections "
            f"{diffs}); resume with the same config (only {changeable} may change)"
        )
