"""adapinn side by side with jinns and DeepXDE on the multi-library PINN benchmark's setups.

The setups are those of mia-jinns/PINN-multi-library-benchmark (after PINNacle, Hao et al.
2023, appendix B): Burgers1D and NS2d-C (the lid-driven cavity). Every framework gets

- the same network: 5 hidden layers of 100 tanh units (2 inputs; 1 or 3 outputs), each
  framework's own default initialisation (adapinn and DeepXDE: Glorot normal, zero biases;
  jinns: equinox's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases);
- the same point sets, drawn once here in numpy from `--seed` and handed to every framework
  as arrays (no framework samples anything; every batch is the whole set, every step);
- the same optimiser: Adam at the setup's constant learning rate (no decay), `--steps`
  steps;
- the same evaluation: rel. L2 = ||u_pred - u_ref||_F / ||u_ref||_F pooled over the outputs
  (PINNacle's convention), on the same reference points, every `--chunk` steps, outside the
  timed intervals.

Loss weights: jinns' and DeepXDE's are their own for the setup as that benchmark wrote it
(the table notes them): jinns sums its boundary term over the facets of the cube
(`sum_facets mean_facet r^2`) and the benchmark's Burgers1D script weights it dyn 10, initial
10, boundary 1 (NS2d-C: 1, 1, 1); DeepXDE averages each term, weight 1. adapinn averages each
term over its points and by default takes the weights that make its loss exactly jinns'
(Burgers1D pde 10, ic 10, bc 2; NS2d-C walls 3, the rest 1: `--adapinn-weights jinns`);
`--adapinn-weights equal` gives all 1. `--jinns-weights`, `--adapinn-init` and
`--adapinn-set KEY=VALUE` change the rest (the investigation of issue 16 used them).

Timing: each framework runs in its own subprocess (its own interpreter, thread pools and
allocator; PyTorch with `torch.set_num_threads(--torch-threads)`), in rounds that alternate
the frameworks (`--rounds 2`: adapinn, jinns, deepxde, adapinn, jinns, deepxde). JAX
frameworks compile ahead of time (compile seconds reported apart); DeepXDE's "compile" column
is its first step (PyTorch's warm-up). Training runs in intervals of `--chunk` steps: adapinn
through `adapinn.fit` (one compiled `lax.scan` chunk, its metrics rows give the training time
of each chunk without the evaluations), jinns through `jinns.solve(n_iter=chunk)` compiled
once under `jax.jit`, DeepXDE through one `model.train` with a callback that stamps the
clock at every chunk boundary and stops it while evaluating. ms/step is the median over the
timed intervals (the first interval, warm-up, excluded) with [min-max]; a round's run gives
one such median, the table shows every round.

    python benchmarks/peers.py --setups burgers1d,ns2d_c --steps 2000 --rounds 2 \\
        --frameworks adapinn,jinns,deepxde --python-peers /work/peers-venv/bin/python \\
        --out peers.md

Run it with adapinn's interpreter; `--python-peers` is an interpreter that has jinns and
DeepXDE (with PyTorch), not adapinn: the peers are benchmark-only, never adapinn's
dependencies. The reference grids: Burgers1D from PINNacle's burgers1d.dat (COMSOL, 101 x 11,
`--burgers-reference pinnacle`, the default) or adapinn's Cole-Hopf grid (`adapinn`, 201 x
512); NS2d-C from PINNacle's lid_driven_a4.dat (COMSOL, 10201 nodes, Re = 100).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# PINNacle's reference files as the package ships them (ADAPINN_PINNACLE_DIR overrides)
PINNACLE = Path(os.environ.get(
    "ADAPINN_PINNACLE_DIR", HERE.parent / "src" / "adapinn" / "problems" / "pinnacle" / "data"))
FRAMEWORKS = ("adapinn", "jinns", "deepxde")


@dataclasses.dataclass(frozen=True)
class Setup:
    """One benchmark problem: sizes, optimiser and loss weights as the benchmark wrote them.

    `sizes` are the point counts per set (the keys of `make_points`); `jinns_weights` are
    jinns' LossWeights (dyn_loss, initial_condition or observations, boundary_loss);
    `adapinn_weights` are adapinn's term weights that give jinns' loss exactly (jinns sums
    its boundary term over the facets, adapinn averages each condition over its points)."""

    name: str
    lr: float
    n_outputs: int
    sizes: dict
    jinns_weights: tuple[float, float, float]
    adapinn_weights: dict
    inputs: tuple[str, str]
    description: str


SETUPS = {
    # PINNacle Burgers1d-C: 8192 // 2 domain, 2048 // 2 boundary, 2048 // 2 initial points
    # (the benchmark's `DEFAULT_NUM_*_POINTS`), Adam 1e-4 (40K steps there).
    "burgers1d": Setup(
        "burgers1d", 1e-4, 1,
        {"pde": 4096, "ic": 1024, "bc_xmin": 512, "bc_xmax": 512},
        (10.0, 10.0, 1.0), {"pde": 10.0, "ic": 10.0, "bc": 2.0}, ("t", "x"),
        "u_t + u u_x = (0.01/pi) u_xx on [0,1] x [-1,1], u(0,x) = -sin(pi x), u(t,+-1) = 0"),
    # PINNacle NS2d-C: 8192 // 10 domain, 2048 // 10 boundary points (51 per wall), p(0,0) = 0,
    # Adam 1e-3 (20K steps there).
    "ns2d_c": Setup(
        "ns2d_c", 1e-3, 3,
        {"pde": 819, "wall_xmin": 51, "wall_xmax": 51, "wall_ymin": 51, "lid": 51, "p0": 1},
        (1.0, 1.0, 1.0), {"pde": 1.0, "lid": 1.0, "walls": 3.0, "p0": 1.0}, ("x", "y"),
        "steady NS, Re = 100, [0,1]^2, lid u = 4x(1-x), v = 0; no-slip walls; p(0,0) = 0"),
}
BURGERS_NU = 0.01 / np.pi
NS_NU, NS_LID = 0.01, 4.0


# ----------------------------------------------------------------------------- points, refs


def make_points(setup: Setup, seed: int) -> dict[str, np.ndarray]:
    """The fixed point sets of `setup` (float32, inputs in the order of `setup.inputs`), drawn
    once from numpy's default generator seeded with `seed`: uniform in the interior, uniform
    along each boundary piece. Burgers1D: (t, x); NS2d-C: (x, y)."""
    rng = np.random.default_rng(seed)
    n = setup.sizes
    u = lambda k: rng.uniform(0.0, 1.0, k)
    if setup.name == "burgers1d":
        pts = {
            "pde": np.column_stack([u(n["pde"]), rng.uniform(-1.0, 1.0, n["pde"])]),
            "ic": np.column_stack([np.zeros(n["ic"]), rng.uniform(-1.0, 1.0, n["ic"])]),
            "bc_xmin": np.column_stack([u(n["bc_xmin"]), -np.ones(n["bc_xmin"])]),
            "bc_xmax": np.column_stack([u(n["bc_xmax"]), np.ones(n["bc_xmax"])]),
        }
    elif setup.name == "ns2d_c":
        pts = {
            "pde": np.column_stack([u(n["pde"]), u(n["pde"])]),
            "wall_xmin": np.column_stack([np.zeros(n["wall_xmin"]), u(n["wall_xmin"])]),
            "wall_xmax": np.column_stack([np.ones(n["wall_xmax"]), u(n["wall_xmax"])]),
            "wall_ymin": np.column_stack([u(n["wall_ymin"]), np.zeros(n["wall_ymin"])]),
            "lid": np.column_stack([u(n["lid"]), np.ones(n["lid"])]),
            "p0": np.zeros((1, 2)),
        }
    else:
        raise ValueError(f"unknown setup {setup.name!r}")
    return {k: v.astype(np.float32) for k, v in pts.items()}


def _comsol_times(path: Path) -> list[float]:
    """The `@ t=...` times of a COMSOL text export's column header."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("%") and "@ t=" in line:
            return [float(m) for m in re.findall(r"@ t=([-+0-9.eE]+)", line)]
    raise ValueError(f"{path}: no '@ t=' column header")


