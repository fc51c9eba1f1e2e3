"""Command line: `adapinn run | compare | bench | reference | predict | export | list`.
Errors a user can fix are printed as one clear message (exit code 2), never as a
traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from adapinn.errors import ConfigError


def _run(args) -> int:
    from adapinn.experiments.fit import fit
    from adapinn.experiments.presets import resolve
    from adapinn.train import distributed

    # Before any JAX computation: join the other processes of a multi-host job, if any.
    distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                           args.init_timeout)
    config = resolve(args.config, args.preset, args.set or [], args.seed)
    out = Path(args.out or Path("runs") / f"{config.problem.name}-{config.sampler.name}"
               f"-s{config.seed}")
    summary = fit(config, out, resume=args.resume, overwrite=args.overwrite,
                  progress=not args.no_progress, devices=args.devices)
    if not distributed.is_main_process():
        return 0
    print(f"run folder: {out}")
    for key in ("rel_l2", "best_rel_l2", "train_time_s", "compile_time_s", "steps_per_s",
                "peak_rss_mb"):
        value = summary[key]
        print(f"  {key:15s} {value:.4g}" if isinstance(value, float) else f"  {key:15s} {value}")
    return 0


def _compare(args) -> int:
    import shlex

    from adapinn.experiments.compare import compare

    plan = compare(args.config, args.samplers, args.weightings, args.seeds, args.budget_steps,
                   args.budget_seconds, args.set or [], args.preset, args.out,
                   command=shlex.join(["adapinn", *sys.argv[1:]]),
                   equal_time=args.equal_time, at_steps=args.at_steps or (),
                   targets=args.targets or (), arms_file=args.arms)
    failed = [a.folder for a, status in plan.status.items() if status == "failed"]
    if failed:
        print(f"adapinn: {len(failed)} arm(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _numbers(kind: type) -> Callable[[str], list]:
    """An argparse type: '1e-3,2e-4' -> [0.001, 0.0002] (with `kind` float)."""
    def parse(text: str) -> list:
        try:
            return [kind(float(t)) for t in text.split(",") if t.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a comma list of numbers, e.g. 30000,50000") from None
    return parse


def _compare_parser(sub) -> None:
    """`adapinn compare`: samplers x weightings x seeds on equal step or time budgets."""
    cmp = sub.add_parser("compare", help="compare samplers on equal step or time budgets")
    cmp.add_argument("config", help="packaged config name or a YAML file (the problem)")
    arms = cmp.add_mutually_exclusive_group(required=True)
    arms.add_argument("--samplers", metavar="LIST",
                      help="comma list of samplers, each NAME or NAME:key=value:..., "
                           "e.g. uniform,hardbank:start_step=0,rad")
    arms.add_argument("--arms", metavar="FILE",
                      help="YAML file: arm name -> {sampler: ..., weighting: ...} (arms that "
                           "differ in more than the sampler); replaces --samplers/--weightings")
    cmp.add_argument("--weightings", metavar="LIST",
                     help="comma list of weightings (default: the config's)")
    cmp.add_argument("--seeds", type=int, default=1, metavar="N", help="seeds 0..N-1")
    budget = cmp.add_mutually_exclusive_group(required=True)
    budget.add_argument("--budget-steps", type=int, metavar="S",
                        help="Adam steps per arm (train.eval_every and checkpoint_every are "
                             "fitted to S unless --set)")
    budget.add_argument("--budget-seconds", type=float, metavar="T",
                        help="training seconds per arm (compute-normalised)")
    cmp.add_argument("--equal-time", action="store_true",
                     help="with --budget-steps S: the first sampler (or arm) runs S steps, every "
                          "other arm gets its training time (same seed)")
    cmp.add_argument("--at-steps", type=_numbers(int), metavar="LIST",
                     help="report rel. L2 at these steps too, e.g. 30000,50000,90000")
    cmp.add_argument("--targets", type=_numbers(float), metavar="LIST",
                     help="report the training time to reach these rel. L2, e.g. 1e-3,2e-4")
    cmp.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config key in every arm (repeatable); the L-BFGS "
                          "finish is off unless --set train.lbfgs_steps=N")
    cmp.add_argument("--preset", help="preset of the config (default: quick when offered)")
    cmp.add_argument("--out", help="report folder (default runs/compare-PROBLEM); rerun the "
                                   "same command to resume")
    cmp.set_defaults(func=_compare)


def _bench(args) -> int:
    from adapinn.experiments.bench import bench

    status = bench(args.suite, args.cases, args.protocol, args.seeds, args.out, args.set or [])
    failed = [r.folder for r, st in status.items() if st == "failed"]
    if failed:
        print(f"adapinn: {len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _bench_parser(sub) -> None:
    """`adapinn bench pinnacle`: PINNacle's cases against its published L2RE."""
    from adapinn.experiments.bench import PROTOCOLS, SUITES

    b = sub.add_parser("bench", help="run an external benchmark suite (PINNacle) against its "
                                     "published results")
    b.add_argument("suite", choices=SUITES, help="the suite")
    b.add_argument("--cases", metavar="LIST",
                   help="comma list of PINNacle case names, e.g. Burgers1d-C,Poisson2d-C "
                        "(default: all five)")
    b.add_argument("--protocol", choices=PROTOCOLS, default="pinnacle",
                   help="pinnacle (PINNacle's setting), default (RunConfig() at 20,000 steps), "
                        "robust (the generic preset), recipe (the best adapinn config per case)")
    b.add_argument("--seeds", type=int, default=1, metavar="N", help="seeds 0..N-1")
    b.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key in every run (repeatable)")
    b.add_argument("--out", help="output folder (default runs/bench-SUITE); rerun the same "
                                 "command to resume")
    b.set_defaults(func=_bench)


