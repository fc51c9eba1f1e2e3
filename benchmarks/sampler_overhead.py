"""Sampler overhead: seconds per training step of each sampler against uniform, and the extra
memory, at seed 000's settings (Allen-Cahn, batch 4096, pool 50 B, refresh every 200 steps,
the 265K network: depth 4, width 256, 256 Fourier features, factorised weights).

Each sampler's compiled chunk is exactly `refresh_every` steps (so it holds one refresh) of the
same program `fit` runs. All chunks are compiled in one process and timed round-robin
(uniform, hardbank, ..., uniform, hardbank, ...), so load from other jobs hits every sampler
alike; the best (least disturbed) and the median chunk time are reported, the ratio uses the
best. Memory: the sampler state (bytes) and XLA's
temporary buffers of the compiled chunk (`memory_analysis`), against uniform.

Sampler settings make the arms comparable: the hard bank is active from step 0 (start_step=0,
no ramp: the steady state, p = p_max), the set-based samplers hold B points, and the pools of
RAD / RAR are 50 B as for the hard bank.

    python benchmarks/sampler_overhead.py                      # seed 000 scale (GPU)
    python benchmarks/sampler_overhead.py --batch 512 --width 64 --fourier 64 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import equinox as eqx
import jax

SAMPLERS = ("uniform", "hardbank", "hardbank_stream", "rad", "rar_g", "rar_d", "rsmote", "glf")


def sampler_options(name: str, batch: int, pool_mult: int, refresh: int) -> list[str]:
    """Overrides that put every sampler on the same footing (see the module docstring)."""
    pool, common = pool_mult * batch, [f"sampler.refresh_every={refresh}"]
    options = {
        "uniform": [],
        "hardbank": [f"sampler.pool_mult={pool_mult}", "sampler.start_step=0",
                     "sampler.ramp_steps=0", *common],
        "rad": [f"sampler.pool_size={pool}", f"sampler.set_size={batch}", *common],
        "rar_g": [f"sampler.pool_size={pool}", f"sampler.initial_size={batch}",
                  f"sampler.capacity={2 * batch}", *common],
        "rsmote": [f"sampler.set_size={batch}", *common],
        "glf": [f"sampler.set_size={batch}", *common],
    }
    options["rar_d"] = options["rar_g"]
    options["hardbank_stream"] = options["hardbank"]
    return [f"sampler.name={name}", *options.get(name, common)]


def build_chunk(name: str, args: argparse.Namespace):
    """(compiled chunk, state, sampler-state MB, temp MB) for one sampler."""
    from adapinn.experiments.build import build
    from adapinn.experiments.presets import resolve

    overrides = [f"train.batch_size={args.batch}", f"network.width={args.width}",
                 f"network.depth={args.depth}", f"network.fourier_features={args.fourier}",
                 "network.factorized=true", "weighting.name=fixed",
                 *sampler_options(name, args.batch, args.pool_mult, args.refresh_every),
                 *args.set]
    run = build(resolve("allen_cahn", "quick", overrides), with_reference=False)
    dynamic, static = eqx.partition(run.state, eqx.is_array)

    def chunk(dynamic):
        state, metrics, _ = run.trainer.run(eqx.combine(dynamic, static), args.refresh_every)
        return eqx.filter(state, eqx.is_array), metrics["loss"]

    compiled = jax.jit(chunk).lower(dynamic).compile()
    sampler_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(run.state.sampler_states))
    temp = compiled.memory_analysis().temp_size_in_bytes
    return compiled, dynamic, sampler_bytes / 2**20, temp / 2**20


def measure(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Median seconds per step and memory of every sampler, timed round-robin."""
    chunks = {name: build_chunk(name, args) for name in args.samplers}
    states = {name: c[1] for name, c in chunks.items()}
    times: dict[str, list[float]] = {name: [] for name in chunks}
    for rep in range(args.repeats + 1):  # the first round warms up
        for name, (compiled, *_rest) in chunks.items():
            start = time.perf_counter()
            states[name], loss = compiled(states[name])
            jax.block_until_ready(loss)
            if rep:
                times[name].append((time.perf_counter() - start) / args.refresh_every)
    return {name: {"s_per_step": min(times[name]), "median": statistics.median(times[name]),
                   "state_mb": chunks[name][2], "temp_mb": chunks[name][3]}
            for name in chunks}


def table(results: dict[str, dict[str, float]]) -> str:
    base = results.get("uniform")
    lines = ["| sampler | ms/step (best) | ms/step (median) | overhead vs uniform | "
             "sampler state [MB] | XLA temp [MB] | extra memory vs uniform [MB] |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        ratio = f"{r['s_per_step'] / base['s_per_step']:.3f}x" if base else "n/a"
        extra = (r["state_mb"] + r["temp_mb"] - base["state_mb"] - base["temp_mb"]
                 if base else float("nan"))
        lines.append(f"| {name} | {1e3 * r['s_per_step']:.2f} | {1e3 * r['median']:.2f} | "
                     f"{ratio} | "
                     f"{r['state_mb']:.2f} | {r['temp_mb']:.1f} | {extra:+.1f} |")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--fourier", type=int, default=256)
    p.add_argument("--pool-mult", type=int, default=50)
    p.add_argument("--refresh-every", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5, help="timed chunks per sampler")
    p.add_argument("--set", nargs="*", default=[], help="extra config overrides")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    results = measure(args)
    print(f"device: {jax.devices()[0].device_kind}; batch {args.batch}, pool {args.pool_mult}B, "
          f"refresh every {args.refresh_every}, network {args.depth}x{args.width} "
          f"(fourier {args.fourier}), {args.repeats} timed chunks each")
    print(table(results))


if __name__ == "__main__":
    main()
