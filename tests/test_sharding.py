"""Data parallelism: 4 devices give the 1-device results (points, loss, gradients, training,
pool scores, top-k and hard-bank refresh), points really are split, the step compiles once.

The pytest process has one CPU device, so the 4-device checks run once, in a subprocess that
sets XLA_FLAGS=--xla_force_host_platform_device_count=4 before importing JAX (`python
tests/test_sharding.py OUT.json`); it writes what it measured and the tests below judge it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

N_DEV = 4
TINY = ["network.width=16", "network.depth=2", "train.batch_size=64",
        "train.condition_batch_size=16", "train.residual_chunk=64"]
HARDBANK = ["sampler.name=hardbank", "sampler.start_step=0", "sampler.refresh_every=2",
            "sampler.pool_mult=8", "sampler.bank_mult=2", "sampler.top_frac=0.1",
            "sampler.p_max=0.5", "sampler.ramp_steps=0"]


# ----------------------------------------------------------------------------- the worker

def _max_diff(a, b) -> float:
    import jax

    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
               for x, y in pairs)


def _setup(overrides: list[str]):
    from adapinn.experiments.build import build
    from adapinn.experiments.presets import resolve

    return build(resolve("burgers", None, TINY + overrides), with_reference=False)


def _on(mesh, fn, *args):
    """`fn(*args)`, jitted under `mesh` (on one device: the plain single-device program)."""
    import equinox as eqx

    from adapinn.train import sharding

    with sharding.use_mesh(mesh):
        return eqx.filter_jit(fn)(*args)


def _compile_counter():
    import jax

    count = [0]

    def listen(event, duration, **kwargs):
        # tracing, lowering or compiling (a persistent-cache hit still traces and lowers)
        if event.startswith("/jax/core/compile/"):
            count[0] += 1

    jax.monitoring.register_event_duration_secs_listener(listen)
    return count


def _batches_and_grads(run, meshes: dict) -> dict:
    import equinox as eqx
    import jax

    from adapinn.train import sharding

    trainer, state, res = run.trainer, run.state, {}
    key = jax.random.PRNGKey(3)
    params, static = eqx.partition(state.model, eqx.is_array)

    def draw(state):
        return sharding.shard_points(trainer.sample(state, key))

    def value_and_grad(params, batches):
        batches = sharding.shard_points(batches)
        grad_fn = eqx.filter_value_and_grad(trainer.loss, has_aux=True)
        (loss, _), grads = grad_fn(eqx.combine(params, static), batches,
                                   state.weighting_state, state.step)
        return loss, grads

    out = {name: _on(mesh, draw, state) for name, mesh in meshes.items()}
    points = out["d4"]["pde"].points
    res["points_equal"] = all(
        bool(np.array_equal(out["d4"][n].points, out["d1"][n].points)) for n in out["d1"])
    res["points_spec"] = str(tuple(points.sharding.spec))
    res["points_shard_rows"] = sorted(s.data.shape[0] for s in points.addressable_shards)
    batches = sharding.local_copy(out["d1"])
    vg, hlo = {}, ""
    for name, mesh in meshes.items():
        with sharding.use_mesh(mesh):
            compiled = jax.jit(value_and_grad).lower(params, batches).compile()
        hlo = compiled.as_text() if name == "d4" else hlo
        vg[name] = compiled(params, batches)
    res["loss"] = {n: float(v[0]) for n, v in vg.items()}
    res["grad_diff"] = _max_diff(vg["d4"][1], vg["d1"][1])
    res["grad_scale"] = float(max(np.max(np.abs(g)) for g in jax.tree.leaves(vg["d1"][1])))
    res["grad_has_all_reduce"] = "all-reduce" in hlo
    return res


def _training(run, meshes: dict, steps: int) -> dict:
    """Two compiled chunks of `steps` steps per mesh: losses and final state."""
    from adapinn.train import sharding
    from adapinn.train.loop import compile_chunk

    res, finals, count = {}, {}, _compile_counter()
    for name in ("d1", "d4"):
        state = sharding.replicate(run.state, meshes[name])
        call, _ = compile_chunk(run.trainer, state, steps, meshes[name])
        before = count[0]
        state, m1, _ = call(state)
        state, m2, _ = call(state)  # takes its own output: same shardings, no recompile
        res[f"recompiles_{name}"] = count[0] - before
        res[f"losses_{name}"] = [float(m1["loss"]), float(m2["loss"])]
        res[f"step_{name}"] = int(state.step)
        finals[name] = sharding.local_copy(state)
    res["state_diff"] = _max_diff(finals["d1"], finals["d4"])
    return res


def _compiles_once(run, mesh) -> dict:
    """eqx.filter_jit(trainer.step) on the replicated state: backend compiles over 3 calls."""
    import equinox as eqx
    import jax

    from adapinn.train import sharding

    count = _compile_counter()
    step = eqx.filter_jit(run.trainer.step)
    state = sharding.replicate(run.state, mesh)
    with sharding.use_mesh(mesh):
        step(state)  # warm-up: compiles the step (and any helper it triggers)
        before = count[0]
        for _ in range(3):
            state, _ = step(state)
        jax.block_until_ready(state)
    return {"step_compiles_after_first": count[0] - before,
            "state_spec": sorted({str(tuple(x.sharding.spec)) for x in jax.tree.leaves(state)
                                  if isinstance(x, jax.Array)})}


def _pool_scores(run, meshes: dict) -> dict:
    """Scores of a 1000-point pool (padded to 4 x 4 chunks of 64): sharded, equal, top-k."""
    import jax
    import jax.numpy as jnp

    from adapinn.train import sharding

    trainer, model = run.trainer, run.state.model
    pool = run.problem.conditions["pde"].domain.sample(jax.random.PRNGKey(5), 1000)
    seen: list[str] = []

    def probe(x):
        jax.debug.inspect_array_sharding(x, callback=lambda s: seen.append(str(s)))
        return jnp.sum(x)

    def score_and_top(pool):
        scores = trainer.score_fn(model, "pde")(pool)
        return scores, jax.lax.top_k(scores, 50)[1]

    out = {n: _on(m, score_and_top, pool) for n, m in meshes.items()}
    _on(meshes["d4"], lambda p: sharding.map_points(probe, p, 64), pool)
    scale = float(np.max(np.abs(out["d1"][0])))
    return {"score_rel_diff": _max_diff(out["d4"][0], out["d1"][0]) / scale,
            "topk_equal": bool(np.array_equal(np.sort(out["d4"][1]), np.sort(out["d1"][1]))),
            "chunk_sharding": seen}


def _hardbank(meshes: dict) -> dict:
    """One refresh of the hard bank (pool scored, top-k into the bank), then training with
    the bank in every batch and a refresh every 2 steps."""
    import jax

    run = _setup(HARDBANK)
    trainer, state = run.trainer, run.state
    sampler = trainer.samplers["pde"]

    def refresh(state):
        score = trainer.score_fn(state.model, "pde")
        return sampler.update(state.sampler_states["pde"], jax.random.PRNGKey(9), state.step,
                              score)

    banks = {n: _on(m, refresh, state) for n, m in meshes.items()}
    res = {"bank_equal": bool(np.array_equal(banks["d4"].bank, banks["d1"].bank)),
           "bank_changed": not bool(np.array_equal(banks["d1"].bank,
                                                   state.sampler_states["pde"].bank)),
           "bank_score_diff": _max_diff(banks["d4"].scores, banks["d1"].scores)}
    res.update(_training(run, meshes, steps=3))
    return res


def _lbfgs(run, meshes: dict) -> dict:
    """Three L-BFGS iterations on a fixed set split with `shard_global` (passed as arguments,
    as `fit` does), against the same on one device."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from adapinn.samplers import unit_weights
    from adapinn.train import sharding
    from adapinn.train.lbfgs import lbfgs_init, lbfgs_iterations

    keys = jax.random.split(jax.random.PRNGKey(11), len(run.trainer.names))
    fixed = {n: unit_weights(c.domain.sample(k, 64))
             for (n, c), k in zip(run.problem.conditions.items(), keys)}
    weights = {n: jnp.asarray(1.0) for n in fixed}
    res = {}
    for name, mesh in meshes.items():
        batches = sharding.shard_global(fixed, mesh)
        model = sharding.replicate(run.state.model, mesh)
        model, _, value, _ = lbfgs_iterations(run.trainer, model, lbfgs_init(model), batches,
                                              weights, 3)
        params = eqx.filter(model, eqx.is_inexact_array)
        res[name] = (float(value), sharding.local_copy(params))
        res[f"lbfgs_spec_{name}"] = str(tuple(batches["pde"].points.sharding.spec))
    return {"lbfgs_values": [res["d1"][0], res["d4"][0]],
            "lbfgs_param_diff": _max_diff(res["d1"][1], res["d4"][1]),
            "lbfgs_spec": res["lbfgs_spec_d4"]}


