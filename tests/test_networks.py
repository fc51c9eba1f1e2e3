"""Tests of the network family: each test asserts a defining property of one module."""

from __future__ import annotations

from collections.abc import Iterator

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adapinn.errors import ConfigError
from adapinn.experiments.build import build
from adapinn.experiments.config import NetworkConfig, build_config
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
    initial_condition_data,
    pirate_ic_init,
    pirate_least_squares_init,
    siren_bound,
)
from adapinn.problems import Box, Condition, Problem, allen_cahn, first_derivative

TRUNKS = ["mlp", "modified_mlp", "pirate", "siren"]
PERIODIC = ((1, 2.0),)  # Allen-Cahn: (t, x), x periodic with period 2


@pytest.fixture(autouse=True)
def strict_jax() -> Iterator[None]:
    """Rank and dtype promotion errors, restored after each test."""
    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion("strict"):
        yield


@pytest.fixture
def lax_ranks() -> Iterator[None]:
    """Rank promotion allowed again (inside `strict_jax`): domains and PDE residuals broadcast
    (n, d) * (d,)."""
    with jax.numpy_rank_promotion("allow"):
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


def test_pirate_block_and_trunk_match_the_paper_formula_by_hand():
    """Wang et al. 2024: U, V = tanh(W_{u,v} x_0 + b); per block f = tanh(W_1 x + b_1),
    z_1 = f U + (1 - f) V, g = tanh(W_2 z_1 + b_2), z_2 = g U + (1 - g) V,
    h = tanh(W_3 z_2 + b_3), x_l = alpha h + (1 - alpha) x; u = W_out x_L + b_out. Computed in
    float64 numpy from the layers' weights."""
    trunk = PirateNet(6, 2, 8, 2, key=jax.random.key(5), factorization=Factorization())
    trunk = eqx.tree_at(lambda m: [b.alpha for b in m.blocks], trunk,
                        [jnp.asarray(0.3), jnp.asarray(0.7)])
    x0 = np.asarray(jax.random.normal(jax.random.key(6), (6,)), np.float64)

    def affine(layer, v):
        return np.asarray(layer.kernel, np.float64) @ v + np.asarray(layer.bias, np.float64)

    u, v = np.tanh(affine(trunk.gate_u, x0)), np.tanh(affine(trunk.gate_v, x0))
    x = x0
    for block in trunk.blocks:
        f = np.tanh(affine(block.dense1, x))
        z1 = f * u + (1 - f) * v
        g = np.tanh(affine(block.dense2, z1))
        z2 = g * u + (1 - g) * v
        h = np.tanh(affine(block.dense3, z2))
        alpha = float(block.alpha)
        after = alpha * h + (1 - alpha) * x
        got = block(jnp.asarray(x, jnp.float32), jnp.asarray(u, jnp.float32),
                    jnp.asarray(v, jnp.float32))
        np.testing.assert_allclose(got, after, rtol=1e-5, atol=1e-6)
        assert not np.allclose(after, x, atol=1e-3)  # the block does something
        x = after
    np.testing.assert_allclose(trunk(jnp.asarray(x0, jnp.float32)), affine(trunk.output, x),
                               rtol=1e-5, atol=1e-6)


def test_pirate_without_fourier_features_lifts_the_input_to_width():
    """No Fourier features: Phi = tanh(W_p x + b_p) of dimension width, not the 3 embedded
    coordinates; the network is still affine in Phi at init (what least squares needs)."""
    net = small("pirate", fourier_features=0)
    trunk = net.trunk
    assert net.embed(jnp.zeros(2)).shape == (3,)  # (t, cos pi x, sin pi x)
    assert trunk.lift is not None and trunk.lift.kernel.shape == (16, 3)
    assert trunk.output.kernel.shape == (1, 16)
    assert all(b.dense3.kernel.shape == (16, 16) for b in trunk.blocks)
    xs = points(32)
    lifted = jax.vmap(lambda x: jnp.tanh(trunk.lift(net.embed(x))))(xs)
    np.testing.assert_allclose(batch(net, xs), jax.vmap(trunk.output)(lifted), rtol=1e-5,
                               atol=1e-6)
    assert small("pirate").trunk.lift is None  # with Fourier features: the paper's network


