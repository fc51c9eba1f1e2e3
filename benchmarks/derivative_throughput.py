"""Training-step throughput: adapinn's fused forward pass (`problems.fused`: u, u_t - 1e-4 u_xx
in one pass) against the same step with nested jvps (adapinn before the fused pass) and with
nested reverse-mode `jax.grad` (the common way, jaxpi's).

All steps: Allen-Cahn residual + initial-condition loss, seed 000's network (4 x 256, Fourier +
periodic embedding, weight factorisation, ~265K parameters), Adam, fresh uniform batch. Only
the way u_t, u_x, u_xx are computed differs. FLOPs by XLA's cost analysis of the compiled step.

    python benchmarks/derivative_throughput.py --batch 4096 --steps 20
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from adapinn.experiments.config import NetworkConfig
from adapinn.nn import build_network, count_parameters
from adapinn.problems import allen_cahn, first_derivative, second_derivative


def reverse_residual(net, x):
    """u_t - 1e-4 u_xx + 5u^3 - 5u with jax.grad for every input derivative (jaxpi style)."""
    u = lambda t, y: net(jnp.stack([t, y]))[0]
    u_t = jax.grad(u, argnums=0)(x[0], x[1])
    u_xx = jax.grad(jax.grad(u, argnums=1), argnums=1)(x[0], x[1])
    value = u(x[0], x[1])
    return u_t - 1e-4 * u_xx + 5 * value**3 - 5 * value


def nested_jvp_residual(net, x):
    """The same residual with a jvp for u_t and a nested jvp for u_xx."""
    u = lambda y: net(y)[0]
    _, u_t = first_derivative(u, x, 0)
    value, _, u_xx = second_derivative(u, x, 1)
    return u_t - 1e-4 * u_xx + 5 * value**3 - 5 * value


def make_step(residual_of_batch, optimizer, batch: int):
    problem = allen_cahn()
    ic_points = problem.conditions["ic"].domain

    def loss(model, key):
        k1, k2 = jax.random.split(key)
        pts = problem.domain.sample(k1, batch)
        ic = ic_points.sample(k2, 256)
        r = residual_of_batch(model, pts)
        u0 = jax.vmap(model)(ic)[:, 0]
        u0_true = ic[:, 1] ** 2 * jnp.cos(jnp.pi * ic[:, 1])
        return jnp.mean(r**2) + 100 * jnp.mean((u0 - u0_true) ** 2)

    @eqx.filter_jit
    def step(model, opt_state, key):
        key, sub = jax.random.split(key)
        value, grads = eqx.filter_value_and_grad(loss)(model, sub)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, key, value

    return step


def forward_batch(model, pts):
    problem = allen_cahn()
    return jnp.sqrt(problem.residuals(model, "pde", pts))


def nested_jvp_batch(model, pts):
    return jax.vmap(lambda x: nested_jvp_residual(model, x))(pts)


def reverse_batch(model, pts):
    return jax.vmap(lambda x: reverse_residual(model, x))(pts)


def step_gflop(step, model, opt_state, key) -> float:
    """FLOPs of one compiled step by XLA's cost analysis (independent of machine load)."""
    dynamic, static = eqx.partition(model, eqx.is_array)
    lowered = jax.jit(lambda d, o, k: step(eqx.combine(d, static), o, k)).lower(
        dynamic, opt_state, key)
    cost = lowered.compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return cost["flops"] / 1e9


def measure(name, residual_of_batch, model, batch, steps) -> float:
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    step = make_step(residual_of_batch, optimizer, batch)
    key = jax.random.PRNGKey(0)
    gflop = step_gflop(step, model, opt_state, key)
    model, opt_state, key, value = step(model, opt_state, key)  # compile
    jax.block_until_ready(value)
    start = time.perf_counter()
    for _ in range(steps):
        model, opt_state, key, value = step(model, opt_state, key)
    jax.block_until_ready(value)
    rate = steps / (time.perf_counter() - start)
    print(f"{name:28s} {rate:8.2f} steps/s   {gflop:6.1f} GFLOP/step   "
          f"(loss {float(value):.3e})")
    return rate


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    cfg = NetworkConfig(depth=4, width=256, fourier_features=256, factorized=True)
    model = build_network(cfg, 2, 1, ((1, 2.0),), jax.random.PRNGKey(0))
    print(f"device {jax.devices()[0].device_kind}, batch {args.batch}, "
          f"{count_parameters(model)} parameters")
    fused = measure("fused forward (adapinn)", forward_batch, model, args.batch, args.steps)
    nested = measure("nested jvps", nested_jvp_batch, model, args.batch, args.steps)
    rev = measure("nested reverse (jax.grad)", reverse_batch, model, args.batch, args.steps)
    print(f"fused vs nested reverse: {fused / rev:.2f}x; nested jvps vs nested reverse: "
          f"{nested / rev:.2f}x")


if __name__ == "__main__":
    main()
