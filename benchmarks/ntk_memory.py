"""Peak memory of one NTK weight refresh at batch 8192 with seed 000's 265K-parameter network.

The refresh needs ||d r(x_i)/d theta||^2 for every point of every term. Materialising all
per-point gradients costs batch x n_params floats (8192 x 264,835 x 4 B = 8.7 GB); the NTK
scheme reduces them `chunk` points at a time (`adapinn.weighting.pointgrads`). This script
reports, for the chunked refresh (and, with --unchunked, the materialising one, compiled
but not run):

  * XLA's buffer assignment (`compiled.memory_analysis()`): arguments + outputs + temporaries,
    the device memory the compiled refresh needs;
  * measured: on a GPU, the allocator's peak bytes in use; on CPU, the growth of the process's
    peak resident memory during the run (compile excluded);
  * the refresh's wall time.

    python benchmarks/ntk_memory.py [--batch 8192] [--chunk 128] [--unchunked]
"""

from __future__ import annotations

import argparse
import resource
import time

import equinox as eqx
import jax
import jax.numpy as jnp

from adapinn.experiments.build import build
from adapinn.experiments.config import build_config
from adapinn.nn import count_parameters
from adapinn.weighting import NTK

GIB = 2**30


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def refresh_fn(trainer, static, chunk: int | None):
    """(model arrays, batches) -> NTK trace estimate of every term (the refresh's work)."""
    scheme = NTK(chunk=chunk if chunk else 1)

    def refresh(arrays, batches):
        model = eqx.combine(arrays, static)
        squared = {n: trainer.problem.residuals(model, n, b.points) for n, b in batches.items()}
        context = trainer.context(model, batches, squared, jnp.asarray(0, jnp.int32))
        if chunk:
            return scheme.traces(context)
        from adapinn.weighting.pointgrads import point_jacobian_sq_norms

        return {n: jnp.mean(point_jacobian_sq_norms(context.point_residual(n), context.params,
                                                    p, None))
                for n, p in context.points.items()}

    return jax.jit(refresh)


def analyse(fn, model, batches) -> tuple:
    compiled = fn.lower(model, batches).compile()
    mem = compiled.memory_analysis()
    total = mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
    return compiled, total, mem.temp_size_in_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument("--unchunked", action="store_true",
                        help="also compile (not run) the materialising refresh")
    args = parser.parse_args()
    config = build_config({
        "problem": {"name": "allen_cahn"}, "weighting": {"name": "ntk", "chunk": args.chunk},
        "network": {"depth": 4, "width": 256, "fourier_features": 256, "factorized": True},
        "train": {"batch_size": args.batch},
    })
    run = build(config, with_reference=False)
    batches = run.trainer.sample(run.state, jax.random.key(0))
    model, static = eqx.partition(run.state.model, eqx.is_array)
    device = jax.devices()[0]
    print(f"device {device.device_kind}; network {count_parameters(run.state.model):,} parameters; "
          f"batch pde {args.batch}, ic {config.train.condition_batch_size}; chunk {args.chunk}")
    fn = refresh_fn(run.trainer, static, args.chunk)
    _, total, temp = analyse(fn, model, batches)
    print(f"chunked refresh, XLA buffers: {total / GIB:.3f} GiB (temporaries {temp / GIB:.3f})")
    rss_before = peak_rss_bytes()
    start = time.perf_counter()
    traces = jax.block_until_ready(fn(model, batches))
    seconds = time.perf_counter() - start
    stats = device.memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        print(f"measured device peak: {stats['peak_bytes_in_use'] / GIB:.3f} GiB")
    print(f"measured peak RSS growth during the refresh: "
          f"{(peak_rss_bytes() - rss_before) / GIB:.3f} GiB (process peak "
          f"{peak_rss_bytes() / GIB:.3f} GiB)")
    print(f"refresh time {seconds:.1f} s; traces " +
          ", ".join(f"{n} {float(t):.4g}" for n, t in traces.items()))
    if args.unchunked:
        _, total, temp = analyse(refresh_fn(run.trainer, static, None), model, batches)
        print(f"unchunked refresh (not run), XLA buffers: {total / GIB:.3f} GiB "
              f"(temporaries {temp / GIB:.3f})")


if __name__ == "__main__":
    main()
