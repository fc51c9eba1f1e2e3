"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner, as an optax transformation.

Vyas, Morwani, Zhao, Shapira, Brandfonbrener, Janson, Kakade 2024, "SOAP: Improving and
Stabilizing Shampoo using Adam" (arXiv 2409.11321), Algorithms 3 and 4, with the conventions of
the authors' reference code (first call, bias correction, refresh order); used for PINNs by
Wang, Bhartari, Li, Perdikaris 2025 (arXiv 2502.00604). Per matrix parameter W (m x n) with
gradient G, Adam step t = 1, 2, ...:

    G' = Q_L^T G Q_R                                      rotate into the eigenbasis
    M  = b1 M + (1 - b1) G                                first moment, original space
    V  = b2 V + (1 - b2) G' * G'                          second moment, rotated space
    N  = Q_L [(Q_L^T M Q_R) / (sqrt(V) + eps)] Q_R^T      Adam in the rotated space, back
    W  = W - lr sqrt(1 - b2^t) / (1 - b1^t) N             the paper's bias correction
    L  = b2 L + (1 - b2) G G^T,  R = b2 R + (1 - b2) G^T G    after the step
    every f steps (t % f == 0): Q_L = QR(L Q_L), Q_R = QR(R Q_R)   one power iteration

Before the power iteration the columns of Q are sorted by their estimated eigenvalues
diag(Q^T L Q), descending, and V is permuted with them. The very first call only accumulates
L, R from G and sets Q_L, Q_R to their eigenvectors (eigh, descending); it returns a zero
update, as the reference code does, so Adam's step t is call t + 1. A tensor of any rank gets
one factor per axis (P_a = G contracted with itself over every other axis); an axis longer than
`max_precond_dim` (or of size 1), and every axis of a 0-D or 1-D parameter (biases), keeps the
identity basis: there SOAP is Adam. The refresh runs inside the compiled step under `lax.cond`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import Array

_HIGHEST = jax.lax.Precision.HIGHEST  # an eigenbasis from TF32 products drifts


class SoapLeaf(NamedTuple):
    """One parameter's state: moments and, per axis, a factor and its basis (None: identity)."""

    mu: Array
    nu: Array
    factors: tuple[Array | None, ...]
    bases: tuple[Array | None, ...]


class SoapState(NamedTuple):
    count: Array  # calls so far (int32); Adam's step is count - 1 after the first call
    leaves: Any  # a tree like the parameters, of SoapLeaf


def _axis_factor(g: Array, axis: int) -> Array:
    """G contracted with itself over every axis but `axis`: (s, s), s = g.shape[axis]."""
    others = [a for a in range(g.ndim) if a != axis]
    return jnp.tensordot(g, g, axes=(others, others), precision=_HIGHEST)


def _rotate(x: Array, bases: tuple[Array | None, ...], back: bool = False) -> Array:
    """x multiplied along each axis a by Q_a^T (or by Q_a with `back`); None: identity."""
    for axis, q in enumerate(bases):
        if q is not None:
            moved = jnp.tensordot(x, q.T if back else q, axes=((axis,), (0,)),
                                  precision=_HIGHEST)  # the new axis lands last
            x = jnp.moveaxis(moved, -1, axis)
    return x


def _eigenbasis(p: Array) -> Array:
    """Eigenvectors of the symmetric p, by decreasing eigenvalue."""
    return jnp.flip(jnp.linalg.eigh(p)[1], axis=1)


def _power_iteration(leaf: SoapLeaf) -> SoapLeaf:
    """Algorithm 4: per axis, sort Q's columns by diag(Q^T P Q) (permuting V with them), then
    Q = QR(P Q)."""
    nu, bases = leaf.nu, []
    for axis, (p, q) in enumerate(zip(leaf.factors, leaf.bases)):
        if p is None:
            bases.append(None)
            continue
        estimate = jnp.einsum("ij,ik,kj->j", q, p, q, precision=_HIGHEST)
        order = jnp.argsort(-estimate)
        nu, q = jnp.take(nu, order, axis=axis), q[:, order]
        bases.append(jnp.linalg.qr(jnp.matmul(p, q, precision=_HIGHEST))[0])
    return leaf._replace(nu=nu, bases=tuple(bases))


def _accumulate(leaf: SoapLeaf, g: Array, b2: float) -> tuple[Array | None, ...]:
    return tuple(None if p is None else b2 * p + (1 - b2) * _axis_factor(g, axis)
                 for axis, p in enumerate(leaf.factors))


