"""Space-time cylinders `space x [t0, t1]`, with time as the FIRST coordinate: points (t, x...).

`SpaceTime.from_unit` maps the first unit coordinate affinely to t and the rest through
`space.from_unit` (a product map, exact whenever the space's map is). Its boundary pieces are
the initial slice t = t0 (`initial`, normal -e_t), the final slice t = t1 (`final`, +e_t) and
the lateral boundary `space.boundary x [t0, t1]` (`lateral`, normal (0, n_space)).
`boundary` is the parabolic boundary: initial slice and lateral boundary, mixed in proportion
to their measures (space measure vs. (t1 - t0) x the space boundary's measure); the final slice
carries no condition in an evolution problem and is left out of it.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from adapinn.geometry.base import AbstractDomain, register_operation
from adapinn.geometry.box import Box, Interval
from adapinn.geometry.rejection import MixtureProposal, RejectionDomain, mixture


class SpaceTime(AbstractDomain):
    """The product [t0, t1] x space; `side` = -1 / +1 marks the initial / final slice (its
    normal is then side * e_t), 0 a cylinder or its lateral boundary (normal (0, n_space))."""

    space: AbstractDomain
    time: Box
    side: int = eqx.field(static=True)

    def __init__(self, space: AbstractDomain, time: Box, side: int = 0):
        if time.dim != 1:
            raise ValueError(f"SpaceTime: time must be a 1-D interval, got {time}")
        self.space, self.time, self.side = space, time, int(side)

    @property
    def t0(self) -> float:
        return self.time.low[0]

    @property
    def t1(self) -> float:
        return self.time.high[0]

    @property
    def dim(self) -> int:
        return 1 + self.space.dim

    @property
    def n_free(self) -> int:
        return self.time.n_free + self.space.n_free

    @property
    def measure(self) -> float:
        """(t1 - t0) x the space's measure (just the space's for a slice t0 == t1)."""
        return self.time.measure * self.space.measure

    @property
    def bounding_box(self) -> Box:
        box = self.space.bounding_box
        return Box((self.t0, *box.low), (self.t1, *box.high))

    def from_unit(self, u):
        k = self.time.n_free
        return jnp.concatenate([self.time.from_unit(u[:, :k]), self.space.from_unit(u[:, k:])],
                               axis=-1)

    def contains(self, x, atol=1e-6):
        return self.time.contains(x[:, :1], atol) & self.space.contains(x[:, 1:], atol)

    def normal(self, x: Array) -> Array:
        if self.side:
            return jnp.zeros_like(x).at[:, 0].set(float(self.side))
        return jnp.concatenate([jnp.zeros_like(x[:, :1]), self.space.normal(x[:, 1:])], axis=-1)

    @property
    def initial(self) -> SpaceTime:
        """The slice t = t0."""
        return SpaceTime(self.space, Interval(self.t0, self.t0), side=-1)

    @property
    def final(self) -> SpaceTime:
        """The slice t = t1."""
        return SpaceTime(self.space, Interval(self.t1, self.t1), side=1)

    @property
    def lateral(self) -> SpaceTime:
        """space.boundary x [t0, t1]."""
        return SpaceTime(self.space.boundary, self.time)

    @property
    def boundary(self) -> SpaceTimeBoundary:
        return SpaceTimeBoundary(self)


class SpaceTimeBoundary(MixtureProposal):
    """The parabolic boundary (initial slice u lateral boundary) of a `SpaceTime`, mixed by
    measure; exact (no rejection) when both pieces are exact. Normal: -e_t on the initial
    slice, (0, n_space) on the lateral boundary, their normalised sum on the rim t = t0."""

    cylinder: SpaceTime
    pieces: tuple[SpaceTime, SpaceTime]

    def __init__(self, cylinder: SpaceTime):
        self.cylinder = cylinder
        self.pieces = (cylinder.initial, cylinder.lateral)
        self._estimate()

    @property
    def initial(self) -> SpaceTime:
        return self.pieces[0]

    @property
    def lateral(self) -> SpaceTime:
        return self.pieces[1]

    @property
    def dim(self) -> int:
        return self.cylinder.dim

    @property
    def always_accepts(self) -> bool:
        return not any(isinstance(p.space, RejectionDomain) for p in self.pieces)

    @property
    def sources(self) -> tuple[AbstractDomain, ...]:
        return self.pieces

    def propose(self, v):
        _, points, mask = mixture(self.pieces, v)
        return points, mask

    @property
    def bounding_box(self) -> Box:
        return self.cylinder.bounding_box

    def contains(self, x, atol=1e-6):
        return self.initial.contains(x, atol) | self.lateral.contains(x, atol)

    def normal(self, x: Array, atol: float = 1e-6) -> Array:
        on_initial = self.initial.contains(x, atol)[:, None]
        on_lateral = self.lateral.contains(x, atol)[:, None]
        lateral = self.lateral.normal(x)
        summed = jnp.where(on_initial, self.initial.normal(x), 0.0) + jnp.where(
            on_lateral | ~on_initial, lateral, 0.0)
        return summed / jnp.linalg.norm(summed, axis=-1, keepdims=True)


def product(a: AbstractDomain, b: AbstractDomain) -> SpaceTime:
    """`space * Interval(t0, t1)` or `Interval(t0, t1) * space` (time first either way)."""
    if isinstance(b, Interval):
        return SpaceTime(a, b)
    if isinstance(a, Interval):
        return SpaceTime(b, a)
    raise TypeError("domain * domain needs an Interval (the time axis) on one side")


register_operation("product", product)
