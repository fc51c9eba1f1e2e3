"""Adam-then-L-BFGS rounds, the training protocol of RAD (Wu et al. 2023, CMAME 403) and
RSmote (arXiv 2501.11222): per sampling round

    1. `rounds.adam_steps` Adam steps on the current training set (the fit loop's chunks;
       the samplers' in-step refresh is off, `Trainer.refresh_samplers=False`),
    2. up to `rounds.lbfgs_steps` L-BFGS iterations (optax.lbfgs, zoom line search) on one
       batch drawn from the samplers, with the loss weights frozen at their last Adam value
       (the mean per term for point-level weights); a round's L-BFGS stops early when a chunk
       of 100 iterations lowers the loss by less than `rounds.lbfgs_tol` relatively, or keeps
       the last finite parameters when the loss becomes non-finite,
    3. every sampler refreshes once (`sampler.update`) from the residuals of the new model.

The Adam state carries over between rounds; L-BFGS starts each round with an empty memory
(the objective changed with the training set). `train.steps` counts the Adam steps, so there
are ceil(steps / adam_steps) rounds. Enabled by `rounds.enabled: true`. Each round ends with a
checkpoint (phase "round"); a run resumed from an earlier checkpoint written at a round's end
but before its L-BFGS finished goes on with the next round's Adam steps.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.samplers.base import Batch
from adapinn.train import records, sharding
from adapinn.train.lbfgs import lbfgs_init, lbfgs_iterations
from adapinn.train.state import TrainState
from adapinn.train.stop import check_stop
from adapinn.train.trainer import Trainer

log = logging.getLogger("adapinn")


def round_due(step: int, adam_steps: int, total_steps: int) -> bool:
    """A round ends after every `adam_steps` Adam steps and at the last step."""
    return step % adam_steps == 0 or step == total_steps


def lbfgs_round(trainer: Trainer, model: eqx.Module, batches: dict[str, Batch],
                weights: dict[str, Array], max_steps: int, tol: float):
    """Up to `max_steps` L-BFGS iterations in chunks of 100; returns (model, iterations, loss)."""
    opt_state = lbfgs_init(model)
    chunk, done, previous, value = math.gcd(max_steps, 100), 0, None, None
    while done < max_steps:
        check_stop()  # a signal skips the rest of the round's L-BFGS (Adam's handler saves)
        new_model, new_opt, new_value, finite = lbfgs_iterations(
            trainer, model, opt_state, batches, weights, chunk)
        if not bool(finite):
            log.warning("round L-BFGS: non-finite loss after %d iterations; keeping the last "
                        "finite parameters", done)
            break
        model, opt_state, value, done = new_model, new_opt, float(new_value), done + chunk
        if previous is not None and previous - value < tol * abs(previous):
            break
        previous = value
    return model, done, value


@eqx.filter_jit
def draw_batches(trainer: Trainer, state: TrainState, key: Array) -> dict[str, Batch]:
    """One batch per condition from the samplers' current state (the round's L-BFGS set)."""
    return trainer.sample(state, key)


@eqx.filter_jit
def refresh_samplers(trainer: Trainer, state: TrainState, key: Array) -> TrainState:
    """Every sampler's `update` once, scored by the current model (the end of a round)."""
    keys = jax.random.split(key, len(trainer.names))
    sampler_states = {
        n: trainer.samplers[n].update(state.sampler_states[n], k, state.step,
                                      trainer.score_fn(state.model, n))
        for n, k in zip(trainer.names, keys)
    }
    return eqx.tree_at(lambda s: s.sampler_states, state, sampler_states)


def end_round(session: Any, trainer: Trainer, state: TrainState, weights: dict, step: int,
              adam_steps: int, lbfgs_steps: int, lbfgs_tol: float):
    """L-BFGS on the current training set, log it, then refresh the samplers.

    Args:
        session: the run's `loop.Session` (log, evaluation, clocks, mesh); the round's
            time is added to its `train_time`.
        trainer: the run's trainer.
        state: the train state after the round's Adam steps.
        weights: the last Adam step's (mean) weight per term.
        step: Adam steps done (the round's end).
        adam_steps, lbfgs_steps, lbfgs_tol: the rounds' settings (see the module docstring).

    Returns:
        (state, rel_l2 after L-BFGS).
    """
    t0 = time.perf_counter()
    k_batch, k_refresh = jax.random.split(jax.random.fold_in(state.key, 11))
    batches = draw_batches(trainer, state, k_batch)
    if session.mesh is not None:
        batches = sharding.shard_global(batches, session.mesh)
    weights = {n: jnp.asarray(w) for n, w in weights.items()}
    model, done, value = state.model, 0, None
    if lbfgs_steps > 0:
        model, done, value = lbfgs_round(trainer, model, batches, weights, lbfgs_steps,
                                         lbfgs_tol)
    state = eqx.tree_at(lambda s: s.model, state, model)
    with sharding.use_mesh(session.mesh):
        state = refresh_samplers(trainer, state, k_refresh)
    jax.block_until_ready(state)
    session.train_time += time.perf_counter() - t0
    rel = session.evaluate(state.model)
    terms = trainer.term_losses(state.model, batches)
    loss = value if value is not None else float(sum(weights[k] * terms[k] for k in terms))
    metrics = {"loss": loss, "terms": terms, "weights": weights}
    row = records.row(step, "lbfgs", metrics, 0.0, session.scores, session.times())
    session.metrics_log.append({**row, "round": -(-step // adam_steps), "lbfgs_iters": done})
    return state, rel
