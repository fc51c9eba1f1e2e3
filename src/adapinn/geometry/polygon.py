"""Simple polygons (convex or not) and their boundaries, in 2-D.

Construction (numpy): the vertices are put in counter-clockwise order (signed shoelace area)
and triangulated by ear clipping (repeatedly cut off a convex vertex whose triangle holds no
other vertex). Sampling: the first unit coordinate picks a triangle with probability
proportional to its area; the other two (u, v), folded into the lower triangle of the square by
(u, v) -> (1 - u, 1 - v) when u + v > 1, give A + u (B - A) + v (C - A), uniform in the
triangle. Membership: the even-odd crossing rule, combined with the distance to the edges for
the tolerance. The boundary picks an edge by length and a point on it uniformly; the outward
normal of a counter-clockwise edge p -> q is (dy, -dx) / |q - p|, and a vertex gets the
normalised average of its two edges' normals.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import Array

from adapinn.geometry.base import AbstractDomain
from adapinn.geometry.box import Box


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def signed_area(vertices: np.ndarray) -> float:
    """Shoelace formula: positive for counter-clockwise vertices."""
    x, y = vertices[:, 0], vertices[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def triangulate(vertices: np.ndarray) -> np.ndarray:
    """Ear-clipping triangulation (T, 3, 2) of a simple counter-clockwise polygon (k, 2)."""
    v = np.asarray(vertices, float)
    scale = float(np.max(np.ptp(v, axis=0)))
    tiny = 1e-12 * scale**2
    idx = list(range(len(v)))
    triangles = []

    def holds(p, a, b, c) -> bool:  # closed triangle test (counter-clockwise a, b, c)
        return (_cross(b - a, p - a) >= -tiny and _cross(c - b, p - b) >= -tiny
                and _cross(a - c, p - c) >= -tiny)

    while len(idx) > 3:
        m = len(idx)
        for j in range(m):
            a, b, c = idx[j - 1], idx[j], idx[(j + 1) % m]
            turn = _cross(v[b] - v[a], v[c] - v[b])
            if turn < -tiny:
                continue  # reflex vertex
            others = (v[p] for p in idx if p not in (a, b, c))
            if any(holds(p, v[a], v[b], v[c]) for p in others
                   if not any(np.allclose(p, v[q]) for q in (a, b, c))):
                continue
            if turn > tiny:
                triangles.append(v[[a, b, c]])
            idx.pop(j)  # an ear (or a collinear vertex, cut with no area)
            break
        else:
            raise ValueError("Polygon: no ear found; are the vertices a simple polygon?")
    if abs(_cross(v[idx[1]] - v[idx[0]], v[idx[2]] - v[idx[0]])) > tiny:
        triangles.append(v[idx])
    return np.stack(triangles)


def _edges(vertices: tuple[tuple[float, float], ...], dtype) -> tuple[Array, Array]:
    p = jnp.asarray(vertices, dtype)
    return p, jnp.roll(p, -1, axis=0)


def _edge_distances(x: Array, p: Array, q: Array) -> Array:
    """Distances (n, k) of the points to the k segments p -> q."""
    d = q - p
    t = jnp.sum((x[:, None, :] - p) * d, axis=-1) / jnp.sum(d * d, axis=-1)
    foot = p + jnp.clip(t, 0.0, 1.0)[..., None] * d
    return jnp.linalg.norm(x[:, None, :] - foot, axis=-1)


def _edge_normals(p: Array, q: Array) -> Array:
    d = q - p
    return jnp.stack([d[:, 1], -d[:, 0]], axis=-1) / jnp.linalg.norm(d, axis=-1, keepdims=True)


def _ccw(vertices) -> tuple[tuple[float, float], ...]:
    v = np.asarray(vertices, float)
    if v.ndim != 2 or v.shape[1] != 2 or len(v) < 3:
        raise ValueError(f"Polygon: need at least 3 vertices of 2 coordinates, got {v.shape}")
    area = signed_area(v)
    if abs(area) <= 1e-12 * float(np.max(np.ptp(v, axis=0))) ** 2:
        raise ValueError("Polygon: the vertices enclose no area")
    v = v if area > 0 else v[::-1]
    return tuple((float(a), float(b)) for a, b in v)


class Polygon(AbstractDomain):
    """A simple polygon (non-convex allowed), vertices in either orientation."""

    vertices: tuple[tuple[float, float], ...] = eqx.field(static=True)
    triangles: tuple[tuple[tuple[float, float], ...], ...] = eqx.field(static=True)

    def __init__(self, vertices):
        self.vertices = _ccw(vertices)
        tri = triangulate(np.asarray(self.vertices))
        self.triangles = tuple(tuple((float(a), float(b)) for a, b in t) for t in tri)

    @property
    def dim(self) -> int:
        return 2

    @property
    def n_free(self) -> int:
        return 3

    def _areas(self) -> np.ndarray:
        t = np.asarray(self.triangles)
        a, b = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
        return 0.5 * np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])

    @property
    def measure(self) -> float:
        """The area (shoelace formula)."""
        return abs(signed_area(np.asarray(self.vertices)))

    @property
    def bounding_box(self) -> Box:
        v = np.asarray(self.vertices)
        return Box(v.min(axis=0), v.max(axis=0))

    @property
    def boundary(self) -> PolygonBoundary:
        return PolygonBoundary(self.vertices)

    def from_unit(self, u):
        areas = self._areas()
        edges = jnp.asarray(np.cumsum(areas) / areas.sum(), u.dtype)
        which = jnp.clip(jnp.searchsorted(edges, u[:, 0], side="right"), 0, len(areas) - 1)
        tri = jnp.asarray(self.triangles, u.dtype)[which]  # (n, 3, 2)
        s, t = u[:, 1:2], u[:, 2:3]
        fold = s + t > 1.0
        s, t = jnp.where(fold, 1.0 - s, s), jnp.where(fold, 1.0 - t, t)
        return tri[:, 0] + s * (tri[:, 1] - tri[:, 0]) + t * (tri[:, 2] - tri[:, 0])

    def contains(self, x, atol=1e-6):
        p, q = _edges(self.vertices, x.dtype)
        y = x[:, 1:2]
        straddles = (p[:, 1] > y) != (q[:, 1] > y)
        dy = jnp.where(straddles, q[:, 1] - p[:, 1], 1.0)
        crossing_x = p[:, 0] + (y - p[:, 1]) * (q[:, 0] - p[:, 0]) / dy
        inside = jnp.sum(straddles & (x[:, 0:1] < crossing_x), axis=-1) % 2 == 1
        distance = jnp.min(_edge_distances(x, p, q), axis=-1)
        if atol >= 0:
            return inside | (distance <= atol)
        return inside & (distance > -atol)


class PolygonBoundary(AbstractDomain):
    """The edges of a polygon (counter-clockwise vertices), sampled uniformly in arc length."""

    vertices: tuple[tuple[float, float], ...] = eqx.field(static=True)

    def __init__(self, vertices):
        self.vertices = _ccw(vertices)

    @property
    def dim(self) -> int:
        return 2

    @property
    def n_free(self) -> int:
        return 2

    def _lengths(self) -> np.ndarray:
        v = np.asarray(self.vertices)
        return np.linalg.norm(np.roll(v, -1, axis=0) - v, axis=-1)

    @property
    def measure(self) -> float:
        """The perimeter."""
        return float(self._lengths().sum())

    @property
    def bounding_box(self) -> Box:
        v = np.asarray(self.vertices)
        return Box(v.min(axis=0), v.max(axis=0))

    def from_unit(self, u):
        lengths = self._lengths()
        cuts = jnp.asarray(np.cumsum(lengths) / lengths.sum(), u.dtype)
        which = jnp.clip(jnp.searchsorted(cuts, u[:, 0], side="right"), 0, len(lengths) - 1)
        p, q = _edges(self.vertices, u.dtype)
        return p[which] + u[:, 1:2] * (q[which] - p[which])

    def contains(self, x, atol=1e-6):
        p, q = _edges(self.vertices, x.dtype)
        return jnp.min(_edge_distances(x, p, q), axis=-1) <= max(atol, 0.0)

    def normal(self, x: Array, atol: float = 1e-6) -> Array:
        p, q = _edges(self.vertices, x.dtype)
        distance = _edge_distances(x, p, q)
        scale = max(1.0, float(np.max(self._lengths())))
        active = distance <= jnp.min(distance, axis=-1, keepdims=True) + atol * scale
        normals = _edge_normals(p, q)
        summed = active.astype(x.dtype) @ normals
        length = jnp.linalg.norm(summed, axis=-1, keepdims=True)
        nearest = normals[jnp.argmin(distance, axis=-1)]
        return jnp.where(length > 1e-3, summed / jnp.maximum(length, 1e-30), nearest)
