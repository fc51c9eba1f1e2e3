"""L-BFGS refinement (optax.lbfgs with its zoom line search) on a fixed collocation set, with
the loss weights frozen at their last Adam value: the usual Adam-then-L-BFGS PINN protocol
(Raissi et al. 2019; DeepXDE). Used by `fit`'s final phase and by the per-round L-BFGS of
`adapinn.train.rounds`."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import Array

from adapinn.samplers.base import Batch, unit_weights
from adapinn.samplers.fixed import sobol
from adapinn.train import records, sharding
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


def lbfgs_phase(session: Any, trainer: Trainer, state: Any, weights: dict, step: int,
                n_iterations: int, batch_size: int, condition_batch_size: int,
                eval_every: int) -> tuple[Any, float | None]:
    """The L-BFGS finish: `n_iterations` on one fixed Sobol batch per condition (`batch_size`
    points for "pde", `condition_batch_size` for the others), weights frozen at their last
    Adam value, the batch split over the session's mesh. Logs a row every
    gcd(n_iterations, eval_every, 100) iterations; returns (state, rel. L2)."""
    keys = jax.random.split(jax.random.fold_in(state.key, 7), len(trainer.names))
    batches = {
        name: unit_weights(cond.domain.from_unit(sobol(
            key, batch_size if name == "pde" else condition_batch_size, cond.domain.n_free)))
        for (name, cond), key in zip(trainer.problem.conditions.items(), keys)
    }
    if session.mesh is not None:
        batches = sharding.shard_global(batches, session.mesh)
    model, opt_state = state.model, lbfgs_init(state.model)
    chunk = math.gcd(n_iterations, eval_every, 100)
    done, rel = 0, None
    while done < n_iterations:
        n = min(chunk, n_iterations - done)
        t0 = time.perf_counter()
        new_model, opt_state, value, finite = lbfgs_iterations(trainer, model, opt_state,
                                                               batches, weights, n)
        jax.block_until_ready(new_model)
        session.train_time += time.perf_counter() - t0
        if not bool(finite):
            log.warning("L-BFGS produced a non-finite loss after iteration %d; keeping the "
                        "last finite parameters", done)
            break
        model, done = new_model, done + n
        rel = session.evaluate(model)
        metrics = {"loss": value, "terms": trainer.term_losses(model, batches)}
        session.metrics_log.append(records.row(step + done, "lbfgs", metrics, 0.0, rel,
                                               session.times()))
    return eqx.tree_at(lambda s: s.model, state, model), rel
