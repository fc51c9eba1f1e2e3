"""A PDE problem: named conditions, each a domain plus a residual written for ONE point.

The same condition names ("pde", "ic", "bc", ...) index batches, residuals, loss weights,
sampler states and log entries throughout the framework (jaxpi's matching dicts).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from adapinn.problems.domains import AbstractDomain
from adapinn.problems.parameters import Parameter, parameter_values

Residual = Callable[[Callable[[Array], Array], Array], Array]
"""`residual(u, x) -> r`: `u` maps one point (d,) to the solution, `x` is one point (d,); an
inverse problem's residual may take the coefficients too, `residual(u, x, params)`."""


def takes_parameters(residual: Callable) -> bool:
    """The residual is `residual(u, x, params)` (three positional arguments)."""
    try:
        params = inspect.signature(residual).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.name != "key"]
    return len(positional) >= 3


def takes_key(residual: Callable) -> bool:
    """The residual declares a keyword `key`: it gets a random key per point and step (a
    stochastic operator, `adapinn.problems.operators`)."""
    try:
        return "key" in inspect.signature(residual).parameters
    except (TypeError, ValueError):
        return False


class Condition(eqx.Module):
    """One loss term: the residual must vanish on the domain.

    Attributes:
        domain: where the term's points are drawn.
        residual: `residual(u, x)`, for one point.
        batch_size: points per step for this term (None: the trainer's default for its kind,
            `train.batch_size` for "pde" and `train.condition_batch_size` for the others).
    """

    domain: AbstractDomain
    residual: Residual = eqx.field(static=True)
    batch_size: int | None = eqx.field(static=True, default=None)


class ReferenceData(eqx.Module):
    """Solution values on an evaluation set; `grid` is (axis arrays) when points form a grid."""

    points: Array  # (n, d)
    values: Array  # (n, m)
    grid: tuple[np.ndarray, ...] | None = None

    @classmethod
    def from_grid(cls, axes: tuple[np.ndarray, ...], values: np.ndarray) -> ReferenceData:
        """Build from 1-D axis arrays and values of shape (len(axes[0]), len(axes[1]), ...)."""
        mesh = np.meshgrid(*axes, indexing="ij")
        points = np.stack([m.ravel() for m in mesh], axis=-1)
        values = np.asarray(values).reshape(points.shape[0], -1)
        return cls(jnp.asarray(points), jnp.asarray(values), tuple(np.asarray(a) for a in axes))


