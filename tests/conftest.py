"""Shared test settings: an isolated cache dir and tiny-run overrides.

Warnings are errors (pyproject). JAX's rank-promotion "raise" mode is NOT used: it rejects the
ordinary (n, d) * (d,) broadcasts that point-wise PDE code is made of.
"""

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


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
