"""L-BFGS refinement (optax.lbfgs with its zoom line search) on a fixed collocation set, with
the loss weights frozen at their last Adam value: the usual Adam-then-L-BFGS PINN protocol
(Raissi et al. 2019; DeepXDE). Used by `fit`'s final phase and by the per-round L-BFGS of
`adapinn.train.rounds`."""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Protocol

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import Array
from tqdm.auto import tqdm

from adapinn.samplers.base import Batch, unit_weights
from adapinn.samplers.fixed import sobol
from adapinn.train import records, sharding
from adapinn.train.stop import STOP, check_stop
from adapinn.train.trainer import Trainer

log = logging.getLogger("adapinn")


def lbfgs_solver(memory_size: int = 50) -> optax.GradientTransformationExtraArgs:
    return optax.lbfgs(memory_size=memory_size)


def lbfgs_init(model: eqx.Module) -> Any:
    """A fresh L-BFGS state (empty memory) for the model's trainable leaves."""
    return lbfgs_solver().init(eqx.filter(model, eqx.is_inexact_array))


@eqx.filter_jit
def lbfgs_iterations(trainer: Trainer, model: eqx.Module, opt_state: Any,
                     batches: dict[str, Batch], weights: dict[str, Array], n: int):
    """n L-BFGS iterations on L = sum_k w_k mean(q r_k^2).

    Batches and weights are arguments, not closed over: every call with the same shapes
    reuses the compiled function, and a jitted function may not close over arrays that span
    the devices of several processes (multi-host runs). Returns (model, opt_state, loss of
    the last iteration, whether every loss was finite)."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    solver = lbfgs_solver()

    def objective(p):
        terms = trainer.term_losses(eqx.combine(p, static), batches)
        return sum(weights[k] * terms[k] for k in terms)

    value_and_grad = optax.value_and_grad_from_state(objective)

    def iteration(carry, _):
        p, state = carry
        value, grad = value_and_grad(p, state=state)
        updates, state = solver.update(grad, state, p, value=value, grad=grad,
                                       value_fn=objective)
        return (optax.apply_updates(p, updates), state), value

    (params, opt_state), values = jax.lax.scan(iteration, (params, opt_state), None, length=n)
    return eqx.combine(params, static), opt_state, values[-1], jnp.all(jnp.isfinite(values))


class LBFGSBudget(Protocol):
    """What the L-BFGS finish needs to know of its budget and cadences."""

    lbfgs_steps: int
    lbfgs_batch_size: int
    condition_batch_size: int
    eval_every: int
    checkpoint_every: int
    time_budget_s: float | None


def finish_batches(trainer: Trainer, key: Array, batch_size: int,
                   condition_batch_size: int) -> dict[str, Batch]:
    """The finish's fixed set: one scrambled Sobol batch per condition (`batch_size` points
    for "pde", `condition_batch_size` for the others), in the default float dtype."""
    keys = jax.random.split(key, len(trainer.names))
    return {
        name: unit_weights(cond.domain.from_unit(sobol(
            k, batch_size if name == "pde" else condition_batch_size, cond.domain.n_free)))
        for (name, cond), k in zip(trainer.problem.conditions.items(), keys)
    }


def lbfgs_phase(session: Any, trainer: Trainer, state: Any, weights: dict, step: int,
                budget: LBFGSBudget, done: int = 0, opt_state: Any = None, *,
                progress: bool = True, desc: str = "") -> tuple[Any, float | None, int]:
    """The L-BFGS finish after `step` Adam steps: iterations `done + 1 .. budget.lbfgs_steps`
    on one fixed Sobol batch per condition (`finish_batches`, keyed by the state's key, so a
    resumed finish sees the same set), weights frozen at their last Adam value, the batch
    split over the session's mesh.

    Like the Adam phase: a progress bar, a metrics row every `eval_every` iterations (at most
    100 per compiled call), a checkpoint with the L-BFGS state every `checkpoint_every`
    iterations and at the end, a checkpoint and `TrainingInterrupted` on a signal, and a stop
    when the training-time budget (`time_budget_s`, Adam and L-BFGS together) is spent.
    `done` and `opt_state` continue a finish saved in a checkpoint.

    Returns (state, rel. L2, iterations done)."""
    batches = finish_batches(trainer, jax.random.fold_in(state.key, 7), budget.lbfgs_batch_size,
                             budget.condition_batch_size)
    if session.mesh is not None:
        batches = sharding.shard_global(batches, session.mesh)
    model = state.model
    opt_state = lbfgs_init(model) if opt_state is None else opt_state
    total = budget.lbfgs_steps
    chunk = math.gcd(total, budget.eval_every, budget.checkpoint_every, 100)
    rel = None
    bar = tqdm(total=total, initial=done, desc=f"{desc} L-BFGS".strip(), unit="it",
               disable=not (progress and session.main), dynamic_ncols=True)

    def current():
        return eqx.tree_at(lambda s: s.model, state, model)

    try:
        while done < total:
            check_stop()
            if budget.time_budget_s is not None and session.train_time >= budget.time_budget_s:
                log.info("L-BFGS stopped by the time budget after %d iterations", done)
                break
            n = min(chunk, total - done)
            t0 = time.perf_counter()
            new_model, new_opt, value, finite = lbfgs_iterations(trainer, model, opt_state,
                                                                 batches, weights, n)
            jax.block_until_ready(new_model)
            session.train_time += time.perf_counter() - t0
            if not bool(finite):
                log.warning("L-BFGS produced a non-finite loss after iteration %d; keeping the "
                            "last finite parameters", done)
                break
            model, opt_state, done = new_model, new_opt, done + n
            bar.update(n)
            if done % budget.eval_every == 0 or done == total:
                rel = session.evaluate(model)
                metrics = {"loss": value, "terms": trainer.term_losses(model, batches)}
                session.metrics_log.append({
                    **records.row(step + done, "lbfgs", metrics, 0.0, session.scores,
                                 session.times()),
                    "lbfgs_iteration": done})
                bar.set_postfix(loss=f"{float(value):.2e}",
                                rel_l2=f"{rel:.2e}" if rel is not None else "n/a")
            if done % budget.checkpoint_every == 0 and done < total:  # the last: below
                session.save(current(), step, "lbfgs", rel, done, opt_state)
    except KeyboardInterrupt:
        session.save(current(), step, "lbfgs", rel, done, opt_state)
        raise session.interrupted(f"L-BFGS iteration {done} (after {step} Adam steps)") from None
    finally:
        bar.close()
    if rel is None:
        rel = session.evaluate(model)
    session.save(current(), step, "lbfgs", rel, done, opt_state)
    if STOP.is_set():  # the signal came during the last chunk: saved, now say so
        raise session.interrupted(f"L-BFGS iteration {done} (after {step} Adam steps)")
    return current(), rel, done
