"""One jitted training step: sample, evaluate residuals in forward mode, weight, update, and
refresh the samplers on their cadence, all inside one compiled function (no host round-trip).

    L(theta) = sum_k mean_i( w_k,i * q_k,i * r_k(x_k,i; theta)^2 )

with w the (stop-gradient) weights of the weighting scheme and q the importance weights that
come with a batch. `run(state, n)` fuses n steps with `lax.scan`.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import Array

from adapinn.problems.base import Problem
from adapinn.samplers.base import AbstractSampler, Batch, ScoreFn
from adapinn.train.state import TrainState
from adapinn.weighting.base import AbstractWeighting, WeightingContext


def params_of(model: eqx.Module) -> Any:
    """The trainable leaves of a model (inexact arrays)."""
    return eqx.filter(model, eqx.is_inexact_array)


class Trainer(eqx.Module):
    """Problem, samplers, weighting and optimiser: everything static about a run."""

    problem: Problem
    samplers: dict[str, AbstractSampler]
    weighting: AbstractWeighting
    optimizer: optax.GradientTransformation = eqx.field(static=True)
    residual_chunk: int = eqx.field(static=True, default=8192)

    def __check_init__(self):
        missing = set(self.problem.conditions) - set(self.samplers)
        if missing:
            raise ValueError(f"no sampler for conditions {sorted(missing)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.problem.conditions)

    def init(self, model: eqx.Module, key: Array) -> TrainState:
        keys = dict(zip(self.names, jax.random.split(key, len(self.names) + 1)))
        return TrainState(
            model=model,
            opt_state=self.optimizer.init(params_of(model)),
            sampler_states={n: self.samplers[n].init(keys[n]) for n in self.names},
            weighting_state=self.weighting.init(self.names),
            key=jax.random.fold_in(key, 1),
            step=jnp.asarray(0, jnp.int32),
        )

    def score_fn(self, model: eqx.Module, name: str) -> ScoreFn:
        """|r(x)| of condition `name`, evaluated in chunks of `residual_chunk` points."""

        def score(points: Array) -> Array:
            def one(x):
                return jnp.sqrt(self.problem.residuals(model, name, x[None])[0])

            return jax.lax.map(one, points, batch_size=self.residual_chunk)

        return score

    def sample(self, state: TrainState, key: Array) -> dict[str, Batch]:
        keys = jax.random.split(key, len(self.names))
        return {
            n: self.samplers[n].sample(state.sampler_states[n], k, state.step)
            for n, k in zip(self.names, keys)
        }

    def term_losses(self, model: eqx.Module, batches: dict[str, Batch]) -> dict[str, Array]:
        """Unweighted mean_i q_i r_i^2 of every condition."""
        return {
            n: jnp.mean(b.weights * self.problem.residuals(model, n, b.points))
            for n, b in batches.items()
        }

    def loss(self, model, batches, weighting_state, step):
        """Weighted total loss; aux = (term losses, weights, new weighting state)."""
        squared = {n: self.problem.residuals(model, n, b.points) for n, b in batches.items()}

        def term_gradients():
            frozen = jax.lax.stop_gradient(model)
            return {
                n: eqx.filter_grad(lambda m, n=n: self.term_losses(m, {n: batches[n]})[n])(frozen)
                for n in batches
            }

        context = WeightingContext(
            step=step,
            squared_residuals=jax.lax.stop_gradient(squared),
            points={n: b.points for n, b in batches.items()},
            term_gradients=term_gradients,
        )
        weights, weighting_state = self.weighting.update(weighting_state, context)
        weights = jax.lax.stop_gradient(weights)
        total = sum(jnp.mean(weights[n] * b.weights * squared[n]) for n, b in batches.items())
        terms = {n: jnp.mean(b.weights * squared[n]) for n, b in batches.items()}
        return total, (terms, weights, weighting_state)

    def step(self, state: TrainState) -> tuple[TrainState, dict[str, Any]]:
        """One optimiser step, sampling and sampler refresh included."""
        key, k_sample, k_refresh = jax.random.split(state.key, 3)
        batches = self.sample(state, k_sample)
        grad_fn = eqx.filter_value_and_grad(self.loss, has_aux=True)
        (total, (terms, weights, w_state)), grads = grad_fn(
            state.model, batches, state.weighting_state, state.step
        )
        updates, opt_state = self.optimizer.update(grads, state.opt_state, params_of(state.model))
        model = eqx.apply_updates(state.model, updates)
        step = state.step + 1
        refresh_keys = jax.random.split(k_refresh, len(self.names))
        sampler_states = {
            n: self.samplers[n].refresh(state.sampler_states[n], k, step, self.score_fn(model, n))
            for n, k in zip(self.names, refresh_keys)
        }
        new_state = TrainState(model, opt_state, sampler_states, w_state, key, step)
        metrics = {"loss": total, "terms": terms, "weights": _summarise(weights)}
        return new_state, metrics

    def run(self, state: TrainState, n_steps: int) -> tuple[TrainState, dict, Array]:
        """`n_steps` steps under `lax.scan`; returns the last step's metrics and the first step
        (1-based, global) whose loss was not finite, or -1."""

        def body(carry, _):
            state, first_bad = carry
            state, metrics = self.step(state)
            bad = ~jnp.isfinite(metrics["loss"])
            first_bad = jnp.where((first_bad < 0) & bad, state.step, first_bad)
            return (state, first_bad), metrics

        init = (state, jnp.asarray(-1, jnp.int32))
        (state, first_bad), history = jax.lax.scan(body, init, None, length=n_steps)
        return state, jax.tree_util.tree_map(lambda x: x[-1], history), first_bad


def _summarise(weights: dict[str, Array]) -> dict[str, Array]:
    """Scalar per term for logging: the weight itself, or the mean of point-level weights."""
    return {n: jnp.mean(w) for n, w in weights.items()}
