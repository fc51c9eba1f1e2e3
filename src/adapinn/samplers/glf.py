"""GLF: global-local fusion sampling (seed 003: Luo, Xu, Yang, "Efficient global-local fusion
sampling for physics-informed neural networks", arXiv 2510.24026, section 3).

Every training point x_i is an anchor. On each refresh the anchors are scored (the only
residual evaluations: n points) and each draws M candidates

    x_ij = x_i + h(x_i) xi_ij,   xi_ij ~ N(0, I),   h(x) = alpha / (|r(x)| + eps),

tight around high-residual anchors (local refinement), wide around low-residual ones (global
exploration), mirror-reflected into the domain (`Box.reflect`; other domains keep the anchor
for a candidate that leaves them). Each candidate inherits its anchor's residual (the paper's
lightweight surrogate: no new derivative evaluations). The next set of n points is drawn from
the n (M + 1) anchors and candidates, without replacement (our choice: no duplicates), with
the RAD weights

    w = |r|^k / mean(|r|^k) + c.

Defaults (methods.md): M = 3, alpha = 1e-4 (use 1e-3 in high dimension), k = 1, c = 1,
eps = 1e-8. Our choices: set size 2,000 (the paper's Allen-Cahn setting), refresh every 1,000
steps. Note that h is in the domain's coordinate units and alpha / |r| is small only when
|r| >> alpha.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.samplers.base import ScoreFn
from adapinn.samplers.density import (
    finite_scores,
    gumbel_top_k,
    keep_inside,
    log_weights,
    rad_weights,
)
from adapinn.samplers.pointset import PointSet, SetSampler, uniform_set


class GLF(SetSampler):
    """Anchors perturbed by N(0, h^2 I), h = alpha / (|r| + eps), then RAD-weighted resampling."""

    n_candidates: int = eqx.field(static=True, default=3)
    alpha: float = eqx.field(static=True, default=1e-4)
    eps: float = eqx.field(static=True, default=1e-8)
    k: float = eqx.field(static=True, default=1.0)
    c: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        if self.n_candidates < 1 or self.alpha <= 0 or self.eps <= 0:
            raise ValueError("need n_candidates >= 1, alpha > 0 and eps > 0")

    def candidates(self, key: Array, anchors: Array, scores: Array) -> Array:
        """M candidates per anchor, (n, M, d): x + alpha / (|r| + eps) * xi, in the domain."""
        n, d = anchors.shape
        m = self.n_candidates
        step = self.alpha / (scores + self.eps)
        noise = jax.random.normal(key, (n, m, d), anchors.dtype)
        raw = anchors[:, None, :] + step[:, None, None] * noise
        origin = jnp.broadcast_to(anchors[:, None, :], (n, m, d)).reshape(n * m, d)
        return keep_inside(self.domain, raw.reshape(n * m, d), origin).reshape(n, m, d)

    def update(self, state: PointSet, key: Array, step: Array, score_fn: ScoreFn) -> PointSet:
        k_cand, k_draw = jax.random.split(key)
        anchors = state.points
        scores = finite_scores(score_fn(anchors))
        cands = self.candidates(k_cand, anchors, scores)
        pool = jnp.concatenate([anchors, cands.reshape(-1, anchors.shape[1])])
        inherited = jnp.concatenate([scores, jnp.repeat(scores, self.n_candidates)])
        logits = log_weights(rad_weights(inherited, self.k, self.c))
        idx, _ = gumbel_top_k(k_draw, logits, self.set_size)
        return uniform_set(pool[idx])
