"""The whole mutable state of a run, one pytree: checkpointed, sharded and donated as a unit."""

from typing import Any

import equinox as eqx
from jax import Array


class TrainState(eqx.Module):
    """Network, optimiser state, per-condition sampler states, weighting state, key, step."""

    model: eqx.Module
    opt_state: Any
    sampler_states: dict[str, Any]
    weighting_state: Any
    key: Array
    step: Array  # int32 scalar: number of optimiser steps taken
