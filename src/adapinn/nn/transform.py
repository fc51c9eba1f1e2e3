"""A hard constraint: the network's output mapped by a function of the point,

    u(x) = T(x, N(x)),

e.g. u = (1 - |x|^2) N(x), which vanishes on the unit sphere whatever N is (the boundary
ansatz of Lagaris et al. 1998, "Artificial neural networks for solving ordinary and partial
differential equations"; the two-body benchmarks of SDGD / STDE train this way). A problem
declares `T` as `Problem.output_transform`; the trainer, evaluation, `predict` and `export`
then all see the constrained model.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
from jax import Array


class OutputTransform(eqx.Module):
    """`transform(x, network(x))` for one point x."""

    network: eqx.Module
    transform: Callable[[Array, Array], Array] = eqx.field(static=True)

    def __call__(self, x: Array) -> Array:
        return self.transform(x, self.network(x))
