"""One fixed collocation set for the whole run (the classic PINN baseline).

The set holds `size` points made once from a design: i.i.d. uniform, Latin hypercube
(McKay, Beckman and Conover 1979: one point per stratum in every coordinate) or scrambled
Sobol (Owen scrambling, scipy.stats.qmc). Each step uses a random subset of `batch_size`
points, or the whole set when `batch_size >= size`.
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from scipy.stats import qmc

from adapinn.samplers.base import AbstractSampler, Batch, unit_weights


def latin_hypercube(key: Array, n: int, d: int) -> Array:
    """n points in [0,1]^d, exactly one in each of the n strata of every coordinate."""
    keys = jax.random.split(key, d + 1)
    perms = jnp.stack([jax.random.permutation(k, n) for k in keys[:d]], axis=1)
    jitter = jax.random.uniform(keys[d], (n, d))
    return (perms.astype(jitter.dtype) + jitter) / n  # explicit cast: strict promotion too


def sobol(key: Array, n: int, d: int) -> Array:
    """n scrambled Sobol points in [0,1]^d (seeded from the key, so reproducible), in the
    default float dtype (float64 under `jax.enable_x64`)."""
    seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
    engine = qmc.Sobol(d, scramble=True, rng=np.random.default_rng(seed))
    m = int(np.ceil(np.log2(max(n, 2))))
    return jnp.asarray(engine.random_base2(m)[:n], jnp.result_type(float))


class Fixed(AbstractSampler):
    """A fixed set of `size` points (design "uniform", "lhs" or "sobol")."""

    size: int = eqx.field(static=True, default=4096)
    design: Literal["uniform", "lhs", "sobol"] = eqx.field(static=True, default="sobol")

    @property
    def fixed_set_size(self) -> int:
        return self.size

    @property
    def slots(self) -> int | None:
        """`size` when every batch is the whole set (batch_size >= size): slots that are never
        replaced; None when batches are random subsets."""
        return self.size if self.batch_size >= self.size else None

    def init(self, key: Array) -> Array:
        n, d = self.size, self.domain.n_free
        if self.design == "uniform":
            unit = jax.random.uniform(key, (n, d))
        elif self.design == "lhs":
            unit = latin_hypercube(key, n, d)
        elif self.design == "sobol":
            unit = sobol(key, n, d)
        else:
            raise ValueError(f"unknown design {self.design!r}; valid: uniform, lhs, sobol")
        return self.domain.from_unit(unit)

    def sample(self, state: Array, key: Array, step: Array) -> Batch:
        if self.batch_size >= self.size:
            return unit_weights(state)
        idx = jax.random.choice(key, self.size, (self.batch_size,), replace=False)
        return unit_weights(state[idx])
