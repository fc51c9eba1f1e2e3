"""The training step's gradient: with weights that depend on the residuals (causal) or on the
network's gradients (GradNorm), the step must differentiate

    L(theta) = sum_k mean_i(w_k,i q_k,i r_k,i(theta)^2)

with the weights w held constant (stop-gradient), i.e. grad L = sum_k w_k grad L_k
(`adapinn.train.trainer` module docstring; Wang, Sankaran, Perdikaris 2024 for causal weights,
Wang, Teng, Perdikaris 2021 for the gradient-norm weights, both detached from the graph). A
dropped stop-gradient adds a (dL/dw)(dw/dtheta) term, which the last test shows is large."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from adapinn.nn import NetworkSpec, build_network
from adapinn.problems import Box, Condition, Problem, first_derivative
from adapinn.samplers import Fixed
from adapinn.train.trainer import Trainer, params_of
from adapinn.weighting import Causal, GradNorm
from adapinn.weighting.causal import causal_chunk_weights, time_chunks

LR = 1e3  # sgd: the step's update is -LR * grad, read back without cancellation error
N_PDE, N_IC = 64, 16


def _problem() -> Problem:
    """u_t + u_x = 0 on [0, 1] x [-1, 1], u(0, x) = sin(pi x)."""

    def pde(u, x):
        return first_derivative(u, x, 0)[1] + first_derivative(u, x, 1)[1]

    box = Box((0.0, -1.0), (1.0, 1.0))
    return Problem("transport", box, {
        "pde": Condition(box, pde),
        "ic": Condition(Box((0.0, -1.0), (0.0, 1.0)), lambda u, x: u(x) - jnp.sin(jnp.pi * x[1])),
    }, input_names=("t", "x"))


def _trainer(weighting, optimizer=None) -> tuple[Trainer, object]:
    problem = _problem()
    samplers = {"pde": Fixed(problem.conditions["pde"].domain, N_PDE, size=N_PDE),
                "ic": Fixed(problem.conditions["ic"].domain, N_IC, size=N_IC)}
    trainer = Trainer(problem, samplers, weighting, optimizer or optax.sgd(LR))
    net = build_network(NetworkSpec(width=16, depth=2), 2, 1, (), jax.random.key(0))
    return trainer, trainer.init(net, jax.random.key(1))


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(tree)])


def _fixed_weight_gradient(trainer: Trainer, model, batches, weights) -> np.ndarray:
    """sum_k grad_theta mean_i(w_k,i q_k,i r_k,i^2) with w given as constants (numpy)."""
    total = None
    for name, batch in batches.items():
        w = jnp.asarray(np.asarray(weights[name]))

        def term(m, name=name, batch=batch, w=w):
            return jnp.mean(w * batch.weights * trainer.problem.residuals(m, name, batch.points))

        g = _flat(params_of(eqx.filter_grad(term)(model)))
        total = g if total is None else total + g
    return total


@pytest.mark.parametrize("weighting", [Causal(n_chunks=4, tol=5.0), GradNorm(every=1)],
                         ids=["causal", "gradnorm"])
def test_step_gradient_is_the_weighted_sum_of_term_gradients(weighting):
    trainer, state = _trainer(weighting)
    batches = trainer.sample(state, trainer.step_keys(state.key))  # fixed full sets
    _, (_, weights, _) = eqx.filter_jit(trainer.loss)(state.model, batches,
                                                      state.weighting_state, state.step)
    w_pde = np.asarray(weights["pde"])
    if isinstance(weighting, Causal):  # weights really vary with the residuals
        assert w_pde.min() < 0.9 * w_pde.max()
    else:
        assert not np.isclose(float(weights["ic"]), 1.0, rtol=1e-2)
    new_state, _ = eqx.filter_jit(trainer.step)(state)
    step_grad = (_flat(params_of(state.model)) - _flat(params_of(new_state.model))) / LR
    want = _fixed_weight_gradient(trainer, state.model, batches, weights)
    scale = np.abs(want).max()
    assert scale > 0
    np.testing.assert_allclose(step_grad, want, rtol=1e-3, atol=1e-4 * scale)
    # the same through Trainer.loss (what the step differentiates)
    grad_loss = eqx.filter_grad(lambda m: trainer.loss(m, batches, state.weighting_state,
                                                       state.step)[0])(state.model)
    np.testing.assert_allclose(_flat(params_of(grad_loss)), want, rtol=1e-3,
                               atol=1e-4 * scale)


def test_a_dropped_stop_gradient_would_change_the_gradient():
    """The check above has teeth: differentiating through the causal weights (no
    stop-gradient) gives a visibly different gradient."""
    weighting = Causal(n_chunks=4, tol=5.0)
    trainer, state = _trainer(weighting)
    batches = trainer.sample(state, trainer.step_keys(state.key))
    points = batches["pde"].points
    chunk = time_chunks(points[:, 0], weighting.n_chunks, state.weighting_state)

    def leaky(m):
        sq = {n: trainer.problem.residuals(m, n, b.points) for n, b in batches.items()}
        w = causal_chunk_weights(sq["pde"], chunk, weighting.n_chunks, weighting.tol)[chunk]
        return jnp.mean(w * sq["pde"]) + jnp.mean(sq["ic"])

    leaked = _flat(params_of(eqx.filter_grad(leaky)(state.model)))
    _, (_, weights, _) = trainer.loss(state.model, batches, state.weighting_state, state.step)
    want = _fixed_weight_gradient(trainer, state.model, batches, weights)
    assert np.linalg.norm(leaked - want) > 0.05 * np.linalg.norm(want)


def test_one_compiled_chunk_runs_any_shorter_count_like_that_many_steps():
    """compile_chunk(…, 8)(state, n) equals n plain steps for n < 8, without compiling again,
    and with donation the input state's buffers are given to the output."""
    from adapinn.train.loop import compile_chunk

    trainer, state = _trainer(GradNorm(every=2), optax.adam(1e-3))
    compiles = [0]

    def listen(event, duration, **kwargs):
        # tracing, lowering or compiling (a persistent-cache hit still traces and lowers)
        compiles[0] += event.startswith("/jax/core/compile/")

    jax.monitoring.register_event_duration_secs_listener(listen)
    call, _ = compile_chunk(trainer, state, 8, donate=True)
    plain = eqx.filter_jit(lambda t, s: t.run(s, 3)[0])(trainer, state)
    mine = jax.tree_util.tree_map(lambda x: x.copy() if eqx.is_array(x) else x, state)
    before = compiles[0]
    short, _, first_bad = call(mine, 3)
    assert compiles[0] == before and int(first_bad) == -1 and int(short.step) == 3
    assert any(x.is_deleted() for x in jax.tree_util.tree_leaves(eqx.filter(mine, eqx.is_array)))
    np.testing.assert_allclose(_flat(eqx.filter(short.model, eqx.is_array)),
                               _flat(eqx.filter(plain.model, eqx.is_array)), rtol=1e-6)
    longer, _, _ = call(short, 8)
    assert int(longer.step) == 11 and compiles[0] == before
    with pytest.raises(ValueError, match="1..8 steps"):
        call(longer, 9)
