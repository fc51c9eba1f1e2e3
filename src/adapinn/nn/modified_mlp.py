"""Modified MLP: every hidden layer is gated between two encodings of the input.

    U = act(W_u x + b_u),   V = act(W_v x + b_v),   h_0 = x,
    z_l = act(W_l h_{l-1} + b_l),   h_l = z_l * U + (1 - z_l) * V    (l = 1..depth),
    u = W_out h_depth + b_out.

Reference: Wang, Teng, Perdikaris 2021, "Understanding and mitigating gradient flow pathologies
in physics-informed neural networks", SIAM J. Sci. Comput. 43(5). The paper writes
`(1 - z) * U + z * V`; the form above is the same family with U and V relabelled (both gates are
initialised alike).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.nn.linear import Dense, Factorization
from adapinn.nn.mlp import dense, dense_stack, get_activation


class ModifiedMLP(eqx.Module):
    """Modified MLP trunk (see the module docstring for the formula).

    Attributes:
        gate_u, gate_v: the input encoders `in -> width` giving U and V.
        layers: `depth` gated hidden layers (in -> width -> ... -> width) then the linear output.
        activation: name of the activation (see `adapinn.nn.mlp.ACTIVATIONS`).
    """

    gate_u: Dense
    gate_v: Dense
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
        ukey, vkey, lkey = jax.random.split(key, 3)
        self.gate_u = dense(in_size, width, ukey, factorization, dtype, init)
        self.gate_v = dense(in_size, width, vkey, factorization, dtype, init)
        sizes = [in_size] + [width] * depth + [out_size]
        self.layers = dense_stack(sizes, lkey, factorization, dtype, init)
        self.activation = activation

    def __call__(self, x: Array) -> Array:
        """One point x (in_size,) -> (out_size,)."""
        act = get_activation(self.activation)
        u, v = act(self.gate_u(x)), act(self.gate_v(x))
        h = x
        for layer in self.layers[:-1]:
            z = act(layer(h))
            h = z * u + (1 - z) * v
        return self.layers[-1](h)
