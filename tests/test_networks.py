"""Tests of the network family: each test asserts a defining property of one module."""

from __future__ import annotations

from collections.abc import Iterator

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adapinn.experiments.config import NetworkConfig
from adapinn.nn import (
    MLP,
    Dense,
    Factorization,
    FourierFeatures,
    ModifiedMLP,
    Network,
    PeriodicEmbedding,
    PirateNet,
    Siren,
    build_network,
    count_parameters,
    pirate_least_squares_init,
    siren_bound,
)

TRUNKS = ["mlp", "modified_mlp", "pirate", "siren"]
PERIODIC = ((1, 2.0),)  # Allen-Cahn: (t, x), x periodic with period 2


@pytest.fixture(autouse=True)
def strict_jax() -> Iterator[None]:
    """Rank and dtype promotion errors, restored after each test."""
    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion("strict"):
        yield


def small(name: str, key: int = 0, out_size: int = 1, **options) -> Network:
    """A small network (width 16, depth 2, 16 Fourier features, periodic in x)."""
    fields = {"name": name, "width": 16, "depth": 2, "fourier_features": 16, **options}
    return build_network(NetworkConfig(**fields), 2, out_size, PERIODIC, jax.random.key(key))


def with_alpha(net: Network, alpha: float) -> Network:
    """A PirateNet with every block's alpha set (other trunks unchanged)."""
    if not isinstance(net.trunk, PirateNet):
        return net
    blocks = net.trunk.blocks
    return eqx.tree_at(
        lambda m: [b.alpha for b in m.trunk.blocks], net, [jnp.asarray(alpha)] * len(blocks)
    )


def points(n: int, key: int = 1) -> jax.Array:
    """n points of the Allen-Cahn box [0, 1] x [-1, 1]."""
    u = jax.random.uniform(jax.random.key(key), (n, 2))
    return u * jnp.array([[1.0, 2.0]]) - jnp.array([[0.0, 1.0]])


def batch(net: eqx.Module, xs: jax.Array) -> jax.Array:
    return eqx.filter_jit(lambda m, x: jax.vmap(m)(x))(net, xs)


def test_seed000_network_has_about_265k_parameters():
    cfg = NetworkConfig(
        name="mlp",
        depth=4,
        width=256,
        fourier_features=256,
        fourier_sigma=1.0,
        periodic=True,
        factorized=True,
    )
    net = build_network(cfg, 2, 1, PERIODIC, jax.random.key(0))
    n = count_parameters(net)
    assert 255_000 <= n <= 275_000, n
    # 256*256+256 + 3*(256*256+256) + 257 (dense) + 4*256+1 (scales) + 128*3 (B) + 1 (period)
    assert n == 264_835
    assert net(jnp.zeros(2)).shape == (1,)


def test_count_parameters_counts_inexact_leaves_only():
    lin = eqx.nn.Linear(3, 4, key=jax.random.key(0))
    assert count_parameters(lin) == 16
    assert count_parameters((lin, jnp.arange(5), "name")) == 16


@pytest.mark.parametrize("name", TRUNKS)
def test_periodic_embedding_makes_every_trunk_exactly_periodic(name):
    net = with_alpha(small(name), 0.5)
    xs = points(64)
    shift = jnp.array([[0.0, 2.0]])
    u = batch(net, xs)
    scale = float(jnp.max(jnp.abs(u))) + 1.0
    for k in (-1.0, 1.0, 3.0):
        np.testing.assert_allclose(batch(net, xs + k * shift), u, atol=1e-4 * scale)
    # not periodic in t, and not periodic in x with another period
    assert not np.allclose(batch(net, xs + jnp.array([[0.5, 0.0]])), u, atol=1e-3)
    assert not np.allclose(batch(net, xs + jnp.array([[0.0, 0.5]])), u, atol=1e-3)


def test_periodic_embedding_features():
    emb = PeriodicEmbedding(3, [(2, 4.0)], harmonics=2)
    x = jnp.array([0.3, -0.7, 1.0])
    theta = 2 * jnp.pi * jnp.array([1.0, 2.0]) * 1.0 / 4.0
    expected = jnp.concatenate([x[:2], jnp.cos(theta), jnp.sin(theta)])
    assert emb.out_size == 6
    np.testing.assert_allclose(emb(x), expected, atol=1e-6)
    with pytest.raises(ValueError, match="outside"):
        PeriodicEmbedding(2, [(2, 1.0)])


def _sum_output(net: Network, xs: jax.Array) -> jax.Array:
    return jnp.sum(jax.vmap(net)(xs))


