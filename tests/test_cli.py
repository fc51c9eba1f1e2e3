"""The command line: `adapinn list` shows every registry with its options, and paths or names
a user gets wrong give one clear error (exit code 2), never a traceback."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml

from adapinn.cli import main
from adapinn.train import records
from tests.conftest import TINY

QUICK = [*TINY, "train.steps=2"]  # if a refused run ran anyway, it would stop at once


def _sets(items):
    return [arg for item in items for arg in ("--set", item)]


def test_list_shows_every_registry_with_its_description(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in ("problems", "samplers", "weightings", "aggregators", "networks", "protocols",
                 "loggers", "presets"):
        assert f"\n{kind}" in f"\n{out}", kind
    for name in ("pcgrad", "hardbank", "rounds", "lbfgs", "adam", "wandb", "tensorboard",
                 "modified_mlp", "burgers:quick"):
        assert name in out, name
    assert "PCGrad on the per-term gradients" in out  # the first docstring line
    assert "p_max" not in out  # options only with --verbose


def test_list_verbose_and_list_kind_show_options_with_type_and_default(capsys):
    assert main(["list", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "p_max: float = 0.2" in out and "start_step: int = 15000" in out
    assert "gtn: bool = True" in out  # pcgrad's
    assert "rounds.enabled: bool = False" in out and "train.lbfgs_steps: int = 0" in out
    assert "schemes: list of {name: ...} schemes = required" in out
    assert main(["list", "samplers"]) == 0
    out = capsys.readouterr().out
    assert "refresh_every: int = 1000" in out and "pcgrad" not in out
    assert main(["list", "aggregator"]) == 0 and "eps: float = 1e-08" in capsys.readouterr().out
    assert main(["list", "nosuch"]) == 2
    assert "unknown kind 'nosuch'; kinds: problems, samplers" in capsys.readouterr().err


def test_reference_prints_the_path_numpy_writes(tmp_path, capsys):
    out = tmp_path / "grid"
    assert main(["reference", "burgers", "--nt", "5", "--nx", "8", "--out", str(out)]) == 0
    assert f"wrote {out}.npz:" in capsys.readouterr().out
    with np.load(f"{out}.npz") as data:
        assert data["u"].shape == (5, 8)
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["reference", "burgers", "--nt", "5", "--nx", "8", "--out",
                 str(blocker / "x")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {str(blocker / 'x.npz')!r}: Not a directory" in err
    assert "Traceback" not in err


def test_reference_of_an_unknown_problem_lists_the_valid_names(tmp_path, capsys):
    assert main(["reference", "heat", "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert "unknown reference 'heat'; valid names: allen_cahn, burgers" in err
    assert "Traceback" not in err


def test_run_out_that_is_a_file_or_under_one_is_refused_clearly(tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("keep me")
    assert main(["run", "burgers", "--out", str(blocker), *_sets(QUICK)]) == 2
    assert f"run folder {str(blocker)!r} is a file" in capsys.readouterr().err
    assert main(["run", "burgers", "--out", str(blocker / "sub"), *_sets(QUICK)]) == 2
    assert f"lies under the file {str(blocker)!r}" in capsys.readouterr().err
    assert blocker.read_text() == "keep me"


def test_run_out_in_a_read_only_folder_is_refused_clearly(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: a 0o500 folder is still writable")
        assert main(["run", "burgers", "--out", str(locked / "run"), *_sets(QUICK)]) == 2
        assert "cannot be written (no write permission" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_run_out_without_write_permission_is_refused_even_as_root(tmp_path, capsys,
                                                                   monkeypatch):
    """The permission branch, checked with os.access (as root a chmod does not stop writes)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(records.os, "access",
                        lambda p, mode: False if str(p) == str(locked) else real(p, mode))
    assert main(["run", "burgers", "--out", str(locked / "a" / "b"), *_sets(QUICK)]) == 2
    err = capsys.readouterr().err
    assert f"no write permission in {str(locked)!r}" in err and "Traceback" not in err
    assert not (locked / "a").exists()


def test_compare_out_that_is_a_file_is_refused_clearly(tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("")
    code = main(["compare", "burgers", "--samplers", "uniform", "--budget-steps", "5",
                 "--out", str(blocker), *_sets(QUICK)])
    err = capsys.readouterr().err
    assert code == 2 and "cannot make the comparison folder" in err and "Traceback" not in err


def test_misspelt_section_lists_the_sections_and_suggests_the_nearest(tmp_path, capsys):
    assert main(["run", "burgers", "--set", "trian.steps=3", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "unknown section 'trian' (did you mean 'train'?)" in err
    assert "valid sections: problem, network, sampler, weighting, aggregator, rounds" in err
    assert not (tmp_path / "r").exists()


def test_config_yaml_is_complete_and_the_same_command_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "burgers", "--out", str(out), "--no-progress",
            *_sets(TINY + ["sampler.name=hardbank", "sampler.p_max=0.3",
                           "aggregator.name=pcgrad", "aggregator.gtn=false"])]
    assert main([*args, "--set", "train.steps=10"]) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["sampler"]["p_max"] == 0.3  # given
    assert saved["sampler"]["start_step"] == 15000 and saved["sampler"]["iw_cells"] == 4096
    assert saved["aggregator"] == {"name": "pcgrad", "gtn": False, "momentum": 0.99,
                                   "eps": 1e-8}
    assert saved["weighting"]["weights"] == {"pde": 1.0, "ic": 10.0, "bc": 10.0}
    assert saved["problem"] == {"name": "burgers", "nu": pytest.approx(0.01 / np.pi)}
    capsys.readouterr()
    assert main([*args, "--set", "train.steps=20", "--resume"]) == 0, capsys.readouterr().err
    assert '"steps_done": 20' in (out / "summary.json").read_text()
