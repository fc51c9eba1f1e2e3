"""Sampling cost on a domain with holes: one jitted draw of 4096 interior points (and of the
boundary batch) of the unit square minus four disks (`examples/plate.py`), against one
training step of the default network (MLP, depth 4, width 64) on that problem at batch 4096,
sampling included. Target (issue 11): the interior draw costs < 10% of the step.

Each quantity is the median of `--repeats` timings of `--inner` back-to-back calls (blocked
until ready), after compilation; the step is timed as a compiled chunk of `--inner` steps, the
program `fit` runs.

    python benchmarks/geometry_sampling.py
    python benchmarks/geometry_sampling.py --batch 8192 --repeats 7
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import jax

ROOT = Path(__file__).resolve().parents[1]


def plate_problem():
    spec = importlib.util.spec_from_file_location("plate", ROOT / "examples" / "plate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.plate()


def median_seconds(fn, repeats: int, inner: int) -> float:
    jax.block_until_ready(fn())  # compile / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            out = fn()
        jax.block_until_ready(out)
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--boundary-batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--inner", type=int, default=50)
    args = parser.parse_args()

    from adapinn.experiments.build import build
    from adapinn.experiments.config import build_config
    from adapinn.train.loop import compile_chunk

    problem = plate_problem()
    interior, boundary = problem.conditions["pde"].domain, problem.conditions["bc"].domain
    keys = iter(jax.random.split(jax.random.key(0), 10**6))
    draw = jax.jit(interior.sample, static_argnums=1)
    draw_bc = jax.jit(boundary.sample, static_argnums=1)
    t_interior = median_seconds(lambda: draw(next(keys), args.batch), args.repeats, args.inner)
    t_boundary = median_seconds(lambda: draw_bc(next(keys), args.boundary_batch), args.repeats,
                                args.inner)

    config = build_config({"train": {"batch_size": args.batch,
                                     "condition_batch_size": args.boundary_batch}})
    run = build(config, with_reference=False, problem=problem)
    step_fn, _ = compile_chunk(run.trainer, run.state, args.inner)
    state = run.state

    def chunk():
        nonlocal state
        state = step_fn(state)[0]
        return state.step

    t_step = median_seconds(chunk, args.repeats, 1) / args.inner
    print(f"device: {jax.devices()[0].device_kind}; plate = square - 4 disks; "
          f"acceptance-based oversampling: interior n_free {interior.n_free}")
    print(f"interior draw, {args.batch} points:        {1e3 * t_interior:8.3f} ms")
    print(f"boundary draw, {args.boundary_batch} points:        {1e3 * t_boundary:8.3f} ms")
    print(f"training step (default MLP 4x64, batch {args.batch}, sampling included): "
          f"{1e3 * t_step:8.3f} ms")
    print(f"interior draw / step: {100 * t_interior / t_step:.1f}%   "
          f"(interior + boundary) / step: {100 * (t_interior + t_boundary) / t_step:.1f}%")


if __name__ == "__main__":
    main()