def _reference(args) -> int:
    import numpy as np

    from adapinn.experiments import registry
    from adapinn.reference import compute_reference
    from adapinn.reference.cache import SOLVERS

    out = args.out if args.out.endswith(".npz") else args.out + ".npz"  # as np.savez does
    if registry.is_problem_file(args.name):  # the problem's own reference or exact solution
        problem = registry.problem_factory(args.name)()
        if not problem.has_reference:
            raise ConfigError(f"problem {args.name!r} has neither a reference nor an exact "
                              "solution to write")
        data = problem.reference_data()
        np.savez(out, points=np.asarray(data.points), values=np.asarray(data.values))
        print(f"wrote {out}: points {data.points.shape}, values {data.values.shape}")
        return 0
    if args.name == "ns_cylinder":  # P2/P1 finite elements (adapinn.reference.ns_cylinder)
        from adapinn.problems.ns_cylinder import fem_reference

        sol = fem_reference(args.level)
        keys = ("points", "u", "v", "p", "c_d", "c_l", "delta_p")
        np.savez(out, **{k: sol[k] for k in keys})
        print(f"wrote {out}: points {sol['points'].shape}, u, v, p; c_d {float(sol['c_d']):.6f}, "
              f"c_l {float(sol['c_l']):.6f}, delta_p {float(sol['delta_p']):.6f}")
        return 0
    if args.name not in SOLVERS:
        raise ConfigError(f"unknown reference {args.name!r}; valid names: "
                          f"{', '.join(sorted(SOLVERS))}, ns_cylinder, or a problem file "
                          "FILE.py:FACTORY")
    t, x, u = compute_reference(args.name, nt=args.nt, nx=args.nx)
    np.savez(out, t=t, x=x, u=u)
    print(f"wrote {out}: t ({len(t)}), x ({len(x)}), u {u.shape}")
    return 0


