"""The sampler interface: hyperparameters in the module, everything that changes in `state`.

    state  = sampler.init(key)
    batch  = sampler.sample(state, key, step)            # inside the jitted step
    state  = sampler.refresh(state, key, step, score_fn) # every `refresh_every` steps, in jit

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
    """Collocation points and their loss weights (1 unless importance weighting is on)."""

    points: Array  # (B, d)
    weights: Array  # (B,)


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

    def init(self, key: Array) -> Any:
        """Initial state (a pytree of arrays; may be empty)."""
        return ()

    def sample(self, state: Any, key: Array, step: Array) -> Batch:
        """Draw one batch of `batch_size` points."""
        raise NotImplementedError

    def update(self, state: Any, key: Array, step: Array, score_fn: ScoreFn) -> Any:
        """Refresh the state from residuals; called every `refresh_every` steps."""
        return state

    def refresh(self, state: Any, key: Array, step: Array, score_fn: ScoreFn) -> Any:
        """`update` when `step` is a positive multiple of `refresh_every`, under `lax.cond`."""
        if self.refresh_every <= 0:
            return state
        due = (step > 0) & (step % self.refresh_every == 0)
        return jax.lax.cond(
            due, lambda s: self.update(s, key, step, score_fn), lambda s: s, state
        )
