"""The domain interface: a region of R^dim that maps the unit cube onto itself.

Every domain maps the unit cube [0, 1]^n_free onto itself (`from_unit`), so uniform,
Latin-hypercube and Sobol designs share one code path, and `sample` is `from_unit` of uniform
noise. Domains combine with set operators (`a | b`, `a - b`, `a & b`), a time product
(`domain * Interval(t0, t1)`, time first) and `where(predicate)`; the classes behind those
operators live in sibling modules and register themselves in `_OPERATIONS` when
`adapinn.geometry` is imported (so this module imports none of them and the import graph keeps
no cycle).
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
from jax import Array

_OPERATIONS: dict[str, Callable[..., AbstractDomain]] = {}
"""Constructors behind the operators: "union", "difference", "intersection", "product",
"where" (filled by the modules that define them)."""


def register_operation(name: str, build: Callable[..., AbstractDomain]) -> None:
    """Make `build` the constructor behind operator `name` (see `_OPERATIONS`)."""
    _OPERATIONS[name] = build


def _operation(name: str) -> Callable[..., AbstractDomain]:
    if name not in _OPERATIONS:
        raise RuntimeError(f"domain operation {name!r} is not registered; import adapinn.geometry")
    return _OPERATIONS[name]


class AbstractDomain(eqx.Module):
    """A region of R^dim that can draw points and test membership."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Dimension of the ambient space (length of a point)."""

    @property
    @abc.abstractmethod
    def n_free(self) -> int:
        """Number of unit-cube coordinates `from_unit` consumes per point."""

    @abc.abstractmethod
    def from_unit(self, u: Array) -> Array:
        """Map points of the unit cube [0, 1]^n_free onto the domain."""

    @abc.abstractmethod
    def contains(self, x: Array, atol: float = 1e-6) -> Array:
        """Boolean mask (n,) of the points that lie in the domain.

        A positive `atol` grows the domain by `atol` (points within `atol` of it count), a
        negative one shrinks it (the point must lie at least |atol| inside)."""

    @property
    @abc.abstractmethod
    def bounding_box(self) -> AbstractDomain:
        """The smallest box (a `Box`) holding the domain."""

    def sample(self, key: Array, n: int) -> Array:
        """Draw `n` points uniformly (with respect to the domain's own measure)."""
        return self.from_unit(jax.random.uniform(key, (n, self.n_free)))

    @property
    def measure(self) -> float:
        """Lebesgue (or surface) measure of the domain: length, area, volume..."""
        raise NotImplementedError(f"{type(self).__name__} has no measure")

    @property
    def boundary(self) -> AbstractDomain:
        """The boundary, itself a domain sampled uniformly w.r.t. its surface measure."""
        raise NotImplementedError(f"{type(self).__name__} has no boundary")

    def normal(self, x: Array) -> Array:
        """Outward unit normals (n, dim) at points of a boundary domain."""
        raise NotImplementedError(f"{type(self).__name__} is not a boundary: it has no normal")

    def where(self, predicate: Callable[[Array], Array]) -> AbstractDomain:
        """The points of the domain where `predicate(x)` (a mask (n,) of points (n, dim)) holds,
        e.g. `box.boundary.where(lambda x: x[..., 1] > 0.999)` for the lid of a cavity."""
        return _operation("where")(self, predicate)

    def __or__(self, other: AbstractDomain) -> AbstractDomain:
        return _operation("union")(self, other)

    def __sub__(self, other: AbstractDomain) -> AbstractDomain:
        return _operation("difference")(self, other)

    def __and__(self, other: AbstractDomain) -> AbstractDomain:
        return _operation("intersection")(self, other)

    def __mul__(self, other: AbstractDomain) -> AbstractDomain:
        """`space * Interval(t0, t1)` or `Interval(t0, t1) * space`: the space-time cylinder
        with time as the FIRST coordinate."""
        return _operation("product")(self, other)
