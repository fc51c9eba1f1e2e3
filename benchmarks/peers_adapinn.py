"""adapinn's side of `benchmarks/peers.py`: the setups written with adapinn's public API (a
`Problem` as in the README's user-PDE example, a `RunConfig`, `adapinn.fit`).

adapinn has no option that hands a condition a given point array, so each condition lives on
a `GivenPoints` domain (below): the `fixed` sampler (the `pde` term) and the fixed condition
sets (`train.condition_points: fixed`) draw one design of exactly as many points as the
array holds, and `GivenPoints.from_unit` maps such a design onto the array itself (by the
rank of each design point), so every set is the given array, permuted. Every batch is the
whole set (`batch_size` = set size), every step.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from peers import BURGERS_NU, NS_LID, NS_NU, relative_l2, result_record


def _given_points_domain():
    from adapinn.geometry import AbstractDomain, Box

    class GivenPoints(AbstractDomain):
        """A finite point set as a domain: `from_unit` of exactly len(points) unit numbers
        returns every point once (ordered by the ranks of the numbers); of any other count,
        the point at index floor(u * len(points))."""

        points: Array

        @property
        def dim(self) -> int:
            return self.points.shape[1]

        @property
        def n_free(self) -> int:
            return 1

        def from_unit(self, u: Array) -> Array:
            n = self.points.shape[0]
            if u.shape[0] == n:
                return self.points[jnp.argsort(u[:, 0])]
            idx = jnp.clip(jnp.floor(u[:, 0] * n).astype(jnp.int32), 0, n - 1)
            return self.points[idx]

        def contains(self, x: Array, atol: float = 1e-6) -> Array:
            low, high = self.points.min(axis=0), self.points.max(axis=0)
            return jnp.all((x >= low - atol) & (x <= high + atol), axis=-1)

        @property
        def bounding_box(self):
            low, high = np.asarray(self.points).min(axis=0), np.asarray(self.points).max(axis=0)
            return Box(tuple(map(float, low)), tuple(map(float, high)))

        @property
        def measure(self) -> float:
            return float(self.points.shape[0])

    return GivenPoints


def burgers_problem(arrays: dict, reference):
    from adapinn import Box, Condition, Problem, fused_derivatives

    given = _given_points_domain()

    def pde(u, x):  # transport = u_t - nu u_xx, in one fused forward pass with u and u_x
        value, (u_x,), transport = fused_derivatives(u, x, second={1: -BURGERS_NU},
                                                     first={0: 1.0})
        return transport + value * u_x

    sets = {"pde": arrays["points_pde"], "ic": arrays["points_ic"],
            "bc": np.concatenate([arrays["points_bc_xmin"], arrays["points_bc_xmax"]])}
    residuals = {"pde": pde,
                 "ic": lambda u, x: u(x) + jnp.sin(jnp.pi * x[1]),
                 "bc": lambda u, x: u(x)}
    conditions = {k: Condition(given(jnp.asarray(sets[k])), residuals[k],
                               batch_size=len(sets[k])) for k in sets}
    return Problem("peers_burgers1d", Box((0.0, -1.0), (1.0, 1.0)), conditions,
                   input_names=("t", "x"), reference=reference)


def cavity_problem(arrays: dict, reference):
    from adapinn import Box, Condition, Problem, fused_derivatives

    given = _given_points_domain()

    def navier_stokes(u, x):  # viscous = -nu Laplacian, with u and its gradient, in one pass
        w, (dx, dy), viscous = fused_derivatives(u, x, second={0: -NS_NU, 1: -NS_NU})
        mom_x = w[0] * dx[0] + w[1] * dy[0] + dx[2] + viscous[0]
        mom_y = w[0] * dx[1] + w[1] * dy[1] + dy[2] + viscous[1]
        return jnp.stack([mom_x, mom_y, dx[0] + dy[1]])

    def lid(u, x):
        return u(x)[:2] - jnp.stack([NS_LID * x[0] * (1 - x[0]), jnp.zeros_like(x[0])])

    walls = np.concatenate([arrays[f"points_wall_{s}"] for s in ("xmin", "xmax", "ymin")])
    sets = {"pde": arrays["points_pde"], "lid": arrays["points_lid"], "walls": walls,
            "p0": arrays["points_p0"]}
    residuals = {"pde": navier_stokes, "lid": lid, "walls": lambda u, x: u(x)[:2],
                 "p0": lambda u, x: u(x)[2]}
    conditions = {k: Condition(given(jnp.asarray(sets[k])), residuals[k],
                               batch_size=len(sets[k])) for k in sets}
    return Problem("peers_ns2d_c", Box((0.0, 0.0), (1.0, 1.0)), conditions,
                   input_names=("x", "y"), n_outputs=3, output_names=("u", "v", "p"),
                   reference=reference)


def run(job: dict, setup, arrays: dict, job_dir: Path) -> dict:
    import adapinn
    from adapinn import ReferenceData, fit
    from adapinn.experiments.config import build_config

    ref_points, ref_values = arrays["ref_points"], arrays["ref_values"]
    reference = lambda: ReferenceData(jnp.asarray(ref_points), jnp.asarray(ref_values))
    build = burgers_problem if setup.name == "burgers1d" else cavity_problem
    problem = build(arrays, reference)
    steps, chunk = job["steps"], job["chunk"]
    base = {
        "seed": job["seed"],
        "network": {"name": "mlp", "width": 100, "depth": 5, "activation": "tanh",
                    "init": job.get("adapinn_init", "glorot_normal")},
        "weighting": {"name": "fixed", "weights": dict(job.get("adapinn_weights") or {})},
        "sampler": {"name": "fixed", "size": int(setup.sizes["pde"]), "design": "uniform"},
        "train": {"steps": steps, "batch_size": int(setup.sizes["pde"]),
                  "condition_points": "fixed", "lr": job["lr"], "decay_rate": 1.0,
                  "warmup_steps": 0, "lbfgs_steps": 0, "scan_steps": chunk,
                  "eval_every": chunk, "checkpoint_every": steps},
    }
    config = build_config(base, overrides=job.get("adapinn_set") or [])
    out = Path(tempfile.mkdtemp(prefix="run-", dir=job_dir))
    start = time.perf_counter()
    summary = fit(config, out, problem=problem, progress=False)
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r.get("phase") == "adam"]
    intervals, previous_step, previous_time = [], 0, 0.0
    for r in rows:  # wall_time_s: the cumulative time of the compiled chunks (no evaluation)
        intervals.append((r["step"] - previous_step, r["wall_time_s"] - previous_time))
        previous_step, previous_time = r["step"], r["wall_time_s"]
    evals = [[r["step"], r["rel_l2"]] for r in rows]
    # the final model, scored here like the peers' (numpy, same formula)
    final = relative_l2(np.asarray(summary.model(jnp.asarray(ref_points))), ref_values)
    weights = config.weighting.options.get("weights") or {}
    notes = (f"weights {weights or 'all 1'} (mean r^2 per condition), "
             f"{config.network.init} init, "
             f"fused forward-mode derivatives; final rel. L2 by numpy {final:.4g}; fit wall "
             f"{wall:.0f} s; {jax.devices()[0].platform}")
    return result_record("adapinn", job, float(summary["compile_time_s"]), intervals, evals,
                         adapinn.__version__, notes)
