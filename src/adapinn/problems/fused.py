"""Fused second-order forward mode: u, a few first derivatives and ONE linear second-order
operator of u, pushed through u together in a single pass.

Most PINN residuals need u, its first derivatives along a few directions and one
constant-coefficient second-order operator,

    L u = sum_k c_k d2u/dv_k^2 + du/dw

(u_t - nu u_xx for Burgers and Allen-Cahn: v = e_x, c = -nu, w = e_t; -nu Delta u for
Navier-Stokes). `taylor_streams` carries K + 2 streams through every operation of u: the
value, the K first derivatives du/dv_k and L u. For one operation y = g(z) the chain rule
(the second-order term of Faa di Bruno's formula) is

    dy/dv_k = g'(z) dz/dv_k,        L y = g'(z) L z + sum_k c_k g''(z)[dz/dv_k, dz/dv_k],

so a linear operation (a matmul with a weight, a sum, a reshape, a slice) maps every stream
by itself, and an elementwise one (tanh, sin) needs only g' and g''. This is Taylor mode
specialised to one operator (the forward Laplacian of Li et al. 2023, "Forward Laplacian", is
the case c_k = 1, v_k = e_k, w = 0). Nested jvps (`derivatives.second_derivative`) carry four
streams per axis (the value, the first derivative twice, the second) and one pass more per
first-order axis; `jax.experimental.jet` carries the same streams as here but multiplies each
weight by its zero Taylor series in every matmul. For the training gradient of Burgers' 5 x
100 tanh network (4096 points) XLA counts 3.6 GFLOP here, 5.9 with nested jvps and 4.9 with
jet (`benchmarks/derivative_throughput.py`).

How: `u` is traced to a jaxpr once (its weights, tracers of an outer `grad`, become the
jaxpr's constants) and the jaxpr is evaluated equation by equation on `Streams`. The K first
streams are one stacked (K, ...) array, so a linear primitive maps all of them as one batched
operation and the traced program has the same size for any K (the d-dimensional Laplacian
at d = 1000 compiles in seconds). Linear primitives map the streams; elementwise ones use g'
and g'' from a nested jvp of that one primitive; calls (jit, custom_jvp, custom_vjp,
checkpoint) are entered; any other primitive (scan, while, a multi-input nonlinearity) takes
the general rule, jvps of that primitive (exact, not cheaper). Every result is checked
against nested jvps in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array
from jax.extend.core import Literal

PointFunction = Callable[[Array], Any]


class Streams(NamedTuple):
    """A value that depends on the input: the primal, its K first derivatives stacked on a
    leading axis, (K, *primal.shape) (or an `AxisTangent`; None: all 0), and L of it (None: 0).
    Stacked streams keep the traced program the same size for any K: a linear map of the K
    first streams is one batched operation (`jax.vmap` of the primitive), not K copies."""

    primal: Array
    firsts: Array | AxisTangent | None
    second: Array | None


class AxisTangent(NamedTuple):
    """The K tangents `scale_k * e_{index_k}` of a point of dimension `size`, never built
    densely: a constant scaling keeps them sparse and a matmul with a weight gathers that
    weight's rows (`W^T e_i = W[i]`), so an axis direction costs O(width) in the first dense
    layer instead of O(d * width). Any other primitive sees them densified. `index` (K,) may
    be a tracer."""

    index: Array
    scale: Array
    size: int

    def dense(self, dtype) -> Array:
        return jax.nn.one_hot(self.index, self.size, dtype=dtype) * self.scale[:, None]


def taylor_streams(u: PointFunction, x: Array, directions: Array, coefficients: Sequence[float],
                   drift: Array | None = None) -> tuple[Any, Any, Any]:
    """(u(x), du/dv_k stacked on a new first axis, L u) for the rows v_k of `directions`
    (K x d), L u = sum_k c_k d2u/dv_k^2 + du/dw with c = `coefficients`, w = `drift` (module
    docstring). A pytree output gives pytrees of the same structure."""
    directions = jnp.asarray(directions, dtype=x.dtype)
    coefficients = tuple(coefficients)  # floats, or tracers (a trainable coefficient)
    if directions.ndim != 2 or directions.shape != (len(coefficients), x.shape[0]):
        raise ValueError(f"directions must be (K, {x.shape[0]}) with K = len(coefficients) "
                         f"= {len(coefficients)}; got {directions.shape}")
    return _streams(u, x, directions if coefficients else None, coefficients, drift)


def axis_taylor_streams(u: PointFunction, x: Array, axes: Array, coefficients: Sequence[float]
                        ) -> tuple[Any, Any, Any]:
    """`taylor_streams` along the coordinate axes `axes` (integers, may be traced: STDE's
    random axes), L u = sum_k c_k d2u/dx_{axes_k}^2; the one-hot directions are never built
    (`AxisTangent`: the first dense layer gathers rows instead of multiplying by e_i)."""
    axes = jnp.asarray(axes)
    coefficients = tuple(coefficients)
    if axes.shape != (len(coefficients),):
        raise ValueError(f"axes must be ({len(coefficients)},) like the coefficients, got "
                         f"{axes.shape}")
    seeds = AxisTangent(axes, jnp.ones(axes.shape, x.dtype), x.shape[0]) if coefficients else None
    return _streams(u, x, seeds, coefficients, None)


def _streams(u, x, seeds, coefficients, drift):
    closed, out_shape = jax.make_jaxpr(u, return_shape=True)(x)
    seed = Streams(x, seeds, None if drift is None else jnp.asarray(drift, x.dtype))
    outs = _evaluate(closed.jaxpr, closed.consts, [seed], coefficients)
    values, firsts, seconds = [], [], []
    for out in outs:
        streams = _densified(out if isinstance(out, Streams) else Streams(out, None, None))
        values.append(streams.primal)
        firsts.append(_stacked(streams, len(coefficients)))
        seconds.append(_dense(streams.second, streams.primal))
    tree = jax.tree_util.tree_structure(out_shape)
    return tuple(jax.tree_util.tree_unflatten(tree, leaves) for leaves in (values, firsts, seconds))


def fused_derivatives(u: PointFunction, x: Array, second: Mapping[int, float],
                      first: Mapping[int, float] | None = None) -> tuple[Any, Any, Any]:
    """(u(x), du/dx_a for each axis a of `second` stacked on a new first axis, L u) with

        L u = sum_{a in second} second[a] d2u/dx_a^2 + sum_{j in first} first[j] du/dx_j,

    in one fused forward pass (module docstring). Burgers, u_t + u u_x - nu u_xx:

        value, (u_x,), op = fused_derivatives(u, x, second={1: -nu}, first={0: 1.0})
        residual = op + value * u_x
    """
    d = x.shape[0]
    for axis in (*second, *(first or {})):
        if not 0 <= axis < d:
            raise ValueError(f"axis {axis} out of range for a point of dimension {d}")
    eye = jnp.eye(d, dtype=x.dtype)
    directions = eye[jnp.asarray(list(second), dtype=jnp.int32)] if second else eye[:0]
    drift = None
    if first:
        drift = sum(float(c) * eye[j] for j, c in first.items())
    return taylor_streams(u, x, directions, tuple(second.values()), drift)


# --- the interpreter --------------------------------------------------------------------

# primitives linear in the inputs at these positions (the others must not depend on x)
_LINEAR_ALL = {"add", "sub", "add_any", "concatenate", "pad"}
_LINEAR_FIRST = {"neg", "reshape", "broadcast_in_dim", "transpose", "squeeze", "expand_dims",
                 "slice", "reduce_sum", "copy", "copy_p", "rev", "reduce_precision", "cumsum",
                 "real", "imag", "conj", "dynamic_slice", "gather", "convert_element_type"}
_ELEMENTWISE = {"tanh", "logistic", "sin", "cos", "tan", "exp", "exp2", "log", "log1p", "expm1",
                "sqrt", "rsqrt", "cbrt", "integer_pow", "square", "erf", "erfc", "erf_inv",
                "sinh", "cosh", "asinh", "acosh", "atanh", "asin", "acos", "atan", "abs",
                "lgamma", "digamma"}
_CALLS = {"pjit": "jaxpr", "jit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
          "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr",
          "custom_vjp_call_jaxpr": "fun_jaxpr", "remat": "jaxpr", "checkpoint": "jaxpr"}


def _evaluate(jaxpr, consts, args, coefficients):
    env: dict = {}

    def read(v):
        return v.val if isinstance(v, Literal) else env[v]

    for var, value in zip(jaxpr.constvars, consts, strict=True):
        env[var] = value
    for var, value in zip(jaxpr.invars, args, strict=True):
        env[var] = value
    for eqn in jaxpr.eqns:
        inputs = [read(v) for v in eqn.invars]
        if any(isinstance(a, Streams) for a in inputs):
            outputs = _propagate(eqn, inputs, coefficients)
        else:
            outputs = _bind(eqn, *inputs)
        if not eqn.primitive.multiple_results:
            outputs = [outputs]
        for var, value in zip(eqn.outvars, outputs, strict=True):
            env[var] = value
    return [read(v) for v in jaxpr.outvars]


def _propagate(eqn, inputs, coefficients):
    """The output Streams of one equation whose inputs include Streams."""
    name = eqn.primitive.name
    if name in _CALLS:
        inner = eqn.params[_CALLS[name]]
        jaxpr, consts = (inner.jaxpr, inner.consts) if hasattr(inner, "consts") else (inner, [])
        return _evaluate(jaxpr, consts, inputs, coefficients)
    if any(isinstance(a, Streams) and isinstance(a.firsts, AxisTangent) for a in inputs):
        sparse = _sparse_linear(eqn, inputs, coefficients)
        if sparse is not None:
            return sparse
        inputs = [_densified(a) if isinstance(a, Streams) else a for a in inputs]
    if not any(jnp.issubdtype(v.aval.dtype, jnp.inexact) for v in eqn.outvars):
        return _bind(eqn, *map(_primal, inputs))  # comparisons, floor, casts to int: no slope
    streamed = [i for i, a in enumerate(inputs) if isinstance(a, Streams)]
    if name in _LINEAR_ALL or (name in _LINEAR_FIRST and streamed == [0]) or (
            name == "select_n" and 0 not in streamed):
        return _linear(eqn, inputs, coefficients)
    if name in ("mul", "dot_general"):
        return _bilinear(eqn, inputs, coefficients)
    if name == "div" and streamed == [0]:
        return _linear(eqn, inputs, coefficients)
    if name in _ELEMENTWISE and len(inputs) == 1:
        return _elementwise(eqn, inputs[0], coefficients)
    return _general(eqn, inputs, coefficients)


def _densified(a: Streams) -> Streams:
    if isinstance(a.firsts, AxisTangent):
        return a._replace(firsts=a.firsts.dense(a.primal.dtype))
    return a


def _sparse_linear(eqn, inputs, coefficients):
    """The output Streams when the AxisTangent streams stay sparse (a scaling of the one
    streamed input, or a select between streams of the same axes) or become gathered rows
    (a matmul with a weight); None when they cannot (the caller densifies)."""
    positions = [i for i, a in enumerate(inputs) if isinstance(a, Streams)]
    if any(inputs[i].primal.ndim != 1 for i in positions):
        return None
    if eqn.primitive.name == "select_n" and 0 not in positions:
        firsts = _axis_select(inputs)
    elif len(positions) == 1:
        firsts = _axis_map(eqn, inputs, positions[0], inputs[positions[0]].firsts)
    else:
        return None
    if firsts is None:
        return None
    rest = _propagate(eqn, [a._replace(firsts=None) if isinstance(a, Streams) else a
                            for a in inputs], coefficients)
    return rest._replace(firsts=firsts)


def _axis_select(inputs):
    """select_n(pred, *cases) of the first streams when they are the same axes (or zero):
    those axes, their scales selected by pred at them; None otherwise."""
    pred, cases = inputs[0], inputs[1:]
    tangents = [c.firsts if isinstance(c, Streams) else None for c in cases]
    axes = [t for t in tangents if isinstance(t, AxisTangent)]
    if not axes or any(t is not None and not isinstance(t, AxisTangent) for t in tangents) or \
            any(t.index is not axes[0].index for t in axes):
        return None
    first = axes[0]
    scales = [jnp.zeros_like(first.scale) if t is None else t.scale for t in tangents]
    choice = pred if jnp.ndim(pred) == 0 else jnp.asarray(pred)[first.index]
    return first._replace(scale=jax.lax.select_n(choice, *scales))


def _axis_map(eqn, inputs, pos, t: AxisTangent):
    """The image of the tangents `t` (at input `pos`, the others constant) under a linear
    primitive: an AxisTangent, a dense (K, ...) array, or None (not handled: densify)."""
    name = eqn.primitive.name
    other = inputs[1 - pos] if len(inputs) == 2 else None

    def entry(c):
        c = jnp.asarray(c)
        return c if c.ndim == 0 else c[t.index]

    if name in ("add", "add_any") or (name == "sub" and pos == 0):
        return t
    if name == "sub" or name == "neg":
        return t._replace(scale=-t.scale)
    if name in ("copy", "copy_p", "reduce_precision"):
        return t
    if name == "convert_element_type":
        return t._replace(scale=t.scale.astype(eqn.params["new_dtype"]))
    if name == "mul" and jnp.ndim(other) in (0, 1):
        return t._replace(scale=t.scale * entry(other))
    if name == "div" and pos == 0 and jnp.ndim(other) in (0, 1):
        return t._replace(scale=t.scale / entry(other))
    if name == "dot_general":
        (contract_lhs, contract_rhs), (batch_lhs, batch_rhs) = eqn.params["dimension_numbers"]
        if batch_lhs or batch_rhs:
            return None
        mine, theirs = (contract_lhs, contract_rhs) if pos == 0 else (contract_rhs, contract_lhs)
        if tuple(mine) != (0,) or len(theirs) != 1:
            return None
        rows = jnp.moveaxis(jnp.take(other, t.index, axis=theirs[0]), theirs[0], 0)
        scale = t.scale.reshape((-1,) + (1,) * (rows.ndim - 1))
        return (scale * rows).astype(eqn.outvars[0].aval.dtype)
    return None


def _bind(eqn, *args):
    return eqn.primitive.bind(*args, **eqn.primitive.get_bind_params(eqn.params))


def _bind_k(eqn, args, batched):
    """The primitive with the inputs at positions `batched` carrying a leading K axis (one
    batched operation, `jax.vmap`), the others shared."""
    if not batched:
        return _bind(eqn, *args)

    def one(*xs):
        full = list(args)
        for i, x in zip(batched, xs, strict=True):
            full[i] = x
        return _bind(eqn, *full)

    return _over_streams(one, *[args[i] for i in batched])


def _over_streams(fn, *stacked):
    """`jax.vmap(fn)` over the leading K axis of `stacked`; with one stream, `fn` on it
    unbatched and the K axis put back (a size-1 vmap cost Allen-Cahn's step 20% in layout)."""
    if stacked[0].shape[0] == 1:
        return jax.tree_util.tree_map(lambda y: y[None], fn(*[x[0] for x in stacked]))
    return jax.vmap(fn)(*stacked)


def _contract(coefficients, stacked):
    """sum_k c_k stacked[k] (the coefficients may be tracers)."""
    c = jnp.stack([jnp.asarray(ck, stacked.dtype) for ck in coefficients])
    return jnp.sum(c.reshape((-1,) + (1,) * (stacked.ndim - 1)) * stacked, axis=0)


def _dense(stream, like):
    return jnp.zeros_like(like) if stream is None else stream


def _stacked(a: Streams, k: int) -> Array:
    """The first streams of `a` as a dense (K, *shape) array (zeros where None)."""
    if a.firsts is None:
        return jnp.zeros((k, *jnp.shape(a.primal)), jnp.result_type(a.primal))
    return a.firsts


def _primal(a):
    return a.primal if isinstance(a, Streams) else a


def _linear(eqn, inputs, coefficients):
    """A primitive linear in its streamed inputs: the K first streams are mapped by the
    primitive batched over K, L by the primitive itself (a constant input of add /
    concatenate / select contributes zeros)."""
    name = eqn.primitive.name
    primal = _bind(eqn, *map(_primal, inputs))
    positions = [i for i, a in enumerate(inputs) if isinstance(a, Streams)]

    def constant(i, a):
        """A non-streamed input's place in a derivative stream."""
        if name in _LINEAR_ALL or (name == "select_n" and i > 0):
            return jnp.zeros_like(a)  # a constant term has no derivative
        return a

    def mapped(pick):
        """The primitive on the picked streams; None when all of them are zero."""
        parts = [pick(a) if isinstance(a, Streams) else a for a in inputs]
        if all(parts[i] is None for i in positions):
            return None, []
        batched = []
        for i, a in enumerate(inputs):
            if not isinstance(a, Streams):
                parts[i] = constant(i, a)
            elif parts[i] is None:
                parts[i] = jnp.zeros_like(a.primal)
            else:
                batched.append(i)
        return parts, batched

    parts, batched = mapped(lambda a: a.firsts)
    firsts = None if parts is None else _bind_k(eqn, parts, batched)
    parts, _ = mapped(lambda a: a.second)
    second = None if parts is None else _bind(eqn, *parts)
    return Streams(primal, firsts, second)


def _bilinear(eqn, inputs, coefficients):
    """mul / dot_general: linear in a streamed factor when the other is constant; for two
    streamed factors the product rule, with L(ab) = L(a) b + a L(b) + 2 sum_k c_k a_k b_k."""
    a, b = inputs
    if not isinstance(a, Streams) or not isinstance(b, Streams):
        return _linear(eqn, inputs, coefficients)
    primal = _bind(eqn, a.primal, b.primal)

    def product(da, db, batched):
        terms = ([] if da is None else [_bind_k(eqn, [da, b.primal], [0] if batched else [])]
                 ) + ([] if db is None else [_bind_k(eqn, [a.primal, db], [1] if batched else [])])
        return sum(terms[1:], terms[0]) if terms else None

    firsts = product(a.firsts, b.firsts, True)
    second = product(a.second, b.second, False)
    if a.firsts is not None and b.firsts is not None:
        cross = 2.0 * _contract(coefficients, _bind_k(eqn, [a.firsts, b.firsts], [0, 1]))
        second = cross if second is None else second + cross
    return Streams(primal, firsts, second)


def _elementwise(eqn, z: Streams, coefficients):
    """y = g(z) elementwise: dy/dv_k = g' z_k, L y = g' L z + g'' sum_k c_k z_k^2, with g' and
    g'' from a nested jvp of g alone."""
    g = lambda t: _bind(eqn, t)  # noqa: E731
    ones = jnp.ones_like(z.primal)
    (value, slope), (_, curvature) = jax.jvp(lambda t: jax.jvp(g, (t,), (ones,)),
                                             (z.primal,), (ones,))
    firsts = None if z.firsts is None else slope * z.firsts
    second = None if z.second is None else slope * z.second
    if z.firsts is not None:
        term = curvature * _contract(coefficients, z.firsts * z.firsts)
        second = term if second is None else second + term
    return Streams(value, firsts, second)


def _general(eqn, inputs, coefficients):
    """Any primitive with a jvp rule: the first streams by one jvp (batched over K), L by a
    jvp of L's input stream plus sum_k c_k times the second directional derivative along
    v_k (a nested jvp, batched over K)."""
    positions = [i for i, a in enumerate(inputs) if isinstance(a, Streams)]
    primals = tuple(inputs[i].primal for i in positions)
    k = len(coefficients)

    def f(*streamed):
        args = list(map(_primal, inputs))
        for i, value in zip(positions, streamed, strict=True):
            args[i] = value
        return _bind(eqn, *args)

    def first(*t):
        return jax.jvp(f, primals, t)[1]

    def curvature(*t):
        return jax.jvp(lambda *p: jax.jvp(f, p, t)[1], primals, t)[1]

    value = f(*primals)
    second = jax.jvp(f, primals, tuple(_dense(inputs[i].second, inputs[i].primal)
                                       for i in positions))[1]
    firsts = None
    if k:
        stacked = tuple(_stacked(inputs[i], k) for i in positions)
        firsts = _over_streams(first, *stacked)
        second = jax.tree_util.tree_map(lambda s, q: s + _contract(coefficients, q), second,
                                        _over_streams(curvature, *stacked))
    if eqn.primitive.multiple_results:
        return [Streams(v, None if firsts is None else firsts[j], second[j])
                for j, v in enumerate(value)]
    return Streams(value, firsts, second)
