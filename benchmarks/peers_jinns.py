"""jinns' side of `benchmarks/peers.py` (run by an interpreter that has jinns, not adapinn).

As the multi-library benchmark writes it: `jinns.nn.PINN_MLP` from an equinox layer list
(equinox's default initialisation), jinns' own `BurgersEquation` / a stationary Navier-Stokes
`PDEStatio` with nested reverse-mode derivatives, `Dirichlet` walls (a cavity boundary
condition for the lid), the initial condition `u0`, the p(0, 0) = 0 observation, the loss
weights of the benchmark (Burgers1D: dyn 10, initial 10, boundary 1). The point arrays of
`peers.py` replace the data generator's own (`eqx.tree_at`), in jinns' layouts: domain
(n, 1 + d), border (n_facet, 1 + d, facets), initial (n, d). Training is `jinns.solve`, its
own loop, `n_iter = chunk` steps per call, compiled once (`ahead_of_time=False` inside
`jax.jit`, lowered and compiled before the clock starts) and called steps / chunk times.
"""

from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path

import numpy as np
from peers import BURGERS_NU, NS_LID, NS_NU, Clock, relative_l2, result_record


def _network(key, n_out: int, eq_type: str, init: str):
    import equinox as eqx
    import jax
    import jinns

    eqx_list = ((eqx.nn.Linear, 2, 100), (jax.nn.tanh,))
    for _ in range(4):
        eqx_list += ((eqx.nn.Linear, 100, 100), (jax.nn.tanh,))
    eqx_list += ((eqx.nn.Linear, 100, n_out),)
    key, sub = jax.random.split(key)
    u, nn_params = jinns.nn.PINN_MLP.create(key=sub, eqx_list=eqx_list, eq_type=eq_type)
    if init == "glorot":  # adapinn's / DeepXDE's: N(0, 2 / (fan_in + fan_out)), zero biases
        leaves = [x for x in jax.tree_util.tree_leaves(nn_params) if hasattr(x, "ndim")]
        new, keys = [], jax.random.split(key, len(leaves))
        for leaf, k in zip(leaves, keys):
            if leaf.ndim == 2:
                std = (2.0 / (leaf.shape[0] + leaf.shape[1])) ** 0.5
                new.append(std * jax.random.normal(k, leaf.shape, leaf.dtype))
            else:
                new.append(jax.numpy.zeros_like(leaf))
        nn_params = eqx.tree_at(
            lambda p: [x for x in jax.tree_util.tree_leaves(p) if hasattr(x, "ndim")],
            nn_params, new)
    return u, nn_params


def _burgers(job, arrays, key, weights, init):
    import jax
    import jax.numpy as jnp
    import jinns

    u, nn_params = _network(key, 1, "PDENonStatio", init)
    pde, ic = arrays["points_pde"], arrays["points_ic"]
    left, right = arrays["points_bc_xmin"], arrays["points_bc_xmax"]
    data = jinns.data.CubicMeshPDENonStatio(
        key=jax.random.PRNGKey(job["seed"]), n=len(pde), nb=len(left) + len(right),
        ni=len(ic), dim=1, min_pts=(-1.0,), max_pts=(1.0,), tmin=0.0, tmax=1.0,
        method="uniform")
    border = np.stack([left, right], axis=-1)  # (n per facet, (t, x), facets xmin, xmax)
    data = _with_arrays(data, domain=jnp.asarray(pde), border=jnp.asarray(border),
                        initial=jnp.asarray(ic[:, 1:]))
    params = jinns.parameters.Params(nn_params=nn_params, eq_params={"nu": jnp.array(BURGERS_NU)})
    w = weights or (10.0, 10.0, 1.0)
    loss = jinns.loss.LossPDENonStatio(
        u=u,
        loss_weights=jinns.loss.LossWeightsPDENonStatio(
            dyn_loss=w[0], initial_condition=w[1], boundary_loss=w[2]),
        dynamic_loss=jinns.loss.BurgersEquation(),
        boundary_condition=jinns.loss.Dirichlet(),
        initial_condition_fun=lambda x: -jnp.sin(jnp.pi * x),
        params=params,
    )
    return u, params, data, loss, None, w


