"""Collocation samplers: one file per sampler, all sharing the `AbstractSampler` interface."""

from adapinn.samplers.base import AbstractSampler, Batch, ScoreFn, unit_weights
from adapinn.samplers.fixed import Fixed
from adapinn.samplers.uniform import Uniform

__all__ = ["AbstractSampler", "Batch", "Fixed", "ScoreFn", "Uniform", "unit_weights"]
