"""PDE problems: domains, forward-mode derivative operators and the built-in benchmarks."""

from adapinn.problems.allen_cahn import allen_cahn
from adapinn.problems.base import Condition, Problem, ReferenceData
from adapinn.problems.burgers import burgers
from adapinn.problems.data import (
    DataError,
    Observations,
    data_condition,
    load_observations,
    load_reference,
)
from adapinn.problems.derivatives import first_derivative, gradient, laplacian, second_derivative
from adapinn.problems.domains import AbstractDomain, Box, Union
from adapinn.problems.fused import fused_derivatives, taylor_streams
from adapinn.problems.helmholtz import helmholtz
from adapinn.problems.parameters import Parameter, WithParameters, noisy_sensors
from adapinn.problems.poisson_peak import poisson_peak

__all__ = [
    "AbstractDomain", "Box", "Condition", "Problem", "ReferenceData", "Union",
    "Parameter", "WithParameters", "noisy_sensors",
    "DataError", "Observations", "data_condition", "load_observations", "load_reference",
    "allen_cahn", "burgers", "first_derivative", "fused_derivatives", "taylor_streams",
    "gradient", "laplacian", "second_derivative",
    "helmholtz", "poisson_peak",
]
