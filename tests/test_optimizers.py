"""SOAP and Muon beside Adam, each on its defining property.

SOAP (Vyas et al. 2024, arXiv 2409.11321) is Adam run in the eigenbasis of Shampoo's factors
L = E[G G^T], R = E[G^T G]: its steps match the algorithm written out in numpy (eigh, then one
power iteration + QR per refresh), its first real step from a matrix is the polar factor
-lr U V^T of G = U S V^T, it is Adam where no axis is preconditioned, and, unlike Adam, it is
equivariant to a rotation of a layer's input space. Muon (optax.contrib.muon) orthogonalises the
momentum of a matrix and hands biases to Adam. Both train a PINN from the config."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from adapinn.errors import ConfigError
from adapinn.experiments.build import build
from adapinn.experiments.config import build_config
from adapinn.problems import Box, Condition, Problem, Union, laplacian
from adapinn.train import checkpoint
from adapinn.train.optim import network_optimizer
from adapinn.train.soap import SoapState, soap

LR, B1, B2, EPS = 0.1, 0.95, 0.95, 1e-8


def _data(seed=0, m=4, n=4, k=32, batches=20):
    """W (m, n), b (m,) and a fresh batch (X (n, k), Y (m, k)) per step; the columns of X
    span two decades. Square W and fresh batches keep the factors' eigenvalues distinct (a
    rank-deficient L has a null space that eigh may span by any basis)."""
    rng = np.random.default_rng(seed)
    scale = np.geomspace(3.0, 0.03, n)[:, None]
    return {"w": rng.normal(size=(m, n)), "b": rng.normal(size=m),
            "x": rng.normal(size=(batches, n, k)) * scale,
            "y": rng.normal(size=(batches, m, k))}


def _loss(params, x, y):
    """0.5 mean((W X + b - Y)^2): a quadratic in (W, b), ill-conditioned through X."""
    return 0.5 * jnp.mean((params["w"] @ x + params["b"][:, None] - y) ** 2)


def _trainer(opt):
    """train(params, x, y, steps): the parameters after each of `steps` steps of `opt` on
    `_loss`, batch i at step i (one compiled step for every call)."""
    @jax.jit
    def step(params, state, x, y):
        updates, state = opt.update(jax.grad(_loss)(params, x, y), state, params)
        return optax.apply_updates(params, updates), state

    def train(params, x, y, steps):
        state, path = opt.init(params), []
        for i in range(steps):
            params, state = step(params, state, x[i], y[i])
            path.append(jax.tree_util.tree_map(np.asarray, params))
        return path

    return train


def _numpy_soap(w, b, grad, steps, f):
    """The paper's Algorithms 3-4 with the reference code's first call and bias correction,
    by hand: W (m, n) is preconditioned on both sides, the bias b gets plain Adam."""
    mw, vw, mb, vb = np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)
    ql = qr = None
    path = []
    for call in range(steps):
        g, gb = grad(w, b, call)
        if call == 0:  # only L, R and their eigenvectors (descending)
            lf, rf = (1 - B2) * g @ g.T, (1 - B2) * g.T @ g
            ql, qr = np.linalg.eigh(lf)[1][:, ::-1], np.linalg.eigh(rf)[1][:, ::-1]
        else:
            t = call
            rotated = ql.T @ g @ qr
            mw, vw = B1 * mw + (1 - B1) * g, B2 * vw + (1 - B2) * rotated**2
            n = ql @ ((ql.T @ mw @ qr) / (np.sqrt(vw) + EPS)) @ qr.T
            mb, vb = B1 * mb + (1 - B1) * gb, B2 * vb + (1 - B2) * gb**2
            scale = LR * np.sqrt(1 - B2**t) / (1 - B1**t)
            w, b = w - scale * n, b - scale * mb / (np.sqrt(vb) + EPS)
            lf, rf = B2 * lf + (1 - B2) * g @ g.T, B2 * rf + (1 - B2) * g.T @ g
            if t % f == 0:  # sort by diag(Q^T P Q), permute V alike, one power iteration
                ol = np.argsort(-np.diag(ql.T @ lf @ ql))
                vw, ql = vw[ol], np.linalg.qr(lf @ ql[:, ol])[0]
                orr = np.argsort(-np.diag(qr.T @ rf @ qr))
                vw, qr = vw[:, orr], np.linalg.qr(rf @ qr[:, orr])[0]
        path.append({"w": w, "b": b})
    return path


@pytest.mark.parametrize("f", [1, 3])
def test_soap_follows_the_algorithm_written_out_in_numpy(f):
    d = _data()

    def grad(w, b, i):
        x, y = d["x"][i], d["y"][i]
        r = (w @ x + b[:, None] - y) / y.size
        return r @ x.T, r.sum(axis=1)

    with jax.enable_x64(True):
        params = {"w": jnp.asarray(d["w"]), "b": jnp.asarray(d["b"])}
        got = _trainer(soap(LR, precondition_frequency=f))(params, d["x"], d["y"], 12)
    want = _numpy_soap(d["w"], d["b"], grad, 12, f)
    np.testing.assert_array_equal(got[0]["w"], d["w"])  # the first call only sets the basis
    for step, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g["w"], w["w"], rtol=1e-9, atol=1e-11, err_msg=str(step))
        np.testing.assert_allclose(g["b"], w["b"], rtol=1e-9, atol=1e-11, err_msg=str(step))
    assert np.abs(got[-1]["w"] - d["w"]).max() > 0.1  # it moved


def test_soap_first_real_step_of_a_matrix_is_its_polar_factor():
    """Q_L, Q_R = eigenvectors of G G^T, G^T G are G's singular vectors, so G' = Q_L^T G Q_R
    is diagonal, Adam's first step there is sign(G') and rotated back it is -lr U V^T."""
    d = _data(1, m=6)
    with jax.enable_x64(True):
        g = {"w": jnp.asarray(d["w"]), "b": jnp.asarray(d["b"])}
        opt = soap(LR)
        update = jax.jit(opt.update)
        zero, state = update(g, opt.init(g))
        step, state = update(g, state)  # the same gradient: the parameters did not move
    assert all(np.all(np.asarray(z) == 0) for z in jax.tree_util.tree_leaves(zero))
    u, _, vt = np.linalg.svd(d["w"], full_matrices=False)
    np.testing.assert_allclose(step["w"], -LR * u @ vt, atol=1e-8)
    np.testing.assert_allclose(step["b"], -LR * np.sign(d["b"]), rtol=1e-6)  # Adam's
    assert isinstance(state[0], SoapState) and int(state[0].count) == 2


@pytest.mark.parametrize("max_precond_dim", [3, 10000])
def test_soap_is_adam_on_every_axis_it_does_not_precondition(max_precond_dim):
    """max_precond_dim below both sizes: W gets Adam; biases always do. The one difference is
    where eps sits (m / (sqrt(v) + eps) scaled, against m_hat / (sqrt(v_hat) + eps)): ~1e-8."""
    rng = np.random.default_rng(2)
    grads = [{"w": jnp.asarray(rng.normal(size=(6, 4)), jnp.float32),
              "b": jnp.asarray(rng.normal(size=6), jnp.float32)} for _ in range(8)]
    s_opt, a_opt = soap(LR, max_precond_dim=max_precond_dim), optax.adam(LR, B1, B2, EPS)
    s_update, a_update = jax.jit(s_opt.update), jax.jit(a_opt.update)
    s_state, a_state = s_opt.init(grads[0]), a_opt.init(grads[0])
    _, s_state = s_update(grads[0], s_state)  # SOAP's first call: the basis only
    for g in grads[1:]:
        s_up, s_state = s_update(g, s_state)
        a_up, a_state = a_update(g, a_state)
        np.testing.assert_allclose(s_up["b"], a_up["b"], rtol=1e-5, atol=1e-7)
        if max_precond_dim == 3:
            np.testing.assert_allclose(s_up["w"], a_up["w"], rtol=1e-5, atol=1e-7)
    if max_precond_dim == 10000:  # both sides preconditioned: no longer Adam
        assert np.abs(np.asarray(s_up["w"]) - np.asarray(a_up["w"])).max() > 1e-2


def test_soap_is_equivariant_to_a_rotation_of_the_input_space_and_adam_is_not():
    """Train W on X and W O on O^T X (O orthogonal): the same model, rotated parameters. R
    becomes O^T R O, its eigenbasis O^T Q_R and G' = Q_L^T G Q_R is unchanged, so SOAP's W_t O
    is the rotated run's iterate (Shampoo's invariance, kept by SOAP); Adam's per-coordinate
    scaling breaks it."""
    d = _data(3)
    o = np.linalg.qr(np.random.default_rng(4).normal(size=(4, 4)))[0]
    turned_x = np.einsum("ji,bjk->bik", o, d["x"])  # O^T X per batch
    with jax.enable_x64(True):
        params = {"w": jnp.asarray(d["w"]), "b": jnp.asarray(d["b"])}
        turned = {"w": params["w"] @ o, "b": params["b"]}
        gap = {}
        for name, opt in {"soap": soap(LR, precondition_frequency=2),
                          "adam": optax.adam(LR, B1, B2, EPS)}.items():
            train = _trainer(opt)
            plain, rotated = train(params, d["x"], d["y"], 20), train(turned, turned_x, d["y"], 20)
            gap[name] = max(np.abs(a["w"] @ o - b["w"]).max() for a, b in zip(plain, rotated))
    assert gap["soap"] < 1e-9 and gap["adam"] > 1e-2, gap


def test_muon_orthogonalises_a_matrix_update_and_gives_biases_to_adam():
    """Muon's step of W (m x n) is -lr sqrt(max(1, m/n)) U S' V^T for the (Nesterov) momentum
    U S V^T, with Newton-Schulz's S' near 1 where S spans decades (measured 0.50-0.82 for S
    from 10 to 0.05; Jordan et al. 2024: "~U(0.5, 1.5)"); the bias's step is Nesterov
    Adam's."""
    rng = np.random.default_rng(5)
    u = np.linalg.qr(rng.normal(size=(8, 4)))[0]
    v = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    g = {"w": jnp.asarray(u @ np.diag([10.0, 1.0, 0.3, 0.05]) @ v.T, jnp.float32),
         "b": jnp.asarray(rng.normal(size=8), jnp.float32)}
    opt = network_optimizer("muon", LR)
    step, _ = jax.jit(opt.update)(g, opt.init(g), g)  # (weight decay asks for the params)
    core = -np.asarray(step["w"]) / (LR * np.sqrt(8 / 4))
    s = np.linalg.svd(core, compute_uv=False)
    assert s.min() > 0.4 and s.max() < 1.2 and s.max() / s.min() < 2, s  # G's ratio: 200
    rotated = u.T @ core @ v  # the gradient's singular vectors: diagonal
    assert np.abs(rotated - np.diag(np.diag(rotated))).max() < 1e-3
    adam = optax.adam(LR, nesterov=True)
    adam_step, _ = jax.jit(adam.update)(g, adam.init(g))
    np.testing.assert_allclose(step["b"], adam_step["b"], rtol=1e-6)


