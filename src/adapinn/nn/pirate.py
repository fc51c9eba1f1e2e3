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
initialisation from the initial condition; `pirate_ic_init` builds that data from a problem).

Without Fourier features the embedding would be the raw point (d = 2 or 3 coordinates), a
residual stream too narrow for `W_3: width -> d` and a last layer that can only fit affine
functions. `PirateNet(..., lift=True)` (what `build_network` asks for when
`fourier_features == 0`) then makes the embedding a trainable random-feature layer
`Phi(x) = act(W_p x + b_p)` of dimension `width`: our choice, not the paper's (which always
uses Fourier features); it keeps d = width and a least-squares fit over `width` features.

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
from adapinn.problems.base import Problem
from adapinn.problems.domains import Box

_LIFT_SALT = 0x11F7  # the lift's key: fold_in, so the other layers keep their pre-lift keys


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
        lift: with `lift=True`, the layer `in -> width` giving `Phi = act(W_p x + b_p)` (the
            stream then has dimension width); None otherwise (the stream is the input itself).
        gate_u, gate_v: `d -> width` encoders giving the gates U, V.
        blocks: `depth` residual blocks on the stream of dimension d.
        output: the linear last layer `d -> out`.
    """

    gate_u: Dense
    gate_v: Dense
    blocks: tuple[PirateBlock, ...]
    output: Dense
    activation: str = eqx.field(static=True)
    lift: Dense | None = None

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
        lift: bool = False,
    ):
        get_activation(activation)
        ukey, vkey, okey, *bkeys = jax.random.split(key, 3 + depth)  # as before `lift`
        lkey = jax.random.fold_in(key, _LIFT_SALT)
        opts = {"factorization": factorization, "dtype": dtype}
        self.lift = Dense(in_size, width, key=lkey, **opts) if lift else None
        size = width if lift else in_size
        self.gate_u = Dense(size, width, key=ukey, **opts)
        self.gate_v = Dense(size, width, key=vkey, **opts)
        self.blocks = tuple(
            PirateBlock(size, width, key=k, activation=activation, **opts) for k in bkeys
        )
        self.output = Dense(size, out_size, key=okey, **opts)
        self.activation = activation

    def features(self, x: Array) -> Array:
        """The residual stream `x_depth` (d,) fed to the last layer: `x_0 = Phi` (the input, or
        `act(W_p x + b_p)` when lifted), gates `U, V = act(W_{u,v} x_0 + b_{u,v})`, then the
        blocks `x_l = alpha_l h_l + (1 - alpha_l) x_{l-1}` (Wang et al. 2024; the formula in
        the module docstring)."""
        act = get_activation(self.activation)
        if self.lift is not None:
            x = act(self.lift(x))
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


@eqx.filter_jit
def _least_squares(net: Network | PirateNet, points: Array, targets: Array) -> Array:
    """`[W^T; b]` (d + 1, out) minimising `sum_i ||W x_depth(p_i) + b - y_i||^2`."""
    feats = jax.vmap(lambda p: _last_features(net, p))(points)  # (n, d)
    n, out_size = feats.shape[0], _pirate_trunk(net).output.bias.shape[0]
    y = jnp.reshape(targets, (n, out_size)).astype(feats.dtype)
    design = jnp.concatenate([feats, jnp.ones((n, 1), feats.dtype)], axis=1)
    return jnp.linalg.lstsq(design, y)[0]


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
    sol = _least_squares(net, points, jnp.asarray(targets))  # (d + 1, out)
    new_output = trunk.output.with_kernel(sol[:-1].T, sol[-1])
    if isinstance(net, Network):
        return eqx.tree_at(lambda m: m.trunk.output, net, new_output)
    return eqx.tree_at(lambda m: m.output, net, new_output)


def _zero_solution(problem: Problem):
    n = problem.n_outputs
    return problem.solution_fn(lambda x: jnp.zeros((n,), x.dtype))


def _probe_solution(problem: Problem):
    """A non-trivial smooth function, to test that a residual is `u(x) - g(x)`."""
    n = problem.n_outputs
    return problem.solution_fn(
        lambda x: (1.0 + 0.5 * jnp.sin(jnp.sum(x) + jnp.arange(n, dtype=x.dtype)))
    )


def initial_condition_data(
    problem: Problem, key: Array, n_points: int = 512, n_levels: int = 11, name: str = "ic"
) -> tuple[Array, Array]:
    """Fit points and targets for the physics-informed initialisation of a PirateNet.

    The condition `name` must have a residual of the Dirichlet form `r(u, x) = u(x) - g(x)`;
    then `g(x) = -r(0, x)` (checked: `r(p, x) - p(x) = r(0, x)` for a probe function p, else
    ValueError, e.g. for a derivative condition `u_t(0, x) = h(x)`). `n_points` points are drawn
    on the condition's domain with targets `g`. When that domain is a face of the problem's box
    (one fixed axis along which the problem's box extends, time for an initial condition),
    the same points are repeated at `n_levels` equally spaced values of that axis spanning the
    box, with the same targets: the initial condition held constant in time, as the PirateNet
    authors' code does (jaxpi, `examples/allen_cahn/train.py`, `pi_init_type =
    "initial_condition"`: `u0` tiled over every tenth time step); `n_levels=1` keeps the points
    of the condition only. Reference: Wang, Li, Chen, Perdikaris 2024, arXiv 2402.00326
    (physics-informed initialisation: least squares `min_W ||W Phi(X) - Y||` with Y the
    initial condition).

    Args:
        problem: the problem; must have the condition `name`.
        key: PRNG key for the points.
        n_points: points drawn on the condition's domain.
        n_levels: values of the face's fixed axis (1: the face only).
        name: the condition ("ic").

    Returns:
        points (n_points * levels, d) and targets (n_points * levels, n_outputs).
    """
    if name not in problem.conditions:
        raise ValueError(
            f"network.pirate_ls_init fits the last layer to the initial condition, but problem "
            f"{problem.name!r} has no {name!r} condition (it has: "
            f"{', '.join(problem.conditions)})"
        )
    if n_points < 1 or n_levels < 1:
        raise ValueError(f"need n_points >= 1 and n_levels >= 1, got {n_points}, {n_levels}")
    cond = problem.conditions[name]
    face = cond.domain.sample(key, n_points)

    def residual_of(u):
        r = jax.vmap(lambda x: cond.residual(u, x))(face)
        return jnp.reshape(r, (n_points, -1))

    targets = -residual_of(_zero_solution(problem))
    if targets.shape[1] != problem.n_outputs:
        raise ValueError(
            f"condition {name!r} has {targets.shape[1]} residual components per point; the "
            f"least-squares initialisation needs one per output ({problem.n_outputs})"
        )
    probe = _probe_solution(problem)
    probe_values = jnp.reshape(jax.vmap(probe)(face), (n_points, -1))
    if not jnp.allclose(residual_of(probe) - probe_values, -targets, rtol=1e-4, atol=1e-5):
        raise ValueError(
            f"network.pirate_ls_init needs the {name!r} residual to be u(x) - g(x) (a Dirichlet "
            f"initial condition); problem {problem.name!r}'s is not"
        )
    axis = _normal_axis(cond.domain, problem.domain)
    if axis is None or n_levels == 1:
        return face, targets
    low, high = problem.domain.low[axis], problem.domain.high[axis]
    levels = jnp.linspace(low, high, n_levels, dtype=face.dtype)
    points = jnp.concatenate([face.at[:, axis].set(level) for level in levels])
    return points, jnp.tile(targets, (n_levels, 1))


def _normal_axis(face, box: Box) -> int | None:
    """The one axis fixed on `face` (a Box) along which `box` extends, else None."""
    if not isinstance(face, Box):
        return None
    axes = [a for a in range(box.dim)
            if face.low[a] == face.high[a] and box.low[a] < box.high[a]]
    return axes[0] if len(axes) == 1 else None


def pirate_ic_init(
    net: Network, problem: Problem, key: Array, n_points: int = 512, n_levels: int = 11
) -> Network:
    """PirateNet's physics-informed initialisation (Wang et al. 2024, arXiv 2402.00326): the
    last layer solves `min_{W, b} sum_i ||W Phi(x_i) + b - u0(x_i)||^2` over the points and
    targets of `initial_condition_data` (the "ic" condition, held constant along time), by
    `pirate_least_squares_init`. Exact at init, where every alpha is 0 and the network is
    affine in the embedding `Phi`.

    Raises:
        TypeError: the trunk is not a PirateNet.
        ValueError: no "ic" condition, or one not of the form u(x) - g(x).
    """
    _pirate_trunk(net)
    points, targets = initial_condition_data(problem, key, n_points, n_levels)
    return pirate_least_squares_init(net, points, targets)