def load_reference(setup: Setup, burgers_source: str = "pinnacle") -> tuple[np.ndarray, ...]:
    """(points (n, 2) in the setup's input order, values (n, m)) of the reference solution."""
    if setup.name == "burgers1d":
        if burgers_source == "adapinn":
            from adapinn.reference import compute_reference

            t, x, sol = compute_reference("burgers")
            tt, xx = np.meshgrid(t, x, indexing="ij")
            points = np.column_stack([tt.ravel(), xx.ravel()])
            return points.astype(np.float32), np.asarray(sol, np.float32).reshape(-1, 1)
        path = PINNACLE / "burgers1d.dat"
        data = np.loadtxt(path, comments="%")
        times = _comsol_times(path)
        x, sol = data[:, 0], data[:, 1:]  # (nx,), (nx, nt)
        if sol.shape[1] != len(times):
            raise ValueError(f"{path}: {sol.shape[1]} columns for {len(times)} times")
        tt, xx = np.meshgrid(np.asarray(times), x, indexing="ij")
        points = np.column_stack([tt.ravel(), xx.ravel()])
        values = sol.T.reshape(-1, 1)
    else:
        data = np.loadtxt(PINNACLE / "lid_driven_a4.dat", comments="%")
        points, values = data[:, :2], data[:, 2:5]
    keep = np.isfinite(values).all(axis=1)
    return points[keep].astype(np.float32), values[keep].astype(np.float32)


