"""Data-parallel scaling: training steps per second on 1, 2, 4 forced CPU devices for one fixed
global batch (the same compiled chunk `fit` runs: sampling, residuals, update, refresh).

Each device count runs in its own interpreter with
XLA_FLAGS=--xla_force_host_platform_device_count=N set before JAX is imported. Forced CPU
devices share the machine's cores, so this measures the overhead of splitting the batch (and of
the all-reduce) more than a speed-up; on real accelerators each device adds its own compute.

    python benchmarks/scaling.py --devices 1 2 4 --batch 4096 --steps 20 --repeats 5 --rounds 2

Reported: steps/s over all timed chunks (median and best), CPU milliseconds per step (all
threads of the worker: the work a device count costs, which the machine's load does not
change), compile time, and the loss after the run (equal for every device count).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def worker(args: argparse.Namespace) -> dict:
    """Compile one chunk of `args.steps` steps on all visible devices and time it."""
    import jax

    from adapinn.experiments.build import build
    from adapinn.experiments.presets import resolve
    from adapinn.train import sharding
    from adapinn.train.loop import compile_chunk

    overrides = [f"train.batch_size={args.batch}", f"network.width={args.width}",
                 f"network.depth={args.depth}", *args.set]
    run = build(resolve(args.config, None, overrides), with_reference=False)
    mesh = sharding.data_mesh()
    state = sharding.replicate(run.state, mesh)
    call, compile_s = compile_chunk(run.trainer, state, args.steps, mesh)
    state, _, _ = call(state)  # warm-up
    jax.block_until_ready(state)
    times, cpu = [], time.process_time()
    for _ in range(args.repeats):
        start = time.perf_counter()
        state, metrics, _ = call(state)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu
    return {"devices": mesh.size, "compile_s": compile_s, "loss": float(metrics["loss"]),
            "times": times, "cpu_ms_per_step": 1e3 * cpu / (args.repeats * args.steps)}


def launch(n: int, argv: list[str]) -> dict:
    """Run this script as a worker on `n` forced CPU devices; its JSON result."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"}
    proc = subprocess.run([sys.executable, __file__, "--worker", *argv], env=env,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"worker on {n} devices failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict], steps: int) -> dict:
    """Pool the timed chunks of every round of one device count."""
    times = [t for r in runs for t in r["times"]]
    return {"devices": runs[0]["devices"], "loss": runs[-1]["loss"],
            "compile_s": statistics.median(r["compile_s"] for r in runs),
            "steps_per_s_median": steps / statistics.median(times),
            "steps_per_s_best": steps / min(times),
            "cpu_ms_per_step": statistics.median(r["cpu_ms_per_step"] for r in runs)}


def table(rows: list[dict], batch: int) -> str:
    """Markdown table of the results (speed relative to 1 device)."""
    base = rows[0]["steps_per_s_median"]
    lines = ["| devices | points / device | steps/s (median) | steps/s (best) | vs 1 device "
             "| CPU ms / step | compile s | loss after run |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['devices']} | {batch // r['devices']} | "
                     f"{r['steps_per_s_median']:.1f} | {r['steps_per_s_best']:.1f} | "
                     f"{r['steps_per_s_median'] / base:.2f}x | {r['cpu_ms_per_step']:.0f} | "
                     f"{r['compile_s']:.1f} | {r['loss']:.6g} |")
    return "\n".join(lines)


def parse() -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--config", default="burgers")
    p.add_argument("--batch", type=int, default=4096, help="global pde batch (all devices)")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--steps", type=int, default=20, help="steps per compiled chunk")
    p.add_argument("--repeats", type=int, default=5, help="timed chunks per worker")
    p.add_argument("--rounds", type=int, default=2,
                   help="workers per device count, interleaved (1, 2, 4, 1, 2, 4, ...) so that "
                        "a change in machine load hits every device count alike")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    forwarded = [a for a in sys.argv[1:] if a != "--worker"]
    return args, forwarded


def main() -> None:
    args, forwarded = parse()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    runs: dict[int, list[dict]] = {n: [] for n in args.devices}
    for _ in range(args.rounds):
        for n in args.devices:
            runs[n].append(launch(n, forwarded))
    print(table([summarise(runs[n], args.steps) for n in args.devices], args.batch))


if __name__ == "__main__":
    main()
