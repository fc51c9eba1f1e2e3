"""Domains that sample themselves: axis-aligned boxes (faces are boxes with low == high on an
axis) and unions of boxes (e.g. the two Dirichlet walls of a 1-D problem).

Every domain maps the unit cube of its free dimensions onto itself (`from_unit`), so uniform,
Latin-hypercube and Sobol designs share one code path, and `sample` is `from_unit` of uniform
noise.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array


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
        """Boolean mask (n,) of the points that lie in the domain."""

    @property
    @abc.abstractmethod
    def bounding_box(self) -> Box:
        """The smallest box holding the domain."""

    def sample(self, key: Array, n: int) -> Array:
        """Draw `n` points uniformly (with respect to the domain's own measure)."""
        return self.from_unit(jax.random.uniform(key, (n, self.n_free)))


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
    def bounding_box(self) -> Box:
        low = np.min([p.low for p in self.parts], axis=0)
        high = np.max([p.high for p in self.parts], axis=0)
        return Box(low, high)

    def from_unit(self, u):
        measures = np.array([max(p.measure, 1e-300) for p in self.parts])
        edges = jnp.asarray(np.cumsum(measures) / measures.sum())
        which = jnp.clip(jnp.searchsorted(edges, u[:, 0], side="right"), 0, len(self.parts) - 1)
        candidates = jnp.stack([p.from_unit(u[:, 1:]) for p in self.parts])
        return candidates[which, jnp.arange(u.shape[0])]

    def contains(self, x, atol=1e-6):
        return jnp.any(jnp.stack([p.contains(x, atol) for p in self.parts]), axis=0)
