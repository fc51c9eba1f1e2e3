"""The Adam phase: a thin Python loop around the compiled multi-step function. The loop only
keeps cadences (eval / log / checkpoint / rounds) and the time budget; the steps themselves,
sampling included, run inside one AOT-compiled `lax.scan`.

Nothing here knows the run configuration: budgets arrive as any object with the attributes of
`AdamBudget` (the run config's `train` section is one), and everything a phase writes goes
through a `Session`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import equinox as eqx
import jax
from jax.sharding import Mesh
from tqdm.auto import tqdm

from adapinn.errors import DivergenceError, TrainingInterrupted
from adapinn.problems.parameters import parameter_values
from adapinn.train import checkpoint, records, sharding
from adapinn.train.evaluate import errors, residual_error_correlation
from adapinn.train.state import TrainState
from adapinn.train.stop import check_stop
from adapinn.train.trainer import Trainer

log = logging.getLogger("adapinn")



class AdamBudget(Protocol):
    """What the Adam phase needs to know of its budget and cadences."""

    steps: int
    eval_every: int
    checkpoint_every: int
    time_budget_s: float | None


@dataclass
class Session:
    """What the phases of one run share: its folder, log, reference and clocks.

    Attributes:
        out: the run folder (checkpoints).
        mesh: the data mesh, or None.
        main: this is process 0, the only one that writes `out`.
        metrics_log: where rows go (`records.MetricsLog`).
        reference: the evaluation set, or None (no rel. L2).
        wall_start: `time.perf_counter()` at the start of the run.
        train_time: seconds spent in compiled training calls (the compute budget).
        on_eval: called with (state, step) after every Adam evaluation (snapshots).
        weights: the last Adam step's weight per term (point weights: their mean), kept in
            checkpoints: the L-BFGS finish freezes them, also after a resume.
        adam_time: the part of `train_time` spent in Adam chunks (steps per second).
        problem: the run's problem, or None; with it (and a reference) every evaluation
            also records `rank_corr_residual_error` (`evaluate.residual_error_correlation`).
    """

    out: Path
    mesh: Mesh | None
    main: bool
    metrics_log: Any
    reference: Any
    wall_start: float
    train_time: float = 0.0
    on_eval: Callable[[TrainState, int], None] | None = field(default=None)
    weights: dict[str, float] | None = None
    adam_time: float = 0.0
    output_names: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    problem: Any = None
    chunk_temp_mb: float | None = None  # XLA temporary memory of the compiled chunk

    def evaluate(self, model) -> float | None:
        """Pooled rel. L2, on the device arrays in a single process and on a host copy with
        several (process 0 alone must not launch work on all devices); everything else of
        the same evaluation goes to `scores` for the metrics row: the other errors (per
        output, max abs.), an inverse problem's coefficients (`param_NAME`) and the residual
        / error rank correlation (with a `problem`)."""
        model = sharding.for_one_process(model)
        params = {f"param_{n}": float(v) for n, v in parameter_values(model).items()}
        if self.reference is None:
            self.scores = params
            return None
        diagnostic = {} if self.problem is None else {
            "rank_corr_residual_error": residual_error_correlation(model, self.problem,
                                                                   self.reference)}
        self.scores = {**errors(model, self.reference, self.output_names), **diagnostic,
                       **params}
        return self.scores["rel_l2"]

    def save(self, state: TrainState, step: int, phase: str, rel: float | None,
             lbfgs_iterations: int = 0, lbfgs_state: Any = None) -> None:
        """Checkpoint after `step` Adam steps and `lbfgs_iterations` of the finish."""
        if self.main:
            meta = {"adam_steps": step, "lbfgs_iterations": lbfgs_iterations,
                    "step": step + lbfgs_iterations, "phase": phase, "rel_l2": rel,
                    "train_time_s": self.train_time, "adam_time_s": self.adam_time,
                    "weights": self.weights}
            checkpoint.save(self.out, sharding.local_copy(state), meta,
                            None if lbfgs_state is None else sharding.local_copy(lbfgs_state))

    def interrupted(self, where: str) -> TrainingInterrupted:
        """The error to raise after saving on a signal."""
        return TrainingInterrupted(
            f"interrupted at {where}; the checkpoint in {str(self.out)!r} holds it: rerun the "
            "same command with --resume to continue")

    def times(self) -> dict:
        return {"wall_time_s": self.train_time,
                "elapsed_s": time.perf_counter() - self.wall_start}


def compile_chunk(trainer: Trainer, state: TrainState, n_steps: int, mesh: Mesh | None = None,
                  donate: bool = False):
    """AOT-compile a chunk of up to `n_steps` fused steps; returns (callable, compile seconds).

    `call(state, n=n_steps)` runs the first `n <= n_steps` steps of the chunk (the same
    compiled program for every n: a shorter last chunk, or one cut by a resume, does not
    recompile) and returns (state, last metrics, first non-finite step or -1); the state after
    a non-finite loss is the last good one (`Trainer.run`). With `donate` the input state's
    buffers are donated to the output (updated in place; the caller must not use the state
    it passed in again). With a `mesh`, the state must be replicated on it
    (`sharding.replicate`) and the points of every batch and candidate pool are split over
    its "data" axis. `call.temp_mb` is XLA's temporary memory of the chunk (MiB; the step
    and the samplers' refreshes inside it), or None where the backend does not say."""
    dynamic, static = eqx.partition(state, eqx.is_array)

    def chunk(dynamic, n_active):
        new_state, metrics, first_bad = trainer.run(eqx.combine(dynamic, static), n_steps,
                                                    n_active)
        return eqx.filter(new_state, eqx.is_array), metrics, first_bad

    start = time.perf_counter()
    full = jax.numpy.asarray(n_steps, jax.numpy.int32)
    with sharding.use_mesh(mesh):
        compiled = sharding.jit_replicated(chunk, mesh, donate=(0,) if donate else ()
                                           ).lower(dynamic, full).compile()
    seconds = time.perf_counter() - start
    temp_mb = records.compiled_temp_mb(compiled)

    def call(state: TrainState, n: int = n_steps):
        if not 0 < n <= n_steps:
            raise ValueError(f"a compiled chunk runs 1..{n_steps} steps, asked for {n}")
        count = jax.numpy.asarray(n, jax.numpy.int32)
        count = count if mesh is None else sharding.replicate(count, mesh)
        new_dynamic, metrics, first_bad = compiled(eqx.filter(state, eqx.is_array), count)
        return eqx.combine(new_dynamic, static), metrics, first_bad

    call.temp_mb = temp_mb  # XLA's temporary buffers of the chunk (MiB), for summary.json
    return call, seconds


