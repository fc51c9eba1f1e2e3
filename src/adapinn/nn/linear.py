"""Dense layer `y = W x + b` with optional random weight factorisation.

Random weight factorisation (Wang, Wang, Perdikaris 2022, "Random weight factorization improves
the training of continuous neural representations", arXiv 2210.01274): each weight matrix is
re-parametrised as `W = diag(exp(s)) V` with a trainable log-scale `s_i ~ N(mu, sigma)` per output
unit and `V = W_0 / exp(s)`, where `W_0` is the ordinary (Glorot) initial weight. The function at
initialisation is therefore unchanged; only the geometry of gradient descent changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

Init = Callable[[Array, tuple[int, ...], jnp.dtype], Array]
"""`init(key, shape, dtype) -> array`; weights have shape (out, in), biases (out,)."""


def glorot_normal(key: Array, shape: tuple[int, ...], dtype: jnp.dtype) -> Array:
    """Glorot (Xavier) normal: `W_ij ~ N(0, 2 / (fan_in + fan_out))` for a (out, in) weight.

    Reference: Glorot and Bengio 2010, "Understanding the difficulty of training deep
    feedforward neural networks".
    """
    fan_out, fan_in = shape
    std = (2.0 / (fan_in + fan_out)) ** 0.5
    return std * jax.random.normal(key, shape, dtype)


def zeros(key: Array, shape: tuple[int, ...], dtype: jnp.dtype) -> Array:
    """All-zero initialiser (the key is unused)."""
    del key
    return jnp.zeros(shape, dtype)


def uniform(bound: float) -> Init:
    """Initialiser drawing every entry from `U(-bound, bound)`."""

    def init(key: Array, shape: tuple[int, ...], dtype: jnp.dtype) -> Array:
        return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)

    return init


INITIALISATIONS = ("glorot_normal", "uniform_fan_in")
"""The schemes `initialisers` knows (the values of `NetworkSpec.init`)."""


def initialisers(name: str, in_size: int) -> tuple[Init, Init]:
    """(weight_init, bias_init) of the scheme `name` for a layer with `in_size` inputs:

    - "glorot_normal": `W ~ N(0, 2 / (fan_in + fan_out))`, `b = 0` (DeepXDE's "Glorot
      normal", adapinn's default);
    - "uniform_fan_in": `W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))` (PyTorch's and Equinox's
      default for `Linear`, hence jinns').
    """
    if name == "glorot_normal":
        return glorot_normal, zeros
    if name == "uniform_fan_in":
        bound = in_size**-0.5
        return uniform(bound), uniform(bound)
    raise ValueError(f"unknown initialisation {name!r}; valid: {', '.join(INITIALISATIONS)}")


@dataclass(frozen=True)
class Factorization:
    """Hyperparameters of random weight factorisation: `s ~ N(mu, sigma)` per output unit.

    Defaults `mu = 1, sigma = 0.1` are those recommended by Wang et al. 2022 for PINNs.
    """

    mu: float = 1.0
    sigma: float = 0.1


class Dense(eqx.Module):
    """Affine layer `y = W x + b`, optionally with `W = diag(exp(s)) V` (weight factorisation).

    Attributes:
        weight: (out, in) — the weight `W` itself, or `V` when factorised.
        bias: (out,).
        scale: (out,) log-scales `s` when factorised, else None.
    """

    weight: Array
    bias: Array
    scale: Array | None

    def __init__(
        self,
        in_size: int,
        out_size: int,
        *,
        key: Array,
        factorization: Factorization | None = None,
        dtype: jnp.dtype = jnp.float32,
        weight_init: Init = glorot_normal,
        bias_init: Init = zeros,
    ):
        """Draw `W_0 = weight_init(...)`; when factorised, `s ~ N(mu, sigma)` and `V = W_0 / e^s`.

        The same key gives the same `W_0` with and without factorisation.
        """
        wkey, bkey, skey = jax.random.split(key, 3)
        w0 = weight_init(wkey, (out_size, in_size), dtype)
        self.bias = bias_init(bkey, (out_size,), dtype)
        if factorization is None:
            self.weight, self.scale = w0, None
        else:
            s = factorization.mu + factorization.sigma * jax.random.normal(skey, (out_size,), dtype)
            self.weight, self.scale = w0 / jnp.exp(s)[:, None], s

    @property
    def kernel(self) -> Array:
        """The effective weight `W` (out, in): `diag(exp(s)) V` when factorised."""
        if self.scale is None:
            return self.weight
        return jnp.exp(self.scale)[:, None] * self.weight

    def __call__(self, x: Array) -> Array:
        """`W x + b` for one input vector x of shape (in,); returns (out,)."""
        return x @ self.kernel.T + self.bias

    def with_kernel(self, kernel: Array, bias: Array) -> Dense:
        """A copy whose effective weight is `kernel` (out, in) and bias `bias` (out,).

        A factorised layer keeps its scales `s` and stores `V = kernel / exp(s)`.
        """
        weight = kernel if self.scale is None else kernel / jnp.exp(self.scale)[:, None]
        new = (weight.astype(self.weight.dtype), bias.astype(self.bias.dtype))
        return eqx.tree_at(lambda d: (d.weight, d.bias), self, new)
