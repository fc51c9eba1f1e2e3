"""`fit(config, out)`: build a run from its config, train with a thin Python loop around the
compiled multi-step function (eval / log / checkpoint cadence only), then write the summary
and plots. Everything a run produces lands in its folder."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from tqdm.auto import tqdm

from adapinn.errors import ConfigError
from adapinn.experiments import registry, snapshots
from adapinn.experiments.config import RunConfig, dump
from adapinn.nn import build_network, count_parameters
from adapinn.problems.base import Problem, ReferenceData
from adapinn.samplers import Fixed, Uniform, unit_weights
from adapinn.samplers.fixed import sobol
from adapinn.train import checkpoint, distributed, records, rounds, sharding
from adapinn.train.evaluate import relative_l2
from adapinn.train.lbfgs import lbfgs_init, lbfgs_iterations
from adapinn.train.optim import adam, learning_rate_schedule
from adapinn.train.state import TrainState
from adapinn.train.trainer import Trainer

log = logging.getLogger("adapinn")


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite; the last good state was kept as the checkpoint."""


@dataclass
class Run:
    """Everything built from a config: the trainer, the initial state, the reference."""

    config: RunConfig
    problem: Problem
    trainer: Trainer
    state: TrainState
    reference: ReferenceData | None


def build(config: RunConfig, with_reference: bool = True, problem: Problem | None = None) -> Run:
    """Turn a validated config into a trainer and an initial state (seeded by config.seed).

    `problem` replaces the registry's `config.problem` (a user-defined PDE)."""
    if config.network.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    try:
        return _build(config, with_reference, problem)
    except ValueError as err:  # a module rejecting its options: the user's to fix
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(str(err)) from err


def _build(config: RunConfig, with_reference: bool, problem: Problem | None) -> Run:
    problem = problem or registry.build_problem(config)
    k_net, k_train = jax.random.split(jax.random.PRNGKey(config.seed))
    network = build_network(config.network, problem.dim, problem.n_outputs, problem.periodic,
                            k_net)
    weighting, n_cond = registry.build_weighting(config), config.train.condition_batch_size
    samplers = {
        name: registry.build_sampler(config.sampler, cond.domain, config.train.batch_size)
        if name == "pde"  # a weighting with per-point state (SA) needs fixed ic/bc points too
        else Fixed(cond.domain, n_cond, size=n_cond) if weighting.point_state
        else Uniform(cond.domain, n_cond)
        for name, cond in problem.conditions.items()
    }
    trainer = Trainer(problem, samplers, weighting, adam(config.train),
                      config.train.residual_chunk, registry.build_aggregator(config),
                      refresh_samplers=not config.rounds.enabled)  # rounds refresh per round
    state = trainer.init(network, k_train)
    reference = problem.reference_data() if with_reference else None
    return Run(config, problem, trainer, state, reference)


def compile_chunk(trainer: Trainer, state: TrainState, n_steps: int, mesh: Mesh | None = None):
    """AOT-compile `n_steps` fused steps; returns (callable on states, compile seconds).

    With a `mesh`, the state must be replicated on it (`sharding.replicate`) and the points
    of every batch and candidate pool are split over its "data" axis."""
    dynamic, static = eqx.partition(state, eqx.is_array)

    def chunk(dynamic):
        new_state, metrics, first_bad = trainer.run(eqx.combine(dynamic, static), n_steps)
        return eqx.filter(new_state, eqx.is_array), metrics, first_bad

    start = time.perf_counter()
    with sharding.use_mesh(mesh):
        compiled = sharding.jit_replicated(chunk, mesh).lower(dynamic).compile()
    seconds = time.perf_counter() - start

    def call(state: TrainState):
        new_dynamic, metrics, first_bad = compiled(eqx.filter(state, eqx.is_array))
        return eqx.combine(new_dynamic, static), metrics, first_bad

    return call, seconds