def relative_l2(pred: np.ndarray, values: np.ndarray) -> float:
    """||pred - values||_F / ||values||_F over all points and outputs (pooled)."""
    pred = np.asarray(pred, np.float64).reshape(values.shape)
    return float(np.linalg.norm(pred - values) / np.linalg.norm(values))


# ----------------------------------------------------------------------------- timing


class Clock:
    """Training time only: `pause()` / `resume()` around evaluations; `lap()` returns the
    training seconds since the previous lap."""

    def __init__(self):
        self.start = self.paused_at = None
        self.excluded = 0.0

    def reset(self):
        self.start, self.paused_at, self.excluded = time.perf_counter(), None, 0.0

    def pause(self):
        self.paused_at = time.perf_counter()

    def resume(self):
        self.excluded += time.perf_counter() - self.paused_at
        self.paused_at = None

    def lap(self) -> float:
        now = time.perf_counter()
        seconds = now - self.start - self.excluded
        self.start, self.excluded = now, 0.0
        return seconds


def result_record(framework: str, job: dict, compile_s: float, intervals: list,
                  evals: list, version: str, notes: str = "") -> dict:
    """A worker's result: `intervals` are (steps, seconds) of the timed chunks in order (the
    first is the warm-up), `evals` (step, rel. L2)."""
    return {"framework": framework, "setup": job["setup"], "version": version,
            "compile_s": compile_s,
            "interval_ms": [1e3 * s / n for n, s in intervals],
            "evals": evals, "steps": job["steps"], "notes": notes,
            "pid": os.getpid()}


# ----------------------------------------------------------------------------- workers


def worker(framework: str, job_dir: Path) -> None:
    """Run one framework on one setup (job.json + arrays.npz in `job_dir`), write
    result.json there."""
    job = json.loads((job_dir / "job.json").read_text())
    with np.load(job_dir / "arrays.npz") as f:
        arrays = {k: f[k] for k in f.files}
    if framework == "adapinn":
        import peers_adapinn as module
    elif framework == "jinns":
        import peers_jinns as module
    elif framework == "deepxde":
        import peers_deepxde as module
    else:
        raise SystemExit(f"unknown framework {framework!r}; valid: {', '.join(FRAMEWORKS)}")
    result = module.run(job, SETUPS[job["setup"]], arrays, job_dir)
    (job_dir / "result.json").write_text(json.dumps(result))


