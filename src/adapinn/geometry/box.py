"""Axis-aligned boxes (faces are boxes with low == high on an axis), intervals, unions of
disjoint boxes (e.g. the two Dirichlet walls of a 1-D problem) and the boundary of a box.

`Box.from_unit` is the affine map x = low + u (high - low) on the free axes; `Union` picks a
part with the first unit coordinate in proportion to the parts' measures and maps the rest of
the coordinates into that part.
"""

from __future__ import annotations

import functools
import operator

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import Array

from adapinn.geometry.base import AbstractDomain


class Box(AbstractDomain):
    """The box [low_0, high_0] x ... ; an axis with low == high is fixed (a face)."""

    low: tuple[float, ...] = eqx.field(static=True)
    high: tuple[float, ...] = eqx.field(static=True)

    def __init__(self, low, high):
        low, high = tuple(float(v) for v in low), tuple(float(v) for v in high)
        if len(low) != len(high):
            raise ValueError(f"Box: low has {len(low)} coordinates but high has {len(high)}")
        if any(h < lo for lo, h in zip(low, high)):
            raise ValueError(f"Box: every high must be >= low, got low={low}, high={high}")
        self.low, self.high = low, high

    @property
    def dim(self) -> int:
        return len(self.low)

    @property
    def free_axes(self) -> tuple[int, ...]:
        return tuple(i for i, (lo, h) in enumerate(zip(self.low, self.high)) if h > lo)

    @property
    def n_free(self) -> int:
        return len(self.free_axes)

    @property
    def measure(self) -> float:
        """Lebesgue measure over the free axes (length, area, volume...)."""
        return float(np.prod([self.high[i] - self.low[i] for i in self.free_axes]))

    @property
    def bounding_box(self) -> Box:
        return self

    @property
    def boundary(self) -> BoxBoundary:
        """The faces on the free axes (2 per free axis), sampled in proportion to their area."""
        return BoxBoundary(self)

    def from_unit(self, u):
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        full = jnp.zeros((u.shape[0], self.dim), u.dtype)
        if self.n_free:
            full = full.at[:, jnp.asarray(self.free_axes)].set(u)
        return low + full * (high - low)

    def contains(self, x, atol=1e-6):
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        return jnp.all((x >= low - atol) & (x <= high + atol), axis=-1)

    def reflect(self, x: Array) -> Array:
        """Fold points back into the box by mirror reflection at its faces."""
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        width = jnp.where(high > low, high - low, 1.0)
        y = jnp.mod(x - low, 2 * width)
        y = jnp.where(y > width, 2 * width - y, y)
        return jnp.where(high > low, low + y, low)


class Interval(Box):
    """The 1-D box [a, b] (e.g. the time interval of `space * Interval(t0, t1)`)."""

    def __init__(self, a: float, b: float):
        super().__init__((a,), (b,))

    @property
    def a(self) -> float:
        return self.low[0]

    @property
    def b(self) -> float:
        return self.high[0]


class Union(AbstractDomain):
    """A union of disjoint boxes of equal free dimension, sampled in proportion to measure."""

    parts: tuple[Box, ...]

    def __init__(self, *parts: Box):
        if not parts:
            raise ValueError("Union needs at least one box")
        if len({p.dim for p in parts}) != 1 or len({p.n_free for p in parts}) != 1:
            raise ValueError("Union: all parts need the same dimension and number of free axes")
        self.parts = tuple(parts)

    @property
    def dim(self) -> int:
        return self.parts[0].dim

    @property
    def n_free(self) -> int:
        return self.parts[0].n_free + 1

    @property
    def measure(self) -> float:
        """Sum of the parts' measures (the parts are disjoint)."""
        return float(sum(p.measure for p in self.parts))

    @property
    def bounding_box(self) -> Box:
        low = np.min([p.low for p in self.parts], axis=0)
        high = np.max([p.high for p in self.parts], axis=0)
        return Box(low, high)

    @property
    def boundary(self) -> AbstractDomain:
        """The boundary of the union, as that of the set union `parts[0] | parts[1] | ...`."""
        return functools.reduce(operator.or_, self.parts).boundary

    def from_unit(self, u):
        measures = np.array([max(p.measure, 1e-300) for p in self.parts])
        edges = jnp.asarray(np.cumsum(measures) / measures.sum())
        which = jnp.clip(jnp.searchsorted(edges, u[:, 0], side="right"), 0, len(self.parts) - 1)
        candidates = jnp.stack([p.from_unit(u[:, 1:]) for p in self.parts])
        return candidates[which, jnp.arange(u.shape[0])]

    def contains(self, x, atol=1e-6):
        return jnp.any(jnp.stack([p.contains(x, atol) for p in self.parts]), axis=0)


