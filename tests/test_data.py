"""Observed data as a loss term, references on scattered points from files, and the errors the
records report (pooled rel. L2, per output, max abs.)."""

from __future__ import annotations

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adapinn.experiments.config import ConfigError, build_config
from adapinn.experiments.fit import fit
from adapinn.problems import (
    Box,
    Condition,
    DataError,
    Problem,
    data_condition,
    first_derivative,
    load_observations,
    load_reference,
)
from adapinn.problems.data import read_table
from adapinn.train.evaluate import errors

LINE = Box((0.0,), (2.0,))
SQUARE = Box((0.0, 0.0), (1.0, 1.0))


def test_tables_load_from_npz_and_csv_with_or_without_header(tmp_path):
    points = np.random.default_rng(0).uniform(size=(20, 2))
    values = np.stack([points.sum(1), points.prod(1)], axis=1)
    np.savez(tmp_path / "d.npz", points=points, values=values)
    header = "x,y,u,v\n" + "\n".join(",".join(map(str, r)) for r in np.hstack([points, values]))
    (tmp_path / "d.csv").write_text(header)
    np.savetxt(tmp_path / "d.txt", np.hstack([points, values]))
    for name in ("d.npz", "d.csv", "d.txt"):
        p, v = read_table(tmp_path / name, 2)
        np.testing.assert_allclose(p, points)
        np.testing.assert_allclose(v, values)


def test_bad_files_name_the_file_and_the_row(tmp_path):
    rows = np.array([[0.1, 0.2, 1.0], [0.3, 0.4, 2.0], [0.5, np.nan, 3.0]])
    np.savetxt(tmp_path / "nan.csv", rows, delimiter=",")
    with pytest.raises(DataError, match=r"nan.csv', row 2: not finite"):
        load_observations(tmp_path / "nan.csv", SQUARE)
    rows[2] = [0.5, 1.5, 3.0]
    np.savetxt(tmp_path / "out.csv", rows, delimiter=",")
    with pytest.raises(DataError, match=r"out.csv', row 2: point \[0.5, 1.5\] lies outside"):
        load_observations(tmp_path / "out.csv", SQUARE)
    with pytest.raises(DataError, match="2 columns; expected 2 point columns"):
        np.savetxt(tmp_path / "thin.csv", rows[:, :2], delimiter=",")
        load_observations(tmp_path / "thin.csv", SQUARE)
    with pytest.raises(DataError, match="not found"):
        load_observations(tmp_path / "missing.npz", SQUARE)
    np.savez(tmp_path / "x.npz", pts=rows)
    with pytest.raises(DataError, match="must hold arrays 'points' and 'values'"):
        load_reference(tmp_path / "x.npz", SQUARE, 1)
    np.savez(tmp_path / "two.npz", points=rows[:2, :2], values=rows[:2, :2])
    with pytest.raises(DataError, match="2 value columns; the problem has 1 outputs"):
        load_reference(tmp_path / "two.npz", SQUARE, 1)


def test_the_data_residual_is_the_misfit_of_the_observed_outputs():
    points = jnp.asarray([[0.2, 0.3], [0.7, 0.1]])
    v_obs = jnp.asarray([[1.0], [2.0]])
    cond = data_condition(points, v_obs, outputs=(1,))
    u = lambda x: jnp.stack([x[0], 3 * x[1], x[0] * x[1]])  # noqa: E731
    rows = cond.domain.rows
    got = jax.vmap(lambda r: cond.residual(u, r))(rows)
    np.testing.assert_allclose(got, 3 * points[:, 1:2] - v_obs, rtol=1e-6)
    drawn = cond.domain.sample(jax.random.key(0), 500)  # rows, drawn uniformly
    assert set(map(tuple, np.asarray(drawn).round(6))) == set(map(tuple, np.asarray(rows)
                                                                  .round(6)))
    with pytest.raises(DataError, match="observed columns for outputs"):
        data_condition(points, v_obs, outputs=(0, 1))


def _line_problem(observations: Condition) -> Problem:
    """u' = cos(x) on [0, 2] with no boundary condition: the constant comes from data."""

    def pde(u, x):
        return first_derivative(u, x, 0)[1] - jnp.cos(x[0])

    return Problem("line_data", LINE, {"pde": Condition(LINE, pde), "data": observations},
                   input_names=("x",), exact=lambda x: jnp.sin(x[0]) + 3.0)


