"""Multi-process training on JAX's distributed runtime, on this machine: two `adapinn run`
processes (one CPU device each, loopback coordinator, gloo collectives) train one job together
and match a single process with the same global batch; only process 0 writes; an unreachable
coordinator is a clear error within the timeout, not a hang."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from adapinn.experiments.config import ConfigError
from adapinn.train import distributed

RUN = ["network.width=8", "network.depth=1", "train.batch_size=64",
       "train.condition_batch_size=16", "eval.nt=21", "eval.nx=32", "train.eval_every=5",
       "train.checkpoint_every=10", "train.scan_steps=5", "train.lbfgs_steps=0",
       "train.steps=10"]
"""Two compiled chunks of 5 steps; small, because three interpreters share two cores."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(out: Path, *flags: str, cache: Path) -> subprocess.Popen:
    """`adapinn run burgers` (tiny) in a fresh interpreter with one CPU device."""
    args = [sys.executable, "-m", "adapinn.cli", "run", "burgers", "--out", str(out),
            "--no-progress", *[a for item in RUN for a in ("--set", item)], *flags]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
           "ADAPINN_CACHE_DIR": str(cache)}
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _finish(procs: list[subprocess.Popen], timeout: float) -> list[tuple[int, str, str]]:
    """Wait for all (killing every one still running on timeout or failure)."""
    deadline, results = time.monotonic() + timeout, []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=max(deadline - time.monotonic(), 1))
            results.append((p.returncode, stdout, stderr))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return results


def _leaves(path: Path) -> list[np.ndarray]:
    """The arrays of a checkpoint (its record, then consecutive .npy records)."""
    from adapinn.train import checkpoint

    out = []
    with path.open("rb") as f:
        checkpoint._read_header(f, path.parent)
        while True:
            try:
                out.append(np.load(f))
            except (EOFError, ValueError):
                return out


def _last_row(run: Path) -> dict:
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])


def test_two_processes_train_like_one(tmp_path):
    coordinator = f"127.0.0.1:{_free_port()}"
    flags = ["--coordinator", coordinator, "--num-processes", "2", "--init-timeout", "40"]
    cache = tmp_path / "cache"
    procs = [
        _start(tmp_path / "job", *flags, "--process-id", "0", cache=cache),
        # Its own --out, to see that process 1 writes nothing at all.
        _start(tmp_path / "job-p1", *flags, "--process-id", "1", cache=cache),
        _start(tmp_path / "single", cache=cache),
    ]
    results = _finish(procs, timeout=80)
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
    assert "run folder" in results[0][1] and "run folder" not in results[1][1]
    assert not (tmp_path / "job-p1").exists()

    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    assert (summary["n_processes"], summary["n_devices"]) == (2, 2)
    job, single = _last_row(tmp_path / "job"), _last_row(tmp_path / "single")
    assert job["step"] == single["step"] == 10
    for key in ("loss", "loss_pde", "loss_ic", "loss_bc", "rel_l2"):
        assert job[key] == pytest.approx(single[key], rel=1e-5), key
    a, b = (_leaves(tmp_path / r / "checkpoint.eqx") for r in ("job", "single"))
    assert len(a) == len(b) > 3
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_unreachable_coordinator_is_a_clear_error_in_bounded_time(tmp_path):
    start = time.monotonic()
    proc = _start(tmp_path / "run", "--coordinator", f"127.0.0.1:{_free_port()}",
                  "--num-processes", "2", "--process-id", "1", "--init-timeout", "3",
                  cache=tmp_path / "cache")
    [(rc, _, err)] = _finish([proc], timeout=20)
    assert time.monotonic() - start < 20
    assert rc == 2
    assert "adapinn: error: could not join the distributed job" in err
    assert "nothing answers at the coordinator" in err and "--init-timeout" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("flags", "message"), [
    (("127.0.0.1:1234", 2, None), "go together"),
    (("127.0.0.1", 2, 0), "HOST:PORT"),
    (("127.0.0.1:99999", 2, 0), "HOST:PORT"),
    (("10.0.0.1:1234", 2, 2), r"0\.\.1"),
    (("node1:1234", 0, 0), "at least 1"),
])
def test_inconsistent_flags_are_config_errors(flags, message):
    with pytest.raises(ConfigError, match=message):
        distributed.initialize(*flags, timeout_s=1)


def test_flags_accept_hostnames_and_ipv6():
    distributed.check_flags("node-17.cluster:8476", 4, 3)
    distributed.check_flags("[::1]:8476", 2, 0)


def test_launcher_detection_needs_several_tasks():
    slurm = {"SLURM_JOB_ID": "7", "SLURM_STEP_NODELIST": "n[1-2]", "SLURM_NTASKS": "2",
             "SLURM_PROCID": "1", "SLURM_LOCALID": "0"}
    assert distributed.launcher(slurm) == "slurm"
    assert distributed.launcher({**slurm, "SLURM_NTASKS": "1"}) is None
    assert distributed.launcher({"OMPI_MCA_orte_hnp_uri": "x", "OMPI_COMM_WORLD_SIZE": "4"}) \
        == "openmpi"
    assert distributed.launcher({}) is None
    assert distributed.initialize(environ={}) is False
