"""Runs you can trust: a resumed run equals the uninterrupted one (bit-identical on CPU), the two
step counters stay apart, a signal leaves a resumable folder, and nothing is written before a
run is built."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from adapinn.cli import main
from adapinn.train import checkpoint
from tests.conftest import TINY

TIMING_KEYS = {"wall_time_s", "elapsed_s"}


def _run(out, *extra, steps=40, lbfgs=0):
    args = ["run", "burgers", "--out", str(out), "--no-progress"]
    for item in [*TINY, f"train.steps={steps}", f"train.lbfgs_steps={lbfgs}"]:
        args += ["--set", item]
    return main(args + list(extra))


def _state_bytes(out: Path) -> bytes:
    """The serialised train state (and L-BFGS state) of a checkpoint, without its record."""
    data = (out / checkpoint.STATE_FILE).read_bytes()
    start = len(checkpoint._MAGIC)
    size = int.from_bytes(data[start:start + 8], "little")
    return data[start + 8 + size:]


def _rows(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


STATEFUL = {
    "hardbank": ["--set", "sampler.name=hardbank", "--set", "sampler.start_step=5",
                 "--set", "sampler.refresh_every=10", "--set", "sampler.pool_mult=4",
                 "--set", "sampler.bank_mult=2"],
    "gradnorm": ["--set", "weighting.name=gradnorm", "--set", "weighting.every=10"],
}


@pytest.mark.parametrize("kind", sorted(STATEFUL))
def test_resume_equals_an_uninterrupted_run(tmp_path, kind):
    extra = STATEFUL[kind]
    assert _run(tmp_path / "whole", *extra, steps=40) == 0
    assert _run(tmp_path / "split", *extra, steps=20) == 0
    assert _run(tmp_path / "split", *extra, "--resume", steps=40) == 0
    assert _state_bytes(tmp_path / "whole") == _state_bytes(tmp_path / "split")
    assert _rows(tmp_path / "whole") == _rows(tmp_path / "split")


def test_resume_continues_adam_then_the_lbfgs_finish(tmp_path):
    """Adam 20 -> resume to 40 Adam + 10 L-BFGS -> resume to 20 L-BFGS equals 40 + 20 in one
    go; the record keeps the Adam steps and the L-BFGS iterations apart."""
    assert _run(tmp_path / "whole", steps=40, lbfgs=20) == 0
    split = tmp_path / "split"
    assert _run(split, steps=20) == 0
    assert _run(split, "--resume", steps=40, lbfgs=10) == 0
    meta = checkpoint.read_meta(split)
    assert (meta["adam_steps"], meta["lbfgs_iterations"]) == (40, 10)
    assert _run(split, "--resume", steps=40, lbfgs=20) == 0  # continues the finish
    meta = checkpoint.read_meta(split)
    assert (meta["adam_steps"], meta["lbfgs_iterations"], meta["phase"]) == (40, 20, "lbfgs")
    assert _state_bytes(tmp_path / "whole") == _state_bytes(split)
    assert _rows(tmp_path / "whole") == _rows(split)
    rows = _rows(split)
    assert [(r["step"], r["phase"]) for r in rows][-3:] == [
        (40, "adam"), (50, "lbfgs"), (60, "lbfgs")]
    summary = json.loads((split / "summary.json").read_text())
    assert (summary["steps_done"], summary["lbfgs_iterations_done"]) == (40, 20)


def test_more_adam_steps_after_a_finish_are_refused(tmp_path, capsys):
    assert _run(tmp_path / "r", steps=20, lbfgs=10) == 0
    assert _run(tmp_path / "r", "--resume", steps=40, lbfgs=10) == 2
    assert "already ran its L-BFGS finish" in capsys.readouterr().err


def test_a_failed_build_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(out, "--set", "sampler.name=hardbank", "--set", "sampler.p_mx=0.1") == 2
    assert "p_mx" in capsys.readouterr().err
    assert not (out / "config.yaml").exists()
    assert _run(out, steps=10) == 0  # the same --out, no --overwrite needed


def test_resume_without_a_checkpoint_says_it_starts_again(tmp_path, caplog):
    out = tmp_path / "run"
    assert _run(out, steps=10) == 0
    (out / checkpoint.STATE_FILE).unlink()
    with caplog.at_level("WARNING", logger="adapinn"):
        assert _run(out, "--resume", steps=10) == 0
    assert "starting again from step 0" in caplog.text


def test_resume_accepts_a_saved_config_without_its_default_options(tmp_path):
    """config.yaml written by an older version (no default options of the sampler, weighting
    and problem) resumes: the saved config is completed before it is compared."""
    import yaml

    out = tmp_path / "run"
    assert _run(out, steps=10) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    saved["sampler"] = {"name": saved["sampler"]["name"]}
    saved["weighting"] = {"name": saved["weighting"]["name"],
                          "weights": saved["weighting"]["weights"]}
    saved["problem"] = {"name": saved["problem"]["name"]}
    (out / "config.yaml").write_text(yaml.safe_dump(saved))
    assert _run(out, "--resume", steps=20) == 0
    assert checkpoint.read_meta(out)["adam_steps"] == 20


def _start(out: Path, *overrides: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "adapinn.cli", "run", "burgers", "--out", str(out),
           "--no-progress"]
    for item in [*TINY, *overrides]:
        cmd += ["--set", item]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)


def _wait_for(predicate, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"run ended or timed out before the signal: {proc.communicate()[0]}")
        time.sleep(0.05)


@pytest.mark.parametrize(("sig", "phase"), [(signal.SIGINT, "adam"),
                                             (signal.SIGTERM, "lbfgs")])
def test_a_signal_leaves_a_resumable_checkpoint(tmp_path, sig, phase):
    out = tmp_path / "run"
    if phase == "adam":
        proc = _start(out, "train.steps=10000000")
        ready = lambda: (out / checkpoint.STATE_FILE).exists()  # noqa: E731
    else:
        proc = _start(out, "train.steps=20", "train.lbfgs_steps=10000000")
        ready = lambda: (out / "metrics.jsonl").exists() and '"lbfgs"' in (  # noqa: E731
            out / "metrics.jsonl").read_text()
    _wait_for(ready, proc)
    proc.send_signal(sig)
    try:  # generous: a loaded 2-core machine once needed more than 120 s here
        output, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()  # never leave the run behind (its warnings would fail a later test)
        pytest.fail(f"the run did not stop within 300 s of {sig!r}: {proc.communicate()[0]}")
    assert proc.returncode == 130, output
    assert "--resume" in output and "Traceback" not in output
    assert not list(out.glob("*.tmp"))
    meta = checkpoint.read_meta(out)
    assert meta["phase"] == phase
    if phase == "lbfgs":
        assert meta["adam_steps"] == 20 and meta["lbfgs_iterations"] > 0
        assert _run(out, "--resume", steps=20, lbfgs=meta["lbfgs_iterations"] + 10) == 0
        assert checkpoint.read_meta(out)["lbfgs_iterations"] == meta["lbfgs_iterations"] + 10
    else:
        done = meta["adam_steps"]
        assert done > 0 and done % 10 == 0
        assert _run(out, "--resume", steps=done + 10) == 0
        assert checkpoint.read_meta(out)["adam_steps"] == done + 10


def test_float64_is_scoped_to_the_run_and_trains_on_float64_points(tmp_path):
    from adapinn.experiments.build import build
    from adapinn.experiments.presets import resolve

    overrides = [*TINY, "network.dtype=float64", "sampler.name=fixed", "sampler.size=64",
                 "train.steps=10"]
    out = tmp_path / "run"
    args = ["run", "burgers", "--out", str(out), "--no-progress"]
    for item in overrides:
        args += ["--set", item]
    assert main(args) == 0
    assert not jax.config.jax_enable_x64  # the switch ended with the run
    config = resolve("burgers", None, overrides)
    with pytest.raises(ValueError, match="64-bit"):
        build(config, with_reference=False)
    with jax.enable_x64(True):
        like = build(config, with_reference=False).state
        state, _, _ = checkpoint.load(out, like)
        assert state.sampler_states["pde"].dtype == np.float64
        model_leaves = jax.tree.leaves(state.model)
        assert all(x.dtype == np.float64 for x in model_leaves if x.dtype.kind == "f")


def test_a_stop_request_ends_the_lbfgs_finish_after_the_running_chunk(tmp_path, monkeypatch):
    """The signal handler only sets a flag (an exception raised from it could be swallowed
    in a __del__ and the run went on); the phase stops after its chunk, saved."""
    from adapinn.errors import TrainingInterrupted
    from adapinn.experiments.fit import fit
    from adapinn.experiments.presets import resolve
    from adapinn.train import lbfgs
    from adapinn.train.stop import STOP

    real = lbfgs.lbfgs_iterations

    def request_stop(*args, **kwargs):
        STOP.set()  # as the handler does, while the chunk runs
        return real(*args, **kwargs)

    monkeypatch.setattr(lbfgs, "lbfgs_iterations", request_stop)
    config = resolve("burgers", None, [*TINY, "train.steps=20", "train.lbfgs_steps=1000000"])
    with pytest.raises(TrainingInterrupted, match="L-BFGS iteration 10 "):
        fit(config, tmp_path / "run", progress=False)
    meta = checkpoint.read_meta(tmp_path / "run")
    assert meta["phase"] == "lbfgs" and meta["lbfgs_iterations"] == 10
    assert not STOP.is_set()  # cleared when fit returns
