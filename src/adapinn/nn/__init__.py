"""Networks: each maps ONE point x of shape (in_size,) to (out_size,).

`build_network(cfg, in_size, out_size, periodic, key)` turns a `NetworkSpec` into a `Network`:
input cast to the parameter dtype -> periodic embedding (on the problem's periodic axes) ->
Gaussian Fourier features -> trunk (`mlp`, `modified_mlp`, `pirate`, `siren`).

Seed 000's network (Allen-Cahn, inputs (t, x), x periodic with period 2) is
`NetworkSpec(name="mlp", depth=4, width=256, fourier_features=256, fourier_sigma=1.0,
periodic=True, factorized=True)` with `periodic=((1, 2.0),)`: 264,835 parameters.
`fourier_sigma=1.0` is our choice (seed 000 does not state it; jaxpi uses scale 1-2 for
Allen-Cahn).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.nn.embeddings import BoxScaling, FourierFeatures, Network, PeriodicEmbedding
from adapinn.nn.linear import Dense, Factorization, glorot_normal
from adapinn.nn.mlp import ACTIVATIONS, MLP, get_activation
from adapinn.nn.modified_mlp import ModifiedMLP
from adapinn.nn.pirate import (
    PirateBlock,
    PirateNet,
    initial_condition_data,
    pirate_ic_init,
    pirate_least_squares_init,
)
from adapinn.nn.siren import Siren, siren_bound
from adapinn.nn.spec import NetworkSpec
from adapinn.nn.transform import OutputTransform

__all__ = [
    "ACTIVATIONS",
    "BoxScaling",
    "MLP",
    "TRUNKS",
    "Dense",
    "Factorization",
    "FourierFeatures",
    "ModifiedMLP",
    "Network",
    "NetworkSpec",
    "OutputTransform",
    "PeriodicEmbedding",
    "PirateBlock",
    "PirateNet",
    "Siren",
    "build_network",
    "count_parameters",
    "get_activation",
    "glorot_normal",
    "initial_condition_data",
    "pirate_ic_init",
    "pirate_least_squares_init",
    "siren_bound",
]

TrunkBuilder = Callable[..., eqx.Module]


def _mlp(cfg: NetworkSpec, in_size: int, out_size: int, **kw) -> eqx.Module:
    return MLP(in_size, out_size, cfg.width, cfg.depth, activation=cfg.activation,
               init=cfg.init, **kw)


def _modified_mlp(cfg: NetworkSpec, in_size: int, out_size: int, **kw) -> eqx.Module:
    return ModifiedMLP(in_size, out_size, cfg.width, cfg.depth, activation=cfg.activation,
                       init=cfg.init, **kw)


def _pirate(cfg: NetworkSpec, in_size: int, out_size: int, **kw) -> eqx.Module:
    # no Fourier features: lift the (2-3 coordinate) input to `width` (see `adapinn.nn.pirate`)
    return PirateNet(in_size, out_size, cfg.width, cfg.depth, activation=cfg.activation,
                     lift=cfg.fourier_features == 0, **kw)


def _siren(cfg: NetworkSpec, in_size: int, out_size: int, **kw) -> eqx.Module:
    return Siren(in_size, out_size, cfg.width, cfg.depth, omega0=cfg.siren_omega0, **kw)


TRUNKS: dict[str, TrunkBuilder] = {
    "mlp": _mlp,
    "modified_mlp": _modified_mlp,
    "pirate": _pirate,
    "siren": _siren,
}
"""Trunk builders by `NetworkSpec.name`: `(cfg, in_size, out_size, *, key, factorization,
dtype) -> module`."""


def _check_dtype(name: str) -> jnp.dtype:
    if name == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(
            "network.dtype='float64' needs 64-bit JAX: call "
            "jax.config.update('jax_enable_x64', True) at start-up (or build inside "
            "`with jax.enable_x64(True):`) before building the network"
        )
    return jnp.dtype(name)


def _embeddings(
    cfg: NetworkSpec,
    in_size: int,
    periodic: tuple[tuple[int, float], ...],
    key: Array,
    dtype: jnp.dtype,
    box: tuple[Sequence[float], Sequence[float]] | None = None,
) -> tuple[tuple[eqx.Module, ...], int]:
    """The embeddings in order (box scaling, periodic, then Fourier) and their output
    dimension."""
    embeddings: list[eqx.Module] = []
    size = in_size
    if cfg.normalize_inputs:
        if box is None:
            raise ValueError("network.normalize_inputs needs the domain's bounding box "
                             "(build_network(..., box=(low, high)))")
        skip = tuple(a for a, _ in periodic) if cfg.periodic else ()
        embeddings.append(BoxScaling(tuple(map(float, box[0])), tuple(map(float, box[1])),
                                     skip))
    if cfg.periodic and periodic:
        emb = PeriodicEmbedding(
            size, periodic, cfg.periodic_harmonics, cfg.periodic_trainable, dtype
        )
        embeddings.append(emb)
        size = emb.out_size
    if cfg.fourier_features:
        sigma: float | tuple[float, ...] = cfg.fourier_sigma
        if cfg.fourier_axis_scale is not None:
            if len(cfg.fourier_axis_scale) != size:
                raise ValueError(f"network.fourier_axis_scale has {len(cfg.fourier_axis_scale)} "
                                 f"factors but the Fourier embedding has {size} inputs")
            sigma = tuple(cfg.fourier_sigma * s for s in cfg.fourier_axis_scale)
        emb = FourierFeatures(
            size,
            cfg.fourier_features,
            sigma,
            key=key,
            trainable=cfg.fourier_trainable,
            dtype=dtype,
        )
        embeddings.append(emb)
        size = emb.out_size
    return tuple(embeddings), size


def build_network(
    cfg: NetworkSpec,
    in_size: int,
    out_size: int,
    periodic: tuple[tuple[int, float], ...],
    key: Array,
    box: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Network:
    """Build the network described by `cfg` for points of dimension `in_size`.

    With `cfg.dtype == "float64"` the parameters are float64; the caller must have enabled
    64-bit JAX (`jax.config.update("jax_enable_x64", True)`), otherwise this raises ValueError.
    The PirateNet least-squares initialisation (`cfg.pirate_ls_init`) needs the problem, so the
    caller applies `pirate_ic_init` afterwards (`adapinn.experiments.build` does); asking for
    it with another trunk raises ValueError. A PirateNet without Fourier features lifts its
    input to `width` first (`PirateNet(lift=True)`).

    Args:
        cfg: the network configuration.
        in_size: input dimension d (e.g. 2 for (t, x)).
        out_size: output dimension m.
        periodic: (axis, period) pairs of the problem's periodic coordinates; used when
            `cfg.periodic` is true, ignored otherwise.
        key: PRNG key.
        box: (low, high) of the domain's bounding box, needed by `cfg.normalize_inputs`.

    Returns:
        A `Network` mapping one point (in_size,) to (out_size,).
    """
    if cfg.name not in TRUNKS:
        raise ValueError(f"unknown network {cfg.name!r}; valid: {', '.join(sorted(TRUNKS))}")
    if cfg.fourier_features % 2:
        raise ValueError(f"network.fourier_features must be even, got {cfg.fourier_features}")
    if cfg.pirate_ls_init and cfg.name != "pirate":
        raise ValueError(
            "network.pirate_ls_init is PirateNet's least-squares initialisation: it needs "
            f"network.name=pirate, got {cfg.name!r}"
        )
    if cfg.init != "glorot_normal" and cfg.name not in ("mlp", "modified_mlp"):
        raise ValueError(f"network.init={cfg.init!r} applies to mlp and modified_mlp; "
                         f"{cfg.name} keeps its own initialisation")
    dtype = _check_dtype(cfg.dtype)
    fkey, tkey = jax.random.split(key)
    embeddings, size = _embeddings(cfg, in_size, tuple(periodic), fkey, dtype, box)
    factorization = (
        Factorization(cfg.factorized_mu, cfg.factorized_sigma) if cfg.factorized else None
    )
    trunk = TRUNKS[cfg.name](
        cfg, size, out_size, key=tkey, factorization=factorization, dtype=dtype
    )
    return Network(embeddings, trunk, in_size, cfg.dtype)


def count_parameters(module: eqx.Module) -> int:
    """Number of scalars in the inexact (floating) array leaves of `module`.

    Fixed arrays kept as leaves (non-trainable Fourier frequencies and periods) are counted.
    """
    leaves = jax.tree.leaves(eqx.filter(module, eqx.is_inexact_array))
    return sum(leaf.size for leaf in leaves)