def _row(step: int, phase: str, metrics: dict, lr: float, rel_l2, times: dict) -> dict:
    row: dict[str, Any] = {"step": step, "phase": phase, **times, "rel_l2": rel_l2, "lr": lr,
                           "loss": float(metrics["loss"])}
    row.update({f"loss_{k}": float(v) for k, v in metrics["terms"].items()})
    row.update({f"weight_{k}": float(v) for k, v in metrics.get("weights", {}).items()})
    return row


def fit(config: RunConfig, out: Path | str, resume: bool = False, overwrite: bool = False,
        progress: bool = True, problem: Problem | None = None,
        devices: int | None = None) -> dict:
    """Train the configured run into folder `out` and return its summary.

    Args:
        config: the validated run configuration (saved as config.yaml in `out`).
        out: the run folder.
        resume: continue the run saved in `out` from its checkpoint.
        overwrite: replace the run saved in `out`.
        progress: show a progress bar.
        problem: a user-defined `Problem` to train instead of the registry's `config.problem`.
        devices: how many devices to split each batch over (default: all visible, of all
            processes; see `adapinn.train.sharding`). Only process 0 writes `out`.
    """
    out = Path(out)
    main, tc = distributed.is_main_process(), config.train
    mesh = sharding.data_mesh(devices)
    sharding.check_divisible(_split_sizes(tc), mesh.size)
    if main:
        records.prepare(out, resume, overwrite)
        if resume:
            _check_resumable(out, config)
        (out / records.CONFIG_FILE).write_text(dump(config))
    wall_start = time.perf_counter()
    run = build(config, problem=problem)
    state, meta = run.state, {}
    if resume and checkpoint.exists(out):
        state, meta = checkpoint.load(out, state)
    start_step = int(meta.get("step", 0))
    state = sharding.replicate(state, mesh)  # placed once: the chunk compiles once
    metrics_log = (records.MetricsLog(out / records.METRICS_FILE,
                                      keep_until=start_step if resume else None)
                   if main else distributed.MemoryLog())
    ctx = _RunContext(run, out, mesh, main, metrics_log, wall_start,
                      float(meta.get("train_time_s", 0.0)))
    chunk = math.gcd(tc.scan_steps, tc.eval_every, tc.checkpoint_every,
                     config.rounds.adam_steps if config.rounds.enabled else 0)
    step_fn, compile_time = compile_chunk(run.trainer, state, chunk, mesh)
    log.info("compiled %d-step chunk for %d device(s) in %.1f s", chunk, mesh.size,
             compile_time)

    state, step, last_weights = _adam_phase(ctx, state, start_step, step_fn, chunk, progress)
    adam_time, adam_steps = ctx.train_time, step
    if tc.lbfgs_steps > 0 and meta.get("phase") != "lbfgs":
        weights = {n: jnp.asarray(w) for n, w in last_weights.items()}
        state, ctx.train_time, rel = _lbfgs_phase(run, state, weights, step, ctx.train_time,
                                                  ctx.metrics_log, ctx.evaluate, wall_start,
                                                  mesh)
        step += tc.lbfgs_steps
        ctx.save(state, step, "lbfgs", rel)

    summary = _summary(ctx, state, adam_steps, adam_time, compile_time)
    if main:
        records.write_summary(out, summary)
    if main and run.reference is not None:
        from adapinn.experiments import plots

        plots.write_run_plots(out, sharding.local_copy(state.model), run.reference,
                              ctx.metrics_log.rows, run.problem)
    return summary