def _neighbours(meshes: dict) -> dict:
    """RSmote's k-nearest-neighbour search over 1000 points, chunked over the devices."""
    import jax

    from adapinn.samplers.rsmote import nearest_neighbours

    pts = jax.random.uniform(jax.random.PRNGKey(3), (1000, 2))
    out = {n: np.sort(np.asarray(_on(m, lambda p: nearest_neighbours(p, 5, 64), pts)), axis=1)
           for n, m in meshes.items()}
    return {"knn_equal": bool(np.array_equal(out["d1"], out["d4"])),
            "knn_shape": list(out["d4"].shape)}


def _indivisible_fit(out: Path) -> str:
    """fit() with a 66-point batch on 4 devices: the error, raised before `out` is made."""
    from adapinn.experiments.config import ConfigError
    from adapinn.experiments.fit import fit
    from adapinn.experiments.presets import resolve

    try:
        fit(resolve("burgers", None, TINY + ["train.batch_size=66"]), out, progress=False)
    except ConfigError as err:
        return "" if out.exists() else str(err)
    return ""


def _trained_on_four(out: Path) -> dict:
    """A tiny 4-device fit into `out`; its model's values at fixed points (for `load` on one
    device in the pytest process)."""
    from adapinn.experiments.fit import fit
    from adapinn.experiments.presets import resolve

    summary = fit(resolve("burgers", None, TINY + ["train.steps=10", "train.lbfgs_steps=0"]),
                  out, progress=False)
    points = np.linspace([0.0, -1.0], [1.0, 1.0], 7)
    return {"four_run": str(out), "four_values": summary.model(points).tolist()}


