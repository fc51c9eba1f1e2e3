"""Chain: several weighting schemes at once, their weights multiplied (architecture notes;
optax's `chain`). jaxpi's Allen-Cahn recipe is grad-norm term weights times causal point
weights:

    w_k,i = prod_j w^(j)_k,i        (scalars and (n,) arrays broadcast)

Configured as `weighting: {name: chain, schemes: [{name: gradnorm}, {name: causal}]}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapinn.weighting.base import AbstractWeighting, WeightingContext, Weights


class Chain(AbstractWeighting):
    """Apply every scheme to the same context and multiply their weights term by term."""

    schemes: tuple[AbstractWeighting, ...]

    def __check_init__(self):
        if not self.schemes:
            raise ValueError("chain needs at least one scheme in `schemes`")
        if any(s.trainable for s in self.schemes):
            raise ValueError("chain cannot hold a trainable scheme (sa); use sa on its own")

    @property
    def point_state(self) -> bool:  # type: ignore[override]
        return any(s.point_state for s in self.schemes)

    def init_for(self, samplers: Mapping[str, Any]) -> tuple:
        return tuple(s.init_for(samplers) for s in self.schemes)

    def update(self, state: tuple, context: WeightingContext) -> tuple[Weights, tuple]:
        weights: Weights | None = None
        new_states = []
        for scheme, sub in zip(self.schemes, state):
            w, sub = scheme.update(sub, context)
            new_states.append(sub)
            weights = w if weights is None else {k: weights[k] * w[k] for k in weights}
        return weights, tuple(new_states)