@dataclass
class _RunContext:
    """What the phases of one `fit` share: the run, its folder and log, and its clocks."""

    run: Run
    out: Path
    mesh: Mesh
    main: bool  # process 0: the only one that writes `out`
    metrics_log: Any
    wall_start: float
    train_time: float  # seconds spent in compiled training calls (the compute budget)

    def evaluate(self, model) -> float | None:
        """rel. L2 on a host copy: process 0 alone must not launch work on all devices."""
        if self.run.reference is None:
            return None
        return relative_l2(sharding.local_copy(model), self.run.reference)

    def save(self, state: TrainState, step: int, phase: str, rel: float | None) -> None:
        if self.main:
            checkpoint.save(self.out, sharding.local_copy(state),
                            {"step": step, "phase": phase, "rel_l2": rel,
                             "train_time_s": self.train_time})

    def times(self) -> dict:
        return {"wall_time_s": self.train_time,
                "elapsed_s": time.perf_counter() - self.wall_start}


def _adam_phase(ctx: _RunContext, state: TrainState, step: int, step_fn, chunk: int,
                progress: bool) -> tuple[TrainState, int, dict]:
    """Compiled chunks of Adam steps until `train.steps` or the time budget; evaluates, logs
    and checkpoints on their cadences, and stops on a non-finite loss keeping the last good
    state. Returns (state, steps done, the last step's weights)."""
    run, config = ctx.run, ctx.run.config
    tc, schedule = config.train, learning_rate_schedule(config.train)
    bar = tqdm(total=tc.steps, initial=min(step, tc.steps), desc=run.problem.name,
               unit="step", disable=not (progress and ctx.main), dynamic_ncols=True)
    rel, last_weights = None, {n: 1.0 for n in run.trainer.names}
    while step < tc.steps and not _out_of_time(tc, ctx.train_time):
        n = min(chunk, tc.steps - step)
        call = step_fn if n == chunk else compile_chunk(run.trainer, state, n, ctx.mesh)[0]
        t0 = time.perf_counter()
        new_state, metrics, first_bad = call(state)
        jax.block_until_ready(new_state)
        ctx.train_time += time.perf_counter() - t0
        if int(first_bad) >= 0:
            ctx.save(state, step, "adam", rel)
            bar.close()
            raise DivergenceError(
                f"loss became non-finite at step {int(first_bad)}; stopped, and kept the last "
                f"good state (step {step}) as the checkpoint in {str(ctx.out)!r}. Try a smaller "
                "train.lr, train.grad_clip=1.0 or a warm-up (train.warmup_steps)."
            )
        state, step, last_weights = new_state, step + n, metrics["weights"]
        bar.update(n)
        last = step == tc.steps or _out_of_time(tc, ctx.train_time)
        if step % tc.eval_every == 0 or last:
            rel = ctx.evaluate(state.model)
            lr = float(schedule(step - 1))
            ctx.metrics_log.append(_row(step, "adam", metrics, lr, rel, ctx.times()))
            bar.set_postfix(loss=f"{float(metrics['loss']):.2e}",
                            rel_l2=f"{rel:.2e}" if rel is not None else "n/a")
            if ctx.main and tc.snapshot_points:
                snapshots.save(ctx.out, run, sharding.local_copy(state), step,
                               tc.snapshot_points)
        if step % tc.checkpoint_every == 0 or last:
            ctx.save(state, step, "adam", rel)
        if config.rounds.enabled and rounds.round_due(step, config.rounds.adam_steps, tc.steps):
            state, ctx.train_time, rel = rounds.end_round(
                run, state, last_weights, step, ctx.train_time, ctx.metrics_log, ctx.evaluate,
                ctx.wall_start, ctx.mesh)
            ctx.save(state, step, "round", rel)
    bar.close()
    return state, step, last_weights


