"""Command line: `adapinn run | compare | reference | list`. Errors a user can fix are printed
as one clear message (exit code 2), never as a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
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
                   command=shlex.join(["adapinn", *sys.argv[1:]]))
    failed = [a.folder for a, status in plan.status.items() if status == "failed"]
    if failed:
        print(f"adapinn: {len(failed)} arm(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _compare_parser(sub) -> None:
    """`adapinn compare`: samplers x weightings x seeds on equal step or time budgets."""
    cmp = sub.add_parser("compare", help="compare samplers on equal step or time budgets")
    cmp.add_argument("config", help="packaged config name or a YAML file (the problem)")
    cmp.add_argument("--samplers", required=True, metavar="LIST",
                     help="comma list of samplers, each NAME or NAME:key=value:..., "
                          "e.g. uniform,hardbank:start_step=0,rad")
    cmp.add_argument("--weightings", metavar="LIST",
                     help="comma list of weightings (default: the config's)")
    cmp.add_argument("--seeds", type=int, default=1, metavar="N", help="seeds 0..N-1")
    budget = cmp.add_mutually_exclusive_group(required=True)
    budget.add_argument("--budget-steps", type=int, metavar="S", help="Adam steps per arm")
    budget.add_argument("--budget-seconds", type=float, metavar="T",
                        help="training seconds per arm (compute-normalised)")
    cmp.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config key in every arm (repeatable)")
    cmp.add_argument("--preset", help="preset of the config (default: quick when offered)")
    cmp.add_argument("--out", help="report folder (default runs/compare-PROBLEM); rerun the "
                                   "same command to resume")
    cmp.set_defaults(func=_compare)


def _reference(args) -> int:
    import numpy as np

    from adapinn.reference import compute_reference

    t, x, u = compute_reference(args.name, nt=args.nt, nx=args.nx)
    np.savez(args.out, t=t, x=x, u=u)
    print(f"wrote {args.out}: t ({len(t)}), x ({len(x)}), u {u.shape}")
    return 0


def _list(args) -> int:
    from adapinn.experiments.registry import describe

    for kind, names in describe().items():
        print(f"{kind}: {', '.join(names)}")
    return 0


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

    ref = sub.add_parser("reference", help="write a reference solution grid to .npz")
    ref.add_argument("name", help="burgers or allen_cahn")
    ref.add_argument("--nt", type=int, default=201)
    ref.add_argument("--nx", type=int, default=512)
    ref.add_argument("--out", required=True, help="output .npz file")
    ref.set_defaults(func=_reference)

    lst = sub.add_parser("list", help="problems, samplers, weightings, networks, presets")
    lst.set_defaults(func=_list)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)
    from adapinn.errors import DivergenceError
    from adapinn.train.distributed import DistributedError

    try:
        return args.func(args)
    except (ConfigError, DivergenceError, DistributedError, FileNotFoundError) as err:
        print(f"adapinn: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