def _ic_error(net: Network, problem, n: int = 256) -> float:
    pts = problem.conditions["ic"].domain.sample(jax.random.PRNGKey(9), n)
    return float(jnp.mean(problem.residuals(net, "ic", pts)))


def test_pirate_ic_init_fits_the_initial_condition_held_in_time(lax_ranks):
    problem = allen_cahn()
    net = small("pirate", fourier_features=64, fourier_sigma=2.0)
    fitted = pirate_ic_init(net, problem, jax.random.PRNGKey(0), n_points=256, n_levels=5)
    before, after = _ic_error(net, problem), _ic_error(fitted, problem)
    assert after < 1e-2 * before and after < 1e-3, (before, after)
    # held in time: u(0.5, x) ~ u0(x) too (jaxpi's pi_init_type = "initial_condition")
    x = jnp.linspace(-1.0, 1.0, 64)
    mid = batch(fitted, jnp.stack([jnp.full_like(x, 0.5), x], axis=1))[:, 0]
    assert float(jnp.sqrt(jnp.mean((mid - x**2 * jnp.cos(jnp.pi * x)) ** 2))) < 0.05
    pts, targets = initial_condition_data(problem, jax.random.PRNGKey(0), 10, n_levels=5)
    assert pts.shape == (50, 2) and targets.shape == (50, 1)
    np.testing.assert_allclose(np.unique(np.asarray(pts[:, 0])), np.linspace(0, 1, 5),
                               atol=1e-6)
    face, _ = initial_condition_data(problem, jax.random.PRNGKey(0), 10, n_levels=1)
    assert bool(jnp.all(face[:, 0] == 0.0))


def test_pirate_ic_init_refuses_a_non_dirichlet_or_missing_initial_condition(lax_ranks):
    box, face = Box((0.0, 0.0), (1.0, 1.0)), Box((0.0, 0.0), (0.0, 1.0))
    net = small("pirate")
    velocity = Problem("wave", box, {
        "pde": Condition(box, lambda u, x: u(x)),
        "ic": Condition(face, lambda u, x: first_derivative(u, x, 0)[1] - x[1])})
    with pytest.raises(ValueError, match="u\\(x\\) - g\\(x\\)"):
        pirate_ic_init(net, velocity, jax.random.PRNGKey(0))
    no_ic = Problem("steady", box, {"pde": Condition(box, lambda u, x: u(x))})
    with pytest.raises(ValueError, match="no 'ic' condition"):
        pirate_ic_init(net, no_ic, jax.random.PRNGKey(0))
    with pytest.raises(TypeError, match="PirateNet"):
        pirate_ic_init(small("mlp"), allen_cahn(), jax.random.PRNGKey(0))


def _tiny_config(**network):
    return build_config({"problem": {"name": "allen_cahn"},
                         "network": {"width": 16, "depth": 1, "fourier_features": 32,
                                     **network},
                         "train": {"batch_size": 32, "condition_batch_size": 16}})


