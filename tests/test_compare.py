"""The comparison workflow: planning (arm configs, budgets, early errors), and a tiny
two-arm comparison that writes its report and resumes (finished arms skipped, an
interrupted one resumed)."""

from __future__ import annotations

import json

import pytest

from adapinn.cli import main
from adapinn.experiments import report
from adapinn.experiments.compare import (
    UNBOUNDED_STEPS,
    Spec,
    _nice_cadence,
    arm_state,
    budget_warnings,
    compare,
    plan,
)
from adapinn.experiments.config import ConfigError, dump

TINY = ["network.width=16", "network.depth=2", "eval.nt=21", "eval.nx=32",
        "train.lbfgs_steps=0", "train.batch_size=64", "train.condition_batch_size=32",
        "train.eval_every=10", "train.checkpoint_every=10", "train.scan_steps=10"]
HARDBANK = "hardbank:start_step=0:ramp_steps=0:pool_mult=4:refresh_every=5"
SMALL = [item for item in TINY if item.split("=")[0] not in
         ("train.lbfgs_steps", "train.eval_every", "train.checkpoint_every")]
"""TINY without the cadences and the L-BFGS switch: compare's own rules choose them."""


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


def test_lbfgs_finish_is_off_unless_set_and_the_report_says_when_it_is_on():
    off = plan("burgers", "uniform", budget_seconds=5.0, overrides=SMALL)  # burgers.yaml: 6000
    assert off.configs[off.arms[0]].train.lbfgs_steps == 0
    assert "Adam only (no L-BFGS finish)" in report._markdown(off, [], False)
    on = plan("burgers", "uniform", budget_seconds=5.0,
              overrides=SMALL + ["train.lbfgs_steps=7"])
    assert on.configs[on.arms[0]].train.lbfgs_steps == 7
    assert "L-BFGS finish on (train.lbfgs_steps=7): the time budget includes it" in \
        report._markdown(on, [], False)
    steps = plan("burgers", "uniform", budget_steps=20, overrides=SMALL + ["train.lbfgs_steps=7"])
    assert "each arm runs it after its Adam steps" in report._markdown(steps, [], False)


def test_step_budget_fits_the_eval_and_checkpoint_cadences_unless_set():
    def train(budget, extra=()):
        p = plan("burgers", "uniform", budget_steps=budget, overrides=SMALL + list(extra))
        return p.configs[p.arms[0]].train

    small = train(20)  # burgers.yaml: eval_every 1000, checkpoint_every 5000; scan_steps 10
    assert (small.eval_every, small.checkpoint_every, small.scan_steps) == (2, 4, 10)
    big = train(5000, ["train.scan_steps=100"])
    assert (big.eval_every, big.checkpoint_every) == (500, 1000)
    kept = train(20, ["train.eval_every=50", "train.checkpoint_every=7"])
    assert (kept.eval_every, kept.checkpoint_every) == (50, 7)
    timed = plan("burgers", "uniform", budget_seconds=3.0, overrides=SMALL)
    assert timed.configs[timed.arms[0]].train.eval_every == 1000  # no step count to fit
    assert [_nice_cadence(t, 100) for t in (1, 3, 30, 99, 123, 1234)] == [1, 2, 25, 50, 100,
                                                                          1200]


def test_cadences_longer_than_the_step_budget_are_warned_about():
    p = plan("burgers", "uniform,rad,hardbank:refresh_every=5", "fixed,gradnorm",
             budget_steps=500, overrides=SMALL)
    lines = budget_warnings(p)
    assert any("rad / fixed: sampler.refresh_every=1000 exceeds the budget of 500 steps" in x
               and "never refreshes" in x and "refresh_every=50" in x for x in lines)
    assert any("hardbank:refresh_every=5 / fixed: sampler.start_step=15000" in x
               and "start_step=0" in x for x in lines)
    assert any("uniform / gradnorm: weighting.every=1000" in x for x in lines)
    assert not any("sampler.refresh_every=5 " in x or x.startswith("warning: uniform / fixed")
                   for x in lines)
    assert budget_warnings(plan("burgers", "rad", budget_seconds=5.0, overrides=SMALL)) == []