def scale_by_soap(b1: float = 0.95, b2: float = 0.95, eps: float = 1e-8,
                  precondition_frequency: int = 10, max_precond_dim: int = 10000
                  ) -> optax.GradientTransformation:
    """SOAP's direction sqrt(1 - b2^t) / (1 - b1^t) N (module docstring), without the learning
    rate: chain it with `optax.scale_by_learning_rate`, or use `soap`.

    Args:
        b1, b2: decay of the first moment, and of the second moment and of L, R.
        eps: added to sqrt(V).
        precondition_frequency: f, Adam steps between eigenbasis refreshes.
        max_precond_dim: axes longer than this keep the identity basis.
    """
    if precondition_frequency < 1:
        raise ValueError(f"precondition_frequency must be >= 1, got {precondition_frequency}")

    def init_leaf(p: Array) -> SoapLeaf:
        # a size-1 axis has the basis +-1, which cancels in N: identity, one eigh fewer
        sizes = [s if p.ndim >= 2 and 1 < s <= max_precond_dim else None for s in p.shape]
        return SoapLeaf(jnp.zeros_like(p), jnp.zeros_like(p),
                        tuple(None if s is None else jnp.zeros((s, s), p.dtype) for s in sizes),
                        tuple(None if s is None else jnp.eye(s, dtype=p.dtype) for s in sizes))

    def init_fn(params) -> SoapState:
        return SoapState(jnp.zeros([], jnp.int32), jax.tree_util.tree_map(init_leaf, params))

    def first_leaf(g: Array, leaf: SoapLeaf) -> tuple[Array, SoapLeaf]:
        factors = _accumulate(leaf, g, b2)
        bases = tuple(None if p is None else _eigenbasis(p) for p in factors)
        return jnp.zeros_like(g), leaf._replace(factors=factors, bases=bases)

    def adam_leaf(g: Array, leaf: SoapLeaf, t: Array) -> tuple[Array, SoapLeaf]:
        mu = b1 * leaf.mu + (1 - b1) * g
        nu = b2 * leaf.nu + (1 - b2) * jnp.square(_rotate(g, leaf.bases))
        n = _rotate(_rotate(mu, leaf.bases) / (jnp.sqrt(nu) + eps), leaf.bases, back=True)
        tf = t.astype(g.dtype)
        direction = n * (jnp.sqrt(1 - b2**tf) / (1 - b1**tf))
        return direction, leaf._replace(mu=mu, nu=nu, factors=_accumulate(leaf, g, b2))

    def split(updates, results):
        pick = lambda i: jax.tree_util.tree_map(lambda _, r: r[i], updates, results)
        return pick(0), pick(1)

    def first_call(updates, state: SoapState):
        return split(updates, jax.tree_util.tree_map(first_leaf, updates, state.leaves))

    def adam_call(updates, state: SoapState):
        t = state.count  # calls before this one = this Adam step's number
        out, leaves = split(updates, jax.tree_util.tree_map(
            lambda g, leaf: adam_leaf(g, leaf, t), updates, state.leaves))
        is_leaf = lambda x: isinstance(x, SoapLeaf)
        leaves = jax.lax.cond(
            t % precondition_frequency == 0,
            lambda ls: jax.tree_util.tree_map(_power_iteration, ls, is_leaf=is_leaf),
            lambda ls: ls, leaves)
        return out, leaves

    def update_fn(updates, state: SoapState, params=None):
        del params
        out, leaves = jax.lax.cond(state.count == 0, first_call, adam_call, updates, state)
        return out, SoapState(optax.safe_int32_increment(state.count), leaves)

    return optax.GradientTransformation(init_fn, update_fn)


def soap(learning_rate: optax.ScalarOrSchedule, b1: float = 0.95, b2: float = 0.95,
         eps: float = 1e-8, weight_decay: float = 0.0, precondition_frequency: int = 10,
         max_precond_dim: int = 10000) -> optax.GradientTransformation:
    """SOAP (module docstring) with decoupled weight decay: W -= lr (N_scaled + wd W). The
    decay also acts on the first call, whose SOAP update is zero (the reference code skips it).

    Args:
        learning_rate: lr, a float or an optax schedule of the step.
        weight_decay: wd (0: none).
        b1, b2, eps, precondition_frequency, max_precond_dim: as in `scale_by_soap`.
    """
    parts = [scale_by_soap(b1, b2, eps, precondition_frequency, max_precond_dim)]
    if weight_decay:
        parts.append(optax.add_decayed_weights(weight_decay))
    return optax.chain(*parts, optax.scale_by_learning_rate(learning_rate))