def test_build_applies_pirate_ls_init_only_when_asked(lax_ranks):
    plain = build(_tiny_config(name="pirate"), with_reference=False)
    fitted = build(_tiny_config(name="pirate", pirate_ls_init=True), with_reference=False)
    before, after = (_ic_error(r.state.model, r.problem) for r in (plain, fitted))
    assert after < 1e-2 * before, (before, after)
    # same seed, same network but for the last layer
    same = eqx.tree_at(lambda m: m.trunk.output, fitted.state.model,
                       plain.state.model.trunk.output)
    assert eqx.tree_equal(same, plain.state.model)
    with pytest.raises(ConfigError, match="network.name=pirate"):
        build(_tiny_config(name="mlp", pirate_ls_init=True), with_reference=False)
    box = Box((0.0, 0.0), (1.0, 1.0))
    no_ic = Problem("steady", box, {"pde": Condition(box, lambda u, x: u(x))})
    with pytest.raises(ConfigError, match="no 'ic' condition"):
        build(_tiny_config(name="pirate", pirate_ls_init=True), with_reference=False,
              problem=no_ic)


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
def test_input_derivatives_by_jvp_match_reverse_mode_and_the_hessian(name):
    """Nested forward mode (how residuals take u_x, u_xx) agrees with `jax.jacrev` and with
    the diagonal of `jax.hessian`."""
    net = with_alpha(small(name, activation="gelu"), 0.3)
    x = jnp.array([0.4, -0.3])
    hess = jax.hessian(lambda y: net(y)[0])(x)
    assert float(jnp.max(jnp.abs(hess))) > 1e-3  # a curved function: the check has teeth
    for i, e in enumerate(jnp.eye(2)):
        first = lambda y, e=e: jax.jvp(net, (y,), (e,))[1]
        value, d1 = jax.jvp(net, (x,), (e,))
        _, d2 = jax.jvp(first, (x,), (e,))
        np.testing.assert_allclose(d1, jax.jacrev(net)(x) @ e, rtol=1e-4, atol=1e-5)
        scale = float(jnp.max(jnp.abs(hess)))
        np.testing.assert_allclose(d2[0], hess[i, i], rtol=1e-3, atol=1e-4 * scale)


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


def test_fourier_axis_scale_multiplies_each_inputs_frequencies():
    """B_ij ~ N(0, (sigma s_j)^2): the column spread of B follows the per-axis factors, and a
    factor list of the wrong length is refused with both counts named."""
    spec = NetworkConfig(fourier_features=2048, fourier_sigma=2.0, fourier_axis_scale=(1.0, 10.0))
    net = build_network(spec, 2, 1, (), jax.random.key(0))
    freq = np.asarray(next(e for e in net.embeddings if isinstance(e, FourierFeatures)).frequencies)
    np.testing.assert_allclose(freq.std(axis=0), [2.0, 20.0], rtol=0.08)
    with pytest.raises(ValueError, match="3 factors but the Fourier embedding has 2 inputs"):
        build_network(NetworkConfig(fourier_features=8, fourier_axis_scale=(1.0, 1.0, 1.0)), 2, 1,
                      (), jax.random.key(0))


@pytest.mark.parametrize("name", ["mlp", "modified_mlp"])
def test_uniform_fan_in_init_draws_weights_and_biases_within_one_over_sqrt_fan_in(name):
    """PyTorch's / Equinox's default: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), so the
    variance is bound^2 / 3; Glorot normal keeps zero biases and variance 2/(in + out)."""
    spec = lambda init: NetworkConfig(name=name, width=200, depth=2, init=init)
    uniform = build_network(spec("uniform_fan_in"), 3, 1, (), jax.random.key(0)).trunk
    glorot = build_network(spec("glorot_normal"), 3, 1, (), jax.random.key(0)).trunk
    for layer in uniform.layers[:-1]:
        bound = layer.weight.shape[1] ** -0.5
        for leaf in (layer.weight, layer.bias):
            assert float(jnp.max(jnp.abs(leaf))) <= bound
        assert abs(float(jnp.var(layer.weight)) / (bound**2 / 3) - 1) < 0.1
        assert float(jnp.max(jnp.abs(layer.bias))) > 0.8 * bound
    for layer in glorot.layers:
        assert float(jnp.max(jnp.abs(layer.bias))) == 0.0
    for layer in glorot.layers[1:-1]:
        fan_out, fan_in = layer.weight.shape
        assert abs(float(jnp.var(layer.weight)) * (fan_in + fan_out) / 2 - 1) < 0.15


def test_init_other_than_glorot_is_refused_for_trunks_with_their_own():
    with pytest.raises(ValueError, match="keeps its own initialisation"):
        build_network(NetworkConfig(name="siren", init="uniform_fan_in"), 2, 1, (),
                      jax.random.key(0))
