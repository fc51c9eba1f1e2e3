"""Shared maths of the adaptive samplers: the RAD density, weighted draws without replacement
with their exact inclusion probabilities, row draws from fixed-size sets, and keeping points
inside a domain. Everything is shape-static and jit-safe.

References:
    Wu, Zhu, Tan, Kartha, Lu (2023), "A comprehensive study of non-adaptive and residual-based
    adaptive sampling for physics-informed neural networks", CMAME 403, 115671 (the RAD
    density, eq. (2)).
    Kool, van Hoof, Welling (2019), "Stochastic beams and where to find them: the Gumbel-top-k
    trick for sampling sequences without replacement", ICML.
    Kool, van Hoof, Welling (2020), "Estimating gradients for discrete random variables by
    sampling without replacement", ICLR (the unbiased estimator with inclusion probabilities
    conditioned on the (n+1)-th largest perturbed key; Duffield, Lund, Thorup 2007 priority
    sampling is the same idea).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from adapinn.problems.domains import AbstractDomain


def finite_scores(scores: Array) -> Array:
    """|r| with non-finite entries set to 0 (a NaN must not poison a whole draw)."""
    scores = jnp.abs(scores)
    return jnp.where(jnp.isfinite(scores), scores, jnp.zeros_like(scores))


def rad_weights(scores: Array, k: float = 1.0, c: float = 1.0) -> Array:
    """Unnormalised RAD density over a set of points (Wu et al. 2023, eq. (2)).

        w_i = |r_i|^k / mean_j |r_j|^k + c

    A field that is zero everywhere gives w_i = c, and w_i = 1 when c = 0 as well (uniform).

    Args:
        scores: residual magnitudes |r|, shape (n,).
        k: exponent; k = 0 or large c approach uniform sampling.
        c: additive floor relative to the mean.

    Returns:
        Non-negative weights, shape (n,).
    """
    powered = finite_scores(scores) ** k
    mean = jnp.mean(powered)
    safe_mean = jnp.where(mean > 0, mean, jnp.ones_like(mean))
    ratio = jnp.where(mean > 0, powered / safe_mean, jnp.zeros_like(powered))
    weights = ratio + c
    return jnp.where(jnp.sum(weights) > 0, weights, jnp.ones_like(weights))


def rad_probabilities(scores: Array, k: float = 1.0, c: float = 1.0) -> Array:
    """The RAD density normalised over the set: q_i = w_i / sum_j w_j, shape (n,)."""
    weights = rad_weights(scores, k, c)
    return weights / jnp.sum(weights)


def log_weights(weights: Array) -> Array:
    """log w with -inf for zero weights (never drawn by the Gumbel trick)."""
    positive = weights > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, weights, 1.0)), -jnp.inf)


def gumbel_top_k(key: Array, logits: Array, n: int) -> tuple[Array, Array]:
    """Draw n distinct indices, sequentially with P(i) proportional to exp(logits_i).

    Gumbel-top-k (Kool et al. 2019): the indices of the n largest perturbed keys
    g_i = logits_i + G_i, G_i ~ Gumbel(0, 1) i.i.d., have the same law as n successive draws
    without replacement (numpy's `choice(replace=False, p=...)`).

    Args:
        key: PRNG key.
        logits: log-weights (N,), -inf for excluded entries.
        n: number of draws, n <= N (static).

    Returns:
        (indices (n,), kappa): kappa is the (n+1)-th largest perturbed key (-inf when n == N),
        the threshold that `inclusion_probabilities` conditions on.
    """
    total = logits.shape[0]
    if n > total:
        raise ValueError(f"cannot draw {n} distinct points from {total}")
    perturbed = logits + jax.random.gumbel(key, logits.shape, logits.dtype)
    top, idx = jax.lax.top_k(perturbed, min(n + 1, total))
    kappa = top[n] if n < total else jnp.asarray(-jnp.inf, logits.dtype)
    return idx[:n], kappa


def inclusion_probabilities(logits: Array, kappa: Array) -> Array:
    """P(i is drawn | the other keys) = P(logits_i + G_i > kappa) = 1 - exp(-exp(logits_i - kappa)).

    Dividing by these gives the unbiased Horvitz-Thompson estimator of a sum over the
    population from a Gumbel-top-k sample (Kool et al. 2020, Thm. 1).
    """
    return -jnp.expm1(-jnp.exp(logits - kappa))


def horvitz_thompson_weights(logits: Array, idx: Array, kappa: Array) -> Array:
    """Loss weights that make mean_i(w_i f(x_i)) over the drawn set unbiased for the pool mean.

        w_i = n / (N pi_i),   so   E[(1/n) sum_{i in S} w_i f_i] = (1/N) sum_{j in pool} f_j

    For small sampling fractions pi_i ~ n q_i and w_i ~ 1 / (N q_i), the textbook importance
    weight of the normalised density q over the pool.
    """
    n, total = idx.shape[0], logits.shape[0]
    pi = inclusion_probabilities(logits[idx], kappa)
    return (n / total) / pi


def draw_rows(key: Array, rows: Array, size: int) -> Array:
    """Indices of `size` rows drawn uniformly without replacement (all rows when size >= n)."""
    n = rows.shape[0]
    if size >= n:
        return jnp.arange(n)
    return jax.random.choice(key, n, (size,), replace=False)


def draw_active(key: Array, count: Array, size: int) -> Array:
    """`size` indices drawn uniformly, with replacement, from the first `count` rows."""
    u = jax.random.uniform(key, (size,))
    idx = jnp.floor(u * count.astype(u.dtype)).astype(jnp.int32)
    return jnp.clip(idx, 0, jnp.maximum(count - 1, 0))


def keep_inside(
    domain: AbstractDomain, points: Array, fallback: Array, reflect: bool = True
) -> Array:
    """Points mapped into the domain: mirror reflection for boxes (when `reflect`), otherwise
    each point that left the domain is replaced by its `fallback` (e.g. its anchor)."""
    mirror = getattr(domain, "reflect", None)
    if reflect and mirror is not None:
        return mirror(points)
    inside = domain.contains(points)
    return jnp.where(inside[:, None], points, fallback)


def cell_index(domain: AbstractDomain, points: Array, bins: int) -> Array:
    """Flat index of the regular cell (bins per free axis of the bounding box) of each point."""
    box = domain.bounding_box
    axes = jnp.asarray(box.free_axes, jnp.int32)
    low = jnp.asarray(box.low)[axes]
    width = jnp.asarray(box.high)[axes] - low
    unit = (points[:, axes] - low[None, :]) / width[None, :]
    per_axis = jnp.clip(jnp.floor(unit * bins).astype(jnp.int32), 0, bins - 1)
    strides = jnp.asarray([bins**a for a in range(len(box.free_axes))], jnp.int32)
    return jnp.sum(per_axis * strides[None, :], axis=-1)
