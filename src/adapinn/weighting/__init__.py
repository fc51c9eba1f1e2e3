"""Loss weighting schemes: one file per scheme, all sharing `AbstractWeighting`."""

from adapinn.weighting.base import AbstractWeighting, WeightingContext, global_norm
from adapinn.weighting.causal import Causal
from adapinn.weighting.ema_balance import EMABalance
from adapinn.weighting.fixed import FixedWeights
from adapinn.weighting.gradnorm import GradNorm
from adapinn.weighting.ntk import NTK
from adapinn.weighting.pointwise_gradnorm import PointwiseGradNorm
from adapinn.weighting.rba import RBA
from adapinn.weighting.sa import SelfAdaptive

__all__ = [
    "NTK",
    "RBA",
    "AbstractWeighting",
    "Causal",
    "EMABalance",
    "FixedWeights",
    "GradNorm",
    "PointwiseGradNorm",
    "SelfAdaptive",
    "WeightingContext",
    "global_norm",
]