def test_observations_pin_down_what_the_pde_leaves_open(tmp_path):
    """Without the data term u = sin(x) + C for any C; 8 observations of sin(x) + 3 fix C.
    The data term has its own batch size (8 rows) and weight."""
    x = np.linspace(0.1, 1.9, 8)[:, None]
    np.savetxt(tmp_path / "obs.csv", np.hstack([x, np.sin(x) + 3.0]), delimiter=",",
               header="x,u", comments="")
    problem = _line_problem(load_observations(tmp_path / "obs.csv", LINE, batch_size=8))
    config = build_config({
        "network": {"width": 16, "depth": 2},
        "weighting": {"name": "fixed", "weights": {"data": 10.0}},
        "train": {"steps": 1000, "batch_size": 64, "lr": 5e-3, "eval_every": 200,
                  "checkpoint_every": 200, "lbfgs_steps": 0}})
    summary = fit(config, tmp_path / "run", progress=False, problem=problem)
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text()
            .splitlines()]
    assert rows[-1]["loss_data"] < 1e-2
    assert summary["rel_l2"] < 0.05
    # control: the same run without the data term leaves the constant wrong
    alone = Problem("line", LINE, {"pde": problem.conditions["pde"]}, input_names=("x",),
                    exact=problem.exact)
    control = fit(config.model_copy(update={"weighting": type(config.weighting)(name="fixed")}),
                  tmp_path / "control", progress=False, problem=alone)
    assert control["rel_l2"] > 4 * summary["rel_l2"], (control["rel_l2"], summary["rel_l2"])


def test_errors_pooled_per_output_and_max():
    class Affine(eqx.Module):
        def __call__(self, x):
            return jnp.stack([x[0] + 0.1, 2 * x[1]])

    pts = jnp.asarray(np.random.default_rng(1).uniform(size=(50, 2)), jnp.float32)
    ref = jnp.stack([pts[:, 0], 2 * pts[:, 1] + 0.05], axis=1)
    from adapinn.problems import ReferenceData

    got = errors(Affine(), ReferenceData(pts, ref), ("u", "p"))
    diff = np.stack([np.full(50, 0.1), np.full(50, -0.05)], axis=1)
    refn = np.asarray(ref)
    assert set(got) == {"rel_l2", "rel_l2_u", "rel_l2_p", "max_abs_error"}
    np.testing.assert_allclose(got["rel_l2"], np.linalg.norm(diff) / np.linalg.norm(refn),
                               rtol=1e-5)
    np.testing.assert_allclose(got["rel_l2_u"], 0.1 * np.sqrt(50) / np.linalg.norm(refn[:, 0]),
                               rtol=1e-5)
    np.testing.assert_allclose(got["rel_l2_p"], 0.05 * np.sqrt(50) / np.linalg.norm(refn[:, 1]),
                               rtol=1e-5)
    np.testing.assert_allclose(got["max_abs_error"], 0.1, rtol=1e-5)


def test_a_scattered_reference_file_is_what_the_run_scores_against(tmp_path):
    box = SQUARE
    problem = Problem("pair", box, {"pde": Condition(box, lambda u, x: u(x) - jnp.stack(
        [x[0], x[1] ** 2]))}, n_outputs=2, output_names=("u", "p"))
    pts = np.random.default_rng(2).uniform(size=(300, 2))
    np.savez(tmp_path / "ref.npz", points=pts, values=np.stack([pts[:, 0], pts[:, 1] ** 2], 1))
    config = build_config({"network": {"width": 16, "depth": 1},
                           "eval": {"reference_file": str(tmp_path / "ref.npz")},
                           "train": {"steps": 20, "batch_size": 64, "eval_every": 10,
                                     "checkpoint_every": 10, "lbfgs_steps": 0}})
    summary = fit(config, tmp_path / "run", progress=False, problem=problem)
    want = errors(summary.model.network, load_reference(tmp_path / "ref.npz", box, 2),
                  ("u", "p"))
    for key in ("rel_l2", "rel_l2_u", "rel_l2_p", "max_abs_error"):
        np.testing.assert_allclose(summary[key], want[key], rtol=1e-5)
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"rel_l2_u", "rel_l2_p", "max_abs_error"} <= set(row)
    assert (tmp_path / "run" / "plots" / "error_maps.png").exists()  # triangulated
    bad = config.model_copy(update={"eval": config.eval.model_copy(
        update={"reference_file": str(tmp_path / "none.npz")})})
    with pytest.raises(ConfigError, match="none.npz' not found"):
        fit(bad, tmp_path / "run2", progress=False, problem=problem)