def _summary(ctx: _RunContext, state: TrainState, adam_steps: int,
             adam_time: float, compile_time: float) -> dict:
    """summary.json: what was run, how well it did, and what it cost."""
    config, tc = ctx.run.config, ctx.run.config.train
    rel, best = ctx.evaluate(state.model), ctx.metrics_log.best
    return {
        "problem": ctx.run.problem.name,
        "sampler": config.sampler.name,
        "weighting": config.weighting.name,
        "network": config.network.name,
        "n_params": count_parameters(state.model),
        "seed": config.seed,
        "steps": tc.steps,
        "lbfgs_steps": tc.lbfgs_steps,
        "rel_l2": rel,
        "best_rel_l2": best["rel_l2"] if best else rel,
        "best_step": best["step"] if best else adam_steps,
        "wall_time_s": time.perf_counter() - ctx.wall_start,
        "compile_time_s": compile_time,
        "train_time_s": ctx.train_time,
        "steps_done": adam_steps,
        "steps_per_s": adam_steps / adam_time if adam_time > 0 else None,
        "peak_rss_mb": records.peak_rss_mb(),
        "device": str(jax.devices()[0].device_kind),
        "n_devices": ctx.mesh.size,
        "n_processes": jax.process_count(),
    }


def _split_sizes(tc) -> dict[str, int]:
    """The per-step point counts that are split over the devices, by config key."""
    sizes = {"train.batch_size": tc.batch_size,
             "train.condition_batch_size": tc.condition_batch_size}
    if tc.lbfgs_steps > 0:
        sizes["train.lbfgs_batch_size"] = tc.lbfgs_batch_size
    return sizes


def _lbfgs_phase(run: Run, state: TrainState, weights: dict, step: int, train_time: float,
                 metrics_log: records.MetricsLog, evaluate, wall_start: float,
                 mesh: Mesh | None = None):
    """L-BFGS on one fixed batch per condition, weights frozen at their last Adam value
    (the batch split over the devices of `mesh`)."""
    tc, trainer = run.config.train, run.trainer
    keys = jax.random.split(jax.random.fold_in(state.key, 7), len(trainer.names))
    batches = {
        name: unit_weights(cond.domain.from_unit(sobol(
            key, tc.lbfgs_batch_size if name == "pde" else tc.condition_batch_size,
            cond.domain.n_free)))
        for (name, cond), key in zip(run.problem.conditions.items(), keys)
    }
    if mesh is not None:
        batches = sharding.shard_global(batches, mesh)
    model, opt_state = state.model, lbfgs_init(state.model)
    chunk = math.gcd(tc.lbfgs_steps, tc.eval_every, 100)
    done, rel = 0, None
    while done < tc.lbfgs_steps:
        n = min(chunk, tc.lbfgs_steps - done)
        t0 = time.perf_counter()
        new_model, opt_state, value, finite = lbfgs_iterations(trainer, model, opt_state,
                                                               batches, weights, n)
        jax.block_until_ready(new_model)
        train_time += time.perf_counter() - t0
        if not bool(finite):
            log.warning("L-BFGS produced a non-finite loss after iteration %d; keeping the "
                        "last finite parameters", done)
            break
        model, done = new_model, done + n
        rel = evaluate(model)
        times = {"wall_time_s": train_time, "elapsed_s": time.perf_counter() - wall_start}
        metrics = {"loss": value, "terms": trainer.term_losses(model, batches)}
        metrics_log.append(_row(step + done, "lbfgs", metrics, 0.0, rel, times))
    return eqx.tree_at(lambda s: s.model, state, model), train_time, rel


def _out_of_time(tc, train_time: float) -> bool:
    """The Adam phase has spent its training-time budget (`train.time_budget_s`)."""
    return tc.time_budget_s is not None and train_time >= tc.time_budget_s


_RESUMABLE_BUDGETS = ("steps", "time_budget_s", "lbfgs_steps", "lbfgs_batch_size")


def _check_resumable(out: Path, config: RunConfig) -> None:
    """A resumed run must use the saved config; only its budgets may change (train.steps,
    train.time_budget_s, and the L-BFGS finish: train.lbfgs_steps, train.lbfgs_batch_size)."""
    from adapinn.experiments.config import load_yaml, validate

    saved = validate(load_yaml(out / records.CONFIG_FILE))
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
