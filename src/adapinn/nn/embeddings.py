"""Input embeddings (box scaling, exact periodicity, Gaussian Fourier features) and the
`Network` wrapper.

A network is `Network(embeddings, trunk)`: the input point is cast to the network's dtype, passed
through the embeddings in order (periodic first, then Fourier features on its output), then
through the trunk (MLP, modified MLP, PirateNet or SIREN).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array


class BoxScaling(eqx.Module):
    """Inputs mapped affinely from the domain's bounding box to [-1, 1]:

        x_i' = 2 (x_i - low_i) / (high_i - low_i) - 1

    on every coordinate except the periodic ones (the periodic embedding sees them in their own
    units, so their period stays exact) and flat ones (high = low: passed through). Constants
    only, no trainable leaves. A tanh network then sees inputs of order one whatever the
    problem's units (e.g. t in [0, 5]), as Glorot initialisation assumes.

    Attributes:
        low, high: the box, as tuples (static).
        skip: coordinate indices left unchanged.
    """

    low: tuple[float, ...] = eqx.field(static=True)
    high: tuple[float, ...] = eqx.field(static=True)
    skip: tuple[int, ...] = eqx.field(static=True, default=())

    def __call__(self, x: Array) -> Array:
        low, high = jnp.asarray(self.low, x.dtype), jnp.asarray(self.high, x.dtype)
        width = high - low
        keep = jnp.asarray([i in self.skip or w <= 0 for i, w in
                            enumerate(h - lo for lo, h in zip(self.low, self.high))])
        scaled = 2 * (x - low) / jnp.where(width > 0, width, 1.0) - 1
        return jnp.where(keep, x, scaled)


class PeriodicEmbedding(eqx.Module):
    """Exact periodicity in chosen coordinates.

    Each periodic coordinate `x_i` (period `P_i`) is replaced, in place, by
    `[cos(2 pi k x_i / P_i) for k = 1..K] + [sin(2 pi k x_i / P_i) for k = 1..K]`;
    the other coordinates pass through. Any function of the output is then exactly
    `P_i`-periodic in `x_i` (Dong and Ni 2021, "A method for representing periodic functions and
    enforcing exactly periodic boundary conditions with deep neural networks", JCP 435).

    With `trainable=True` the periods are trained too: the network is then exactly periodic in
    the *learned* period, which may drift away from the domain's.

    Attributes:
        period: (n_periodic,) periods, in the order of `axes`.
        axes: the periodic coordinate indices (sorted).
        in_size: input dimension.
        harmonics: K, the number of harmonics per periodic coordinate.
        trainable: whether the periods receive gradients.
    """

    period: Array
    axes: tuple[int, ...] = eqx.field(static=True)
    in_size: int = eqx.field(static=True)
    harmonics: int = eqx.field(static=True)
    trainable: bool = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        periodic: Sequence[tuple[int, float]],
        harmonics: int = 1,
        trainable: bool = False,
        dtype: jnp.dtype = jnp.float32,
    ):
        pairs = sorted(dict(periodic).items())
        if not pairs:
            raise ValueError("PeriodicEmbedding needs at least one (axis, period) pair")
        for axis, period in pairs:
            if not 0 <= axis < in_size:
                raise ValueError(f"periodic axis {axis} is outside the input (size {in_size})")
            if period <= 0:
                raise ValueError(f"period of axis {axis} must be positive, got {period}")
        if harmonics < 1:
            raise ValueError(f"harmonics must be >= 1, got {harmonics}")
        self.axes = tuple(a for a, _ in pairs)
        self.period = jnp.asarray([p for _, p in pairs], dtype)
        self.in_size, self.harmonics, self.trainable = in_size, harmonics, trainable

    @property
    def out_size(self) -> int:
        """`in_size + (2K - 1) * n_periodic`."""
        return self.in_size + (2 * self.harmonics - 1) * len(self.axes)

    def __call__(self, x: Array) -> Array:
        """Embed one point x of shape (in_size,); returns (out_size,)."""
        period = self.period if self.trainable else jax.lax.stop_gradient(self.period)
        k = jnp.arange(1, self.harmonics + 1, dtype=x.dtype)
        parts = []
        for i in range(self.in_size):
            if i in self.axes:
                theta = (2 * jnp.pi / period[self.axes.index(i)]) * k * x[i]
                parts += [jnp.cos(theta), jnp.sin(theta)]
            else:
                parts.append(x[i : i + 1])
        return jnp.concatenate(parts)


class FourierFeatures(eqx.Module):
    """Gaussian random Fourier features `[cos(B x), sin(B x)]`, `B_ij ~ N(0, sigma_j^2)`
    (`sigma` a scalar, or one scale per input axis j).

    `B` has shape (out_size / 2, in_size). No `2 pi` factor: sigma is an angular frequency scale
    (the jaxpi convention; Tancik et al. write `2 pi B x`). B is fixed by default (wrapped in
    `stop_gradient`, so its gradient is exactly zero) and trained when `trainable=True`.

    Reference: Tancik et al. 2020, "Fourier features let networks learn high frequency functions
    in low dimensional domains", NeurIPS.

    Attributes:
        frequencies: B, (out_size / 2, in_size).
        trainable: whether B receives gradients.
    """

    frequencies: Array
    trainable: bool = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        sigma: float | tuple[float, ...],
        *,
        key: Array,
        trainable: bool = False,
        dtype: jnp.dtype = jnp.float32,
    ):
        if out_size <= 0 or out_size % 2:
            raise ValueError(f"Fourier feature dimension must be positive and even, got {out_size}")
        scale = jnp.broadcast_to(jnp.asarray(sigma, dtype), (1, in_size))  # per input axis
        self.frequencies = scale * jax.random.normal(key, (out_size // 2, in_size), dtype)
        self.trainable = trainable

    @property
    def out_size(self) -> int:
        return 2 * self.frequencies.shape[0]

    def __call__(self, x: Array) -> Array:
        """Embed one point x of shape (in_size,); returns (out_size,)."""
        b = self.frequencies if self.trainable else jax.lax.stop_gradient(self.frequencies)
        z = b @ x
        return jnp.concatenate([jnp.cos(z), jnp.sin(z)])


class Network(eqx.Module):
    """`u(x) = trunk(e_n(... e_1(cast(x))))`: dtype cast, embeddings in order, then the trunk.

    Attributes:
        embeddings: the embedding modules, applied first to last.
        trunk: maps the embedded features to the output (out_size,).
        in_size: expected input dimension; a point of another shape raises (call under vmap for
            batches).
        dtype: the parameter dtype ("float32" or "float64"); inputs are cast to it.
    """

    embeddings: tuple[Callable[[Array], Array], ...]
    trunk: Callable[[Array], Array]
    in_size: int = eqx.field(static=True)
    dtype: str = eqx.field(static=True, default="float32")

    def embed(self, x: Array) -> Array:
        """The embedded features of one point x (in_size,), i.e. the trunk's input."""
        x = jnp.asarray(x)
        if x.shape != (self.in_size,):
            raise ValueError(
                f"network maps one point of shape ({self.in_size},), got {x.shape}; "
                "use jax.vmap for batches"
            )
        x = x.astype(self.dtype)
        for embedding in self.embeddings:
            x = embedding(x)
        return x

    def __call__(self, x: Array) -> Array:
        """The network output at one point x (in_size,); returns (out_size,)."""
        return self.trunk(self.embed(x))
