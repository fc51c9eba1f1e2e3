"""`adapinn bench pinnacle`: protocols, the published table, results.csv and report.md."""

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adapinn.cli import main
from adapinn.errors import ConfigError
from adapinn.experiments import bench
from adapinn.experiments.build import build
from adapinn.experiments.presets import resolve
from adapinn.nn import BoxScaling, NetworkSpec, build_network
from adapinn.samplers import Fixed


def test_published_table_has_the_cases_and_their_best_method():
    table = bench.published()
    assert set(bench.cases()) <= set(table)
    assert table["Poisson2d-C"]["PINN"] == pytest.approx(0.694)
    assert bench.best_published(table["Poisson2d-C"]) == ("NTK", pytest.approx(0.0123))
    assert bench.best_published(table["Wave1d-C"]) == ("NTK", pytest.approx(0.0979))
    assert "LBFGS" not in table["Poisson2d-C"]  # a blank cell is no result, not 0


def test_pinnacle_protocol_is_pinnacles_setting():
    case = bench.cases()["Heat2d-MS"]
    config = bench.case_config(case, "pinnacle", seed=2)
    net, tc = config.network, config.train
    assert (net.name, net.width, net.depth, net.activation) == ("mlp", 100, 5, "tanh")
    assert not net.fourier_features and not net.factorized
    assert config.sampler.name == "fixed" and config.weighting.name == "fixed"
    assert config.sampler.options["size"] == tc.batch_size == 8192 * case.point_multiplier
    assert tc.condition_batch_size == 2048 * case.point_multiplier
    assert tc.condition_points == "fixed"
    assert (tc.lr, tc.decay_rate, tc.steps, tc.lbfgs_steps) == (1e-3, 1.0, 20_000, 0)
    assert config.seed == 2


def test_default_and_robust_protocols():
    case = bench.cases()["Wave1d-C"]
    default = bench.case_config(case, "default", seed=0)
    assert default.train.steps == 20_000
    assert default.network == NetworkSpec()  # RunConfig()'s network: nothing tuned
    robust = bench.case_config(case, "robust", seed=0)
    assert robust.network.normalize_inputs and robust.train.steps <= 20_000
    with pytest.raises(ConfigError, match="unknown protocol 'fast'"):
        bench.case_config(case, "fast", seed=0)


def test_unknown_case_names_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown PINNacle case.*Burgers1d-C"):
        bench.select_cases("Burgers1d-X")


def test_condition_points_fixed_builds_fixed_condition_sets():
    config = resolve("burgers", None, ["train.condition_points=fixed",
                                       "train.condition_batch_size=64"])
    run = build(config, with_reference=False)
    for name in ("ic", "bc"):
        sampler = run.trainer.samplers[name]
        assert isinstance(sampler, Fixed) and sampler.size == sampler.batch_size == 64
    state = run.trainer.init(run.state.model, jax.random.key(0))
    a = run.trainer.sample(state, jax.random.key(1))["ic"].points
    b = run.trainer.sample(state, jax.random.key(2))["ic"].points
    np.testing.assert_array_equal(a, b)  # the same set at every step


def test_box_scaling_maps_the_box_to_the_unit_cube_and_skips_periodic_axes():
    scale = BoxScaling((0.0, -1.0, 2.0), (5.0, 1.0, 2.0), skip=(1,))
    np.testing.assert_allclose(scale(jnp.array([0.0, 0.7, 2.0])), [-1.0, 0.7, 2.0])
    np.testing.assert_allclose(scale(jnp.array([5.0, -0.3, 2.0])), [1.0, -0.3, 2.0])
    np.testing.assert_allclose(scale(jnp.array([2.5, 0.0, 2.0])), [0.0, 0.0, 2.0])
    spec = NetworkSpec(width=8, depth=1, normalize_inputs=True)
    box = ((0.0, 10.0), (5.0, 20.0))
    net = build_network(spec, 2, 1, (), jax.random.key(0), box=box)
    plain = build_network(NetworkSpec(width=8, depth=1), 2, 1, (), jax.random.key(0))
    x = jnp.array([2.5, 12.0])  # -> (0, -0.6)
    np.testing.assert_allclose(net(x), plain(jnp.array([0.0, -0.6])), rtol=1e-6)
    with pytest.raises(ValueError, match="bounding box"):
        build_network(spec, 2, 1, (), jax.random.key(0))


def _fake_run(out, case, protocol, seed, rel_l2, steps=100, lbfgs=0):
    folder = out / bench.RUNS / f"{case}__{protocol}__s{seed}"
    (folder / "plots").mkdir(parents=True)
    (folder / "plots" / "error_maps.png").write_bytes(b"")
    (folder / "summary.json").write_text(json.dumps(
        {"rel_l2": rel_l2, "steps_done": steps, "lbfgs_iterations_done": lbfgs,
         "train_time_s": 12.0, "steps_per_s": 8.0}))


def test_results_and_report_from_finished_runs(tmp_path):
    _fake_run(tmp_path, "Poisson2d-C", "recipe", 0, 0.002, steps=900, lbfgs=100)
    _fake_run(tmp_path, "Poisson2d-C", "recipe", 1, 0.004, steps=900, lbfgs=100)
    _fake_run(tmp_path, "Wave1d-C", "pinnacle", 0, 0.5)
    (tmp_path / bench.RUNS / "Wave1d-C__pinnacle__s1").mkdir()  # unfinished: left out
    with open(bench.write_results(tmp_path)) as f:
        rows = list(csv.DictReader(f))
    assert [(r["case"], r["protocol"], r["seed"], r["steps"]) for r in rows] == [
        ("Poisson2d-C", "recipe", "0", "1000"), ("Poisson2d-C", "recipe", "1", "1000"),
        ("Wave1d-C", "pinnacle", "0", "100")]
    report = bench.write_report(tmp_path).read_text()
    poisson = next(line for line in report.splitlines() if line.startswith("| Poisson2d-C"))
    assert "0.694" in poisson and "NTK 0.0123" in poisson
    assert "0.003 ± 0.0014" in poisson and "0.24x" in poisson
    assert "(runs/Poisson2d-C__recipe__s0/plots/error_maps.png)" in poisson
    assert "| Wave1d-C | pinnacle | 0.588 |" in report


def test_bench_command_runs_resumes_and_reports(tmp_path, capsys):
    out = tmp_path / "b"
    args = ["bench", "pinnacle", "--cases", "Wave1d-C", "--protocol", "pinnacle",
            "--set", "train.steps=20", "--set", "train.eval_every=10",
            "--set", "sampler.size=256", "--set", "train.batch_size=256",
            "--set", "train.condition_batch_size=64", "--out", str(out)]
    assert main(args) == 0
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["case"] == "Wave1d-C" and rows[0]["steps"] == "20"
    assert 0 < float(rows[0]["l2re"]) < 10
    capsys.readouterr()
    assert main(args) == 0  # the second time, the finished run is skipped
    assert "Wave1d-C__pinnacle__s0: skipped" in capsys.readouterr().out
    assert (out / "report.md").read_text().count("| Wave1d-C |") == 1
