"""The issue's accuracy targets as slow tests (minutes each; `python -m pytest -m slow`)."""

import pytest

from adapinn.experiments.fit import fit
from adapinn.experiments.presets import resolve

pytestmark = pytest.mark.slow


def test_burgers_quick_preset_reaches_2e_3(tmp_path):
    summary = fit(resolve("burgers"), tmp_path / "burgers", progress=False)
    assert summary["rel_l2"] <= 2e-3, summary


def test_allen_cahn_quick_preset_reaches_5e_2(tmp_path):
    summary = fit(resolve("allen_cahn"), tmp_path / "allen_cahn", progress=False)
    assert summary["rel_l2"] <= 5e-2, summary
