"""The comparison workflow: planning (arm configs, budgets, early errors), and a tiny
two-arm comparison that writes its report and resumes (finished arms skipped, an
interrupted one resumed)."""

from __future__ import annotations

import json

import pytest

from adapinn.cli import main
from adapinn.experiments.compare import UNBOUNDED_STEPS, Spec, compare, plan
from adapinn.experiments.config import ConfigError, dump

TINY = ["network.width=16", "network.depth=2", "eval.nt=21", "eval.nx=32",
        "train.lbfgs_steps=0", "train.batch_size=64", "train.condition_batch_size=32",
        "train.eval_every=10", "train.checkpoint_every=10", "train.scan_steps=10"]
HARDBANK = "hardbank:start_step=0:ramp_steps=0:pool_mult=4:refresh_every=5"


def test_spec_parsing_and_labels():
    spec = Spec.parse(" hardbank:p_max=0.3:replace=lowest ")
    assert spec == Spec("hardbank", ("p_max=0.3", "replace=lowest"))
    assert spec.label == "hardbank:p_max=0.3:replace=lowest"
    with pytest.raises(ConfigError):
        Spec.parse("hardbank:p_max")


def test_plan_fixes_everything_but_sampler_weighting_and_seed():
    p = plan("burgers", f"uniform,{HARDBANK}", "fixed,gradnorm", seeds=2, budget_steps=30,
             overrides=TINY + ["train.lr=5e-4"])
    assert len(p.arms) == 2 * 2 * 2 and len({a.folder for a in p.arms}) == 8
    for arm, config in p.configs.items():
        assert config.seed == arm.seed and config.train.steps == 30
        assert config.train.lr == 5e-4 and config.network.width == 16
        assert config.sampler.name == arm.sampler.name
        assert config.weighting.name == arm.weighting.name
    hb = next(c for a, c in p.configs.items() if a.sampler.name == "hardbank")
    assert hb.sampler.options["pool_mult"] == 4 and hb.sampler.options["refresh_every"] == 5
    dumps = {a: c.model_dump() for a, c in p.configs.items()}
    a, b = (dumps[x] for x in p.arms[:2])  # same sampler and weighting, seeds 0 and 1
    assert {k for k in a if a[k] != b[k]} == {"seed"}


def test_time_budget_and_early_errors():
    p = plan("burgers", "uniform", budget_seconds=12.5, overrides=TINY)
    config = p.configs[p.arms[0]]
    assert config.train.time_budget_s == 12.5 and config.train.steps == UNBOUNDED_STEPS
    with pytest.raises(ConfigError, match="exactly one budget"):
        plan("burgers", "uniform", budget_steps=10, budget_seconds=1.0)
    with pytest.raises(ConfigError, match="valid samplers"):
        plan("burgers", "uniform,nosuch", budget_steps=10)
    with pytest.raises(ConfigError, match="p_maxx"):
        plan("burgers", "hardbank:p_maxx=0.3", budget_steps=10)


def test_cli_reports_a_bad_plan_without_running(tmp_path, capsys):
    code = main(["compare", "burgers", "--samplers", "uniform,nosuch", "--budget-steps", "5",
                 "--out", str(tmp_path / "cmp")])
    assert code == 2 and "unknown sampler 'nosuch'" in capsys.readouterr().err
    assert not (tmp_path / "cmp").exists()


def test_tiny_compare_writes_report_resumes_and_skips(tmp_path):
    out = tmp_path / "cmp"
    kwargs = dict(problem="burgers", samplers=f"uniform,{HARDBANK}", budget_steps=20,
                  overrides=TINY, out=out, echo=lambda _: None)
    planned = plan("burgers", f"uniform,{HARDBANK}", budget_steps=20, overrides=TINY)
    folders = {a.sampler.name: out / "arms" / a.folder for a in planned.arms}
    hardbank = next(a for a in planned.arms if a.sampler.name == "hardbank")
    folders["hardbank"].mkdir(parents=True)  # an arm killed before its first checkpoint
    (folders["hardbank"] / "config.yaml").write_text(dump(planned.configs[hardbank]))

    first = compare(**kwargs)
    assert {a.sampler.name: s for a, s in first.status.items()} == {
        "uniform": "ran", "hardbank": "resumed"}
    report = (out / "report.md").read_text()
    assert "| uniform | 1 |" in report and f"| {HARDBANK} | 1 |" in report
    assert "| n/a | n/a |" not in report  # both arms have numbers
    for name in ("convergence_steps.png", "convergence_time.png", "snapshots.png"):
        assert (out / name).stat().st_size > 1000
    for folder in folders.values():
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["steps_done"] == 20 and summary["peak_rss_mb"] > 0
        assert len(list((folder / "snapshots").glob("points_*.npz"))) == 2
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in lines] == [10, 20]

    stamps = {n: (f / "summary.json").stat().st_mtime_ns for n, f in folders.items()}
    (out / "report.md").unlink()
    second = compare(**kwargs)  # the same command again: nothing left to run
    assert set(second.status.values()) == {"skipped"}
    assert stamps == {n: (f / "summary.json").stat().st_mtime_ns for n, f in folders.items()}
    assert f"| {HARDBANK} | 1 |" in (out / "report.md").read_text()
