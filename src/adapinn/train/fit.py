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
from tqdm.auto import tqdm

from adapinn.experiments import registry
from adapinn.experiments.config import ConfigError, RunConfig, dump
from adapinn.nn import build_network, count_parameters
from adapinn.problems.base import Problem, ReferenceData
from adapinn.samplers import Uniform, unit_weights
from adapinn.train import checkpoint, records
from adapinn.train.evaluate import relative_l2
from adapinn.train.lbfgs import make_lbfgs_run
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


def build(config: RunConfig, with_reference: bool = True) -> Run:
    """Turn a validated config into a trainer and an initial state (seeded by config.seed)."""
    if config.network.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    problem = registry.build_problem(config)
    k_net, k_train = jax.random.split(jax.random.PRNGKey(config.seed))
    network = build_network(config.network, problem.dim, problem.n_outputs, problem.periodic,
                            k_net)
    samplers = {
        name: registry.build_sampler(config.sampler, cond.domain, config.train.batch_size)
        if name == "pde"
        else Uniform(cond.domain, config.train.condition_batch_size)
        for name, cond in problem.conditions.items()
    }
    trainer = Trainer(problem, samplers, registry.build_weighting(config), adam(config.train),
                      config.train.residual_chunk)
    state = trainer.init(network, k_train)
    reference = problem.reference_data() if with_reference else None
    return Run(config, problem, trainer, state, reference)


def compile_chunk(trainer: Trainer, state: TrainState, n_steps: int):
    """AOT-compile `n_steps` fused steps; returns (callable on states, compile seconds)."""
    dynamic, static = eqx.partition(state, eqx.is_array)

    def chunk(dynamic):
        new_state, metrics, first_bad = trainer.run(eqx.combine(dynamic, static), n_steps)
        return eqx.filter(new_state, eqx.is_array), metrics, first_bad

    start = time.perf_counter()
    compiled = jax.jit(chunk).lower(dynamic).compile()
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


def fit(config: RunConfig, out: Path, resume: bool = False, overwrite: bool = False,
        progress: bool = True) -> dict:
    """Train the configured run into folder `out` and return its summary."""
    out = Path(out)
    records.prepare(out, resume, overwrite)
    if resume:
        _check_resumable(out, config)
    (out / records.CONFIG_FILE).write_text(dump(config))
    wall_start = time.perf_counter()
    run = build(config)
    trainer, state, tc = run.trainer, run.state, config.train

    start_step, train_time, meta = 0, 0.0, {}
    if resume and checkpoint.exists(out):
        state, meta = checkpoint.load(out, state)
        start_step, train_time = int(meta["step"]), float(meta["train_time_s"])
    metrics_log = records.MetricsLog(out / records.METRICS_FILE,
                                     keep_until=start_step if resume else None)
    schedule = learning_rate_schedule(tc)
    chunk = math.gcd(tc.scan_steps, tc.eval_every, tc.checkpoint_every)
    step_fn, compile_time = compile_chunk(trainer, state, chunk)
    log.info("compiled %d-step chunk in %.1f s", chunk, compile_time)

    def evaluate(model) -> float | None:
        return relative_l2(model, run.reference) if run.reference is not None else None

    def save(state, step, phase, rel):
        checkpoint.save(out, state, {"step": step, "phase": phase, "rel_l2": rel,
                                     "train_time_s": train_time})

    bar = tqdm(total=tc.steps, initial=min(start_step, tc.steps), desc=config.problem.name,
               unit="step", disable=not progress, dynamic_ncols=True)
    step, rel = start_step, None
    last_weights = {n: 1.0 for n in trainer.names}
    while step < tc.steps:
        n = min(chunk, tc.steps - step)
        call = step_fn if n == chunk else compile_chunk(trainer, state, n)[0]
        t0 = time.perf_counter()
        new_state, metrics, first_bad = call(state)
        jax.block_until_ready(new_state)
        train_time += time.perf_counter() - t0
        if int(first_bad) >= 0:
            save(state, step, "adam", rel)
            bar.close()
            raise DivergenceError(
                f"loss became non-finite at step {int(first_bad)}; stopped, and kept the last "
                f"good state (step {step}) as the checkpoint in {str(out)!r}. Try a smaller "
                "train.lr, train.grad_clip=1.0 or a warm-up (train.warmup_steps)."
            )
        state, step = new_state, step + n
        last_weights = metrics["weights"]
        bar.update(n)
        if step % tc.eval_every == 0 or step == tc.steps:
            rel = evaluate(state.model)
            times = {"wall_time_s": train_time, "elapsed_s": time.perf_counter() - wall_start}
            metrics_log.append(_row(step, "adam", metrics, float(schedule(step - 1)), rel, times))
            bar.set_postfix(loss=f"{float(metrics['loss']):.2e}",
                            rel_l2=f"{rel:.2e}" if rel is not None else "n/a")
        if step % tc.checkpoint_every == 0 or step == tc.steps:
            save(state, step, "adam", rel)
    bar.close()
    adam_time = train_time

    if tc.lbfgs_steps > 0 and not (meta.get("phase") == "lbfgs"):
        weights = {n: jnp.asarray(w) for n, w in last_weights.items()}
        state, train_time, rel = _lbfgs_phase(run, state, weights, step, train_time,
                                              metrics_log, evaluate, wall_start)
        step += tc.lbfgs_steps
        save(state, step, "lbfgs", rel)

    rel = evaluate(state.model)
    best = metrics_log.best
    summary = {
        "problem": config.problem.name,
        "sampler": config.sampler.name,
        "weighting": config.weighting.name,
        "network": config.network.name,
        "n_params": count_parameters(state.model),
        "seed": config.seed,
        "steps": tc.steps,
        "lbfgs_steps": tc.lbfgs_steps,
        "rel_l2": rel,
        "best_rel_l2": best["rel_l2"] if best else rel,
        "best_step": best["step"] if best else step,
        "wall_time_s": time.perf_counter() - wall_start,
        "compile_time_s": compile_time,
        "train_time_s": train_time,
        "steps_per_s": (tc.steps - start_step) / adam_time if adam_time > 0 else None,
        "peak_rss_mb": records.peak_rss_mb(),
        "device": str(jax.devices()[0].device_kind),
        "n_devices": jax.device_count(),
    }
    records.write_summary(out, summary)
    if run.reference is not None:
        from adapinn.experiments import plots

        plots.write_run_plots(out, state.model, run.reference, metrics_log.rows, run.problem)
    return summary


