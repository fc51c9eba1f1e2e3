"""PRNG keys: every key a run consumes is split explicitly, and no two are equal (a
`fold_in(key, i)` equals `split(key)[i]` under partitionable threefry, so mixing the two
reuses keys)."""

import jax
import numpy as np

from adapinn.experiments.build import build
from adapinn.experiments.presets import resolve
from tests.conftest import TINY


def _data(key) -> tuple:
    return tuple(np.asarray(jax.random.key_data(key)).ravel().tolist())


def test_every_key_of_init_and_of_a_step_is_distinct():
    run = build(resolve("burgers", None, TINY), with_reference=False)
    trainer, key = run.trainer, jax.random.PRNGKey(3)
    init = trainer.init_keys(key)
    step = trainer.step_keys(init["state"])
    following = trainer.step_keys(step["next"])
    every = {**{f"init {k}": v for k, v in init.items()},
             **{f"step1 {k}": v for k, v in step.items()},
             **{f"step2 {k}": v for k, v in following.items()}}
    assert len(step) == 2 + 2 * len(trainer.names)  # next, aggregate, sample/*, refresh/*
    values = [_data(k) for k in every.values()]
    assert len(set(values)) == len(values), "a key is reused"
    # the state's key is none of the samplers' init keys, nor a fold_in of the init key
    assert _data(jax.random.fold_in(key, 1)) not in {_data(init["state"])}


def test_the_state_key_advances_to_the_next_step_key():
    run = build(resolve("burgers", None, TINY), with_reference=False)
    state, _ = run.trainer.step(run.state)
    assert _data(state.key) == _data(run.trainer.step_keys(run.state.key)["next"])
