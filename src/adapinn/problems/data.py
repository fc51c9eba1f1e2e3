"""Observed data and reference solutions from files.

Observations `(x_i, y_i)` become one more loss term: a `Condition` whose domain is the finite
set of observation rows. Each row is stored as the point and its observed values side by side,
`[x_i | y_i]` (d + k columns), so the samplers draw rows like any other points and the residual
of one row is

    r(u, [x | y]) = u(x)[outputs] - y            (k = len(outputs) observed components)

and the term's loss is the mean squared misfit over the drawn rows, with its own weight
(`weighting: {name: fixed, weights: {data: 10}}`) and batch size (`data_condition(...,
batch_size=...)`). Reference solutions on scattered points (FEM / COMSOL exports) load with
`load_reference`: rel. L2 is then measured at those points.

Files: `.npz` with arrays `points` (n, d) and `values` (n, k); or text `.csv` / `.txt` with
d point columns then k value columns (comma or whitespace separated, an optional header line).
Every loader checks shapes, NaN and that the points lie in the domain, and names the file and
the row of the first offence.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import Array

from adapinn.problems.base import Condition, ReferenceData
from adapinn.problems.domains import AbstractDomain, Box


class DataError(ValueError):
    """A data or reference file that cannot be used as it is (the message says why)."""


def read_table(path: str | Path, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(points (n, dim), values (n, k)) from `.npz` or text columns (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} not found")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path) as data:
            missing = {"points", "values"} - set(data.files)
            if missing:
                raise DataError(f"{str(path)!r} must hold arrays 'points' and 'values'; it "
                                f"holds {data.files}")
            points, values = np.asarray(data["points"], float), np.asarray(data["values"], float)
        points = points.reshape(len(points), -1)
        values = values.reshape(len(values), -1)
        if len(points) != len(values):
            raise DataError(f"{str(path)!r}: {len(points)} points but {len(values)} values")
    elif suffix in (".csv", ".txt", ".dat"):
        table = read_text_table(path)
        if table.shape[1] <= dim:
            raise DataError(f"{str(path)!r} has {table.shape[1]} columns; expected {dim} point "
                            f"columns followed by at least one value column")
        points, values = table[:, :dim], table[:, dim:]
    else:
        raise DataError(f"data file {str(path)!r}: use .npz (points, values) or .csv / .txt")
    if points.shape[1] != dim:
        raise DataError(f"{str(path)!r}: points have {points.shape[1]} coordinates; the "
                        f"problem has {dim}")
    if len(points) == 0:
        raise DataError(f"{str(path)!r} holds no rows")
    bad = ~(np.isfinite(points).all(axis=1) & np.isfinite(values).all(axis=1))
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{str(path)!r}, row {row}: not finite (point {points[row].tolist()}, "
                        f"values {values[row].tolist()})")
    return points, values


def read_text_table(path: Path) -> np.ndarray:
    """The numbers of a .csv / .txt table (comma or whitespace separated, an optional header
    line), shape (rows, columns); a DataError naming the file when it does not parse."""
    first = next(iter(path.read_text().splitlines()), "")
    delimiter = "," if "," in first else None
    try:
        skip = 0 if [float(v) for v in first.replace(",", " ").split()] else 1
    except ValueError:
        skip = 1  # a header line
    try:
        return np.loadtxt(path, delimiter=delimiter, skiprows=skip, ndmin=2)
    except ValueError as err:
        raise DataError(f"{str(path)!r}: {err}") from None


def check_inside(points: np.ndarray, domain: AbstractDomain, path: str | Path,
                 atol: float = 1e-6) -> None:
    """DataError naming the first row of `points` outside `domain`."""
    inside = np.asarray(domain.contains(jnp.asarray(points), atol))
    if not inside.all():
        row = int(np.argmin(inside))
        raise DataError(f"{str(path)!r}, row {row}: point {points[row].tolist()} lies outside "
                        f"the problem's domain ({int((~inside).sum())} of {len(points)} rows "
                        "do)")


class Observations(AbstractDomain):
    """The finite set of observation rows `[x_i | y_i]`, drawn uniformly (with replacement).

    Attributes:
        rows: (n, d + k) points and observed values.
        n_coords: d, the number of point coordinates (the problem's dimension).
    """

    rows: Array
    n_coords: int = eqx.field(static=True)

    @property
    def dim(self) -> int:
        return self.rows.shape[1]

    @property
    def n_free(self) -> int:
        return 1

    @property
    def size(self) -> int:
        return self.rows.shape[0]

    @property
    def points(self) -> Array:
        return self.rows[:, :self.n_coords]

    @property
    def values(self) -> Array:
        return self.rows[:, self.n_coords:]

    def from_unit(self, u: Array) -> Array:
        index = jnp.clip(jnp.floor(u[:, 0] * self.size).astype(jnp.int32), 0, self.size - 1)
        return self.rows[index].astype(u.dtype)

    def contains(self, x: Array, atol: float = 1e-6) -> Array:
        return jnp.ones(x.shape[:-1], bool)

    @property
    def bounding_box(self) -> Box:
        rows = np.asarray(self.rows)
        return Box(rows.min(axis=0), rows.max(axis=0))


def data_condition(points: Array, values: Array, outputs: Sequence[int] | None = None,
                   batch_size: int | None = None) -> Condition:
    """A loss term `u(x_i)[outputs] - y_i` over observations (module docstring).

    Args:
        points: (n, d) observation points.
        values: (n, k) observed values of the outputs `outputs` (all outputs when None).
        outputs: indices of the observed outputs (e.g. (0,) for u of (u, v, p)).
        batch_size: rows per step (default: the trainer's condition batch size).
    """
    points, values = jnp.asarray(points), jnp.asarray(values)
    values = values.reshape(values.shape[0], -1)
    d = points.shape[1]
    picked = None if outputs is None else jnp.asarray(tuple(outputs), jnp.int32)
    if picked is not None and len(outputs) != values.shape[1]:
        raise DataError(f"{values.shape[1]} observed columns for outputs {tuple(outputs)}")

    def misfit(u, row):
        predicted = jnp.atleast_1d(u(row[:d]))
        if picked is not None:
            predicted = predicted[picked]
        return predicted - row[d:]

    rows = jnp.concatenate([points, values.astype(points.dtype)], axis=1)
    return Condition(Observations(rows, d), misfit, batch_size=batch_size)


def load_observations(path: str | Path, domain: AbstractDomain,
                      outputs: Sequence[int] | None = None,
                      batch_size: int | None = None) -> Condition:
    """`data_condition` from a file, checked against `domain` (DataError naming the row)."""
    points, values = read_table(path, domain.dim)
    check_inside(points, domain, path)
    if outputs is not None and values.shape[1] != len(outputs):
        raise DataError(f"{str(path)!r}: {values.shape[1]} value columns for the observed "
                        f"outputs {tuple(outputs)}")
    return data_condition(points, values, outputs, batch_size)


def load_reference(path: str | Path, domain: AbstractDomain, n_outputs: int) -> ReferenceData:
    """A reference solution on scattered points (checked: shape, NaN, inside `domain`)."""
    points, values = read_table(path, domain.dim)
    if values.shape[1] != n_outputs:
        raise DataError(f"{str(path)!r}: {values.shape[1]} value columns; the problem has "
                        f"{n_outputs} outputs")
    check_inside(points, domain, path)
    dtype = jnp.result_type(float)
    return ReferenceData(jnp.asarray(points, dtype), jnp.asarray(values, dtype))
