"""The packaged PINNacle files (`data/`, see its README.md), read through
`importlib.resources` so an installed copy finds them.

COMSOL exports are whitespace tables with a '%' header; `load_table` reads them as PINNacle
does, `numpy.loadtxt(path, comments="%")`.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from adapinn.problems.data import DataError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

PACKAGE = "adapinn.problems.pinnacle"


def data_file(name: str) -> Traversable:
    """The packaged file `data/<name>`; a DataError naming it when it is missing."""
    resource = resources.files(PACKAGE).joinpath("data", name)
    if not resource.is_file():
        raise DataError(f"PINNacle reference file {name!r} is missing from the package "
                        f"({resource}); reinstall adapinn or copy it from PINNacle's ref/")
    return resource


def load_table(name: str) -> np.ndarray:
    """The numbers of the packaged COMSOL table `name`, shape (rows, columns)."""
    with resources.as_file(data_file(name)) as path:
        return np.loadtxt(path, comments="%", ndmin=2)


def snapshot_times(name: str) -> np.ndarray:
    """The times `t=...` of the columns of a time-dependent COMSOL table (its last header
    line naming them, as PINNacle's `trans_time_data_to_dataset` reads them)."""
    header = [line for line in data_file(name).read_text().splitlines()
              if line.startswith("%") and "t=" in line]
    if not header:
        raise DataError(f"PINNacle file {name!r} names no snapshot times ('t=') in its header")
    return np.array([float(t) for t in re.findall(r"t=([-+0-9.eE]+)", header[-1])])


def tensor_grid(points: np.ndarray, decimals: int = 9) -> tuple[tuple[np.ndarray, ...],
                                                                np.ndarray]:
    """Axes of scattered `points` (n, d) that form a tensor grid, and the permutation putting
    the rows in grid order (C order, first axis slowest); coordinates are matched after
    rounding to `decimals` (COMSOL writes one node's coordinate with ~1e-10 jitter)."""
    rounded = np.round(points, decimals)
    axes = tuple(np.unique(rounded[:, i]) for i in range(points.shape[1]))
    index = np.stack([np.searchsorted(a, rounded[:, i]) for i, a in enumerate(axes)], axis=1)
    flat = np.ravel_multi_index(tuple(index.T), tuple(len(a) for a in axes))
    if np.prod([len(a) for a in axes]) != len(points) or len(np.unique(flat)) != len(points):
        raise DataError(f"{len(points)} points do not form a tensor grid with axes of "
                        f"lengths {[len(a) for a in axes]}")
    order = np.argsort(flat)
    means = tuple(np.bincount(index[:, i], points[:, i]) / np.bincount(index[:, i])
                  for i in range(points.shape[1]))
    return means, order