def test_fourier_features_and_periods_are_fixed_by_default():
    net = small("mlp")
    grads = eqx.filter_grad(_sum_output)(net, points(16))
    periodic, fourier = grads.embeddings
    assert isinstance(fourier, FourierFeatures)
    assert not np.any(fourier.frequencies)
    assert not np.any(periodic.period)
    assert np.any(grads.trunk.layers[0].weight)


def test_fourier_features_and_periods_train_when_asked():
    net = small("mlp", fourier_trainable=True, periodic_trainable=True)
    periodic, fourier = eqx.filter_grad(_sum_output)(net, points(16)).embeddings
    assert np.all(np.isfinite(fourier.frequencies)) and np.any(fourier.frequencies)
    assert np.any(periodic.period)


def test_fourier_features_formula_and_scale():
    ff = FourierFeatures(2, 4096, sigma=3.0, key=jax.random.key(0))
    x = jnp.array([0.2, -0.4])
    z = ff.frequencies @ x
    np.testing.assert_allclose(ff(x), jnp.concatenate([jnp.cos(z), jnp.sin(z)]), atol=1e-6)
    assert ff.frequencies.shape == (2048, 2)
    assert abs(float(jnp.std(ff.frequencies)) - 3.0) < 0.1
    with pytest.raises(ValueError, match="even"):
        FourierFeatures(2, 7, sigma=1.0, key=jax.random.key(0))


def test_weight_factorisation_reproduces_the_glorot_layer_at_init():
    key = jax.random.key(3)
    plain = Dense(64, 2048, key=key)
    fact = Dense(64, 2048, key=key, factorization=Factorization(mu=1.0, sigma=0.1))
    assert plain.scale is None and fact.scale is not None
    np.testing.assert_allclose(jnp.exp(fact.scale)[:, None] * fact.weight, fact.kernel)
    np.testing.assert_allclose(fact.kernel, plain.weight, rtol=1e-6)
    x = jax.random.normal(jax.random.key(4), (64,))
    np.testing.assert_allclose(fact(x), plain(x), rtol=1e-5, atol=1e-6)
    # s ~ N(mu, sigma) per output unit; W_0 Glorot normal: std sqrt(2 / (in + out))
    assert abs(float(jnp.mean(fact.scale)) - 1.0) < 0.01
    assert abs(float(jnp.std(fact.scale)) - 0.1) < 0.01
    assert abs(float(jnp.std(plain.weight)) - (2 / (64 + 2048)) ** 0.5) < 1e-3


def test_factorised_network_equals_plain_network_at_init():
    plain, fact = small("mlp"), small("mlp", factorized=True)
    assert count_parameters(fact) == count_parameters(plain) + 2 * 16 + 1
    np.testing.assert_allclose(batch(fact, points(8)), batch(plain, points(8)), atol=1e-5)


def test_pirate_is_affine_in_the_embedding_at_init():
    net = small("pirate")
    assert all(float(b.alpha) == 0.0 for b in net.trunk.blocks)
    xs = points(32)
    affine = jax.vmap(lambda x: net.trunk.output(net.embed(x)))(xs)
    np.testing.assert_allclose(batch(net, xs), affine, rtol=1e-6, atol=1e-7)
    assert not np.allclose(batch(with_alpha(net, 0.5), xs), affine, atol=1e-4)


def test_pirate_least_squares_init_fits_the_initial_condition():
    net = small("pirate", fourier_features=64, fourier_sigma=2.0)
    x = jnp.linspace(-1.0, 1.0, 128)
    fit_points = jnp.stack([jnp.zeros_like(x), x], axis=1)
    u0 = x**2 * jnp.cos(jnp.pi * x)  # Allen-Cahn initial condition
    fitted = pirate_least_squares_init(net, fit_points, u0)
    assert isinstance(fitted, Network)
    residual = batch(fitted, fit_points)[:, 0] - u0
    before = batch(net, fit_points)[:, 0] - u0
    assert float(jnp.sqrt(jnp.mean(residual**2))) < 1e-2 < float(jnp.sqrt(jnp.mean(before**2)))
    # only the last layer changed
    same = eqx.tree_at(lambda m: m.trunk.output, fitted, net.trunk.output)
    assert eqx.tree_equal(same, net)