def box_faces(box: Box) -> tuple[Box, ...]:
    """The 2 k faces of a box with k free axes: (low face, high face) per free axis."""
    faces = []
    for i in box.free_axes:
        for value in (box.low[i], box.high[i]):
            low, high = list(box.low), list(box.high)
            low[i] = high[i] = value
            faces.append(Box(low, high))
    return tuple(faces)


class BoxBoundary(AbstractDomain):
    """The boundary of a box: the union of its faces, each drawn with probability proportional
    to its area (`Union` of the faces, which overlap only on edges of measure zero).

    Normals: a point takes the outward normals +-e_i of every face it lies on (within a
    tolerance of the nearest face) and their normalised sum, so a corner of a square gets
    (+-1, +-1) / sqrt(2); a point always has a nearest face, so the normal is never NaN.
    """

    box: Box
    faces: Union

    def __init__(self, box: Box):
        if box.n_free == 0:
            raise ValueError("BoxBoundary: a box without free axes (a point) has no boundary")
        self.box = box
        self.faces = Union(*box_faces(box))

    @property
    def dim(self) -> int:
        return self.box.dim

    @property
    def n_free(self) -> int:
        return self.faces.n_free

    @property
    def measure(self) -> float:
        """Total area of the faces (for an interval: 2, the counting measure of its ends)."""
        return self.faces.measure

    @property
    def bounding_box(self) -> Box:
        return self.box

    def from_unit(self, u):
        return self.faces.from_unit(u)

    def contains(self, x, atol=1e-6):
        axes = jnp.asarray(self.box.free_axes)
        low, high = jnp.asarray(self.box.low)[axes], jnp.asarray(self.box.high)[axes]
        inner = jnp.all((x[:, axes] > low + atol) & (x[:, axes] < high - atol), axis=-1)
        return self.box.contains(x, atol) & ~inner

    def normal(self, x: Array, atol: float = 1e-6) -> Array:
        axes = jnp.asarray(self.box.free_axes)
        low, high = jnp.asarray(self.box.low)[axes], jnp.asarray(self.box.high)[axes]
        scale = max(1.0, *(self.box.high[i] - self.box.low[i] for i in self.box.free_axes))
        gaps = jnp.concatenate([jnp.abs(x[:, axes] - low), jnp.abs(high - x[:, axes])], axis=-1)
        active = gaps <= jnp.min(gaps, axis=-1, keepdims=True) + atol * scale
        k = len(self.box.free_axes)
        signs = jnp.concatenate([-jnp.ones(k), jnp.ones(k)]).astype(x.dtype)
        per_axis = (active * signs).reshape(x.shape[0], 2, k).sum(axis=1)
        nearest = jnp.argmin(gaps, axis=-1)
        fallback = jnp.zeros((x.shape[0], k), x.dtype).at[
            jnp.arange(x.shape[0]), nearest % k].set(signs[nearest])
        length = jnp.linalg.norm(per_axis, axis=-1, keepdims=True)
        per_axis = jnp.where(length > 0.5, per_axis / jnp.maximum(length, 1e-30), fallback)
        return jnp.zeros((x.shape[0], self.dim), x.dtype).at[:, axes].set(per_axis)
