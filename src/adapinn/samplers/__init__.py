"""Collocation samplers: one file per sampler, all sharing the `AbstractSampler` interface."""

from adapinn.samplers.base import AbstractSampler, Batch, ScoreFn, unit_weights
from adapinn.samplers.fixed import Fixed
from adapinn.samplers.glf import GLF
from adapinn.samplers.hardbank import HardBank
from adapinn.samplers.hardbank_stream import StreamingHardBank
from adapinn.samplers.r3 import R3, CausalR3
from adapinn.samplers.rad import RAD
from adapinn.samplers.rar import RARD, RARG
from adapinn.samplers.rsmote import RSmote
from adapinn.samplers.uniform import Uniform

__all__ = [
    "GLF", "R3", "RAD", "RARD", "RARG", "AbstractSampler", "Batch", "CausalR3", "Fixed",
    "HardBank", "RSmote", "ScoreFn", "StreamingHardBank", "Uniform", "unit_weights",
]
