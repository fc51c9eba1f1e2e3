"""Laplacian operators in high dimension (issue: high-dimensional PDEs): time and memory of one
training gradient, d/dtheta mean_i (Delta u_theta(x_i))^2 over a batch of 100 points, for the
4 x 128 tanh MLP, at d = 10, 100, 1000, 10000, per method:

- `hessian_trace`: trace of the reverse-mode Hessian (`jax.hessian`), the textbook baseline;
- `nested_jvp`: `derivatives.nested_laplacian` (d nested forward-mode passes);
- `taylor`: d second-order Taylor series, one per axis, primal shared
  (`operators.taylor_laplacian`);
- `fused`: one fused pass of d + 2 streams (`fused.fused_derivatives` with c_i = 1 on every
  axis: the forward Laplacian without folx's sparsity);
- `folx`: folx's forward Laplacian (`operators.folx_laplacian`, the `exact` operator when
  folx is installed);
- `stde`, `hte`: the unbiased estimators with J = 16 (`operators`).

Time: median of `--repeats` calls after compilation; FLOPs: XLA's cost analysis; memory:
XLA's compiled memory analysis (temporary buffers of the gradient program, MB). Exact methods
are skipped above `--max-exact-dim` (their cost grows as d^2: minutes per call at d = 10000
on 2 cores).

    python benchmarks/operators.py
    python benchmarks/operators.py --dims 10,100 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from adapinn.nn import NetworkSpec, build_network
from adapinn.problems.derivatives import folx_laplacian, nested_laplacian
from adapinn.problems.fused import fused_derivatives
from adapinn.problems.operators import (
    hte_laplacian,
    stde_laplacian,
    taylor_laplacian,
)

EXACT = ("hessian_trace", "nested_jvp", "taylor", "fused", "folx")


def operator(method: str, samples: int):
    """(u, x, key) -> Delta u(x) or its estimate."""
    if method == "hessian_trace":
        return lambda u, x, key: jnp.trace(jax.hessian(u)(x))
    if method == "nested_jvp":
        return lambda u, x, key: nested_laplacian(u, x)[1]
    if method == "taylor":
        return lambda u, x, key: taylor_laplacian(u, x)[1]
    if method == "fused":
        return lambda u, x, key: fused_derivatives(u, x, dict.fromkeys(range(x.shape[0]), 1.0))[2]
    if method == "folx":
        return lambda u, x, key: folx_laplacian(u, x)[1]
    estimate = stde_laplacian if method == "stde" else hte_laplacian
    return lambda u, x, key: estimate(u, x, key, samples)[1]


def measure(method: str, dim: int, batch: int, samples: int, repeats: int) -> dict:
    import equinox as eqx

    net = build_network(NetworkSpec(width=128, depth=4), dim, 1, (), jax.random.key(0))
    points = jax.random.uniform(jax.random.key(1), (batch, dim), minval=-1.0, maxval=1.0)
    keys = jax.random.split(jax.random.key(2), batch)
    op = operator(method, samples)

    params, static = eqx.partition(net, eqx.is_inexact_array)

    def loss(params):
        model = eqx.combine(params, static)

        def u(x):
            return model(x)[0]
        return jnp.mean(jax.vmap(lambda x, k: op(u, x, k))(points, keys) ** 2)

    start = time.perf_counter()
    grad = jax.jit(jax.value_and_grad(loss)).lower(params).compile()
    cost = grad.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    analysis = grad.memory_analysis()
    memory = getattr(analysis, "temp_size_in_bytes", None) if analysis else None
    jax.block_until_ready(grad(params))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(grad(params))
        times.append(time.perf_counter() - t0)
    return {"method": method, "dim": dim, "ms": 1e3 * statistics.median(times),
            "compile_s": compile_s, "gflop": cost.get("flops", float("nan")) / 1e9,
            "temp_mb": None if memory is None else memory / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", default="10,100,1000,10000")
    parser.add_argument("--methods", default="hessian_trace,nested_jvp,taylor,fused,folx,stde,hte")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-exact-dim", type=int, default=1000)
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind}; batch {args.batch}, 4 x 128 tanh, "
          f"J = {args.samples}")
    print(f"{'d':>6} {'method':>14} {'ms/grad':>10} {'GFLOP':>8} {'temp MB':>9} "
          f"{'compile s':>10}")
    for dim in (int(d) for d in args.dims.split(",")):
        for method in args.methods.split(","):
            if method in EXACT and dim > args.max_exact_dim:
                print(f"{dim:>6} {method:>14} {'skipped (d > --max-exact-dim)':>31}")
                continue
            try:
                row = measure(method, dim, args.batch, args.samples, args.repeats)
            except ImportError as err:  # folx is an optional dependency
                print(f"{dim:>6} {method:>14}   skipped ({err})")
                continue
            mem = "n/a" if row["temp_mb"] is None else f"{row['temp_mb']:.1f}"
            print(f"{dim:>6} {method:>14} {row['ms']:>10.2f} {row['gflop']:>8.3f} {mem:>9} "
                  f"{row['compile_s']:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
