"""Geometry: domains that sample themselves, their boundaries and outward normals.

Primitives (`Box`, `Interval`, `Disk`, `Ball`, `RadialBall`, `Sphere`, `Polygon`), the set algebra
`a | b`, `a - b`, `a & b` (`CSGUnion`, `Difference`, `Intersection`, sampled by rejection),
`domain.where(predicate)` (`Restricted`), space-time cylinders `space * Interval(t0, t1)`
(`SpaceTime`, time first), `domain.boundary` (a domain with `normal(x)`) and
`normal_derivative(u, x, n)`.
"""

from adapinn.geometry.ball import Ball, Disk, RadialBall, Sphere
from adapinn.geometry.base import AbstractDomain
from adapinn.geometry.box import Box, BoxBoundary, Interval, Union
from adapinn.geometry.csg import CSGBoundary, CSGUnion, Difference, Intersection
from adapinn.geometry.normals import normal_derivative
from adapinn.geometry.polygon import Polygon, PolygonBoundary
from adapinn.geometry.rejection import RejectionDomain
from adapinn.geometry.restricted import Restricted
from adapinn.geometry.spacetime import SpaceTime, SpaceTimeBoundary

__all__ = [
    "AbstractDomain", "Ball", "Box", "BoxBoundary", "CSGBoundary", "CSGUnion", "Difference",
    "Disk", "Intersection", "Interval", "Polygon", "PolygonBoundary", "RadialBall",
    "RejectionDomain",
    "Restricted", "SpaceTime", "SpaceTimeBoundary", "Sphere", "Union", "normal_derivative",
]
