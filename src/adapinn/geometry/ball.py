"""Round primitives: the d-ball, the disk (its 2-D case with the polar map) and the sphere.

- `Disk`: r = R sqrt(u_1), theta = 2 pi u_2 (the area element r dr dtheta makes r^2 uniform).
- `Ball` in d dimensions: a Gaussian direction g / |g| with g_i = Phi^-1(u_i) (inverse normal
  map of d unit coordinates, so `from_unit` stays a map) times the radius R u_{d+1}^(1/d)
  (P(r < s) = (s / R)^d). n_free = d + 1.
- `Sphere`: theta = 2 pi u_1 on a circle (d = 2), otherwise the Gaussian direction (n_free d).
- `RadialBall`: the ball with the radius uniform, r = R u_{d+1} (not uniform in volume: the
  protocol of STDE / SDGD's high-dimensional benchmarks, Shi et al. 2024, Hu et al. 2024; in
  d = 100 a volume-uniform draw puts 99% of its points at r > 0.95).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jax import Array
from jax.scipy.special import ndtri

from adapinn.geometry.base import AbstractDomain
from adapinn.geometry.box import Box


def _gaussian_direction(u: Array) -> Array:
    """Unit vectors g / |g|, g = Phi^-1(u) coordinatewise (uniform on the sphere for uniform u);
    u is clipped into (eps, 1 - eps) and a zero g (u = 1/2 exactly) maps to e_1."""
    eps = jnp.finfo(u.dtype).eps
    g = ndtri(jnp.clip(u, eps, 1.0 - eps))
    length = jnp.linalg.norm(g, axis=-1, keepdims=True)
    e1 = jnp.zeros_like(g).at[:, 0].set(1.0)
    return jnp.where(length > 0, g / jnp.where(length > 0, length, 1.0), e1)


def _check(center, radius) -> tuple[tuple[float, ...], float]:
    center, radius = tuple(float(c) for c in center), float(radius)
    if radius <= 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    if not center:
        raise ValueError("center needs at least one coordinate")
    return center, radius


class _Round(AbstractDomain):
    center: tuple[float, ...] = eqx.field(static=True)
    radius: float = eqx.field(static=True)

    def __init__(self, center, radius):
        self.center, self.radius = _check(center, radius)

    @property
    def dim(self) -> int:
        return len(self.center)

    @property
    def bounding_box(self) -> Box:
        return Box([c - self.radius for c in self.center], [c + self.radius for c in self.center])

    def _distance(self, x: Array) -> Array:
        return jnp.linalg.norm(x - jnp.asarray(self.center, x.dtype), axis=-1)


class Ball(_Round):
    """The closed ball |x - center| <= radius in d = len(center) dimensions."""

    @property
    def n_free(self) -> int:
        return self.dim + 1

    @property
    def measure(self) -> float:
        """pi^(d/2) / Gamma(d/2 + 1) R^d."""
        d = self.dim
        return math.pi ** (d / 2) / math.gamma(d / 2 + 1) * self.radius**d

    @property
    def boundary(self) -> Sphere:
        return Sphere(self.center, self.radius)

    def from_unit(self, u):
        d = self.dim
        r = self.radius * u[:, d:d + 1] ** (1.0 / d)
        return jnp.asarray(self.center, u.dtype) + r * _gaussian_direction(u[:, :d])

    def contains(self, x, atol=1e-6):
        return self._distance(x) <= self.radius + atol


class RadialBall(Ball):
    """The ball sampled with a uniform radius r = R u (module docstring); the same set."""

    def from_unit(self, u):
        d = self.dim
        r = self.radius * u[:, d:d + 1]
        return jnp.asarray(self.center, u.dtype) + r * _gaussian_direction(u[:, :d])


class Disk(Ball):
    """The closed disk |x - center| <= radius in 2-D, with the polar map (n_free = 2)."""

    def __init__(self, center, radius):
        super().__init__(center, radius)
        if self.dim != 2:
            raise ValueError(f"Disk: center needs 2 coordinates, got {self.center}")

    @property
    def n_free(self) -> int:
        return 2

    def from_unit(self, u):
        r = self.radius * jnp.sqrt(u[:, 0])
        theta = 2 * jnp.pi * u[:, 1]
        offset = jnp.stack([r * jnp.cos(theta), r * jnp.sin(theta)], axis=-1)
        return jnp.asarray(self.center, u.dtype) + offset


class Sphere(_Round):
    """The sphere |x - center| = radius (a circle in 2-D), sampled uniformly in surface measure;
    outward normal (x - c) / |x - c| (e_1 at the center itself)."""

    @property
    def n_free(self) -> int:
        return 1 if self.dim == 2 else self.dim

    @property
    def measure(self) -> float:
        """2 pi^(d/2) / Gamma(d/2) R^(d-1) (2 pi R for a circle; 2 points in 1-D)."""
        d = self.dim
        return 2 * math.pi ** (d / 2) / math.gamma(d / 2) * self.radius ** (d - 1)

    def from_unit(self, u):
        center = jnp.asarray(self.center, u.dtype)
        if self.dim == 2:
            theta = 2 * jnp.pi * u[:, 0]
            return center + self.radius * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=-1)
        return center + self.radius * _gaussian_direction(u)

    def contains(self, x, atol=1e-6):
        return jnp.abs(self._distance(x) - self.radius) <= max(atol, 0.0)

    def normal(self, x: Array) -> Array:
        offset = x - jnp.asarray(self.center, x.dtype)
        length = jnp.linalg.norm(offset, axis=-1, keepdims=True)
        e1 = jnp.zeros_like(x).at[:, 0].set(1.0)
        return jnp.where(length > 0, offset / jnp.where(length > 0, length, 1.0), e1)
