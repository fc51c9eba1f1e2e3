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


@pytest.mark.parametrize(("dim", "expected"), [(1, "lines.png"), (3, "slices.png"),
                                               (5, "lines.png")])
def test_the_solution_plot_fits_the_dimension(tmp_path, dim, expected):
    box = Box((0.0,) * dim, (1.0,) * dim)
    cube = Problem("cube", box, {"pde": Condition(box, lambda u, x: u(x))},
                   exact=lambda x: jnp.sin(jnp.sum(x)))
    model = build_network(NetworkSpec(width=8, depth=1), dim, 1, (), jax.random.key(0))
    reference = cube.reference_data(resolution=6)
    skipped = plots.write_run_plots(tmp_path, model, reference, [{"step": 1, "rel_l2": None}],
                                    cube)
    assert skipped == []
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [expected]
    pixels = image.imread(tmp_path / "plots" / expected)
    assert np.std(pixels[..., :3]) > 0.05


def test_two_outputs_get_one_row_of_maps_each_and_no_reference_gets_prediction(tmp_path):
    box = Box((0.0, 0.0), (2.0, 1.0))
    two = Problem("pair", box, {"pde": Condition(box, lambda u, x: u(x))}, n_outputs=2,
                  output_names=("u", "p"), exact=lambda x: jnp.stack([x[0], x[1] ** 2]))
    model = build_network(NetworkSpec(width=8, depth=1), 2, 2, (), jax.random.key(0))
    assert plots.error_maps(model, two.reference_data(resolution=16), two,
                            tmp_path / "maps.png")
    assert image.imread(tmp_path / "maps.png").shape[0] >= 2 * 3.8 * 110 * 0.95  # two rows
    blind = Problem("blind", box, {"pde": Condition(box, lambda u, x: u(x))})
    assert not blind.has_reference
    rows = [{"step": 10, "loss": 1.0, "loss_pde": 1.0}]  # one eval point: drawn with a marker
    skipped = plots.write_run_plots(tmp_path, build_network(
        NetworkSpec(width=8, depth=1), 2, 1, (), jax.random.key(0)), None, rows, blind)
    assert skipped == []
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["losses.png",
                                                                      "prediction.png"]
    pixels = image.imread(tmp_path / "plots" / "losses.png")
    assert np.std(pixels[..., :3]) > 0.05
