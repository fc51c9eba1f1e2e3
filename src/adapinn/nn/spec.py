"""`NetworkSpec`: every hyperparameter of a network, the one source of its options and
defaults. It is a plain dataclass: `nn` knows nothing of configs, and the run configuration
(`adapinn.experiments.config`) embeds it as its `network` section, where pydantic validates the
types (and `__post_init__` the ranges)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

_POSITIVE = ("width", "depth", "fourier_sigma", "periodic_harmonics", "siren_omega0")


@dataclass
class NetworkSpec:
    """The network: a trunk (`name`) with optional input embeddings and weight factorisation.

    Attributes:
        name: the trunk, one of `adapinn.nn.TRUNKS`.
        width, depth: hidden width and number of hidden layers (PirateNet: blocks).
        activation: hidden activation.
        normalize_inputs: map the non-periodic coordinates from the domain's bounding box to
            [-1, 1] before any other embedding (`BoxScaling`).
        fourier_features: Gaussian Fourier features (even; 0 = off), scale `fourier_sigma`.
        fourier_axis_scale: per-input factors on `fourier_sigma` (one per input of the
            embedding; None = isotropic): B_ij ~ N(0, (sigma s_j)^2), for solutions with one
            fine axis (e.g. sin(20 pi x) beside a slow decay in t).
        periodic: exact periodic embedding on the problem's periodic axes.
        factorized: random weight factorisation W = diag(exp(s)) V (mu, sigma of s).
        siren_omega0: SIREN's frequency factor.
        pirate_ls_init: PirateNet: least-squares fit of the last layer to the initial
            condition (Wang et al. 2024), applied by `adapinn.experiments.build` through
            `adapinn.nn.pirate_ic_init`; needs name="pirate" and a problem with an "ic"
            condition of the form u(x) - g(x) (else a ConfigError when the run is built).
        init: initialisation of the dense layers of `mlp` and `modified_mlp`:
            "glorot_normal" (N(0, 2 / (fan_in + fan_out)) weights, zero biases; DeepXDE's) or
            "uniform_fan_in" (weights and biases U(+-1/sqrt(fan_in)); PyTorch's, Equinox's
            and so jinns' default). PirateNet and SIREN keep their own.
        dtype: parameter dtype (float64 needs `jax.enable_x64`).
    """

    __pydantic_config__ = {"extra": "forbid"}  # read by pydantic where a config embeds this

    name: Literal["mlp", "modified_mlp", "pirate", "siren"] = "mlp"
    width: int = 64
    depth: int = 4
    activation: Literal["tanh", "gelu", "sin", "swish"] = "tanh"
    normalize_inputs: bool = False
    fourier_features: int = 0
    fourier_sigma: float = 1.0
    fourier_axis_scale: tuple[float, ...] | None = None
    fourier_trainable: bool = False
    periodic: bool = True
    periodic_harmonics: int = 1
    periodic_trainable: bool = False
    factorized: bool = False
    factorized_mu: float = 1.0
    factorized_sigma: float = 0.1
    siren_omega0: float = 30.0
    pirate_ls_init: bool = False
    init: Literal["glorot_normal", "uniform_fan_in"] = "glorot_normal"
    dtype: Literal["float32", "float64"] = "float32"

    def __post_init__(self):
        for key in _POSITIVE:
            if not getattr(self, key) > 0:
                raise ValueError(f"network.{key} must be > 0, got {getattr(self, key)!r}")
        if self.fourier_axis_scale is not None and not all(
                s > 0 for s in self.fourier_axis_scale):
            raise ValueError("network.fourier_axis_scale must hold positive factors, got "
                             f"{self.fourier_axis_scale}")
        if self.fourier_features < 0 or self.fourier_features % 2:
            raise ValueError("network.fourier_features must be an even number >= 0, got "
                             f"{self.fourier_features}")
