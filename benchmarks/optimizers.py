"""Optimisers at equal steps: Adam, SOAP and Muon on Burgers (the packaged `burgers` config,
`quick` preset, L-BFGS finish off), the same network, batches, schedule and seed; rel. L2
against the reference and milliseconds per step.

Each arm compiles the same program `fit` runs (`Trainer.run` over `--chunk` steps) with
`train.optimizer` set; the chunks run round-robin (adam, soap, muon, adam, ...) so load from
other jobs hits every arm alike, and ms/step is the median chunk time over `--chunk` (compile
excluded). SOAP: Vyas et al. 2024 (arXiv 2409.11321), on PINNs Wang et al. 2025 (arXiv
2502.00604); Muon: `optax.contrib.muon`.

    python benchmarks/optimizers.py                              # 5000 steps per arm
    python benchmarks/optimizers.py --steps 200 --chunk 100      # a smoke run (~30 s, CPU)
    python benchmarks/optimizers.py --lr soap=3e-3 --set train.precondition_frequency=2
"""

from __future__ import annotations

import argparse
import statistics
import time

import equinox as eqx
import jax

OPTIMIZERS = ("adam", "soap", "muon")


def build_chunk(name: str, args: argparse.Namespace):
    """(compiled chunk, initial dynamic state, static part, run) of one optimiser's arm."""
    from adapinn.experiments.build import build
    from adapinn.experiments.presets import resolve

    lr = dict(item.split("=", 1) for item in args.lr)
    overrides = [f"train.optimizer={name}", "train.lbfgs_steps=0", *args.set,
                 *([f"train.lr={lr[name]}"] if name in lr else [])]
    run = build(resolve("burgers", args.preset, overrides))
    dynamic, static = eqx.partition(run.state, eqx.is_array)

    def chunk(dynamic):
        state, metrics, _ = run.trainer.run(eqx.combine(dynamic, static), args.chunk)
        return eqx.filter(state, eqx.is_array), metrics["loss"]

    return jax.jit(chunk).lower(dynamic).compile(), dynamic, static, run


def measure(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """rel. L2, final loss and ms/step (median chunk) of every optimiser after args.steps."""
    from adapinn.train.evaluate import relative_l2

    arms = {name: build_chunk(name, args) for name in args.optimizers}
    states = {name: arm[1] for name, arm in arms.items()}
    times: dict[str, list[float]] = {name: [] for name in arms}
    losses: dict[str, float] = {}
    for _ in range(max(1, args.steps // args.chunk)):
        for name, (compiled, *_rest) in arms.items():
            start = time.perf_counter()
            states[name], loss = compiled(states[name])
            losses[name] = float(jax.block_until_ready(loss))
            times[name].append((time.perf_counter() - start) / args.chunk)
    out = {}
    for name, (_, _, static, run) in arms.items():
        model = eqx.combine(states[name], static).model
        out[name] = {"rel_l2": relative_l2(model, run.reference), "loss": losses[name],
                     "ms_per_step": 1e3 * statistics.median(times[name]),
                     "steps": len(times[name]) * args.chunk}
    return out


def table(results: dict[str, dict[str, float]]) -> str:
    lines = ["| optimizer | steps | rel. L2 | final loss | ms/step (median) |",
             "|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['steps']} | {r['rel_l2']:.3e} | {r['loss']:.3e} | "
                     f"{r['ms_per_step']:.2f} |")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=OPTIMIZERS)
    p.add_argument("--steps", type=int, default=5000, help="steps per optimiser")
    p.add_argument("--chunk", type=int, default=500, help="steps per compiled call")
    p.add_argument("--preset", default="quick")
    p.add_argument("--lr", nargs="*", default=[], metavar="NAME=LR",
                   help="a learning rate for one arm (default: the config's train.lr)")
    p.add_argument("--set", nargs="*", default=[], help="config overrides for every arm")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    results = measure(args)
    print(f"device: {jax.devices()[0].device_kind}; burgers ({args.preset}), "
          f"{args.steps} steps per optimiser, {args.chunk} per compiled call")
    print(table(results))


if __name__ == "__main__":
    main()
