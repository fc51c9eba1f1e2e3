"""adapinn: physics-informed neural networks in JAX with adaptive collocation sampling and
adaptive loss weighting."""

from adapinn.experiments.config import RunConfig
from adapinn.experiments.fit import fit
from adapinn.experiments.trained import TrainedModel, load
from adapinn.problems import (
    Box,
    Condition,
    Problem,
    ReferenceData,
    Union,
    first_derivative,
    fused_derivatives,
    gradient,
    laplacian,
    second_derivative,
)

__all__ = [
    "RunConfig", "fit", "load", "TrainedModel", "Box", "Condition", "Problem", "ReferenceData",
    "Union",
    "first_derivative", "fused_derivatives", "gradient", "laplacian", "second_derivative",
]
__version__ = "0.1.0"
