"""Checkpoints: the whole TrainState (and, during an L-BFGS finish, the L-BFGS state) serialised
with equinox, together with a small JSON record, in ONE file written atomically (write a
temporary file, fsync, rename). A crash or a signal at any moment leaves either the previous
checkpoint or the new one, never half of each. `checkpoint.json` is a human-readable copy of
the record, written after the checkpoint itself; `load` never reads it.

The record keeps the two step counters apart:

    adam_steps        optimiser steps taken (equals TrainState.step)
    lbfgs_iterations  iterations of the L-BFGS finish done after them (0 before the finish)
    phase             "adam", "round" or "lbfgs"
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx

STATE_FILE = "checkpoint.eqx"
META_FILE = "checkpoint.json"
_MAGIC = b"ADAPINN-CKPT-2\n"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save(directory: Path, state: Any, meta: dict, lbfgs_state: Any = None) -> None:
    """Write `state`, `meta` and (optionally) `lbfgs_state` as one file, atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "has_lbfgs_state": lbfgs_state is not None}
    header = json.dumps(meta).encode()
    body = io.BytesIO()
    eqx.tree_serialise_leaves(body, state)
    if lbfgs_state is not None:
        eqx.tree_serialise_leaves(body, lbfgs_state)
    _write_atomic(directory / STATE_FILE,
                  _MAGIC + len(header).to_bytes(8, "little") + header + body.getvalue())
    _write_atomic(directory / META_FILE, json.dumps(meta, indent=1).encode())


def exists(directory: Path) -> bool:
    return (directory / STATE_FILE).is_file()


def read_meta(directory: Path) -> dict:
    """The record of the checkpoint in `directory` (from the checkpoint file itself)."""
    with (directory / STATE_FILE).open("rb") as f:
        return _read_header(f, directory)


def _read_header(f, directory: Path) -> dict:
    """The record; leaves `f` at the serialised state. A checkpoint of adapinn 0.1's first
    format (bare leaves, record only in checkpoint.json) is read too."""
    if f.read(len(_MAGIC)) != _MAGIC:
        f.seek(0)
        return _normalise(json.loads((directory / META_FILE).read_text()))
    size = int.from_bytes(f.read(8), "little")
    return _normalise(json.loads(f.read(size)))


def _normalise(meta: dict) -> dict:
    meta.setdefault("adam_steps", meta.get("step", 0))
    meta.setdefault("lbfgs_iterations", 0)
    return meta


def load(directory: Path, like: Any, lbfgs_like: Any = None) -> tuple[Any, dict, Any]:
    """Read a checkpoint into the structure of `like` (a freshly initialised state).

    Returns (state, meta, lbfgs_state); lbfgs_state is None unless the checkpoint holds one
    and `lbfgs_like` gives its structure."""
    if not exists(directory):
        raise FileNotFoundError(f"no checkpoint in {str(directory)!r}: expected {STATE_FILE}")
    with (directory / STATE_FILE).open("rb") as f:
        meta = _read_header(f, directory)
        state = eqx.tree_deserialise_leaves(f, like)
        lbfgs_state = None
        if meta.get("has_lbfgs_state") and lbfgs_like is not None:
            lbfgs_state = eqx.tree_deserialise_leaves(f, lbfgs_like)
    return state, meta, lbfgs_state