def test_the_config_names_the_optimizer():
    assert build_config({}).train.optimizer == "adam"
    assert build_config({"train": {"optimizer": "soap"}}).train.precondition_frequency == 10
    with pytest.raises(ConfigError):
        build_config({"train": {"optimizer": "lamb"}})
    with pytest.raises(ValueError, match="valid: adam, soap, muon"):
        network_optimizer("lamb", 1e-3)


def _poisson() -> Problem:
    """-lap u = 1 on the unit square, u = 0 on x = 0 and x = 1."""
    box = Box((0.0, 0.0), (1.0, 1.0))
    edge = Union(Box((0.0, 0.0), (0.0, 1.0)), Box((1.0, 0.0), (1.0, 1.0)))
    return Problem("poisson", box, {
        "pde": Condition(box, lambda u, x: laplacian(u, x)[1] + 1.0),
        "bc": Condition(edge, lambda u, x: u(x)),
    }, input_names=("x", "y"))


def _short_config(name: str, **train) -> dict:
    return {"network": {"width": 16, "depth": 2},
            "train": {"steps": 200, "batch_size": 64, "condition_batch_size": 16,
                      "lbfgs_steps": 0, "lr": 1e-2, "optimizer": name, **train}}


@pytest.mark.parametrize(("name", "factor"), [("soap", 100.0), ("muon", 30.0)])
def test_a_short_run_from_the_config_trains(tmp_path, name, factor):
    """build(config) with train.optimizer = name, 200 steps, 10 per compiled call as `fit`
    runs them: the loss falls by `factor` from the first chunk's (measured, seed 0, CPU:
    soap 630x, muon 128x; adam 27x). The trained SOAP state survives a checkpoint."""
    run = build(build_config(_short_config(name)), with_reference=False, problem=_poisson())
    soap_states = [s for s in jax.tree_util.tree_leaves(
        run.state.opt_state, is_leaf=lambda s: isinstance(s, SoapState))
        if isinstance(s, SoapState)]
    assert len(soap_states) == (name == "soap")
    chunk = jax.jit(lambda s: run.trainer.run(s, 10)[:2])
    state, metrics = chunk(run.state)
    losses = [float(metrics["loss"])]
    for _ in range(19):
        state, metrics = chunk(state)
        losses.append(float(metrics["loss"]))
    assert int(state.step) == 200 and np.all(np.isfinite(losses))
    assert losses[-1] < losses[0] / factor, losses
    checkpoint.save(tmp_path, state, {"step": 200})
    loaded, _, _ = checkpoint.load(tmp_path, run.state)
    for a, b in zip(jax.tree_util.tree_leaves(loaded.opt_state),
                    jax.tree_util.tree_leaves(state.opt_state), strict=True):
        np.testing.assert_array_equal(a, b)
