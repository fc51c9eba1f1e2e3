"""Rejection sampling with static shapes, for domains without an exact map of the unit cube.

A rejection domain has a *proposal*: a map `propose(v)` of unit-cube rows v (width
`proposal_width`) to candidate points and an acceptance mask, whose candidates have density
1 / `proposal_weight` before the mask (for an exact domain: its own `from_unit`, an all-true
mask and its measure). Accepted candidates are then uniform on the accepted set, and

    measure = proposal_weight * P(accept),

with P(accept) estimated once at construction by a Monte-Carlo estimate on 2^15 numpy
uniform rows (`estimate_acceptance`). Proposals nest without nesting the rejection: a
difference, intersection or `where` of a rejection domain reuses that domain's proposal and
ANDs its own test into the mask, so every domain keeps one level of rejection.

`from_unit(u)` with u of shape (n, copies * proposal_width) cuts u into `copies` blocks of
columns, stacks them into copies * n candidate rows (block by block, so the first block is the
whole design), and keeps the first n accepted candidates in that order (a stable argsort on the
mask). `copies = ceil(1.5 / p_low)` with p_low a 4-sigma lower bound of the estimated
acceptance, so about 1.5 n candidates are expected to pass. If fewer than n pass (rare; mostly
for very small n) the remaining rows repeat accepted points cyclically, so the output is not
exactly i.i.d. then. A low-discrepancy design (Sobol, LHS) keeps its property only
approximately: the accepted subset of the design's points is no longer a balanced design.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from adapinn.geometry.base import AbstractDomain

ESTIMATE_SIZE = 2**15
"""Rows of the construction-time Monte-Carlo estimate of the acceptance ratio."""

SAFETY = 1.5
"""Expected accepted candidates per requested point."""


class RejectionDomain(AbstractDomain):
    """A domain sampled by rejection from a proposal (see the module docstring).

    Subclasses define `proposal_width`, `proposal_weight` and `propose`, and call
    `self._estimate()` at the end of `__init__`.
    """

    acceptance: float = eqx.field(static=True)
    copies: int = eqx.field(static=True)

    @property
    @abc.abstractmethod
    def proposal_width(self) -> int:
        """Unit-cube coordinates one candidate consumes."""

    @property
    @abc.abstractmethod
    def proposal_weight(self) -> float:
        """1 / density of the candidates before the mask (the proposal's measure)."""

    @abc.abstractmethod
    def propose(self, v: Array) -> tuple[Array, Array]:
        """Candidates (m, dim) and their acceptance mask (m,) from unit rows v (m, width)."""

    @property
    def always_accepts(self) -> bool:
        """True when the mask is all-true by construction (then from_unit is exact)."""
        return False

    def _estimate(self) -> None:
        if self.always_accepts:
            self.acceptance, self.copies = 1.0, 1
        else:
            self.acceptance = estimate_acceptance(self.proposal_width, self.propose)
            self.copies = copies_for(self.acceptance)

    @property
    def n_free(self) -> int:
        return self.copies * self.proposal_width

    @property
    def measure(self) -> float:
        """proposal_weight * estimated acceptance (a Monte-Carlo estimate, ~0.5% error)."""
        return self.proposal_weight * self.acceptance

    def from_unit(self, u):
        n, width = u.shape[0], self.proposal_width
        if self.always_accepts:
            return self.propose(u)[0]
        rows = u.reshape(n, self.copies, width).transpose(1, 0, 2).reshape(self.copies * n, width)
        points, mask = self.propose(rows)
        return select_first(points, mask, n)


class FilteredProposal(RejectionDomain):
    """A rejection domain whose candidates are those of one `source` domain, kept where
    `keep(points)` holds (difference, intersection, `where`)."""

    @property
    @abc.abstractmethod
    def source(self) -> AbstractDomain:
        """The domain whose proposal this one filters."""

    @abc.abstractmethod
    def keep(self, points: Array) -> Array:
        """The mask (m,) of the candidates that belong to this domain."""

    @property
    def proposal_width(self) -> int:
        return proposal_width(self.source)

    @property
    def proposal_weight(self) -> float:
        return proposal_weight(self.source)

    def propose(self, v):
        points, mask = propose(self.source, v)
        return points, mask & self.keep(points)


class MixtureProposal(RejectionDomain):
    """A rejection domain whose candidates come from a mixture of `sources` (`mixture`):
    union, CSG and space-time boundaries; subclasses define `propose` (which candidates of
    the mixture they accept)."""

    @property
    @abc.abstractmethod
    def sources(self) -> tuple[AbstractDomain, ...]:
        """The mixed domains."""

    @property
    def proposal_width(self) -> int:
        return mixture_width(self.sources)

    @property
    def proposal_weight(self) -> float:
        return float(sum(proposal_weight(p) for p in self.sources))


def select_first(points: Array, mask: Array, n: int) -> Array:
    """The first `n` rows of `points` where `mask` holds, in order (stable argsort of the
    mask); when fewer than n hold, the accepted rows repeat cyclically (all rejected: the
    first candidates are returned as they are)."""
    order = jnp.argsort(jnp.logical_not(mask).astype(jnp.int32), stable=True)
    count = jnp.sum(mask.astype(jnp.int32))
    return points[order[jnp.arange(n) % jnp.maximum(count, 1)]]


def estimate_acceptance(width: int, propose, size: int = ESTIMATE_SIZE, seed: int = 0) -> float:
    """Fraction of `size` numpy-uniform candidate rows that `propose` accepts."""
    rows = np.random.default_rng(seed).random((size, width))
    with jax.ensure_compile_time_eval():
        mask = jax.jit(lambda v: propose(v)[1])(jnp.asarray(rows, jnp.result_type(float)))
        p = float(np.mean(np.asarray(mask)))
    if p <= 0.0:
        raise ValueError("rejection domain: no candidate was accepted; is the domain empty?")
    return p


def copies_for(acceptance: float, size: int = ESTIMATE_SIZE) -> int:
    """ceil(SAFETY / p_low), p_low = the estimate minus 4 standard errors (at least half it)."""
    sigma = math.sqrt(acceptance * (1.0 - acceptance) / size)
    p_low = max(acceptance - 4.0 * sigma, 0.5 * acceptance)
    return max(1, math.ceil(SAFETY / p_low))


def proposal_width(domain: AbstractDomain) -> int:
    """Unit coordinates per candidate of `domain` used as a proposal."""
    return domain.proposal_width if isinstance(domain, RejectionDomain) else domain.n_free


def proposal_weight(domain: AbstractDomain) -> float:
    """1 / candidate density of `domain` used as a proposal (its measure when exact)."""
    return domain.proposal_weight if isinstance(domain, RejectionDomain) else domain.measure


def propose(domain: AbstractDomain, v: Array) -> tuple[Array, Array]:
    """Candidates and mask of `domain` used as a proposal (exact domain: all accepted)."""
    if isinstance(domain, RejectionDomain):
        return domain.propose(v)
    return domain.from_unit(v), jnp.ones(v.shape[0], bool)


def mixture_width(parts: Sequence[AbstractDomain]) -> int:
    """1 (the part picker) + the widest part's proposal width."""
    return 1 + max(proposal_width(p) for p in parts)


def mixture(parts: Sequence[AbstractDomain], v: Array) -> tuple[Array, Array, Array]:
    """Pick part i with probability w_i / sum(w) (w = proposal weights) from v[:, 0] and draw
    a candidate of it from the next columns; returns (which (m,), points, mask).

    Candidate density: sum_i (w_i / W) (1 / w_i) 1{x in part i} = (number of parts holding x)
    / W, so a caller that accepts a candidate of part i only where no part j < i holds it gets
    the uniform density 1 / W on the union (the overlap is not over-weighted)."""
    weights = np.array([max(proposal_weight(p), 1e-300) for p in parts])
    edges = jnp.asarray(np.cumsum(weights) / weights.sum(), v.dtype)
    which = jnp.clip(jnp.searchsorted(edges, v[:, 0], side="right"), 0, len(parts) - 1)
    drawn = [propose(p, v[:, 1:1 + proposal_width(p)]) for p in parts]
    points = jnp.stack([d[0] for d in drawn])
    masks = jnp.stack([d[1] for d in drawn])
    rows = jnp.arange(v.shape[0])
    return which, points[which, rows], masks[which, rows]


def earlier_holds(holds: Array, which: Array) -> Array:
    """For a (k, m) table `holds[j, r]`, whether some j < which[r] holds row r."""
    k = holds.shape[0]
    return jnp.any(holds & (jnp.arange(k)[:, None] < which[None, :]), axis=0)
