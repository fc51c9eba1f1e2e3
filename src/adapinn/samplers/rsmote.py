"""RSmote: residual-based SMOTE oversampling of a fixed-size training set (seed 001: Luo et
al., "An imbalanced learning-based sampling method for physics-informed neural networks",
arXiv 2501.11222, section 3).

On each refresh the current set of n points is scored (no candidate pool: the memory saving
over RAD) and split by residual rank:

    positives P = the top round(lambda n) points by |r|,   negatives N = the rest.

SMOTE (Chawla et al. 2002) oversamples P until the classes balance, |P| + |S| = |N|: each
synthetic point is

    s = x + u (x_nn - x),   x ~ U(P),  x_nn ~ U(k_nn nearest neighbours of x in P),  u ~ U(0, 1)

(imbalanced-learn's draw: a uniform (point, neighbour) pair per synthetic point). The next set
is n points drawn uniformly without replacement from the balanced set P + S + N of size 2|N|,
so in expectation half of it is positive-class (original or synthetic) and half negative (our
reading of the paper's "resample to the original size"; lambda <= 1/2 is required).
Neighbours come from pairwise distances, computed `knn_chunk` rows at a time.

Defaults: lambda = 0.45 (paper), k_nn = 5 (our choice, SMOTE's usual value), set size 2,000
and one refresh per 1,000 steps (our choices; the paper trains 1000 Adam + 1000 L-BFGS steps
per round).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.mesh import map_points
from adapinn.samplers.base import ScoreFn
from adapinn.samplers.density import finite_scores, keep_inside
from adapinn.samplers.pointset import PointSet, SetSampler, uniform_set


def nearest_neighbours(points: Array, k: int, chunk: int = 1024) -> Array:
    """Indices (n, k) of each point's k nearest other points (Euclidean), `chunk` rows at a time
    (split over the devices of the data mesh, `adapinn.mesh.map_points`).

    The k + 1 nearest of a row include the point itself at distance 0, which is dropped (with
    exact duplicates in the set, a duplicate may be dropped instead: the same location).

    Args:
        points: (n, d), n > k.
        k: neighbours per point (static).
        chunk: rows per block of the (n, n) distance matrix (bounds memory to chunk * n).
    """

    sq = jnp.sum(points**2, axis=-1)

    def row(x: Array) -> Array:
        d2 = sq - 2.0 * (points @ x) + jnp.sum(x**2)
        return jax.lax.top_k(-d2, k + 1)[1][1:]

    return map_points(row, points, chunk)


class RSmote(SetSampler):
    """Fixed-size set: keep the top-lambda residual class, SMOTE it, rebalance, resample."""

    lam: float = eqx.field(static=True, default=0.45)
    k_nn: int = eqx.field(static=True, default=5)
    knn_chunk: int = eqx.field(static=True, default=1024)

    def __check_init__(self):
        if not 0.0 < self.lam <= 0.5:
            raise ValueError(f"lam (the positive fraction) must lie in (0, 0.5], got {self.lam}")
        if self.n_pos < 2 or self.k_nn < 1:
            raise ValueError(
                f"need at least 2 positive points ({self.n_pos}: raise set_size or lam) and "
                f"k_nn >= 1 (got {self.k_nn})"
            )

    @property
    def n_pos(self) -> int:
        return max(1, round(self.lam * self.set_size))

    @property
    def n_syn(self) -> int:
        """Synthetic points that balance the classes: |N| - |P|."""
        return self.set_size - 2 * self.n_pos

    def update(self, state: PointSet, key: Array, step: Array, score_fn: ScoreFn) -> PointSet:
        k_syn, k_keep = jax.random.split(key)
        order = jnp.argsort(-finite_scores(score_fn(state.points)))
        ranked = state.points[order]
        positives, negatives = ranked[: self.n_pos], ranked[self.n_pos :]
        synthetic = self.oversample(k_syn, positives)
        balanced = jnp.concatenate([positives, synthetic, negatives])
        keep = jax.random.permutation(k_keep, balanced.shape[0])[: self.set_size]
        return uniform_set(balanced[keep])

    def oversample(self, key: Array, positives: Array) -> Array:
        """n_syn SMOTE points on segments between positives and their nearest positives."""
        k = min(self.k_nn, positives.shape[0] - 1)
        neighbours = nearest_neighbours(positives, k, self.knn_chunk)
        k_pair, k_gap = jax.random.split(key)
        pair = jax.random.randint(k_pair, (self.n_syn,), 0, positives.shape[0] * k)
        base, column = pair // k, pair % k
        start, end = positives[base], positives[neighbours[base, column]]
        gap = jax.random.uniform(k_gap, (self.n_syn, 1), positives.dtype)
        return keep_inside(self.domain, start + gap * (end - start), start, reflect=False)
