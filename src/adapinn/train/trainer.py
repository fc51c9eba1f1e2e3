"""One jitted training step: sample, evaluate residuals in forward mode, weight, update, and
refresh the samplers on their cadence, all inside one compiled function (no host round-trip).

    L(theta) = sum_k mean_i( w_k,i * q_k,i * r_k(x_k,i; theta)^2 )

with w the (stop-gradient) weights of the weighting scheme and q the importance weights that
come with a batch. `run(state, n)` fuses n steps with `lax.scan`.

Two opt-in paths leave the default step untouched: a `trainable` weighting (SA-PINN) whose state
is differentiated with the network and ascended, and an `aggregator` (PCGrad) that combines the
per-term gradients (stacked along a leading axis, `filter_jacrev`) before the optimiser.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import Array

from adapinn.mesh import map_points, shard_points
from adapinn.problems.base import Problem
from adapinn.samplers.base import AbstractSampler, Batch, ScoreFn
from adapinn.train.state import TrainState
from adapinn.weighting.base import AbstractWeighting, WeightingContext
from adapinn.weighting.surgery import PCGrad, Sum


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
    aggregator: Sum | PCGrad | None = None
    refresh_samplers: bool = eqx.field(static=True, default=True)  # False: rounds.py refreshes

    def __check_init__(self):
        missing = set(self.problem.conditions) - set(self.samplers)
        if missing:
            raise ValueError(f"no sampler for conditions {sorted(missing)}")
        if isinstance(self.aggregator, PCGrad):
            self.aggregator.check_weighting(self.weighting)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.problem.conditions)

    def init(self, model: eqx.Module, key: Array) -> TrainState:
        """The state before step 1; `key` is split into one key per sampler's `init` and the
        state's own key (`init_keys`), never reused."""
        keys = self.init_keys(key)
        return TrainState(
            model=model,
            opt_state=self.full_optimizer.init(params_of(model)),
            sampler_states={n: self.samplers[n].init(keys[f"init/{n}"]) for n in self.names},
            weighting_state=self.weighting.init_for({n: self.samplers[n] for n in self.names}),
            key=keys["state"],
            step=jnp.asarray(0, jnp.int32),
        )

    def init_keys(self, key: Array) -> dict[str, Array]:
        """{"init/NAME": each sampler's init key, "state": the first step's key}, by one
        explicit split (a `fold_in(key, i)` can equal `split(key)[i]` under threefry)."""
        keys = jax.random.split(key, len(self.names) + 1)
        return {"state": keys[-1], **{f"init/{n}": k for n, k in zip(self.names, keys)}}

    def step_keys(self, key: Array) -> dict[str, Array]:
        """Every key one step consumes, split explicitly from the state's key: "next" (the
        next step's key), "sample/NAME", "refresh/NAME" and "aggregate" (PCGrad's order),
        plus "observe/NAME" for the samplers that observe the step's residuals (R3): the
        refresh key's split extended past the refresh keys (split(k, 2n)[:n] == split(k, n)
        under partitionable threefry), so every other key keeps its value; and
        "operator/NAME" for the conditions whose residual takes a key (a stochastic
        operator), from a fifth split of the state's key (the first four keep their values)."""
        stochastic = self.problem.stochastic_conditions
        next_key, k_sample, k_refresh, k_aggregate, *k_operator = jax.random.split(
            key, 5 if stochastic else 4)
        n = len(self.names)
        observers = [c for c in self.names if self.samplers[c].observes]
        observe = jax.random.split(k_refresh, 2 * n)[n:] if observers else ()
        operator = jax.random.split(k_operator[0], len(stochastic)) if stochastic else ()
        return {"next": next_key, "aggregate": k_aggregate,
                **{f"operator/{c}": k for c, k in zip(stochastic, operator)},
                **{f"sample/{c}": k for c, k in zip(self.names, jax.random.split(k_sample, n))},
                **{f"refresh/{c}": k
                   for c, k in zip(self.names, jax.random.split(k_refresh, n))},
                **{f"observe/{c}": k for c, k in zip(observers, observe)}}

    @property
    def full_optimizer(self) -> optax.GradientTransformation:
        """The optimiser, preceded by the aggregator (if any) that sums per-term gradients."""
        if self.aggregator is None:
            return self.optimizer
        return optax.chain(self.aggregator.transform(self.names), self.optimizer)

    def score_fn(self, model: eqx.Module, name: str) -> ScoreFn:
        """|r(x)| of condition `name`, evaluated in chunks of `residual_chunk` points (per
        device: under a data mesh each chunk is split over the devices, `map_points`)."""

        def score(points: Array) -> Array:
            def one(x):
                return jnp.sqrt(self.problem.residuals(model, name, x[None])[0])

            return map_points(one, points, self.residual_chunk)

        return score

    def sample(self, state: TrainState, key: Array | dict[str, Array]) -> dict[str, Batch]:
        """One batch per condition; `key` is split per condition, or is already a dict with
        a "sample/NAME" key per condition (`step_keys`)."""
        keys = key if isinstance(key, dict) else {
            f"sample/{n}": k for n, k in zip(self.names, jax.random.split(key, len(self.names)))}
        return {
            n: self.samplers[n].sample(state.sampler_states[n], keys[f"sample/{n}"], state.step)
            for n in self.names
        }

    def term_losses(self, model: eqx.Module, batches: dict[str, Batch]) -> dict[str, Array]:
        """Unweighted mean_i q_i r_i^2 of every condition."""
        return {
            n: jnp.mean(b.weights * self.problem.residuals(model, n, b.points))
            for n, b in batches.items()
        }

    def context(self, model, batches, squared, step) -> WeightingContext:
        """What the weighting sees: residuals, points, and lazy per-term and per-point
        gradients (stop-gradient: nothing here is differentiated with the loss)."""
        frozen = jax.lax.stop_gradient(model)
        params, static = eqx.partition(frozen, eqx.is_inexact_array)

        def term_gradients(weights=None):
            def term_loss(m, n):
                w = 1.0 if weights is None else weights[n]
                b = batches[n]
                return jnp.mean(w * b.weights * self.problem.residuals(m, n, b.points))

            return {n: eqx.filter_grad(term_loss)(frozen, n) for n in batches}

        def point_residual(name: str):
            def one(p, x: Array) -> Array:
                residual = self.problem.residual_fn(eqx.combine(p, static), name)
                return jnp.reshape(residual(x), (-1,))

            return one

        return WeightingContext(
            step=step,
            squared_residuals=jax.lax.stop_gradient(squared),
            points={n: b.points for n, b in batches.items()},
            term_gradients=term_gradients,
            params=params,
            importance={n: jax.lax.stop_gradient(b.weights) for n, b in batches.items()},
            point_residual=point_residual,
            replaced={n: b.replaced for n, b in batches.items() if b.replaced is not None},
        )

    def weighted_terms(self, model, batches, weighting_state, step, keys=None):
        """{k: mean_i w_k,i q_k,i r_k,i^2}; aux = (term losses, weights, new weighting state,
        per-point r^2 of every condition (stop-gradient): what the samplers `observe`)."""
        keys = keys or {}
        squared = {n: self.problem.residuals(model, n, b.points, keys.get(f"operator/{n}"))
                   for n, b in batches.items()}
        context = self.context(model, batches, squared, step)
        weights, weighting_state = self.weighting.update(weighting_state, context)
        if not self.weighting.trainable:  # a trainable weighting depends on its state only
            weights = jax.lax.stop_gradient(weights)
        weighted = {n: jnp.mean(weights[n] * b.weights * squared[n]) for n, b in batches.items()}
        terms = {n: jnp.mean(b.weights * squared[n]) for n, b in batches.items()}
        return weighted, (terms, weights, weighting_state, jax.lax.stop_gradient(squared))

    def objective(self, model, batches, weighting_state, step, keys=None):
        """Weighted total loss; aux = `weighted_terms`' aux (the per-point r^2 included).
        `keys` ("operator/NAME", `step_keys`) go to stochastic residuals."""
        weighted, aux = self.weighted_terms(model, batches, weighting_state, step, keys)
        return sum(weighted.values()), aux

    def loss(self, model, batches, weighting_state, step):
        """Weighted total loss; aux = (term losses, weights, new weighting state)."""
        total, aux = self.objective(model, batches, weighting_state, step)
        return total, aux[:3]

    def adaptive_update(self, state: TrainState, batches: dict[str, Batch],
                        keys: dict[str, Array]):
        """(loss, aux, updates, opt state) when the weighting is trainable (its state gets
        dL/dstate and ascends) or an aggregator combines per-term gradients (stacked (K, ...)
        by one `filter_jacrev`: one forward pass, one backward pass per term)."""
        trainable = self.weighting.trainable
        wrt = (state.model, state.weighting_state if trainable else None)

        def unpack(mw):
            return mw[0], mw[1] if trainable else state.weighting_state

        params = params_of(state.model)
        if self.aggregator is None:
            def total_loss(mw):
                model, w_state = unpack(mw)
                return self.objective(model, batches, w_state, state.step, keys)

            (total, aux), (grads, w_grads) = eqx.filter_value_and_grad(
                total_loss, has_aux=True)(wrt)
            updates, opt_state = self.optimizer.update(grads, state.opt_state, params)
        else:
            def stacked(mw):
                model, w_state = unpack(mw)
                weighted, aux = self.weighted_terms(model, batches, w_state, state.step, keys)
                values = jnp.stack([weighted[n] for n in self.names])
                return values, (jnp.sum(values), aux)

            (grads, w_grads), (total, aux) = eqx.filter_jacrev(stacked, has_aux=True)(wrt)
            w_grads = jax.tree_util.tree_map(lambda g: jnp.sum(g, axis=0), w_grads)
            updates, opt_state = self.full_optimizer.update(grads, state.opt_state, params,
                                                            key=keys["aggregate"])
        terms, weights, w_state, squared = aux
        if trainable:
            w_state = self.weighting.ascend(w_state, w_grads)
        return total, (terms, weights, w_state, squared), updates, opt_state

    def step(self, state: TrainState) -> tuple[TrainState, dict[str, Any]]:
        """One optimiser step, sampling, the samplers' `observe` and refresh included."""
        keys = self.step_keys(state.key)
        # Drawn globally, then split over the data mesh axis (a no-op without a mesh).
        batches = shard_points(self.sample(state, keys))
        if self.aggregator is None and not self.weighting.trainable:
            grad_fn = eqx.filter_value_and_grad(self.objective, has_aux=True)
            (total, (terms, weights, w_state, squared)), grads = grad_fn(
                state.model, batches, state.weighting_state, state.step, keys
            )
            updates, opt_state = self.optimizer.update(grads, state.opt_state,
                                                       params_of(state.model))
        else:
            total, (terms, weights, w_state, squared), updates, opt_state = self.adaptive_update(
                state, batches, keys)
        model = eqx.apply_updates(state.model, updates)
        step = state.step + 1
        sampler_states = self.observe(state, batches, squared, keys)
        sampler_states = {
            n: self.samplers[n].refresh(sampler_states[n], keys[f"refresh/{n}"], step,
                                        self.score_fn(model, n))
            for n in self.names
        } if self.refresh_samplers else sampler_states
        new_state = TrainState(model, opt_state, sampler_states, w_state, keys["next"], step)
        metrics = {"loss": total, "terms": terms, "weights": _summarise(weights)}
        return new_state, metrics

    def observe(self, state: TrainState, batches: dict[str, Batch],
                squared: dict[str, Array], keys: dict[str, Array]) -> dict[str, Any]:
        """Every sampler state after `observe` of this step's batch and its per-point r^2
        (the loss's own, before the update: no extra evaluation). Samplers that do not
        override `observe` (its default is the identity) keep their state as it is. Runs
        every step, also when `refresh_samplers` is off (rounds): it is not a refresh."""
        return {
            n: self.samplers[n].observe(state.sampler_states[n], batches[n], squared[n],
                                        keys[f"observe/{n}"], state.step)
            if self.samplers[n].observes else state.sampler_states[n]
            for n in self.names
        }

    def run(self, state: TrainState, n_steps: int, n_active: Array | int | None = None
            ) -> tuple[TrainState, dict, Array]:
        """`n_steps` iterations under `lax.scan`, of which the first `n_active` (default all;
        may be traced, so one compiled chunk serves every shorter one) are steps and the rest
        pass the state through. A step whose loss is not finite is not applied, nor any step
        after it: the returned state is the last good one (its input may be donated).
        Returns (state, the last applied step's metrics, the first step (1-based, global)
        whose loss was not finite, or -1)."""
        active = n_steps if n_active is None else n_active
        if n_active is None:  # every iteration steps: no branch in the loop body
            def advance(state, last, go):
                return self.step(state)
        else:
            def advance(state, last, go):
                return jax.lax.cond(go, lambda s: self.step(s), lambda s: (s, last), state)

        def body(carry, i):
            state, first_bad, last = carry
            go = (i < active) & (first_bad < 0)
            new, metrics = advance(state, last, go)
            bad = go & ~jnp.isfinite(metrics["loss"])
            first_bad = jnp.where(bad, new.step, first_bad)
            keep = _select(bad, state, new)
            last = _select(go, metrics, last)
            return (keep, first_bad, last), None

        blank = jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, x.dtype),
                                       jax.eval_shape(lambda s: self.step(s)[1], state))
        init = (state, jnp.asarray(-1, jnp.int32), blank)
        (state, first_bad, last), _ = jax.lax.scan(body, init, jnp.arange(n_steps))
        return state, last, first_bad


def _select(pred: Array, on_true: Any, on_false: Any) -> Any:
    """`on_true` where `pred`, else `on_false`, leaf by leaf; non-array leaves (static parts
    of a module) are the same in both and kept as they are."""
    return jax.tree_util.tree_map(
        lambda a, b: jnp.where(pred, a, b) if eqx.is_array(a) else a, on_true, on_false)


def _summarise(weights: dict[str, Array]) -> dict[str, Array]:
    """Scalar per term for logging: the weight itself, or the mean of point-level weights."""
    return {n: jnp.mean(w) for n, w in weights.items()}
