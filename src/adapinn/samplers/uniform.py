"""Uniform sampling: fresh i.i.d. uniform points every step (seed 000's baseline)."""

from jax import Array

from adapinn.samplers.base import AbstractSampler, Batch, unit_weights


class Uniform(AbstractSampler):
    """x_i ~ U(domain), i = 1..B, redrawn at every step; no state."""

    def sample(self, state, key: Array, step: Array) -> Batch:
        return unit_weights(self.domain.sample(key, self.batch_size))
