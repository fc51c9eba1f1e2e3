"""Loss weighting schemes: one file per scheme, all sharing `AbstractWeighting`."""

from adapinn.weighting.base import AbstractWeighting, WeightingContext, global_norm
from adapinn.weighting.fixed import FixedWeights
from adapinn.weighting.gradnorm import GradNorm

__all__ = ["AbstractWeighting", "FixedWeights", "GradNorm", "WeightingContext", "global_norm"]
