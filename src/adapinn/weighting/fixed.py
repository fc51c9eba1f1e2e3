"""Constant term weights: L = sum_k w_k L_k with user-chosen w_k (default 1)."""

from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp

from adapinn.weighting.base import AbstractWeighting, WeightingContext


class FixedWeights(AbstractWeighting):
    """w_k = weights.get(k, 1.0), never updated."""

    weights: dict[str, float] = eqx.field(  # stored as sorted (name, weight) pairs
        static=True, default=(), converter=lambda w: tuple(sorted(dict(w).items()))
    )

    @property
    def rescales_terms(self) -> bool:  # type: ignore[override]
        """Weights that are not all equal set a ratio between terms."""
        return len({float(w) for _, w in self.weights} | {1.0}) > 1

    def init(self, names: Sequence[str]) -> dict:
        given = dict(self.weights)
        unknown = set(given) - set(names)
        if unknown:
            raise ValueError(f"fixed weights name unknown terms {sorted(unknown)}; terms: {names}")
        return {name: jnp.asarray(float(given.get(name, 1.0))) for name in names}

    def update(self, state: dict, context: WeightingContext):
        return dict(state), state