def out_of_time(budget: AdamBudget, train_time: float) -> bool:
    """The Adam phase has spent its training-time budget (`time_budget_s`)."""
    return budget.time_budget_s is not None and train_time >= budget.time_budget_s


RoundEnd = Callable[[TrainState, dict, int], tuple[TrainState, float | None]]
"""`end_round(state, last_weights, step) -> (state, rel_l2)`, called when a round is due."""


def adam_phase(session: Session, trainer: Trainer, state: TrainState, step: int, step_fn,
               chunk: int, budget: AdamBudget, schedule, *, progress: bool = True,
               desc: str = "", round_due: Callable[[int], bool] | None = None,
               end_round: RoundEnd | None = None) -> tuple[TrainState, int, dict]:
    """Compiled chunks of Adam steps until `budget.steps` or the time budget; evaluates, logs
    and checkpoints on their cadences, and stops on a non-finite loss keeping the last good
    state. Returns (state, steps done, the last step's weights)."""
    bar = tqdm(total=budget.steps, initial=min(step, budget.steps), desc=desc,
               unit="step", disable=not (progress and session.main), dynamic_ncols=True)
    rel, last_weights = None, {n: 1.0 for n in trainer.names}
    try:
        while step < budget.steps and not out_of_time(budget, session.train_time):
            check_stop()
            n = min(chunk, budget.steps - step)
            t0 = time.perf_counter()
            new_state, metrics, first_bad = step_fn(state, n)  # `state` may be donated
            jax.block_until_ready(new_state)
            seconds = time.perf_counter() - t0
            session.train_time += seconds
            session.adam_time += seconds
            if int(first_bad) >= 0:  # new_state is the last good state, before first_bad
                good = int(first_bad) - 1
                session.save(new_state, good, "adam", rel)
                raise DivergenceError(
                    f"loss became non-finite at step {int(first_bad)}; stopped, and kept the "
                    f"last good state (step {good}) as the checkpoint in {str(session.out)!r}. "
                    "Try a smaller train.lr, train.grad_clip=1.0 or a warm-up "
                    "(train.warmup_steps)."
                )
            state, step, last_weights = new_state, step + n, metrics["weights"]
            session.weights = {k: float(w) for k, w in last_weights.items()}
            bar.update(n)
            last = step == budget.steps or out_of_time(budget, session.train_time)
            if step % budget.eval_every == 0 or last:
                rel = session.evaluate(state.model)
                lr = float(schedule(step - 1))
                session.metrics_log.append(records.row(step, "adam", metrics, lr, session.scores,
                                                       session.times()))
                bar.set_postfix(loss=f"{float(metrics['loss']):.2e}",
                                rel_l2=f"{rel:.2e}" if rel is not None else "n/a")
                if session.on_eval is not None:
                    session.on_eval(state, step)
            if step % budget.checkpoint_every == 0 or last:
                session.save(state, step, "adam", rel)
            if end_round is not None and round_due(step):
                state, rel = end_round(state, last_weights, step)
                session.save(state, step, "round", rel)
        check_stop()  # a signal during the last chunk still says so
    except KeyboardInterrupt:
        if _usable(state):  # interrupted inside a chunk: its input was donated
            session.save(state, int(state.step), "adam", rel)
            raise session.interrupted(f"Adam step {int(state.step)}") from None
        raise session.interrupted(f"Adam step {step} (the checkpoint is the last one "
                                  "written before the interrupt)") from None
    finally:
        bar.close()
    return state, step, last_weights


def _usable(state: TrainState) -> bool:
    """No array of the state has been donated (deleted) yet."""
    return not any(getattr(x, "is_deleted", lambda: False)()
                   for x in jax.tree_util.tree_leaves(eqx.filter(state, eqx.is_array)))