def _read_points(path: Path):
    """(n, d) points from .npy, .npz (array `points`, or its only array) or .csv / .txt (comma
    or whitespace separated, an optional header line)."""
    import numpy as np

    if not path.is_file():
        raise FileNotFoundError(f"points file {str(path)!r} not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path)
    if suffix == ".npz":
        with np.load(path) as data:
            if "points" in data:
                return data["points"]
            if len(data.files) == 1:
                return data[data.files[0]]
            raise ConfigError(f"{str(path)!r} holds arrays {data.files}: name the points "
                              "array `points`")
    if suffix in (".csv", ".txt"):
        from adapinn.problems.data import DataError, read_text_table

        try:
            return read_text_table(path)
        except DataError as err:
            raise ConfigError(str(err)) from None
    raise ConfigError(f"points file {str(path)!r}: use .npy, .npz, .csv or .txt")


def _predict(args) -> int:
    import numpy as np

    from adapinn.experiments.trained import load

    model = load(args.run_dir)
    try:
        values = model(_read_points(Path(args.points)), chunk=args.chunk)
    except ValueError as err:
        raise ConfigError(f"{args.points}: {err}") from None
    out = Path(args.out)
    if out.suffix.lower() == ".csv":
        np.savetxt(out, values, delimiter=",", header=",".join(model.problem.outputs),
                   comments="")
    elif out.suffix.lower() == ".npy":
        np.save(out, values)
    else:
        raise ConfigError(f"--out {str(out)!r}: use .npy or .csv")
    print(f"wrote {out}: {values.shape[0]} points x {values.shape[1]} outputs "
          f"({', '.join(model.problem.outputs)})")
    return 0


def _export(args) -> int:
    import numpy as np

    from adapinn.experiments.trained import load

    model = load(args.run_dir)
    path = model.export(args.out)
    print(f"wrote {path}: jax.export of (n, {model.dim}) -> (n, {model.n_outputs}) "
          f"[{np.dtype(model.dtype).name}]; "
          "load with jax.export.deserialize(open(path, 'rb').read()).call(points)")
    return 0


def _list(args) -> int:
    from adapinn.experiments.registry import SELECTED_BY, describe

    everything = describe()
    kinds = _list_kinds(args.kinds, everything)
    verbose = args.verbose or bool(args.kinds)
    for kind in kinds:
        entries = everything[kind]
        key = f" ({SELECTED_BY[kind]})" if kind in SELECTED_BY else ""
        print(f"{kind}{key}:")
        width = max((len(e.name) for e in entries), default=0)
        shared = (entries[0].options if len(entries) > 1 and verbose
                  and all(e.options == entries[0].options for e in entries) else None)
        for e in entries:
            print(f"  {e.name:{width}}  {e.summary}".rstrip())
            if verbose and shared is None:
                for option in e.options:
                    print(f"      {option}")
        if shared:
            print(f"  options (all {kind}):")
            for option in shared:
                print(f"      {option}")
    if not verbose:
        print("(adapinn list --verbose, or adapinn list KIND: each entry's options, "
              "their types and defaults)")
    return 0


def _list_kinds(asked: list[str], everything: dict) -> list[str]:
    """The kinds to print: all, or those asked for ('sampler' and 'samplers' both work)."""
    if not asked:
        return list(everything)
    kinds = []
    for name in asked:
        kind = name if name in everything else f"{name}s"
        if kind not in everything:
            raise ConfigError(f"adapinn list: unknown kind {name!r}; kinds: "
                              f"{', '.join(everything)}")
        kinds.append(kind)
    return kinds


def _distributed_arguments(run: argparse.ArgumentParser) -> None:
    """--devices and the multi-host flags (README: "Multi-device and multi-host training")."""
    group = run.add_argument_group(
        "devices and multi-host", "the global batch is split over all visible devices; for "
        "several hosts start one process per host with the same flags but its own --process-id "
        "(or launch with srun / mpirun and leave these flags out)")
    group.add_argument("--devices", type=int, metavar="N",
                       help="use N devices in total (default: all visible)")
    group.add_argument("--coordinator", metavar="HOST:PORT",
                       help="address of process 0, which hosts the coordinator service")
    group.add_argument("--num-processes", type=int, metavar="N", help="processes in the job")
    group.add_argument("--process-id", type=int, metavar="I", help="this process, 0..N-1")
    group.add_argument("--init-timeout", type=float, default=120.0, metavar="SECONDS",
                       help="give up joining the job after this long (default 120)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adapinn", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train one configuration")
    run.add_argument("config", help="packaged config name (see `adapinn list`) or a YAML file")
    run.add_argument("--preset", help="preset of the config (default: quick when offered)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config key, e.g. --set train.steps=2000 (repeatable)")
    run.add_argument("--seed", type=int, help="random seed (fixes everything)")
    run.add_argument("--out", help="run folder (default runs/PROBLEM-SAMPLER-sSEED)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out")
    run.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    _distributed_arguments(run)
    run.set_defaults(func=_run)

    _compare_parser(sub)
    _bench_parser(sub)

    ref = sub.add_parser("reference", help="write a reference solution grid to .npz")
    ref.add_argument("name", help="burgers, allen_cahn, ns_cylinder, or a problem file "
                                  "FILE.py:FACTORY")
    ref.add_argument("--level", type=int, default=None,
                     help="ns_cylinder: mesh level (default 2: 25K triangles, 26 s)")
    ref.add_argument("--nt", type=int, default=201)
    ref.add_argument("--nx", type=int, default=512)
    ref.add_argument("--out", required=True, help="output .npz file")
    ref.set_defaults(func=_reference)

    pred = sub.add_parser("predict", help="evaluate a trained run at points from a file")
    pred.add_argument("run_dir", help="a run folder (config.yaml + checkpoint)")
    pred.add_argument("--points", required=True, help="(n, d) points: .npy, .npz, .csv, .txt")
    pred.add_argument("--out", required=True, help="values (n, m): .npy or .csv")
    pred.add_argument("--chunk", type=int, default=8192, help="points per batch")
    pred.set_defaults(func=_predict)

    exp = sub.add_parser("export", help="write the trained model as a portable jax.export file")
    exp.add_argument("run_dir", help="a run folder (config.yaml + checkpoint)")
    exp.add_argument("--out", required=True, help="output file (e.g. model.jaxexport)")
    exp.set_defaults(func=_export)

    lst = sub.add_parser("list", help="problems, samplers, weightings, aggregators, "
                                      "networks, protocols, loggers, presets")
    lst.add_argument("kinds", nargs="*", metavar="KIND",
                     help="only these kinds, with their options (e.g. samplers)")
    lst.add_argument("-v", "--verbose", action="store_true",
                     help="each entry's options with type and default")
    lst.set_defaults(func=_list)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)
    logging.getLogger("skfem").setLevel(logging.WARNING)  # its per-assembly INFO lines
    from adapinn.errors import DivergenceError, TrainingInterrupted
    from adapinn.train.distributed import DistributedError

    try:
        return args.func(args)
    except TrainingInterrupted as err:
        print(f"adapinn: {err}", file=sys.stderr)
        return 130
    except (ConfigError, DivergenceError, DistributedError, FileNotFoundError) as err:
        print(f"adapinn: error: {err}", file=sys.stderr)
        return 2
    except (PermissionError, NotADirectoryError, IsADirectoryError, FileExistsError) as err:
        # a path the user gave cannot be written (read-only folder, a file in the way)
        what = f"cannot write {err.filename!r}: {err.strerror}" if err.filename else str(err)
        print(f"adapinn: error: {what}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
