"""On-disk cache for reference solutions.

Each reference grid (t, x, u) is stored once as an .npz file named
``<name>-<key>.npz``, where ``key`` is a short sha256 of the sorted JSON of the name, every
solver setting (explicit arguments merged with the solver's signature defaults) and a cache
format version.  The folder is ``$ADAPINN_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/adapinn/reference``, else ``~/.cache/adapinn/reference``.  Files are written
atomically (temporary file in the same folder, then ``os.replace``); an unreadable or
inconsistent file is recomputed and overwritten.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .allen_cahn import allen_cahn_reference
from .burgers import burgers_reference

CACHE_FORMAT = 1
SOLVERS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]] = {
    "burgers": burgers_reference,
    "allen_cahn": allen_cahn_reference,
}

Grid = tuple[np.ndarray, np.ndarray, np.ndarray]


def cache_dir() -> Path:
    """The cache folder (not created)."""
    explicit = os.environ.get("ADAPINN_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "adapinn" / "reference"


def _jsonable(value: Any) -> Any:
    """JSON fallback for numpy scalars and arrays."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"setting of type {type(value).__name__} is not JSON-serialisable")


def full_settings(solver: Callable[..., Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with the solver's defaults filled in (unknown names raise TypeError)."""
    bound = inspect.signature(solver).bind(**settings)
    bound.apply_defaults()
    return dict(bound.arguments)


def _settings_key(name: str, settings: dict[str, Any]) -> str:
    payload = {"name": name, "format": CACHE_FORMAT, "settings": settings}
    text = json.dumps(payload, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def reference_path(name: str, solver: Callable[..., Any] | None = None, **settings: Any) -> Path:
    """Cache file for ``name`` and ``settings``.

    The solver's signature defaults are merged into ``settings`` (``solver`` if given, else the
    registered solver of a known ``name``), so the path names every setting of the solve.
    """
    solver = solver if solver is not None else SOLVERS.get(name)
    if solver is not None:
        settings = full_settings(solver, settings)
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "reference"
    return cache_dir() / f"{readable}-{_settings_key(name, settings)}.npz"


def _load(path: Path) -> Grid | None:
    """(t, x, u) from ``path``, or None if it is missing, unreadable or inconsistent."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            t, x, u = (np.array(data[k]) for k in ("t", "x", "u"))
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    if t.ndim != 1 or x.ndim != 1 or u.shape != (t.size, x.size):
        return None
    return t, x, u


def _save(path: Path, grid: Grid, settings: dict[str, Any]) -> None:
    """Write the grid atomically: temporary file in the same folder, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(
                handle,
                t=grid[0],
                x=grid[1],
                u=grid[2],
                settings=json.dumps(settings, sort_keys=True, default=_jsonable),
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_reference(name: str, solver: Callable[..., Grid], **settings: Any) -> Grid:
    """``solver(**settings)`` computed once and cached on disk under ``name``."""
    settings = full_settings(solver, settings)
    path = reference_path(name, solver, **settings)
    grid = _load(path)
    if grid is None:
        t, x, u = solver(**settings)
        grid = (np.asarray(t, np.float64), np.asarray(x, np.float64), np.asarray(u, np.float64))
        _save(path, grid, {"name": name, **settings})
    return grid


def compute_reference(name: str, nt: int = 201, nx: int = 512) -> Grid:
    """Cached reference grid of a named benchmark ("burgers" or "allen_cahn")."""
    if name not in SOLVERS:
        valid = ", ".join(repr(k) for k in SOLVERS)
        raise ValueError(f"unknown reference {name!r}; valid names: {valid}")
    return cached_reference(name, SOLVERS[name], nt=nt, nx=nx)