def _lbfgs_phase(run: Run, state: TrainState, weights: dict, step: int, train_time: float,
                 metrics_log: records.MetricsLog, evaluate, wall_start: float):
    """L-BFGS on one fixed batch per condition, weights frozen at their last Adam value."""
    tc, trainer = run.config.train, run.trainer
    keys = jax.random.split(jax.random.fold_in(state.key, 7), len(trainer.names))
    batches = {
        name: unit_weights(cond.domain.sample(
            key, tc.lbfgs_batch_size if name == "pde" else tc.condition_batch_size))
        for (name, cond), key in zip(run.problem.conditions.items(), keys)
    }
    init, run_lbfgs, to_model = make_lbfgs_run(trainer, batches, weights)
    params, opt_state = init(state.model)
    chunk = math.gcd(tc.lbfgs_steps, tc.eval_every, 100)
    run_jit = eqx.filter_jit(run_lbfgs)
    done, rel = 0, None
    while done < tc.lbfgs_steps:
        n = min(chunk, tc.lbfgs_steps - done)
        t0 = time.perf_counter()
        new_params, opt_state, value, finite = run_jit(params, opt_state, n)
        jax.block_until_ready(new_params)
        train_time += time.perf_counter() - t0
        if not bool(finite):
            log.warning("L-BFGS produced a non-finite loss after iteration %d; keeping the "
                        "last finite parameters", done)
            break
        params, done = new_params, done + n
        rel = evaluate(to_model(params))
        times = {"wall_time_s": train_time, "elapsed_s": time.perf_counter() - wall_start}
        metrics = {"loss": value, "terms": trainer.term_losses(to_model(params), batches)}
        metrics_log.append(_row(step + done, "lbfgs", metrics, 0.0, rel, times))
    return eqx.tree_at(lambda s: s.model, state, to_model(params)), train_time, rel


def _check_resumable(out: Path, config: RunConfig) -> None:
    """A resumed run must use the saved config (only train.steps may grow)."""
    from adapinn.experiments.config import load_yaml, validate

    saved = validate(load_yaml(out / records.CONFIG_FILE))
    a, b = saved.model_dump(), config.model_dump()
    a["train"]["steps"] = b["train"]["steps"] = 0
    if a != b:
        diffs = [k for k in b if a.get(k) != b.get(k)]
        raise ConfigError(
            f"--resume: the config differs from the one saved in {str(out)!r} (sections "
            f"{diffs}); resume with the same config (only train.steps may change)"
        )
