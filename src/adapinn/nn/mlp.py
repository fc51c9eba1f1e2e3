"""Multilayer perceptron trunk and the activation registry shared by all trunks.

`h_0 = x`, `h_l = act(W_l h_{l-1} + b_l)` for `l = 1..depth`, `u = W_out h_depth + b_out`
(Glorot-normal weights, zero biases; each layer optionally weight-factorised, see `linear`).
Reference: e.g. Raissi, Perdikaris, Karniadakis 2019, "Physics-informed neural networks", JCP 378.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.nn.linear import Dense, Factorization, initialisers

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,  # tanh approximation of x * Phi(x)
    "sin": jnp.sin,
    "swish": jax.nn.swish,  # x * sigmoid(x)
}


def get_activation(name: str) -> Callable[[Array], Array]:
    """The activation function called `name`; unknown names raise with the valid ones."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        valid = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"unknown activation {name!r}; valid: {valid}") from None


def dense_stack(
    sizes: list[int],
    key: Array,
    factorization: Factorization | None,
    dtype: jnp.dtype,
    init: str = "glorot_normal",
) -> tuple[Dense, ...]:
    """Dense layers `sizes[0] -> sizes[1] -> ... -> sizes[-1]`, one key each, initialised by
    the scheme `init` (`adapinn.nn.linear.initialisers`)."""
    keys = jax.random.split(key, len(sizes) - 1)
    pairs = zip(sizes[:-1], sizes[1:], keys, strict=True)
    return tuple(dense(i, o, k, factorization, dtype, init) for i, o, k in pairs)


def dense(
    in_size: int,
    out_size: int,
    key: Array,
    factorization: Factorization | None,
    dtype: jnp.dtype,
    init: str = "glorot_normal",
) -> Dense:
    """One `Dense` layer initialised by the scheme `init`."""
    weight_init, bias_init = initialisers(init, in_size)
    return Dense(in_size, out_size, key=key, factorization=factorization, dtype=dtype,
                 weight_init=weight_init, bias_init=bias_init)


class MLP(eqx.Module):
    """`u = W_out act(W_depth ... act(W_1 x + b_1) ... + b_depth) + b_out`.

    Attributes:
        layers: `depth` hidden layers (in -> width -> ... -> width) then the linear output layer.
        activation: name of the hidden activation (see `ACTIVATIONS`).
    """

    layers: tuple[Dense, ...]
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        width: int,
        depth: int,
        *,
        key: Array,
        activation: str = "tanh",
        factorization: Factorization | None = None,
        dtype: jnp.dtype = jnp.float32,
        init: str = "glorot_normal",
    ):
        get_activation(activation)
        sizes = [in_size] + [width] * depth + [out_size]
        self.layers = dense_stack(sizes, key, factorization, dtype, init)
        self.activation = activation

    def __call__(self, x: Array) -> Array:
        """One point x (in_size,) -> (out_size,)."""
        act = get_activation(self.activation)
        for layer in self.layers[:-1]:
            x = act(layer(x))
        return self.layers[-1](x)
