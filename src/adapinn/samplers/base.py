"""The sampler interface: hyperparameters in the module, everything that changes in `state`.

    state  = sampler.init(key)
    batch  = sampler.sample(state, key, step)            # inside the jitted step
    state  = sampler.refresh(state, key, step, score_fn) # every `refresh_every` steps, in jit
    state  = sampler.observe(state, batch, r2, key, step) # every step, after the update

`observe` sees the step's own batch and its per-point squared residuals r^2, computed by the
loss before the parameter update (so a sampler that reacts to them, R3, costs no extra
evaluation); the default is the identity, and the trainer calls it only for samplers that
override it (`observes`).

`score_fn(points) -> |r|` evaluates the current residual magnitude of this sampler's condition
on any (n, d) array of points, chunked so that memory stays bounded whatever n is. State shapes
never change (a growing set is a fixed-capacity buffer plus a mask), so the step compiles once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.problems.domains import AbstractDomain

ScoreFn = Callable[[Array], Array]
"""Maps points (n, d) to non-negative residual magnitudes |r| of shape (n,)."""


class Batch(eqx.Module):
    """Collocation points and their loss weights (1 unless importance weighting is on).

    `replaced` (B,) bool, only from samplers with persistent slots (`AbstractSampler.slots`):
    the slots whose point was replaced since the previous batch, so that a weighting carrying
    one value per point with the point (RBA) resets it there. None: no slot was replaced.
    """

    points: Array  # (B, d)
    weights: Array  # (B,)
    replaced: Array | None = None  # (B,) bool


def unit_weights(points: Array) -> Batch:
    return Batch(points, jnp.ones(points.shape[0], points.dtype))


class AbstractSampler(eqx.Module):
    """Draws the collocation batch of one condition.

    Attributes:
        domain: where points live.
        batch_size: number of points `sample` returns.
        refresh_every: period of `update` in steps; 0 means never. Subclasses declare their
            own hyperparameters after it, all with defaults.
    """

    domain: AbstractDomain
    batch_size: int = eqx.field(static=True)
    refresh_every: int = eqx.field(static=True, default=0)

    @property
    def fixed_set_size(self) -> int | None:
        """Size of the one point set this sampler keeps for the whole run (None: its points
        move). Weightings with one weight per point need such a set."""
        return None

    @property
    def slots(self) -> int | None:
        """Number of persistent slots when every batch is this sampler's whole point set,
        slot i always in row i, with `Batch.replaced` marking the slots refilled since the
        previous batch (None: batches are drawn otherwise). Weightings that carry one value
        per point with the point (RBA) need it; a fixed set is the case with no replacement."""
        return None

    @property
    def observes(self) -> bool:
        """This sampler overrides `observe` (the trainer hands it every step's residuals)."""
        return type(self).observe is not AbstractSampler.observe

    def init(self, key: Array) -> Any:
        """Initial state (a pytree of arrays; may be empty)."""
        return ()

    def sample(self, state: Any, key: Array, step: Array) -> Batch:
        """Draw one batch of `batch_size` points."""
        raise NotImplementedError

    def update(self, state: Any, key: Array, step: Array, score_fn: ScoreFn) -> Any:
        """Refresh the state from residuals; called every `refresh_every` steps."""
        return state

    def observe(self, state: Any, batch: Batch, squared_residuals: Array, key: Array,
                step: Array) -> Any:
        """React to the step's own residuals; called after every optimiser step.

        Args:
            state: the state `batch` was drawn from.
            batch: this step's batch, (B, d) points.
            squared_residuals: r^2 per point of `batch`, shape (B,) (summed over the residual's
                components), evaluated before the update, stop-gradient.
            key: this sampler's "observe/NAME" key of the step.
            step: the step at which `batch` was drawn (int32 scalar).

        Returns:
            The next state (same structure, shapes and dtypes). Default: `state` unchanged.
        """
        return state

    def refresh(self, state: Any, key: Array, step: Array, score_fn: ScoreFn) -> Any:
        """`update` when `step` is a positive multiple of `refresh_every`, under `lax.cond`."""
        if self.refresh_every <= 0:
            return state
        due = (step > 0) & (step % self.refresh_every == 0)
        return jax.lax.cond(
            due, lambda s: self.update(s, key, step, score_fn), lambda s: s, state
        )
