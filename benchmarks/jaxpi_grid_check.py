"""Rel. L2 error of a finished run on jaxpi's reference grid instead of the project's own.

An independent check of a reported figure: the run's checkpoint is evaluated on the chebfun
grid shipped with jaxpi (`t`, `x`, `usol` in a .mat file, as in `../shared/reference/`), so
an error in the project's reference solver cannot hide in the headline number.

    python benchmarks/jaxpi_grid_check.py runs/x ../shared/reference/allen_cahn.mat
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scipy.io import loadmat

from adapinn.experiments.build import build
from adapinn.experiments.config import load_yaml, validate
from adapinn.problems.base import ReferenceData
from adapinn.train import checkpoint
from adapinn.train.evaluate import relative_l2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder with config.yaml and a checkpoint")
    parser.add_argument("mat", type=Path, help="jaxpi reference .mat with t, x, usol")
    args = parser.parse_args()

    run = build(validate(load_yaml(args.run / "config.yaml")), with_reference=False)
    state, meta = checkpoint.load(args.run, run.state)
    data = loadmat(args.mat)
    t, x, u = data["t"].ravel(), data["x"].ravel(), data["usol"]
    if u.shape != (t.size, x.size):
        raise SystemExit(f"{args.mat}: usol has shape {u.shape}, expected (len(t), len(x))")
    error = relative_l2(state.model, ReferenceData.from_grid((t, x), u))
    grid = f"{u.shape[0]} x {u.shape[1]}"
    print(f"step {meta['step']}: rel. L2 on {args.mat.name} ({grid}) = {error:.4e}")


if __name__ == "__main__":
    main()