def test_pirate_least_squares_init_interpolates_with_enough_features():
    trunk = PirateNet(8, 2, 16, 2, key=jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (6, 8))
    ys = jax.random.normal(jax.random.key(2), (6, 2))
    fitted = pirate_least_squares_init(trunk, xs, ys)
    np.testing.assert_allclose(jax.vmap(fitted)(xs), ys, atol=1e-4)
    with pytest.raises(TypeError, match="PirateNet"):
        pirate_least_squares_init(small("mlp"), xs, ys)


def test_siren_initialisation_bounds():
    omega0, width = 30.0, 64
    net = Siren(3, 1, width, 3, key=jax.random.key(0), omega0=omega0)
    kernels = [layer.kernel for layer in net.layers]
    first = 1.0 / 3
    assert siren_bound(3, omega0, first=True) == first
    assert float(jnp.max(jnp.abs(kernels[0]))) <= first
    assert float(jnp.max(jnp.abs(kernels[0]))) > 0.8 * first
    hidden = (6.0 / width) ** 0.5 / omega0
    for w in kernels[1:-1]:
        assert float(jnp.max(jnp.abs(w))) <= hidden
        assert float(jnp.max(jnp.abs(w))) > 0.9 * hidden
    assert float(jnp.max(jnp.abs(kernels[-1]))) <= hidden


def test_siren_layers_are_sines_of_omega0_preactivations():
    net = Siren(2, 1, 8, 1, key=jax.random.key(0), omega0=30.0)
    x = jnp.array([0.1, 0.2])
    hidden, out = net.layers
    expected = out(jnp.sin(30.0 * hidden(x)))
    np.testing.assert_allclose(net(x), expected, rtol=1e-6)


def test_modified_mlp_gates_every_hidden_layer():
    net = ModifiedMLP(4, 3, 16, 3, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (4,))
    assert net(x).shape == (3,)
    u, v = jnp.tanh(net.gate_u(x)), jnp.tanh(net.gate_v(x))
    h = x
    for layer in net.layers[:-1]:
        z = jnp.tanh(layer(h))
        h = z * u + (1 - z) * v
    np.testing.assert_allclose(net(x), net.layers[-1](h), rtol=1e-5, atol=1e-6)
    plain = eqx.tree_at(lambda m: m.layers, MLP(4, 3, 16, 3, key=jax.random.key(0)), net.layers)
    assert not np.allclose(net(x), plain(x), atol=1e-3)


@pytest.mark.parametrize("name", TRUNKS)
def test_float64_network_gives_float64_output(name):
    with jax.enable_x64(True):
        net = small(name, dtype="float64")
        leaves = jax.tree.leaves(eqx.filter(net, eqx.is_inexact_array))
        assert all(leaf.dtype == jnp.float64 for leaf in leaves)
        xs = points(4).astype(jnp.float32)
        assert net(xs[0]).dtype == jnp.float64
        assert batch(net, xs).dtype == jnp.float64


def test_float64_requires_x64():
    with jax.enable_x64(False), pytest.raises(ValueError, match="jax_enable_x64"):
        small("mlp", dtype="float64")


@pytest.mark.parametrize("name", TRUNKS)
def test_input_derivatives_by_jvp_are_finite(name):
    net = with_alpha(small(name, activation="gelu"), 0.3)
    x = jnp.array([0.4, -0.3])
    for e in jnp.eye(2):
        first = lambda y, e=e: jax.jvp(net, (y,), (e,))[1]
        value, d1 = jax.jvp(net, (x,), (e,))
        _, d2 = jax.jvp(first, (x,), (e,))
        assert np.all(np.isfinite(d1)) and np.all(np.isfinite(d2))
        np.testing.assert_allclose(d1, jax.jacrev(net)(x) @ e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", TRUNKS)
def test_networks_work_under_vmap_and_filter_jit(name):
    net = with_alpha(small(name, out_size=3, factorized=True), 0.3)
    xs = points(5)
    out = batch(net, xs)
    assert out.shape == (5, 3)
    loop = jnp.stack([net(x) for x in xs])
    np.testing.assert_allclose(out, loop, rtol=1e-5, atol=1e-6)


def test_network_rejects_batched_input():
    net = small("mlp")
    with pytest.raises(ValueError, match="vmap"):
        net(points(3))


def test_odd_fourier_dimension_is_rejected():
    with pytest.raises(ValueError, match="even"):
        small("mlp", fourier_features=15)


def test_without_embeddings_the_trunk_sees_the_raw_point():
    net = small("mlp", fourier_features=0, periodic=False)
    assert net.embeddings == ()
    x = jnp.array([0.1, 0.2])
    np.testing.assert_allclose(net(x), net.trunk(x))
