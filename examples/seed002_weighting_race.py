"""Seed 002's three-mode race: uniform averaging vs per-point grad-norm vs SA-PINN.

Regression of the sharp central transition u*(x) = tanh(x / 0.05) on [-1, 1] from 30 evenly
spaced points (the "pde" condition is the misfit r(x) = u(x) - u*(x)). Uniform averaging
under-weights the few points on the transition; the per-point schemes re-weight them:

    uniform             L = mean_i r_i^2
    pointwise_gradnorm  L = mean_i w_i r_i^2,  w_i ~ 1 / ||d r_i^2 / d theta||, mean 1, floored
    sa (SA-PINN)        L = mean_i lambda_i^2 r_i^2, lambda ascends (Adam, lr 5e-3)

All three start from the same network and take the same Adam steps. Prints the mean |r| on the
centre points (|x| < 0.15) and the outer ones, their ratio, and the relative L2 error on a
dense grid; saves the plot to `seed002_weighting_race.png` (or --out). Runs in well under a
minute on a laptop CPU.

    python examples/seed002_weighting_race.py [--steps 1000] [--out race.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import optax
from jax import Array

from adapinn.experiments.config import NetworkConfig
from adapinn.nn import build_network
from adapinn.problems.base import Condition, Problem
from adapinn.problems.domains import Box
from adapinn.samplers import Fixed, unit_weights
from adapinn.train.trainer import Trainer
from adapinn.weighting import AbstractWeighting, FixedWeights, PointwiseGradNorm, SelfAdaptive

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WIDTH = 0.05  # transition width of the target
N_POINTS = 30
CENTRE = 0.15  # |x| below this counts as the centre


def target(x: Array) -> Array:
    """u*(x) = tanh(x / 0.05) for one point x of shape (1,)."""
    return jnp.tanh(x[0] / WIDTH)


def regression_problem() -> Problem:
    """Fit u to u* on [-1, 1]: one condition "pde" with residual u(x) - u*(x)."""
    box = Box((-1.0,), (1.0,))
    return Problem(name="tanh_regression", domain=box,
                   conditions={"pde": Condition(box, lambda u, x: u(x) - target(x))},
                   input_names=("x",), exact=target)


class Grid(Fixed):
    """The fixed set of `size` evenly spaced points on the box (endpoints included)."""

    def init(self, key: Array) -> Array:
        low, high = self.domain.low[0], self.domain.high[0]
        return jnp.linspace(low, high, self.size)[:, None]


def race_trainer(weighting: AbstractWeighting, problem: Problem, lr: float) -> Trainer:
    """Adam on the 30-point grid (the whole set every step, as SA-PINN needs)."""
    grid = Grid(problem.domain, N_POINTS, size=N_POINTS)
    return Trainer(problem, {"pde": grid}, weighting, optax.adam(lr))


def train(weighting: AbstractWeighting, steps: int, lr: float, seed: int):
    """Train from the seed's network; returns (model, final weights of the 30 points)."""
    problem = regression_problem()
    net = build_network(NetworkConfig(width=32, depth=3), 1, 1, (), jax.random.key(seed))
    trainer = race_trainer(weighting, problem, lr)
    state = trainer.init(net, jax.random.key(seed + 1))
    state, _, _ = eqx.filter_jit(lambda t, s: t.run(s, steps))(trainer, state)
    batch = {"pde": unit_weights(state.sampler_states["pde"])}
    squared = {"pde": problem.residuals(state.model, "pde", batch["pde"].points)}
    context = trainer.context(state.model, batch, squared, state.step)
    weights, _ = trainer.weighting.update(state.weighting_state, context)
    return state.model, jnp.broadcast_to(weights["pde"], (N_POINTS,))


def report(name: str, model, points: Array, dense: Array) -> dict[str, float]:
    """Centre and outer mean |r| on the training points, their ratio, and dense rel. L2."""
    r = jnp.abs(jax.vmap(lambda x: model(x)[0] - target(x))(points))
    centre = jnp.abs(points[:, 0]) < CENTRE
    u, u_star = jax.vmap(lambda x: model(x)[0])(dense), jax.vmap(target)(dense)
    out = {"centre": float(jnp.mean(r[centre])), "outer": float(jnp.mean(r[~centre])),
           "rel_l2": float(jnp.linalg.norm(u - u_star) / jnp.linalg.norm(u_star))}
    out["ratio"] = out["centre"] / out["outer"]
    print(f"{name:20s} centre |r| {out['centre']:.3e}  outer |r| {out['outer']:.3e}  "
          f"centre/outer {out['ratio']:8.2f}  rel. L2 (dense) {out['rel_l2']:.3e}")
    return out


def plot(results: dict, points: Array, dense: Array, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(dense[:, 0], jax.vmap(target)(dense), "k--", label="target")
    for name, (model, weights) in results.items():
        axes[0].plot(dense[:, 0], jax.vmap(lambda x, m=model: m(x)[0])(dense), label=name)
        r = jnp.abs(jax.vmap(lambda x, m=model: m(x)[0] - target(x))(points))
        axes[1].semilogy(points[:, 0], r, "o-", ms=3, label=name)
        axes[2].plot(points[:, 0], weights / jnp.mean(weights), "o-", ms=3, label=name)
    axes[0].plot(points[:, 0], jax.vmap(target)(points), "k.", label="training points")
    axes[0].set(title="fit", xlabel="x")
    axes[1].set(title="|residual| at the training points", xlabel="x")
    axes[2].set(title="point weights / their mean", xlabel="x")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("seed002_weighting_race.png"))
    args = parser.parse_args()
    points = jnp.linspace(-1.0, 1.0, N_POINTS)[:, None]
    dense = jnp.linspace(-1.0, 1.0, 1001)[:, None]
    schemes = {"uniform": FixedWeights(), "grad-norm (point)": PointwiseGradNorm(),
               "SA-PINN": SelfAdaptive()}
    results = {}
    print(f"target tanh(x/{WIDTH}), {N_POINTS} evenly spaced points, {args.steps} Adam steps")
    for name, weighting in schemes.items():
        start = time.perf_counter()
        results[name] = train(weighting, args.steps, args.lr, args.seed)
        report(name, results[name][0], points, dense)
        print(f"{'':20s} ({time.perf_counter() - start:.1f} s)")
    plot(results, points, dense, args.out)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
