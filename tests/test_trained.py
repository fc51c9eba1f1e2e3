"""Problems from a file in every command, and trained models you can load, predict with and
export: `problem.name: file.py:factory`, `adapinn.load`, `adapinn predict`, `adapinn export`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

import adapinn
from adapinn.cli import main
from adapinn.errors import ConfigError
from adapinn.experiments import registry
from adapinn.experiments.config import build_config

PROBLEM_FILE = textwrap.dedent('''
    import jax.numpy as jnp
    from adapinn import Box, Condition, Problem, Union, laplacian

    def poisson(k: float = 1.0):
        """-lap u = 2 (k pi)^2 sin(k pi x) sin(k pi y) on the unit square, u = 0 on x = 0, 1."""
        square = Box((0.0, 0.0), (1.0, 1.0))
        sides = Union(Box((0.0, 0.0), (0.0, 1.0)), Box((1.0, 0.0), (1.0, 1.0)))
        w = k * jnp.pi
        source = lambda x: 2 * w**2 * jnp.sin(w * x[0]) * jnp.sin(w * x[1])
        return Problem("poisson", square, {
            "pde": Condition(square, lambda u, x: laplacian(u, x)[1] + source(x)),
            "bc": Condition(sides, lambda u, x: u(x)),
        }, input_names=("x", "y"),
            exact=lambda x: jnp.sin(w * x[0]) * jnp.sin(w * x[1]))

    def not_a_problem():
        return 3
''')
TRAIN = {"steps": 30, "batch_size": 64, "condition_batch_size": 16, "eval_every": 10,
         "checkpoint_every": 10, "lbfgs_steps": 0}


@pytest.fixture
def problem_file(tmp_path):
    path = tmp_path / "my_problem.py"
    path.write_text(PROBLEM_FILE)
    return path


def _config_file(tmp_path, problem_file, **problem_options):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "problem": {"name": f"{problem_file}:poisson", **problem_options},
        "network": {"width": 16, "depth": 2}, "train": TRAIN, "eval": {"nt": 20, "nx": 20}}))
    return path


def test_a_problem_file_runs_resumes_and_is_recorded(tmp_path, problem_file, capsys):
    out = tmp_path / "run"
    config = _config_file(tmp_path, problem_file, k=1.0)
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problem"] == "poisson"
    assert summary["problem_file"]["path"] == str(problem_file.resolve())
    assert len(summary["problem_file"]["sha256"]) == 64
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["problem"] == {"name": f"{problem_file}:poisson", "k": 1.0}  # complete
    assert summary["rel_l2"] is not None and summary["rel_l2"] < 1.2
    assert main(["run", str(config), "--out", str(out), "--no-progress", "--resume",
                 "--set", "train.steps=40"]) == 0
    assert json.loads((out / "summary.json").read_text())["steps_done"] == 40
    assert main(["reference", f"{problem_file}:poisson", "--out", str(tmp_path / "ref")]) == 0
    with np.load(tmp_path / "ref.npz") as ref:
        assert ref["points"].shape == (128 * 128, 2) and ref["values"].shape == (128 * 128, 1)


def test_problem_file_errors_name_the_file_and_the_fix(tmp_path, problem_file):
    with pytest.raises(ConfigError, match="not found"):
        registry.problem_factory(f"{tmp_path / 'nope.py'}:poisson")
    with pytest.raises(ConfigError, match="no function 'poison'; its functions: .*poisson"):
        registry.problem_factory(f"{problem_file}:poison")
    with pytest.raises(ConfigError, match="returned int, not an adapinn Problem"):
        registry.build_problem(build_config({"problem": {"name": f"{problem_file}:not_a_problem"}}))
    with pytest.raises(ConfigError, match="has no option 'kk'; its options: k"):
        registry.build_problem(build_config({"problem": {"name": f"{problem_file}:poisson",
                                                         "kk": 2}}))
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module\n")
    with pytest.raises(ConfigError, match="failed to import: ModuleNotFoundError"):
        registry.problem_factory(f"{broken}:poisson")


@pytest.fixture
def trained(tmp_path, problem_file):
    out = tmp_path / "run"
    config = build_config({"problem": {"name": f"{problem_file}:poisson"},
                           "network": {"width": 16, "depth": 2}, "train": TRAIN})
    summary = adapinn.fit(config, out, progress=False)
    return out, summary


def test_load_predict_and_fit_return_the_same_model(trained, tmp_path):
    out, summary = trained
    model = adapinn.load(out)
    assert model.problem.name == "poisson" and model.meta["adam_steps"] == 30
    points = np.random.default_rng(0).uniform(size=(1000, 2))
    values = model(points)
    assert values.shape == (1000, 1) and values.dtype == np.float32
    np.testing.assert_allclose(values, summary.model(points), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model(points[0]), values[:1], rtol=1e-6)  # one point (d,)
    np.testing.assert_allclose(model(points, chunk=7), values, rtol=1e-6, atol=1e-7)  # batches
    with pytest.raises(ValueError, match=r"takes \(n, 2\) points \(x, y\)"):
        model(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="row 2 is not finite"):
        model(np.array([[0.1, 0.2], [0.3, 0.4], [np.nan, 0.5]]))
    # the CLI: csv with a header in, csv out; npy out
    (tmp_path / "pts.csv").write_text("x,y\n" + "\n".join(f"{a},{b}" for a, b in points))
    assert main(["predict", str(out), "--points", str(tmp_path / "pts.csv"),
                 "--out", str(tmp_path / "u.csv")]) == 0
    read = np.loadtxt(tmp_path / "u.csv", delimiter=",", skiprows=1, ndmin=2)
    np.testing.assert_allclose(read, values, rtol=1e-5)
    assert (tmp_path / "u.csv").read_text().splitlines()[0] == "u"
    np.save(tmp_path / "pts.npy", points)
    assert main(["predict", str(out), "--points", str(tmp_path / "pts.npy"),
                 "--out", str(tmp_path / "u.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "u.npy"), values, rtol=1e-6, atol=1e-7)


def test_predict_errors_are_clear(trained, tmp_path, capsys):
    out, _ = trained
    np.save(tmp_path / "bad.npy", np.zeros((5, 3)))
    assert main(["predict", str(out), "--points", str(tmp_path / "bad.npy"),
                 "--out", str(tmp_path / "u.npy")]) == 2
    assert "takes (n, 2) points" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "--points", str(tmp_path / "bad.npy"),
                 "--out", str(tmp_path / "u.npy")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_export_runs_in_a_fresh_process_without_adapinn(trained, tmp_path):
    out, _ = trained
    target = tmp_path / "model.jaxexport"
    assert main(["export", str(out), "--out", str(target)]) == 0
    points = np.random.default_rng(1).uniform(size=(37, 2)).astype(np.float32)
    np.save(tmp_path / "pts.npy", points)
    code = textwrap.dedent(f"""
        import sys, numpy as np
        from jax import export
        f = export.deserialize(bytearray(open({str(target)!r}, "rb").read()))
        points = np.load({str(tmp_path / 'pts.npy')!r})
        np.save({str(tmp_path / 'v.npy')!r}, np.asarray(f.call(points)))
        print("adapinn" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True, env={"JAX_PLATFORMS": "cpu",
                                                          "PATH": "/usr/bin:/bin"})
    assert result.stdout.strip() == "False"
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), adapinn.load(out)(points),
                               rtol=1e-5, atol=1e-6)


