"""End to end through the CLI: run folder contents, refusal to clobber, resume, divergence."""

import json
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adapinn.cli import main
from adapinn.experiments import registry
from adapinn.experiments.build import build
from adapinn.experiments.config import build_config, load_yaml, validate
from adapinn.experiments.fit import fit
from adapinn.problems import Box, Condition, Problem, Union, laplacian
from adapinn.train import checkpoint
from adapinn.train.evaluate import relative_l2
from tests.conftest import TINY

SUMMARY_KEYS = {"problem", "sampler", "steps", "rel_l2", "best_rel_l2", "wall_time_s",
                "compile_time_s", "train_time_s", "steps_per_s", "peak_rss_mb"}


def _run(out, *extra, steps=20):
    args = ["run", "burgers", "--out", str(out), "--no-progress", "--set", f"train.steps={steps}"]
    for item in TINY:
        args += ["--set", item]
    return main(args + list(extra))


def test_run_writes_config_metrics_summary_checkpoint_and_plots(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(out, "--set", "train.lbfgs_steps=10") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["steps"] == 20
    # memory as a figure: XLA's temporary buffers of the compiled chunk (the CPU reports
    # them), and no device allocator peak on the CPU
    assert summary["chunk_temp_mb"] > 0 and summary["device_peak_mb"] is None
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30]
    # it learnt: measured 0.96 for the initial network, 0.86 after 20 Adam steps and 0.44 after
    # the 10 L-BFGS iterations (seed 0, CPU)
    initial_run = build(_saved_config(out))  # same config and seed: the initial network
    initial = relative_l2(initial_run.state.model, initial_run.reference)
    assert summary["rel_l2"] == rows[-1]["rel_l2"] < 0.7 * initial
    assert rows[-1]["rel_l2"] < 0.8 * rows[1]["rel_l2"]  # the L-BFGS finish helped
    expected = {"wall_time_s", "rel_l2", "loss_pde", "loss_ic", "loss_bc", "weight_pde", "lr"}
    assert expected <= set(rows[0])
    assert rows[-1]["phase"] == "lbfgs"
    assert "steps: 20" in (out / "config.yaml").read_text()
    for name in ("checkpoint.eqx", "plots/error_maps.png", "plots/convergence.png"):
        assert (out / name).exists(), name


def test_existing_run_is_refused_then_resumed_or_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(out) == 0
    assert _run(out) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert _run(out, "--resume", steps=40) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30, 40]
    assert _run(out, "--resume", "--set", "train.lbfgs_steps=10", steps=40) == 0  # a finish
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["phase"]) for r in rows][-2:] == [(40, "adam"), (50, "lbfgs")]
    assert _run(out, "--resume", "--set", "network.width=32", steps=40) == 2
    assert "differs from the one saved" in capsys.readouterr().err
    (out / "notes.txt").write_text("mine")
    assert _run(out, "--overwrite", steps=10) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "summary.json").read_text())["steps"] == 10


def test_same_seed_reproduces_the_run(tmp_path):
    assert _run(tmp_path / "a", "--seed", "4") == 0
    assert _run(tmp_path / "b", "--seed", "4") == 0
    a = json.loads((tmp_path / "a" / "summary.json").read_text())
    b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert a["rel_l2"] == b["rel_l2"]


def _exploding_problem(nt=21, nx=32):
    """Residual u + 5 + log(u + 3) / 10: training drives u towards -5, and the loss is NaN as
    soon as u < -3 somewhere (measured: at step 63 of the tiny run, so the kept checkpoint is
    step 60, not the initial state)."""
    box = Box((0.0, 0.0), (1.0, 1.0))
    return Problem("explode", box,
                   {"pde": Condition(box, lambda u, x: u(x) + 5.0 + 0.1 * jnp.log(u(x) + 3.0))},
                   exact=lambda x: jnp.ones(()) + x[0])


def _saved_config(out):
    return validate(load_yaml(out / "config.yaml"))


def test_nan_loss_stops_with_the_step_and_keeps_last_good_checkpoint(tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.setitem(registry.PROBLEMS, "explode", _exploding_problem)
    out = tmp_path / "run"
    code = main(["run", "burgers", "--out", str(out), "--no-progress",
                 "--set", "problem.name=explode", "--set", "weighting.name=gradnorm",
                 "--set", "train.steps=200", *sum(
                     (["--set", t] for t in TINY), [])])
    err = capsys.readouterr().err
    assert code == 2
    assert "non-finite at step" in err and "kept the last good state" in err
    bad = int(re.search(r"non-finite at step (\d+)", err).group(1))
    meta = json.loads((out / "checkpoint.json").read_text())
    assert meta["step"] == bad - 1 > 0  # the very last good step, not the chunk's start
    # the kept checkpoint loads into a freshly built state: finite, at its step, and equal to
    # the state a fresh run reaches after the same number of steps
    fresh = build(_saved_config(out), with_reference=False)
    state, loaded_meta, _ = checkpoint.load(out, fresh.state)
    assert int(state.step) == meta["step"] == loaded_meta["step"]
    leaves = jax.tree_util.tree_leaves(eqx.filter(state, eqx.is_inexact_array))
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
    again = eqx.filter_jit(lambda t, s: t.run(s, meta["step"])[0])(fresh.trainer, fresh.state)
    for got, want in zip(jax.tree_util.tree_leaves(eqx.filter(state.model, eqx.is_array)),
                         jax.tree_util.tree_leaves(eqx.filter(again.model, eqx.is_array)),
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not eqx.tree_equal(state.model, fresh.state.model)  # it did train


def test_list_names_every_family(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for word in ("problems", "allen_cahn", "burgers", "samplers", "uniform", "fixed",
                 "weightings", "gradnorm", "networks", "mlp", "pcgrad", "rounds", "presets"):
        assert word in text


def test_reference_command_writes_the_grid(tmp_path):
    np = pytest.importorskip("numpy")
    out = tmp_path / "b.npz"
    assert main(["reference", "burgers", "--nt", "11", "--nx", "16", "--out", str(out)]) == 0
    data = np.load(out)
    assert data["u"].shape == (11, 16) and data["t"].shape == (11,) and data["x"].shape == (16,)
    np.testing.assert_allclose(data["u"][0], -np.sin(np.pi * data["x"]), atol=1e-12)


def test_a_problem_without_exact_solution_or_reference_trains_and_logs_losses(tmp_path):
    """No rel. L2 anywhere, losses in every row, a prediction plot (it used to fail in build)."""
    box = Box((0.0, 0.0), (1.0, 1.0))
    edge = Union(Box((0.0, 0.0), (0.0, 1.0)), Box((1.0, 0.0), (1.0, 1.0)))
    blind = Problem("blind_poisson", box, {
        "pde": Condition(box, lambda u, x: laplacian(u, x)[1] + 1.0),
        "bc": Condition(edge, lambda u, x: u(x)),
    }, input_names=("x", "y"))
    config = build_config({"network": {"width": 8, "depth": 1},
                           "train": {"steps": 20, "batch_size": 32, "condition_batch_size": 8,
                                     "eval_every": 10, "checkpoint_every": 10,
                                     "lbfgs_steps": 0}})
    summary = fit(config, tmp_path / "run", progress=False, problem=blind)
    assert summary["rel_l2"] is None and summary["steps_done"] == 20
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
            .splitlines()]
    assert rows and all("rel_l2" not in r or r["rel_l2"] is None for r in rows)
    assert all(np.isfinite(r["loss_pde"]) for r in rows)
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert (tmp_path / "run" / "plots" / "prediction.png").exists()