class Problem(eqx.Module):
    """A forward PDE problem.

    Attributes:
        name: registry name, used in logs and summaries.
        domain: the space-time box of the PDE; inputs are ordered like `input_names`.
        conditions: loss terms by name; "pde" is the interior residual by convention.
        input_names: coordinate names, e.g. ("t", "x").
        n_outputs: length of the network output; with 1, `u(x)` is passed as a scalar.
        output_names: names of the outputs, e.g. ("u", "v", "p"); default u or u0, u1, ...
        periodic: {axis: period} (stored as sorted pairs) for coordinates in which the solution
            is exactly periodic
            (a periodic embedding then enforces it).
        exact: optional exact solution for one point, `exact(x) -> (n_outputs,) or scalar`.
        reference: optional callable returning the `ReferenceData` to evaluate against.
        output_transform: optional hard constraint `T(x, raw) -> output` applied to the
            network's output (`adapinn.nn.OutputTransform`), e.g. a factor vanishing on the
            boundary.
        diagnostics: optional `diagnostics(model) -> {name: float}`, quantities of interest
            computed from the trained model (e.g. drag and lift), added to summary.json.
        parameters: unknown coefficients {name: `Parameter`} (inverse problems, stored as
            sorted pairs); a residual with a third argument receives their values
            (`adapinn.problems.parameters`).
    """

    name: str = eqx.field(static=True)
    domain: AbstractDomain
    conditions: dict[str, Condition]
    input_names: tuple[str, ...] = eqx.field(static=True, default=())
    n_outputs: int = eqx.field(static=True, default=1)
    output_names: tuple[str, ...] = eqx.field(static=True, default=(), converter=tuple)
    periodic: tuple[tuple[int, float], ...] = eqx.field(
        static=True, default=(), converter=lambda p: tuple(sorted(dict(p).items()))
    )
    exact: Callable[[Array], Array] | None = eqx.field(static=True, default=None)
    reference: Callable[[], ReferenceData] | None = eqx.field(static=True, default=None)
    diagnostics: Callable[[Any], dict[str, float]] | None = eqx.field(static=True, default=None)
    output_transform: Callable[[Array, Array], Array] | None = eqx.field(static=True,
                                                                          default=None)
    parameters: tuple[tuple[str, Parameter], ...] = eqx.field(
        static=True, default=(), converter=lambda p: tuple(sorted(dict(p or {}).items()))
    )

    def __check_init__(self):
        if not self.conditions:
            raise ValueError(f"problem {self.name!r} has no conditions")
        if self.output_names and len(self.output_names) != self.n_outputs:
            raise ValueError(f"problem {self.name!r}: {len(self.output_names)} output_names "
                             f"for {self.n_outputs} outputs")
        for cname, cond in self.conditions.items():
            if takes_parameters(cond.residual) and not self.parameters:
                raise ValueError(
                    f"problem {self.name!r}: the residual of {cname!r} takes parameters "
                    "(u, x, params) but the problem declares none (parameters={...})")
            coords = getattr(cond.domain, "n_coords", cond.domain.dim)  # observations: x of [x|y]
            if coords != self.domain.dim:
                raise ValueError(
                    f"problem {self.name!r}: condition {cname!r} lives in dimension "
                    f"{coords} but the problem domain has dimension {self.domain.dim}"
                )

    @property
    def dim(self) -> int:
        return self.domain.dim

    @property
    def outputs(self) -> tuple[str, ...]:
        """`output_names`, or u (one output) / u0, u1, ... (several)."""
        if self.output_names:
            return self.output_names
        return ("u",) if self.n_outputs == 1 else tuple(f"u{i}" for i in range(self.n_outputs))

    def solution_fn(self, network: Callable[[Array], Array]) -> Callable[[Array], Array]:
        """The function `u` handed to residuals: scalar when the problem has one output."""
        if self.n_outputs == 1:
            return lambda x: network(x)[0]
        return network

    @property
    def declared_parameters(self) -> dict[str, Parameter]:
        return dict(self.parameters)

    def residual_fn(self, model, name: str) -> Callable[..., Array]:
        """(x, key=None) -> r(x) of condition `name` for `model` (a network, or
        `WithParameters` whose coefficient values go to residuals that take them); `key` goes
        to residuals that declare it (`takes_key`) and is ignored by the others."""
        u = self.solution_fn(model)
        residual = self.conditions[name].residual
        args = (parameter_values(model),) if takes_parameters(residual) else ()
        if takes_key(residual):
            return lambda x, key=None: residual(u, x, *args, key=key)
        return lambda x, key=None: residual(u, x, *args)

    @property
    def stochastic_conditions(self) -> tuple[str, ...]:
        """The conditions whose residual takes a random key (`takes_key`)."""
        return tuple(n for n, c in self.conditions.items() if takes_key(c.residual))

    def residuals(self, network, name: str, points: Array, key: Array | None = None) -> Array:
        """Squared residual norm per point, shape (n,), for condition `name`; a residual that
        takes a key gets one per point, split from `key` (without one, its own default)."""
        fn = self.residual_fn(network, name)
        if key is not None and takes_key(self.conditions[name].residual):
            r = jax.vmap(fn)(points, jax.random.split(key, points.shape[0]))
        else:
            r = jax.vmap(fn)(points)
        return jnp.sum(jnp.reshape(r, (points.shape[0], -1)) ** 2, axis=-1)

    @property
    def has_reference(self) -> bool:
        """An evaluation set exists (a reference or an exact solution): rel. L2 is recorded."""
        return self.reference is not None or self.exact is not None

    def reference_data(self, resolution: int = 128, n_random: int = 16384) -> ReferenceData:
        """The evaluation set: `reference()` if given, else `exact` on a regular grid of
        `resolution` points per axis for d <= 3, or at `n_random` points drawn once (fixed
        key 0) uniformly from the domain for d > 3 (a grid would need resolution^d points)."""
        if self.reference is not None:
            return self.reference()
        if self.exact is None:
            raise ValueError(
                f"problem {self.name!r} has neither a reference nor an exact solution; "
                "pass `exact=` or `reference=` to evaluate relative L2"
            )
        if self.dim > 3:
            points = self.domain.sample(jax.random.key(0), n_random).astype(
                jnp.result_type(float))
            values = jax.vmap(self.exact)(points)
            return ReferenceData(points, values.reshape(n_random, -1))
        box = self.domain.bounding_box
        axes = tuple(np.linspace(lo, hi, resolution) for lo, hi in zip(box.low, box.high))
        mesh = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=-1)
        points = jnp.asarray(mesh, jnp.result_type(float))  # float64 under enable_x64
        grid = axes
        if self.domain is not box:  # not a box: the grid points inside (scattered points)
            points, grid = points[np.asarray(self.domain.contains(points, 0.0))], None
        values = jax.vmap(self.exact)(points)
        return ReferenceData(points, values.reshape(points.shape[0], -1), grid)