def launch(framework: str, job: dict, arrays: dict, python: str, workdir: Path,
           timeout: float) -> dict:
    """One subprocess for one framework and setup; returns its result (or the error)."""
    job_dir = Path(tempfile.mkdtemp(prefix=f"{framework}-{job['setup']}-", dir=workdir))
    (job_dir / "job.json").write_text(json.dumps(job))
    np.savez(job_dir / "arrays.npz", **arrays)
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if framework == "deepxde":
        env["DDE_BACKEND"] = "pytorch"
    cmd = [python, str(Path(__file__).resolve()), "--worker", framework, "--job", str(job_dir)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        failed = proc.returncode != 0 or not (job_dir / "result.json").exists()
        log = (proc.stdout + proc.stderr)[-4000:] + f"\nexit code {proc.returncode}"
    except subprocess.TimeoutExpired as err:
        failed, log = True, f"timed out after {timeout:.0f} s\n{(err.stderr or '')[-2000:]}"
    wall = time.perf_counter() - start
    (job_dir / "log.txt").write_text(log)
    if failed:
        return {"framework": framework, "setup": job["setup"], "error": log.strip()[-1500:],
                "wall_s": wall}
    result = json.loads((job_dir / "result.json").read_text())
    result["wall_s"] = wall
    return result


# ----------------------------------------------------------------------------- report


def summarise(result: dict) -> dict:
    """median [min, max] ms/step over the timed intervals (warm-up excluded)."""
    timed = result["interval_ms"][1:] or result["interval_ms"]
    return {"median": statistics.median(timed), "min": min(timed), "max": max(timed),
            "n": len(timed)}


def rel_at(result: dict, step: int) -> float | None:
    for s, value in result["evals"]:
        if s == step:
            return value
    return None


def table(results: list[dict], report_steps: list[int]) -> str:
    head = ("| round | framework | setup | ms/step median [min-max] (n) | compile s | "
            + " | ".join(f"rel. L2 @{s}" for s in report_steps) + " |")
    rule = "|" + "---|" * (5 + len(report_steps))
    rows = [head, rule]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['round']} | {r['framework']} | {r['setup']} | failed: "
                        f"{(r['error'].splitlines() or ['no output'])[-1][:80]} | | "
                        + " | ".join("" for _ in report_steps) + " |")
            continue
        s = summarise(r)
        rels = [rel_at(r, step) for step in report_steps]
        rows.append(
            f"| {r['round']} | {r['framework']} {r['version']} | {r['setup']} | "
            f"{s['median']:.1f} [{s['min']:.1f}-{s['max']:.1f}] ({s['n']}) | "
            f"{r['compile_s']:.1f} | "
            + " | ".join("n/a" if v is None else f"{v:.3g}" for v in rels) + " |")
    return "\n".join(rows)


def load_text(load: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in load)


