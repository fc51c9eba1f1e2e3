"""`domain.where(predicate)`: the part of a domain where a predicate on points holds.

Sampled by rejection (`adapinn.geometry.rejection`) from the domain's own proposal, the mask
ANDed with `predicate(x)`; normals are those of the underlying (boundary) domain. Use it to pick
boundary pieces, e.g. the lid of a cavity `box.boundary.where(lambda x: x[..., 1] > 0.999)`.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
from jax import Array

from adapinn.geometry.base import AbstractDomain, register_operation
from adapinn.geometry.box import Box
from adapinn.geometry.rejection import FilteredProposal

Predicate = Callable[[Array], Array]


class Restricted(FilteredProposal):
    """{x in domain : predicate(x)}; `predicate` maps points (n, dim) to a mask (n,)."""

    domain: AbstractDomain
    predicate: Predicate = eqx.field(static=True)

    def __init__(self, domain: AbstractDomain, predicate: Predicate):
        self.domain, self.predicate = domain, predicate
        self._estimate()

    @property
    def dim(self) -> int:
        return self.domain.dim

    @property
    def source(self) -> AbstractDomain:
        return self.domain

    def keep(self, points):
        return self.predicate(points)

    def contains(self, x, atol=1e-6):
        return self.domain.contains(x, atol) & self.predicate(x)

    @property
    def bounding_box(self) -> Box:
        return self.domain.bounding_box

    def normal(self, x: Array) -> Array:
        return self.domain.normal(x)


register_operation("where", Restricted)
