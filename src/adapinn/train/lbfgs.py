"""L-BFGS refinement (optax.lbfgs with its zoom line search) on a fixed collocation set, with
the loss weights frozen at their last Adam value: the usual Adam-then-L-BFGS PINN protocol
(Raissi et al. 2019; DeepXDE). Used by `fit`'s final phase and by the per-round L-BFGS of
`adapinn.train.rounds`."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import Array

from adapinn.samplers.base import Batch
from adapinn.train.trainer import Trainer


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