# ----------------------------------------------------------------------------- main


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setups", default="burgers1d,ns2d_c",
                   help=f"comma-separated, of {', '.join(SETUPS)}")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                   help=f"comma-separated, of {', '.join(FRAMEWORKS)}; run in this order")
    p.add_argument("--steps", type=int, default=2000, help="Adam steps per run")
    p.add_argument("--rounds", type=int, default=2, help="runs per framework, alternating")
    p.add_argument("--chunk", type=int, default=100,
                   help="steps per timed interval (and evaluation cadence); divides --steps")
    p.add_argument("--report-steps", default=None,
                   help="steps whose rel. L2 the table shows (default: steps/4, /2, steps)")
    p.add_argument("--seed", type=int, default=0, help="points and network initialisation")
    p.add_argument("--python-peers", default="/work/peers-venv/bin/python",
                   help="interpreter with jinns and DeepXDE (benchmark-only packages)")
    p.add_argument("--python-adapinn", default=sys.executable,
                   help="interpreter with adapinn (default: this one)")
    p.add_argument("--torch-threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--burgers-reference", choices=("pinnacle", "adapinn"), default="pinnacle")
    p.add_argument("--jinns-weights", default=None,
                   help="jinns LossWeights dyn,initial-or-observations,boundary (default: the "
                        "benchmark's, Burgers1D 10,10,1; NS2d-C 1,1,1)")
    p.add_argument("--jinns-init", choices=("equinox", "glorot"), default="equinox",
                   help="jinns' initialisation: equinox's default (the benchmark's) or "
                        "Glorot normal with zero biases (adapinn's and DeepXDE's)")
    p.add_argument("--adapinn-weights", choices=("jinns", "equal"), default="jinns",
                   help="adapinn's term weights: jinns' loss exactly (the default: Burgers1D "
                        "pde 10, ic 10, bc 2; NS2d-C walls 3, the rest 1) or all 1")
    p.add_argument("--adapinn-init", choices=("glorot_normal", "uniform_fan_in"),
                   default="glorot_normal",
                   help="adapinn's network.init: its default (Glorot normal, as DeepXDE) or "
                        "U(+-1/sqrt(fan_in)) weights and biases (as jinns / Equinox)")
    p.add_argument("--adapinn-set", action="append", default=[], metavar="KEY=VALUE",
                   help="an adapinn config override (as `adapinn run --set`), repeatable, "
                        "e.g. weighting.weights.bc=0.2 or network.normalize_inputs=true")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    p.add_argument("--out", default=None, help="also write the markdown table to this file")
    p.add_argument("--json", default=None, help="write every run's raw result to this file")
    p.add_argument("--keep", default=None, help="keep the job folders under this folder")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--job", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv)
    if args.worker:
        worker(args.worker, Path(args.job))
        return
    setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    for name in setups:
        if name not in SETUPS:
            raise SystemExit(f"unknown setup {name!r}; valid: {', '.join(SETUPS)}")
    for name in frameworks:
        if name not in FRAMEWORKS:
            raise SystemExit(f"unknown framework {name!r}; valid: {', '.join(FRAMEWORKS)}")
    if args.steps % args.chunk or args.steps < 2 * args.chunk:
        raise SystemExit(f"--chunk {args.chunk} must divide --steps {args.steps} at least twice")
    report_steps = ([int(s) for s in args.report_steps.split(",")] if args.report_steps
                    else sorted({args.steps // 4 // args.chunk * args.chunk or args.chunk,
                                 args.steps // 2 // args.chunk * args.chunk, args.steps}))
    jinns_weights = ([float(w) for w in args.jinns_weights.split(",")]
                     if args.jinns_weights else None)
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="peers-"))
    workdir.mkdir(parents=True, exist_ok=True)

    load_start, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M:%S")
    inputs = {}
    for name in setups:
        setup = SETUPS[name]
        points = make_points(setup, args.seed)
        ref_points, ref_values = load_reference(setup, args.burgers_reference)
        inputs[name] = {**{f"points_{k}": v for k, v in points.items()},
                        "ref_points": ref_points, "ref_values": ref_values}
    results = []
    for round_ in range(1, args.rounds + 1):
        for name in setups:
            for framework in frameworks:
                job = {"setup": name, "steps": args.steps, "chunk": args.chunk,
                       "seed": args.seed, "lr": SETUPS[name].lr,
                       "torch_threads": args.torch_threads,
                       "jinns_weights": jinns_weights, "jinns_init": args.jinns_init,
                       "adapinn_set": args.adapinn_set,
                       "adapinn_weights": (SETUPS[name].adapinn_weights
                                           if args.adapinn_weights == "jinns" else {}),
                       "adapinn_init": args.adapinn_init}
                python = args.python_adapinn if framework == "adapinn" else args.python_peers
                print(f"[round {round_}] {framework} {name} ... (load "
                      f"{load_text(os.getloadavg())})", flush=True)
                r = launch(framework, job, inputs[name], python, workdir, args.timeout)
                r["round"] = round_
                results.append(r)
                if "error" in r:
                    print(f"    failed: {r['error'].splitlines()[-1] if r['error'] else ''}",
                          flush=True)
                else:
                    s = summarise(r)
                    print(f"    {s['median']:.1f} ms/step [{s['min']:.1f}-{s['max']:.1f}], "
                          f"compile {r['compile_s']:.1f} s, rel. L2 @{args.steps} "
                          f"{rel_at(r, args.steps):.3g} ({r['wall_s']:.0f} s)", flush=True)
    load_end = os.getloadavg()

    notes = [f"- {name}: {SETUPS[name].description}; Adam lr {SETUPS[name].lr:g} (constant); "
             + ", ".join(f"{k} {v}" for k, v in SETUPS[name].sizes.items()) + " points"
             for name in setups]
    for r in results:
        if r.get("notes") and r["round"] == 1:
            notes.append(f"- {r['framework']} {r['setup']}: {r['notes']}")
    text = "\n".join([
        f"# Peers: adapinn, jinns, DeepXDE ({started})",
        "",
        f"`python benchmarks/peers.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
        "",
        f"Machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or ''} "
        f"{platform.machine()}; load average (1, 5, 15 min) at start {load_text(load_start)}, "
        f"at end {load_text(load_end)}. {args.steps} steps, timed in intervals of "
        f"{args.chunk} (first excluded), seed {args.seed}, Burgers reference: "
        f"{args.burgers_reference}.",
        "",
        table(results, report_steps),
        "",
        *notes,
        "",
    ])
    print()
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
