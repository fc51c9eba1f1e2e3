"""Chain: several weighting schemes at once, their weights multiplied (architecture notes;
optax's `chain`). jaxpi's Allen-Cahn recipe is causal point weights times grad-norm term
weights:

    w_k,i = prod_j w^(j)_k,i        (scalars and (n,) arrays broadcast)

Order matters for gradient-based schemes: scheme j measures the loss already weighted by
schemes 1..j-1 (`WeightingContext.prior_weights`, their product w'):

    gradnorm, ema_balance:   g_k = ||grad_theta mean_i(w'_k,i q_k,i r_k,i^2)||
    ntk:                     tr(K_k) = mean_i w'_k,i ||d r_k(x_i) / d theta||^2
                             (the kernel of the weighted residual sqrt(w') r, jaxpi's causal NTK)
    pointwise_gradnorm:      nu_i = ||d (w'_i r_i^2) / d theta|| = w'_i ||d r_i^2 / d theta||

so `[{name: causal}, {name: gradnorm}]` balances the causally weighted residual (as jaxpi
does), not the raw one whose late times are not yet meant to train. (For pointwise_gradnorm
after a point-level scheme the product w'_i w_i is proportional to 1 / nu_i: it undoes the
earlier point weights by design; after term-level weights it changes nothing.)
Configured as `weighting: {name: chain, schemes: [{name: causal}, {name: gradnorm}]}`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import jax

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

    @property
    def rescales_terms(self) -> bool:  # type: ignore[override]
        return any(s.rescales_terms for s in self.schemes)

    def init_for(self, samplers: Mapping[str, Any]) -> tuple:
        return tuple(s.init_for(samplers) for s in self.schemes)

    def update(self, state: tuple, context: WeightingContext) -> tuple[Weights, tuple]:
        weights: Weights | None = None
        new_states, gradients_of = [], context.term_gradients
        for scheme, sub in zip(self.schemes, state):
            if weights is not None:
                earlier = jax.lax.stop_gradient(weights)
                context = dataclasses.replace(
                    context, term_gradients=functools.partial(gradients_of, earlier),
                    prior_weights=earlier)
            w, sub = scheme.update(sub, context)
            new_states.append(sub)
            weights = w if weights is None else {k: weights[k] * w[k] for k in weights}
        return weights, tuple(new_states)
