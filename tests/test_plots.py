"""Plots: importing the plotting modules leaves matplotlib's backend alone, and the figures
are still written (on their own Agg canvas)."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib import image

from adapinn.experiments import plots
from adapinn.nn import NetworkSpec, build_network
from adapinn.problems import Box, Condition, Problem

MODULES = ("adapinn.experiments.plots", "adapinn.experiments.report",
           "adapinn.experiments.compare", "adapinn.experiments.fit", "adapinn.cli")


@pytest.mark.parametrize("backend", ["svg", "pdf"])
def test_importing_the_plot_modules_keeps_the_users_backend(backend):
    """A notebook or script that chose a backend keeps it after `import adapinn...`; the old
    `matplotlib.use("Agg")` at import switched it to agg. Run in a fresh interpreter, since
    this process has matplotlib imported already."""
    code = ("import matplotlib, importlib; before = matplotlib.get_backend(); "
            f"[importlib.import_module(m) for m in {MODULES!r}]; "
            "import sys; sys.modules.get('matplotlib.pyplot') and print('pyplot imported'); "
            "print(before, matplotlib.get_backend())")
    env = {**os.environ, "MPLBACKEND": backend, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert out == [backend, backend]  # unchanged, and pyplot never imported


def _problem() -> Problem:
    box = Box((0.0, -1.0), (1.0, 1.0))
    return Problem("wave", box, {"pde": Condition(box, lambda u, x: u(x))},
                   input_names=("t", "x"),
                   exact=lambda x: jnp.sin(jnp.pi * x[1]) * jnp.exp(-x[0]))


def test_run_plots_are_written_as_pngs(tmp_path):
    problem = _problem()
    reference = problem.reference_data(resolution=24)
    spec = NetworkSpec(width=8, depth=1)
    model = build_network(spec, 2, 1, (), jax.random.key(0))
    rows = [{"step": s, "wall_time_s": 0.1 * s, "rel_l2": 1.0 / s, "weight_pde": 1.0 + s,
             "weight_ic": 2.0} for s in (10, 20, 30)]
    plots.write_run_plots(tmp_path, model, reference, rows, problem)
    for name, min_width in (("error_maps", 1400), ("convergence", 1100), ("weights", 600)):
        pixels = image.imread(tmp_path / "plots" / f"{name}.png")
        assert pixels.shape[1] >= min_width * 0.95, (name, pixels.shape)  # figsize x dpi 110
        assert np.std(pixels[..., :3]) > 0.05, name  # something was drawn


def test_nothing_is_written_without_data(tmp_path):
    problem = _problem()
    off_grid = problem.reference_data(resolution=4)
    off_grid = type(off_grid)(off_grid.points, off_grid.values, None)  # not a grid
    model = build_network(NetworkSpec(width=8, depth=1), 2, 1, (), jax.random.key(0))
    plots.write_run_plots(tmp_path, model, off_grid, [{"step": 1, "rel_l2": None}], problem)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == []
