"""Gradient aggregation of per-term gradients before the optimiser: plain sum, or PCGrad with
gradient task normalisation (seed 004, DB-PINN; Yu et al. 2020, "Gradient surgery for
multi-task learning", NeurIPS).

With an aggregator the trainer computes one gradient per (weighted) loss term, stacked along a
leading axis of length K (one reverse pass per term, one shared forward pass), and the
aggregator's optax transformation, first in the optimiser chain, turns them into the single
gradient that Adam sees:

    GTN:     n_k = ||g_k||,  e_k <- beta e_k + (1 - beta) n_k,
             g_k <- g_k / (e_k / (1 - beta^t) + eps)
    PCGrad:  for each i, for j != i in random order:
                 if <g_i, g_j> < 0:  g_i <- g_i - <g_i, g_j> / (||g_j||^2 + eps) g_j
             (g_j the unprojected gradients), then g = sum_i g_i.

The EMA of the norms (beta = 0.99, seed 004) is bias-corrected like Adam's moments (our
choice: without it the first steps would divide by (1 - beta^t) n_k and inflate the gradients).
Select it with the `aggregator` config section: `{name: pcgrad, gtn: true, momentum: 0.99}`;
`sum` (the default) keeps the trainer's single-backward-pass path.

GTN and term-level weights: GTN divides each weighted term gradient w_k g_k by the EMA of its
own norm, ~ w_k ||g_k||, so a per-term factor w_k cancels (exactly for constant w_k). Hence
(`PCGrad.check_weighting`, called by the Trainer):
- fixed non-uniform weights (`ic: 100`) with GTN are refused (ConfigError): the ratio the
  user asked for would silently vanish;
- an adaptive term balancing (gradnorm, ntk, ema_balance) with GTN is allowed with a warning:
  both aim at equal gradient scales per term, so the combination (seed 004's DB-PINN + GTN)
  trains like GTN alone, apart from the lag of GTN's EMA after each reweighting;
- point-level weights (causal, sa, pointwise_gradnorm) keep their ratios within a term.
PCGrad without GTN (`gtn: false`) keeps every weight.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import Array

from adapinn.errors import ConfigError
from adapinn.weighting.base import AbstractWeighting
from adapinn.weighting.fixed import FixedWeights

log = logging.getLogger(__name__)


def flatten_stacked(stacked: Any) -> tuple[Array, Any]:
    """(K, ...) leaves -> a (K, P) matrix and the function that maps a (P,) vector back."""
    leaves, treedef = jax.tree_util.tree_flatten(stacked)
    k = leaves[0].shape[0]
    matrix = jnp.concatenate([leaf.reshape(k, -1) for leaf in leaves], axis=1)
    shapes = [leaf.shape[1:] for leaf in leaves]
    sizes = [int(leaf[0].size) for leaf in leaves]

    def unflatten(vector: Array) -> Any:
        parts, start = [], 0
        for shape, size, leaf in zip(shapes, sizes, leaves):
            parts.append(vector[start:start + size].reshape(shape).astype(leaf.dtype))
            start += size
        return jax.tree_util.tree_unflatten(treedef, parts)

    return matrix, unflatten


def project_conflicts(grads: Array, key: Array, eps: float = 1e-8) -> Array:
    """PCGrad: each row g_i projected off every conflicting g_j (j in random order).

    g_i <- g_i - min(<g_i, g_j>, 0) / (||g_j||^2 + eps) g_j for j != i, sequentially.

    Args:
        grads: (K, P) per-term gradients.
        key: randomness of the orders (one permutation per term).
        eps: guards the division by a vanishing ||g_j||^2.

    Returns:
        (K, P) projected gradients.
    """
    k = grads.shape[0]

    def one(i: Array, key: Array) -> Array:
        def body(g: Array, j: Array) -> tuple[Array, None]:
            other = grads[j]
            dot = jnp.vdot(g, other)
            coef = jnp.where((j != i) & (dot < 0), dot / (jnp.vdot(other, other) + eps), 0.0)
            return g - coef * other, None

        g, _ = jax.lax.scan(body, grads[i], jax.random.permutation(key, k))
        return g

    return jax.vmap(one)(jnp.arange(k), jax.random.split(key, k))


class GTNState(NamedTuple):
    """EMA of each term's gradient norm, shape (K,), and the number of updates."""

    ema: Array
    count: Array


