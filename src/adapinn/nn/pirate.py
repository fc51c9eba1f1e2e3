"""PirateNet: gated residual blocks whose skip weights start at zero.

With `x_0 = Phi(x)` the embedded input (dimension d), gates `U = act(W_u x_0 + b_u)`,
`V = act(W_v x_0 + b_v)` (width), and for each block l = 1..depth:

    f  = act(W_1 x_{l-1} + b_1),   z_1 = f * U + (1 - f) * V,
    g  = act(W_2 z_1 + b_2),       z_2 = g * U + (1 - g) * V,
    h  = act(W_3 z_2 + b_3),       x_l = alpha_l h + (1 - alpha_l) x_{l-1},

then `u = W_out x_depth + b_out`. `W_1: d -> width`, `W_2: width -> width`, `W_3: width -> d`,
so the residual stream keeps the embedding's dimension d (the paper takes d = width, e.g. 256
Fourier features and width 256). Every `alpha_l` is a trainable scalar initialised at 0, so at
initialisation the network is exactly the affine map `W_out Phi(x) + b_out` of the embedding,
and `pirate_least_squares_init` can fit the last layer to data (the paper's physics-informed
initialisation from the initial condition).

Reference: Wang, Li, Chen, Perdikaris 2024, "PirateNets: physics-informed deep learning with
residual adaptive networks", arXiv 2402.00326 (JMLR 25).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.nn.embeddings import Network
from adapinn.nn.linear import Dense, Factorization
from adapinn.nn.mlp import get_activation


class PirateBlock(eqx.Module):
    """One gated residual block `x -> alpha h(x) + (1 - alpha) x` (formula: module docstring)."""

    dense1: Dense
    dense2: Dense
    dense3: Dense
    alpha: Array
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        size: int,
        width: int,
        *,
        key: Array,
        activation: str = "tanh",
        factorization: Factorization | None = None,
        dtype: jnp.dtype = jnp.float32,
    ):
        k1, k2, k3 = jax.random.split(key, 3)
        opts = {"factorization": factorization, "dtype": dtype}
        self.dense1 = Dense(size, width, key=k1, **opts)
        self.dense2 = Dense(width, width, key=k2, **opts)
        self.dense3 = Dense(width, size, key=k3, **opts)
        self.alpha = jnp.zeros((), dtype)
        self.activation = activation

    def __call__(self, x: Array, u: Array, v: Array) -> Array:
        """x (size,), gates u, v (width,) -> (size,)."""
        act = get_activation(self.activation)
        f = act(self.dense1(x))
        z1 = f * u + (1 - f) * v
        g = act(self.dense2(z1))
        z2 = g * u + (1 - g) * v
        h = act(self.dense3(z2))
        return self.alpha * h + (1 - self.alpha) * x


class PirateNet(eqx.Module):
    """PirateNet trunk on embedded features (see the module docstring).

    Attributes:
        gate_u, gate_v: `in -> width` encoders giving the gates U, V.
        blocks: `depth` residual blocks.
        output: the linear last layer `in -> out`.
    """

    gate_u: Dense
    gate_v: Dense
    blocks: tuple[PirateBlock, ...]
    output: Dense
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
    ):
        get_activation(activation)
        ukey, vkey, okey, *bkeys = jax.random.split(key, 3 + depth)
        opts = {"factorization": factorization, "dtype": dtype}
        self.gate_u = Dense(in_size, width, key=ukey, **opts)
        self.gate_v = Dense(in_size, width, key=vkey, **opts)
        self.blocks = tuple(
            PirateBlock(in_size, width, key=k, activation=activation, **opts) for k in bkeys
        )
        self.output = Dense(in_size, out_size, key=okey, **opts)
        self.activation = activation

    def features(self, x: Array) -> Array:
        """The residual stream `x_depth` (in_size,) fed to the last layer."""
        act = get_activation(self.activation)
        u, v = act(self.gate_u(x)), act(self.gate_v(x))
        for block in self.blocks:
            x = block(x, u, v)
        return x

    def __call__(self, x: Array) -> Array:
        """One embedded point x (in_size,) -> (out_size,)."""
        return self.output(self.features(x))


def _pirate_trunk(net: Network | PirateNet) -> PirateNet:
    trunk = net.trunk if isinstance(net, Network) else net
    if not isinstance(trunk, PirateNet):
        raise TypeError(f"least-squares init needs a PirateNet trunk, got {type(trunk).__name__}")
    return trunk


def _last_features(net: Network | PirateNet, x: Array) -> Array:
    if isinstance(net, Network):
        return net.trunk.features(net.embed(x))
    return net.features(x)


def pirate_least_squares_init(
    net: Network | PirateNet, points: Array, targets: Array
) -> Network | PirateNet:
    """Fit the last layer by least squares so that the network matches `targets` at `points`.

    Solves `min_{W, b} sum_i ||W x_depth(p_i) + b - y_i||^2` (at init `x_depth = Phi(p_i)`, the
    embedding, since every alpha is 0) and returns a new module with that last layer; the rest is
    unchanged. This is the physics-informed initialisation of Wang et al. 2024 (Sec. 4), where the
    points and targets are samples of the initial condition.

    Args:
        net: a `Network` with a `PirateNet` trunk, or a bare `PirateNet`.
        points: (n, in_size) fit points (network inputs).
        targets: (n, out_size) or (n,) target values.

    Returns:
        The same module type with `output` replaced (via `eqx.tree_at`).
    """
    trunk = _pirate_trunk(net)
    feats = jax.vmap(lambda p: _last_features(net, p))(points)  # (n, d)
    n, out_size = feats.shape[0], trunk.output.bias.shape[0]
    y = jnp.reshape(targets, (n, out_size)).astype(feats.dtype)
    design = jnp.concatenate([feats, jnp.ones((n, 1), feats.dtype)], axis=1)
    sol, *_ = jnp.linalg.lstsq(design, y)  # (d + 1, out)
    new_output = trunk.output.with_kernel(sol[:-1].T, sol[-1])
    if isinstance(net, Network):
        return eqx.tree_at(lambda m: m.trunk.output, net, new_output)
    return eqx.tree_at(lambda m: m.output, net, new_output)
