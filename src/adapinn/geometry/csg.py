"""Constructive solid geometry: `a | b`, `a - b`, `a & b` and the boundaries of the results.

All three are rejection domains (`adapinn.geometry.rejection`):

- `CSGUnion(A_1, ..., A_k)`: candidates from the mixture of the parts (part i with
  probability proportional to its proposal weight), a candidate of part i accepted only where
  no part j < i holds it, so the overlaps are not over-weighted (density 1 / sum w_i).
- `Difference(A, (B_1, ...))` = A \\ (B_1 u ...): candidates from A, accepted outside every B.
- `Intersection(A_1, ..., A_k)`: candidates from A_1, accepted inside every other part.

Nested operations flatten: (A - B) - C is A - (B, C), (A | B) | C is one union, and a
rejection operand hands its proposal (and its mask) on, so there is one level of rejection.

Boundaries (`CSGBoundary`): the candidates are the boundaries of the primitive operands (the
leaves of the expression), mixed by their measure; a candidate x with the leaf normal n lies on
the result's boundary when exactly one of x - eps n, x + eps n is in the result (a probe at
eps = 1e-4 diam), and it is kept only if no earlier leaf boundary holds it (so a shared piece
counts once). This gives, e.g., boundary(A - B) = boundary(A) outside B plus boundary(B)
inside A, with normals flipped on the subtracted parts (the normal is oriented so that
x + eps n leaves the result). Points within eps of where leaf boundaries meet are decided by
the probe and may be misjudged, a bias of order eps.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import Array

from adapinn.geometry.base import AbstractDomain, register_operation
from adapinn.geometry.box import Box
from adapinn.geometry.rejection import (
    FilteredProposal,
    MixtureProposal,
    earlier_holds,
    mixture,
)


def _same_dim(parts: tuple[AbstractDomain, ...], what: str) -> None:
    if len({p.dim for p in parts}) != 1:
        raise ValueError(f"{what}: all parts need the same dimension, got "
                         f"{[p.dim for p in parts]}")


def _hull(boxes: list[Box]) -> Box:
    return Box(np.min([b.low for b in boxes], axis=0), np.max([b.high for b in boxes], axis=0))


class CSGUnion(MixtureProposal):
    """The union of domains of one dimension (they may overlap)."""

    parts: tuple[AbstractDomain, ...]

    def __init__(self, *parts: AbstractDomain):
        if len(parts) < 2:
            raise ValueError("CSGUnion needs at least two parts")
        _same_dim(parts, "CSGUnion")
        self.parts = tuple(parts)
        self._estimate()

    @property
    def dim(self) -> int:
        return self.parts[0].dim

    @property
    def sources(self) -> tuple[AbstractDomain, ...]:
        return self.parts

    def propose(self, v):
        which, points, mask = mixture(self.parts, v)
        holds = jnp.stack([p.contains(points, 0.0) for p in self.parts])
        return points, mask & ~earlier_holds(holds, which)

    def contains(self, x, atol=1e-6):
        return jnp.any(jnp.stack([p.contains(x, atol) for p in self.parts]), axis=0)

    @property
    def bounding_box(self) -> Box:
        return _hull([p.bounding_box for p in self.parts])

    @property
    def boundary(self) -> CSGBoundary:
        return CSGBoundary(self)


class Difference(FilteredProposal):
    """`base` minus the union of `removed` (a closed set: the boundaries of the holes belong to
    it): contains(x, atol) = base.contains(x, atol) & ~any(removed.contains(x, -atol))."""

    base: AbstractDomain
    removed: tuple[AbstractDomain, ...]

    def __init__(self, base: AbstractDomain, removed: tuple[AbstractDomain, ...]):
        removed = tuple(removed)
        if not removed:
            raise ValueError("Difference needs at least one removed domain")
        _same_dim((base, *removed), "Difference")
        self.base, self.removed = base, removed
        self._estimate()

    @property
    def dim(self) -> int:
        return self.base.dim

    @property
    def source(self) -> AbstractDomain:
        return self.base

    def _outside_removed(self, x: Array, atol: float) -> Array:
        return ~jnp.any(jnp.stack([r.contains(x, atol) for r in self.removed]), axis=0)

    def keep(self, points):
        return self._outside_removed(points, 0.0)

    def contains(self, x, atol=1e-6):
        return self.base.contains(x, atol) & self._outside_removed(x, -atol)

    @property
    def bounding_box(self) -> Box:
        return self.base.bounding_box

    @property
    def boundary(self) -> CSGBoundary:
        return CSGBoundary(self)


class Intersection(FilteredProposal):
    """The intersection of domains of one dimension; candidates come from the first part."""

    parts: tuple[AbstractDomain, ...]

    def __init__(self, *parts: AbstractDomain):
        if len(parts) < 2:
            raise ValueError("Intersection needs at least two parts")
        _same_dim(parts, "Intersection")
        self.parts = tuple(parts)
        self._estimate()

    @property
    def dim(self) -> int:
        return self.parts[0].dim

    @property
    def source(self) -> AbstractDomain:
        return self.parts[0]

    def keep(self, points):
        return jnp.all(jnp.stack([p.contains(points, 0.0) for p in self.parts[1:]]), axis=0)

    def contains(self, x, atol=1e-6):
        return jnp.all(jnp.stack([p.contains(x, atol) for p in self.parts]), axis=0)

    @property
    def bounding_box(self) -> Box:
        boxes = [p.bounding_box for p in self.parts]
        low = np.max([b.low for b in boxes], axis=0)
        return Box(low, np.maximum(np.min([b.high for b in boxes], axis=0), low))

    @property
    def boundary(self) -> CSGBoundary:
        return CSGBoundary(self)


def leaves(domain: AbstractDomain) -> tuple[AbstractDomain, ...]:
    """The primitive operands of a CSG expression (a non-CSG domain is its own leaf)."""
    if isinstance(domain, (CSGUnion, Intersection)):
        return tuple(leaf for p in domain.parts for leaf in leaves(p))
    if isinstance(domain, Difference):
        return tuple(leaf for p in (domain.base, *domain.removed) for leaf in leaves(p))
    return (domain,)


class CSGBoundary(MixtureProposal):
    """The boundary of a CSG domain (see the module docstring for the method)."""

    region: AbstractDomain
    pieces: tuple[AbstractDomain, ...]
    eps: float = eqx.field(static=True)
    tol: float = eqx.field(static=True)

    def __init__(self, region: AbstractDomain):
        self.region = region
        self.pieces = tuple(leaf.boundary for leaf in leaves(region))
        box = region.bounding_box
        diam = math.dist(box.low, box.high)
        self.eps = 1e-4 * diam
        self.tol = 1e-5 * max(1.0, diam)
        self._estimate()

    @property
    def dim(self) -> int:
        return self.region.dim

    @property
    def sources(self) -> tuple[AbstractDomain, ...]:
        return self.pieces

    @property
    def bounding_box(self) -> Box:
        return self.region.bounding_box

    def _probe(self, x: Array, n: Array) -> tuple[Array, Array]:
        """(x - eps n in the region, x + eps n in the region)."""
        return (self.region.contains(x - self.eps * n, 0.0),
                self.region.contains(x + self.eps * n, 0.0))

    def _piece_tables(self, x: Array, atol: float) -> tuple[Array, Array, Array]:
        """Per piece (k, m): on the piece, on the piece AND on the result; normals (k, m, d)."""
        normals = jnp.stack([p.normal(x) for p in self.pieces])
        on_piece = jnp.stack([p.contains(x, atol) for p in self.pieces])
        k, m, d = normals.shape
        inner, outer = self._probe(jnp.broadcast_to(x[None], (k, m, d)).reshape(k * m, d),
                                   normals.reshape(k * m, d))
        on_result = on_piece & (inner != outer).reshape(k, m)
        return on_piece, on_result, normals

    def propose(self, v):
        which, points, mask = mixture(self.pieces, v)
        normals = jnp.stack([p.normal(points) for p in self.pieces])
        rows = jnp.arange(points.shape[0])
        inner, outer = self._probe(points, normals[which, rows])
        holds = jnp.stack([p.contains(points, self.tol) for p in self.pieces])
        return points, mask & (inner != outer) & ~earlier_holds(holds, which)

    def contains(self, x, atol=1e-6):
        return jnp.any(self._piece_tables(x, atol)[1], axis=0)

    def normal(self, x: Array) -> Array:
        """The outward normal of the leaf boundary the point lies on (the first that is part of
        the result's boundary; else the first holding the point), oriented out of the result."""
        on_piece, on_result, normals = self._piece_tables(x, self.tol)
        which = jnp.where(jnp.any(on_result, axis=0), jnp.argmax(on_result, axis=0),
                          jnp.argmax(on_piece, axis=0))
        n = normals[which, jnp.arange(x.shape[0])]
        inner, outer = self._probe(x, n)
        return jnp.where((~inner & outer)[:, None], -n, n)


def union(a: AbstractDomain, b: AbstractDomain) -> CSGUnion:
    """`a | b`, flattening nested unions."""
    parts = lambda d: d.parts if isinstance(d, CSGUnion) else (d,)
    return CSGUnion(*parts(a), *parts(b))


def difference(a: AbstractDomain, b: AbstractDomain) -> Difference:
    """`a - b`; (A - B) - C becomes A - (B, C)."""
    if isinstance(a, Difference):
        return Difference(a.base, (*a.removed, b))
    return Difference(a, (b,))


def intersection(a: AbstractDomain, b: AbstractDomain) -> Intersection:
    """`a & b`, flattening nested intersections."""
    parts = lambda d: d.parts if isinstance(d, Intersection) else (d,)
    return Intersection(*parts(a), *parts(b))


register_operation("union", union)
register_operation("difference", difference)
register_operation("intersection", intersection)