def worker(out: Path) -> None:
    """Run every 4-device measurement and write them to `out` as JSON."""
    import jax

    from adapinn.train import sharding

    assert jax.device_count() == N_DEV, jax.devices()
    meshes = {"d1": sharding.data_mesh(1), "d4": sharding.data_mesh(N_DEV)}
    run = _setup([])
    res = {"n_devices": jax.device_count()}
    res.update(_batches_and_grads(run, meshes))
    res.update(_compiles_once(run, meshes["d4"]))
    res.update(_pool_scores(run, meshes))
    res.update(_hardbank(meshes))
    res.update(_lbfgs(run, meshes))
    res.update(_neighbours(meshes))
    res["indivisible_error"] = _indivisible_fit(out.parent / "indivisible")
    res.update(_trained_on_four(out.parent / "four_device_run"))
    out.write_text(json.dumps(res, indent=1))


# ----------------------------------------------------------------------------- the tests

@pytest.fixture(scope="module")
def four(tmp_path_factory) -> dict:
    """The worker's measurements (one subprocess for the whole module)."""
    out = tmp_path_factory.mktemp("sharding") / "four.json"
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={N_DEV}",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, __file__, str(out)], env=env, capture_output=True,
                          text=True, timeout=240, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def test_worker_saw_four_devices(four):
    assert four["n_devices"] == N_DEV


def test_a_run_trained_on_four_devices_loads_and_predicts_on_one(four):
    import adapinn

    model = adapinn.load(four["four_run"])
    points = np.linspace([0.0, -1.0], [1.0, 1.0], 7)
    np.testing.assert_allclose(model(points), four["four_values"], rtol=1e-5, atol=1e-6)