def _cavity(job, arrays, key, weights, init):
    import jax
    import jax.numpy as jnp
    import jinns

    u, nn_params = _network(key, 3, "PDEStatio", init)

    class NavierStokes2DStatio(jinns.loss.PDEStatio):
        """Momentum x, momentum y, continuity, by reverse mode (as the benchmark)."""

        def equation(self, x, u_p, params):
            ux = lambda y: u_p(y, params)[0]
            uy = lambda y: u_p(y, params)[1]
            p = lambda y: u_p(y, params)[2]
            gx, gy, gp = jax.grad(ux)(x), jax.grad(uy)(x), jax.grad(p)(x)
            nu = params.eq_params.nu
            lap_x = jinns.loss.laplacian_rev(x, lambda y, q: u_p(y, q)[0], params,
                                             eq_type="PDEStatio")
            lap_y = jinns.loss.laplacian_rev(x, lambda y, q: u_p(y, q)[1], params,
                                             eq_type="PDEStatio")
            return jnp.stack([
                ux(x) * gx[0] + uy(x) * gx[1] + gp[0] - nu * lap_x,
                ux(x) * gy[0] + uy(x) * gy[1] + gp[1] - nu * lap_y,
                gx[0] + gy[1],
            ]).reshape(3)

    class Cavity(jinns.loss.BoundaryConditionAbstract):
        """(u, v) = 0 on the walls x = 0, x = 1, y = 0, (4x(1 - x), 0) on the lid y = 1;
        facets in jinns' order xmin, xmax, ymin, ymax."""

        def equation_u(self, inputs, u, params):
            return tuple(u(inputs[:, f], params)[0:2] for f in range(4))

        def equation_f(self, inputs, params, gridify=False):
            x = inputs[0, 3]
            zero = jnp.zeros((2,))
            return (zero, zero, zero, jnp.stack([NS_LID * x * (1 - x), jnp.zeros(())]))

    facets = [arrays[f"points_{k}"] for k in ("wall_xmin", "wall_xmax", "wall_ymin", "lid")]
    pde = arrays["points_pde"]
    data = jinns.data.CubicMeshPDEStatio(
        key=jax.random.PRNGKey(job["seed"]), n=len(pde), nb=sum(map(len, facets)), dim=2,
        min_pts=(0.0, 0.0), max_pts=(1.0, 1.0), method="uniform")
    data = _with_arrays(data, omega=jnp.asarray(pde),
                        omega_border=jnp.asarray(np.stack(facets, axis=-1)))
    obs = jinns.data.DataGeneratorObservations(
        key=jax.random.PRNGKey(job["seed"] + 1), obs_batch_size=None,
        observed_pinn_in=jnp.asarray(arrays["points_p0"]), observed_values=jnp.zeros((1, 1)))
    params = jinns.parameters.Params(nn_params=nn_params, eq_params={"nu": jnp.array(NS_NU)})
    w = weights or (1.0, 1.0, 1.0)
    loss = jinns.loss.LossPDEStatio(
        u=u,
        loss_weights=jinns.loss.LossWeightsPDEStatio(
            dyn_loss=w[0], observations=w[1], boundary_loss=w[2]),
        dynamic_loss=NavierStokes2DStatio(),
        boundary_condition=Cavity(),
        params=params,
        obs_slice=jnp.s_[2:3],
    )
    return u, params, data, loss, obs, w


def _with_arrays(data, **arrays):
    """The data generator with its point arrays replaced (same shapes and dtypes)."""
    import equinox as eqx

    for name, value in arrays.items():
        old = getattr(data, name)
        if old.shape != value.shape:
            raise ValueError(f"jinns {name}: shape {value.shape}, generator has {old.shape}")
        data = eqx.tree_at(lambda d, n=name: getattr(d, n), data, value.astype(old.dtype))
    return data


def run(job: dict, setup, arrays: dict, job_dir: Path) -> dict:
    import jax
    import jinns
    import optax

    key = jax.random.PRNGKey(job["seed"])
    build = _burgers if setup.name == "burgers1d" else _cavity
    u, params, data, loss, obs, weights = build(job, arrays, key, job.get("jinns_weights"),
                                                job.get("jinns_init", "equinox"))
    optimizer = optax.adam(job["lr"])
    chunk, steps = job["chunk"], job["steps"]

    def train_chunk(params, opt_state, data, obs):
        out = jinns.solve(n_iter=chunk, init_params=params, data=data, loss=loss,
                          optimizer=optimizer, opt_state=opt_state, obs_data=obs,
                          verbose=False, ahead_of_time=False)
        return out[0], out[5], out[3], out[8], out[1][-1]

    ref_points, ref_values = arrays["ref_points"], arrays["ref_values"]
    predict = jax.jit(lambda p, x: jax.vmap(lambda y: u(y, p))(x))
    opt_state = optimizer.init(params)
    start = time.perf_counter()
    compiled = jax.jit(train_chunk).lower(params, opt_state, data, obs).compile()
    predict(params, ref_points[:2]).block_until_ready()
    compile_s = time.perf_counter() - start

    clock, intervals, evals = Clock(), [], []
    clock.reset()
    for step in range(chunk, steps + 1, chunk):
        params, opt_state, data, obs, last_loss = compiled(params, opt_state, data, obs)
        jax.block_until_ready(params)
        intervals.append((chunk, clock.lap()))
        evals.append([step, relative_l2(np.asarray(predict(params, ref_points)), ref_values)])
        clock.reset()  # the evaluation above is outside every interval
    notes = (f"LossWeights {tuple(weights)}, boundary = sum over facets of the per-facet mean; "
             f"{job.get('jinns_init', 'equinox')} init; reverse-mode derivatives; last loss "
             f"{float(last_loss):.3g}; jax {jax.__version__}")
    return result_record("jinns", job, compile_s, intervals, evals,
                         importlib.metadata.version("jinns"), notes)