def test_a_script_problem_must_be_passed_to_load(tmp_path):
    from tests.test_fit import Box, Condition, Problem

    box = Box((0.0,), (1.0,))
    script = Problem("line", box, {"pde": Condition(box, lambda u, x: u(x) - x[0])})
    config = build_config({"network": {"width": 8, "depth": 1}, "train": {**TRAIN, "steps": 10}})
    adapinn.fit(config, tmp_path / "run", progress=False, problem=script)
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["problem"] == {
        "name": "line"}
    with pytest.raises(ConfigError, match="defined in a script: pass it"):
        adapinn.load(tmp_path / "run")
    assert adapinn.load(tmp_path / "run", problem=script)(np.array([[0.5]])).shape == (1, 1)


def test_the_readme_plate_example_runs_from_the_cli_and_predicts(tmp_path, capsys):
    """README "A domain with holes, from a file": examples/plate.yaml + plate.py through
    `adapinn run`, then `adapinn predict` on new points (fewer steps here)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "plate"
    assert main(["run", str(root / "examples" / "plate.yaml"), "--out", str(out),
                 "--no-progress", "--set", f"problem.name={root / 'examples' / 'plate.py'}:plate",
                 "--set", "train.steps=300", "--set", "train.lbfgs_steps=0",
                 "--set", "train.eval_every=50", "--set", "train.checkpoint_every=50",
                 "--set", "train.batch_size=256", "--set", "train.condition_batch_size=128"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rel_l2"] < 0.5  # measured 0.33 (6.4e-3 for the full 3000 + 500 L-BFGS)
    assert (out / "plots" / "error_maps.png").exists()
    model = adapinn.load(out)
    pts = np.asarray(model.problem.domain.sample(__import__("jax").random.key(3), 50))
    np.savetxt(tmp_path / "new.csv", pts, delimiter=",", header="x,y", comments="")
    assert main(["predict", str(out), "--points", str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "u.csv")]) == 0
    assert "wrote" in capsys.readouterr().out
    np.testing.assert_allclose(np.loadtxt(tmp_path / "u.csv", delimiter=",", skiprows=1),
                               model(pts)[:, 0], rtol=1e-5)


def test_a_problem_file_is_imported_once_per_version(tmp_path, problem_file):
    first = registry.problem_factory(f"{problem_file}:poisson")
    assert registry.problem_factory(f"{problem_file}:poisson") is first  # not run again
    problem_file.write_text(PROBLEM_FILE + "\n# edited\n")
    assert registry.problem_factory(f"{problem_file}:poisson") is not first  # re-imported
