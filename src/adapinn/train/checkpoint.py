"""Checkpoints: the whole TrainState serialised with equinox, written atomically, plus a small
JSON record (step, phase, rel. L2). A failed run never overwrites the last good checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx

STATE_FILE = "checkpoint.eqx"
META_FILE = "checkpoint.json"


def save(directory: Path, state: Any, meta: dict) -> None:
    """Write `state` and `meta`; a crash mid-write leaves the previous checkpoint intact."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (STATE_FILE + ".tmp")
    eqx.tree_serialise_leaves(tmp, state)
    os.replace(tmp, directory / STATE_FILE)
    tmp_meta = directory / (META_FILE + ".tmp")
    tmp_meta.write_text(json.dumps(meta, indent=1))
    os.replace(tmp_meta, directory / META_FILE)


def exists(directory: Path) -> bool:
    return (directory / STATE_FILE).is_file() and (directory / META_FILE).is_file()


def load(directory: Path, like: Any) -> tuple[Any, dict]:
    """Read a checkpoint into the structure of `like` (a freshly initialised state)."""
    if not exists(directory):
        raise FileNotFoundError(
            f"no checkpoint in {str(directory)!r}: expected {STATE_FILE} and {META_FILE}"
        )
    state = eqx.tree_deserialise_leaves(directory / STATE_FILE, like)
    return state, json.loads((directory / META_FILE).read_text())