def test_sampled_points_do_not_depend_on_the_device_count(four):
    assert four["points_equal"]


def test_batch_points_are_split_over_the_data_axis(four):
    assert four["points_spec"] == "('data',)"
    assert four["points_shard_rows"] == [64 // N_DEV] * N_DEV


def test_loss_and_gradients_match_one_device(four):
    assert four["loss"]["d4"] == pytest.approx(four["loss"]["d1"], rel=1e-6)
    assert four["grad_diff"] <= 1e-5 * four["grad_scale"]
    assert four["grad_has_all_reduce"], "the gradient mean should be an XLA all-reduce"


def test_training_steps_match_one_device(four):
    """Hard-bank training: bank points in every batch, refreshed every 2 of the 6 steps."""
    assert four["step_d1"] == four["step_d4"] == 6
    np.testing.assert_allclose(four["losses_d4"], four["losses_d1"], rtol=1e-5)
    assert four["state_diff"] < 1e-5


def test_step_compiles_once_with_the_replicated_state(four):
    assert four["step_compiles_after_first"] == 0
    assert four["recompiles_d1"] == 0 and four["recompiles_d4"] == 0
    assert four["state_spec"] == ["()"]


def test_pool_scoring_is_sharded_and_matches_one_device(four):
    assert four["chunk_sharding"], "the chunk probe never ran"
    assert all("devices=[4," in s for s in four["chunk_sharding"]), four["chunk_sharding"]
    assert four["score_rel_diff"] < 1e-5
    assert four["topk_equal"]


def test_hardbank_refresh_matches_one_device(four):
    assert four["bank_changed"]
    assert four["bank_equal"]
    assert four["bank_score_diff"] < 1e-5


def test_lbfgs_on_a_split_collocation_set_matches_one_device(four):
    assert four["lbfgs_spec"] == "('data',)"
    d1, d4 = four["lbfgs_values"]
    assert d4 == pytest.approx(d1, rel=1e-5)
    assert four["lbfgs_param_diff"] < 1e-5


def test_rsmote_neighbour_search_matches_one_device(four):
    assert four["knn_shape"] == [1000, 5]
    assert four["knn_equal"]


def test_fit_refuses_a_batch_that_does_not_split_over_the_devices(four):
    message = four["indivisible_error"]
    assert "train.batch_size=66 (nearest multiples: 64, 68)" in message
    assert "--devices" in message and "condition_batch_size" not in message


# --------------------------------------------------------- single-device, in-process checks

def test_cli_devices_beyond_the_visible_ones_is_an_error(tmp_path, capsys):
    from adapinn.cli import main

    args = ["run", "burgers", "--out", str(tmp_path / "r"), "--devices", "64"]
    assert main(args + [a for item in TINY for a in ("--set", item)]) == 2
    assert "--devices 64" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_asking_for_more_devices_than_visible_is_a_config_error():
    import jax

    from adapinn.experiments.config import ConfigError
    from adapinn.train import sharding

    with pytest.raises(ConfigError, match="choose 1 to"):
        sharding.data_mesh(jax.device_count() + 1)


def test_indivisible_global_batch_is_a_clear_error():
    from adapinn.experiments.config import ConfigError
    from adapinn.train import sharding

    sharding.check_divisible({"train.batch_size": 1024}, 4)
    with pytest.raises(ConfigError, match=r"train.batch_size=1000 \(nearest multiples: 999, 1002\)"
                       ) as err:
        sharding.check_divisible({"train.batch_size": 1000, "x": 9}, 3)
    assert "x=9" not in str(err.value)


def test_helpers_are_plain_single_device_code_without_a_mesh():
    import jax
    import jax.numpy as jnp

    from adapinn.train import sharding

    x = jax.random.uniform(jax.random.PRNGKey(0), (10, 2))
    assert sharding.shard_points({"a": x})["a"] is x
    fn = lambda p: jnp.sum(jnp.sin(p))
    np.testing.assert_array_equal(sharding.map_points(fn, x, 4),
                                  jax.lax.map(fn, x, batch_size=4))


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