def test_tiny_step_budget_fills_every_rel_l2_column_and_warns(tmp_path):
    """The packaged eval_every (1000) is far above a 20-step budget; compare fits it."""
    lines: list[str] = []
    p = compare("burgers", "rad:set_size=64:pool_size=256", budget_steps=20, overrides=SMALL,
                out=tmp_path / "cmp", echo=lines.append)
    assert set(p.status.values()) == {"ran"}
    assert any("sampler.refresh_every=1000 exceeds the budget of 20 steps" in x for x in lines)
    row = next(line for line in (tmp_path / "cmp" / "report.md").read_text().splitlines()
               if line.startswith("| rad:"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert "n/a" not in cells[2:7]  # rel. L2 at 1/4, 1/2, 3/4, final, best
    assert "Adam only" in (tmp_path / "cmp" / "report.md").read_text()


def test_arm_state_compares_complete_configs(tmp_path):
    """A finished arm whose config.yaml leaves defaults out (an older run) is still done."""
    import yaml

    p = plan("burgers", "uniform", "gradnorm", budget_steps=20, overrides=SMALL)
    config = p.configs[p.arms[0]]
    assert config.sampler.options == {"refresh_every": 0}  # complete: defaults written out
    assert config.weighting.options["every"] == 1000 and "nu" in config.problem.options
    folder = tmp_path / "arm"
    assert arm_state(folder, config) == "new"
    folder.mkdir()
    short = config.model_dump(mode="json")
    short["sampler"], short["problem"] = {"name": "uniform"}, {"name": "burgers"}
    short["weighting"] = {"name": "gradnorm"}
    (folder / "config.yaml").write_text(yaml.safe_dump(short))
    assert arm_state(folder, config) == "resume"  # no summary yet
    (folder / "summary.json").write_text("{}")
    assert arm_state(folder, config) == "done"
    short["weighting"]["every"] = 7
    (folder / "config.yaml").write_text(yaml.safe_dump(short))
    assert arm_state(folder, config) == "resume"


def test_equal_time_arms_get_the_reference_arms_training_time(tmp_path):
    """--equal-time: uniform runs the steps, hardbank its training time; the report adds the
    rel. L2 at given steps, the time to targets and the rank-correlation figure."""
    out = tmp_path / "cmp"
    p = compare("burgers", f"uniform,{HARDBANK}", budget_steps=20, overrides=TINY, out=out,
                echo=lambda _: None, equal_time=True, at_steps=[10, 20, 10**6],
                targets=[10.0, 1e-9])
    assert set(p.status.values()) == {"ran"}
    uniform, hardbank = p.arms
    assert p.reference(uniform) is None and p.reference(hardbank) == uniform
    ref = json.loads((out / "arms" / uniform.folder / "summary.json").read_text())
    assert ref["steps_done"] == 20
    config = p.configs[hardbank]
    assert config.train.time_budget_s == ref["train_time_s"]
    assert config.train.steps == UNBOUNDED_STEPS
    text = (out / "report.md").read_text()
    assert "uniform runs 20 steps, every other arm its training time" in text
    head = next(line for line in text.splitlines() if line.startswith("| arm |"))
    assert "rel. L2 @ step 10 | rel. L2 @ step 20 | rel. L2 @ step 1000000" in head
    assert "time to 10 [s] | time to 1e-09 [s]" in head
    row = [c.strip() for c in next(line for line in text.splitlines()
                                    if line.startswith("| uniform |")).strip("|").split("|")]
    at_10, at_20, at_never, t_easy, t_never = row[5:10]
    assert "n/a" not in (at_10, at_20) and at_never == "n/a"  # the run never got there
    assert float(t_easy) <= ref["train_time_s"] and t_never == "n/a (0/1)"
    assert (out / "correlation.png").stat().st_size > 1000 and "correlation.png" in text


def test_equal_time_needs_a_step_budget_and_a_finished_reference(tmp_path):
    from adapinn.experiments.compare import equal_time_config

    with pytest.raises(ConfigError, match="--equal-time needs --budget-steps"):
        plan("burgers", "uniform,rad", budget_seconds=5.0, equal_time=True)
    with pytest.raises(ConfigError, match="positive"):
        plan("burgers", "uniform", budget_steps=5, at_steps=[0])
    p = plan("burgers", "uniform,rad", budget_steps=5, overrides=TINY, equal_time=True)
    assert equal_time_config(p.configs[p.arms[1]], tmp_path) is None  # no summary there
    with pytest.raises(SystemExit):  # argparse: usage and the bad value
        main(["compare", "burgers", "--samplers", "uniform", "--budget-steps", "5",
              "--at-steps", "1x"])


def test_arms_file_pairs_samplers_with_their_own_weightings(tmp_path):
    arms = tmp_path / "arms.yaml"
    arms.write_text("uniform: {sampler: uniform}\n"
                    "hb: {sampler: {name: hardbank, p_max: 0.3, start_step: 0}}\n"
                    "r3_rba:\n  sampler: r3\n  weighting:\n    name: chain\n    schemes:\n"
                    "      - {name: fixed, weights: {ic: 2.0}}\n      - {name: rba}\n")
    p = plan("burgers", None, seeds=2, budget_steps=20, overrides=TINY, arms_file=arms,
             equal_time=True)
    assert [a.folder for a in p.arms] == ["uniform__s0", "uniform__s1", "hb__s0", "hb__s1",
                                          "r3_rba__s0", "r3_rba__s1"]
    config = {a.folder: c for a, c in p.configs.items()}
    assert config["hb__s1"].sampler.options["p_max"] == 0.3
    schemes = config["r3_rba__s0"].weighting.options["schemes"]
    assert [s["name"] for s in schemes] == ["fixed", "rba"]
    assert schemes[0]["weights"] == {"ic": 2.0}
    assert config["uniform__s0"].weighting.name == "fixed"  # burgers.yaml's own weighting
    by_folder = {a.folder: a for a in p.arms}
    assert p.reference(by_folder["r3_rba__s1"]) == by_folder["uniform__s1"]
    with pytest.raises(ConfigError, match="either as --samplers"):
        plan("burgers", "uniform", budget_steps=20, arms_file=arms)
    for text, message in [("a: {weighting: fixed}", "needs a 'sampler'"),
                          ("a: {sampler: {p_max: 1}}", "registry name or a mapping"),
                          ("- uniform", "must hold a mapping"),
                          ("", "must map arm names"),
                          ("a: {sampler: nosuch}", "unknown sampler")]:
        arms.write_text(text)
        with pytest.raises(ConfigError, match=message):
            plan("burgers", None, budget_steps=20, arms_file=arms)
    with pytest.raises(ConfigError, match="arms file .* does not exist"):
        plan("burgers", None, budget_steps=20, arms_file=tmp_path / "missing.yaml")
