"""Shared test settings: an isolated cache dir, a compilation cache and tiny-run overrides.

Warnings are errors (pyproject). JAX's rank-promotion "raise" mode is NOT used: it rejects the
ordinary (n, d) * (d,) broadcasts that point-wise PDE code is made of.
"""

import os
import tempfile
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"

# One XLA compilation cache per test run (both xdist workers and the runs they start in
# subprocesses share it; a new run starts cold, as CI does): many tests compile the same tiny
# Burgers step, and compiling, not training, is most of their time. Set through the
# environment before JAX is imported, so subprocesses inherit it.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"adapinn-tests-xla-{_RUN}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Reference grids go to one per-session cache folder, never the user's."""
    monkeypatch.setenv("ADAPINN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


TINY = [
    "network.width=16", "network.depth=2", "train.batch_size=64",
    "train.condition_batch_size=16", "eval.nt=21", "eval.nx=32", "train.eval_every=10",
    "train.checkpoint_every=10", "train.scan_steps=10", "train.lbfgs_steps=0",
]
"""Overrides that make any packaged config a seconds-long run."""