def gtn_normalise(grads: Array, state: GTNState, momentum: float,
                  eps: float = 1e-8) -> tuple[Array, GTNState]:
    """g_k / (bias-corrected EMA of ||g_k|| + eps); grads (K, P)."""
    norms = jnp.linalg.norm(grads, axis=1)
    count = state.count + 1
    ema = momentum * state.ema + (1 - momentum) * norms.astype(state.ema.dtype)
    corrected = ema / (1 - momentum ** count.astype(ema.dtype))
    return grads / (corrected[:, None] + eps).astype(grads.dtype), GTNState(ema, count)


class Sum(eqx.Module):
    """g = sum_k g_k: the plain total gradient, through the per-term path."""

    def init_state(self, n_terms: int) -> tuple:
        return ()

    def aggregate(self, stacked: Any, state: tuple, key: Array) -> tuple[Any, tuple]:
        return jax.tree_util.tree_map(lambda g: jnp.sum(g, axis=0), stacked), state

    def transform(self, names: Sequence[str]) -> optax.GradientTransformationExtraArgs:
        return _as_transform(self, len(names))


class PCGrad(eqx.Module):
    """PCGrad on the per-term gradients, after optional GTN.

    Attributes:
        gtn: divide each term's gradient by the EMA of its norm first.
        momentum: EMA factor of GTN (seed 004: 0.99).
        eps: guards the divisions.
    """

    gtn: bool = eqx.field(static=True, default=True)
    momentum: float = eqx.field(static=True, default=0.99)
    eps: float = eqx.field(static=True, default=1e-8)

    def check_weighting(self, weighting: AbstractWeighting) -> None:
        """Refuse fixed term ratios that GTN would cancel; warn for adaptive term balancing
        (module docstring)."""
        if not (self.gtn and weighting.rescales_terms):
            return
        if _has_fixed_ratios(weighting):
            raise ConfigError(
                "aggregator 'pcgrad' with gtn: true divides each term's gradient by its own "
                "norm, which cancels the fixed term weights (e.g. ic: 100) of weighting "
                f"{type(weighting).__name__}: set aggregator.gtn=false to keep them, or drop "
                "the fixed weights"
            )
        log.warning(
            "aggregator 'pcgrad' with gtn: true divides each term's gradient by its own norm, "
            "which cancels the per-term factors of weighting %s: the run trains like GTN "
            "alone (set aggregator.gtn=false to keep the weights)", type(weighting).__name__)

    def init_state(self, n_terms: int) -> GTNState:
        return GTNState(jnp.zeros((n_terms,)), jnp.asarray(0, jnp.int32))

    def aggregate(self, stacked: Any, state: GTNState, key: Array) -> tuple[Any, GTNState]:
        """The aggregated gradient (a tree shaped like one term's) and the new GTN state."""
        matrix, unflatten = flatten_stacked(stacked)
        if self.gtn:
            matrix, state = gtn_normalise(matrix, state, self.momentum, self.eps)
        projected = project_conflicts(matrix, key, self.eps)
        return unflatten(jnp.sum(projected, axis=0)), state

    def transform(self, names: Sequence[str]) -> optax.GradientTransformationExtraArgs:
        return _as_transform(self, len(names))


def _as_transform(aggregator: Sum | PCGrad, n_terms: int) -> optax.GradientTransformationExtraArgs:
    """The aggregator as the first link of an optax chain: `update(stacked, state, params,
    key=...)` returns the aggregated gradient (the trainer passes the key)."""

    def init(params: Any) -> Any:
        return aggregator.init_state(n_terms)

    def update(updates: Any, state: Any, params: Any = None, *, key: Array | None = None,
               **extra: Any) -> tuple[Any, Any]:
        if key is None:
            raise ValueError("the gradient aggregator needs `key=` in optimizer.update")
        return aggregator.aggregate(updates, state, key)

    return optax.GradientTransformationExtraArgs(init, update)


def _has_fixed_ratios(weighting: AbstractWeighting) -> bool:
    """A fixed scheme with non-uniform weights, alone or inside a chain."""
    schemes = getattr(weighting, "schemes", (weighting,))
    return any(isinstance(s, FixedWeights) and s.rescales_terms for s in schemes)
