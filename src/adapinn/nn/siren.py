"""SIREN: sine activations with a scale-preserving initialisation.

    h_0 = x,   h_l = sin(omega0 (W_l h_{l-1} + b_l))   (l = 1..depth),   u = W_out h_depth + b_out.

Initialisation (Sitzmann et al. 2020, Sec. 3.2 and supplement 1.5): first layer
`W_1 ~ U(-1/n_in, 1/n_in)`; every later layer, the linear output layer included,
`W ~ U(-sqrt(6/n_in)/omega0, sqrt(6/n_in)/omega0)`, which keeps the pre-activations of
`omega0 W h` distributed like N(0, 1) and the activations arcsine-distributed. Biases follow the
reference implementation's default (PyTorch's `U(-1/sqrt(n_in), 1/sqrt(n_in))`).

Reference: Sitzmann, Martel, Bergman, Lindell, Wetzstein 2020, "Implicit neural
representations with periodic activation functions", NeurIPS.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.nn.linear import Dense, Factorization, uniform


def siren_bound(in_size: int, omega0: float, first: bool) -> float:
    """Half-width of the uniform weight init: `1/n_in` (first), `sqrt(6/n_in)/omega0` (later)."""
    return 1.0 / in_size if first else (6.0 / in_size) ** 0.5 / omega0


def _siren_layer(
    in_size: int,
    out_size: int,
    key: Array,
    bound: float,
    factorization: Factorization | None,
    dtype: jnp.dtype,
) -> Dense:
    return Dense(
        in_size,
        out_size,
        key=key,
        factorization=factorization,
        dtype=dtype,
        weight_init=uniform(bound),
        bias_init=uniform(in_size**-0.5),
    )


class Siren(eqx.Module):
    """SIREN trunk (see the module docstring). `activation` options do not apply (always sine).

    Attributes:
        layers: `depth` sine layers (in -> width -> ... -> width) then the linear output layer.
        omega0: frequency factor of the sine layers (30 in the paper).
    """

    layers: tuple[Dense, ...]
    omega0: float = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        width: int,
        depth: int,
        *,
        key: Array,
        omega0: float = 30.0,
        factorization: Factorization | None = None,
        dtype: jnp.dtype = jnp.float32,
    ):
        sizes = [in_size] + [width] * depth + [out_size]
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(
            _siren_layer(i, o, k, siren_bound(i, omega0, first=j == 0), factorization, dtype)
            for j, (i, o, k) in enumerate(zip(sizes[:-1], sizes[1:], keys, strict=True))
        )
        self.omega0 = omega0

    def __call__(self, x: Array) -> Array:
        """One point x (in_size,) -> (out_size,)."""
        for layer in self.layers[:-1]:
            x = jnp.sin(self.omega0 * layer(x))
        return self.layers[-1](x)
