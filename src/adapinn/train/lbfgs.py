"""L-BFGS refinement (optax.lbfgs with its zoom line search) on a fixed collocation set, with
the loss weights frozen at their last Adam value: the usual Adam-then-L-BFGS PINN protocol
(Raissi et al. 2019; DeepXDE)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import Array

from adapinn.samplers.base import Batch
from adapinn.train.trainer import Trainer


def lbfgs_solver(memory_size: int = 50) -> optax.GradientTransformationExtraArgs:
    return optax.lbfgs(memory_size=memory_size)


def make_lbfgs_run(trainer: Trainer, batches: dict[str, Batch], weights: dict[str, Array]):
    """Return (init, run): `run(model, opt_state, n)` takes n L-BFGS iterations under scan.

    `run(..., data=(batches, weights))` takes the collocation set and weights as arguments
    instead of closing over them: a jitted function may not close over arrays that span the
    devices of several processes (multi-host runs, `adapinn.train.distributed`)."""
    solver = lbfgs_solver()
    static_model = None

    def split(model):
        return eqx.partition(model, eqx.is_inexact_array)

    def objective_on(batches, weights):
        def objective(params):
            model = eqx.combine(params, static_model)
            terms = trainer.term_losses(model, batches)
            return sum(weights[n] * terms[n] for n in terms)

        return objective

    def init(model):
        nonlocal static_model
        params, static_model = split(model)
        return params, solver.init(params)

    def run(params, opt_state, n: int, data=None):
        objective = objective_on(*(data if data is not None else (batches, weights)))
        value_and_grad = optax.value_and_grad_from_state(objective)

        def iteration(carry, _):
            params, opt_state = carry
            value, grad = value_and_grad(params, state=opt_state)
            updates, opt_state = solver.update(
                grad, opt_state, params, value=value, grad=grad, value_fn=objective
            )
            return (optax.apply_updates(params, updates), opt_state), value

        (params, opt_state), values = jax.lax.scan(iteration, (params, opt_state), None, length=n)
        return params, opt_state, values[-1], jnp.all(jnp.isfinite(values))

    return init, run, lambda params: eqx.combine(params, static_model)
