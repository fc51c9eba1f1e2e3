"""Every sampler on domains that are not boxes: a plate with four holes (square minus disks) and
a non-convex L-shaped polygon. Points stay inside after every refresh (RSmote segments, GLF
perturbations and reflections that leave the domain are replaced), weights are valid, and the
hard bank's importance weights stay unbiased (mean 1) on a domain that is not its box."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adapinn.experiments import registry
from adapinn.geometry import Box, Disk, Polygon
from adapinn.samplers.hardbank import HardBank
from tests.test_samplers import BATCH, SMALL

PLATE = Box((0.0, 0.0), (1.0, 1.0)) - Disk((0.3, 0.3), 0.12) - Disk((0.7, 0.3), 0.12) \
    - Disk((0.3, 0.7), 0.12) - Disk((0.7, 0.7), 0.12)
L_SHAPE = Polygon([(0.0, 0.0), (1.0, 0.0), (1.0, 0.4), (0.4, 0.4), (0.4, 1.0), (0.0, 1.0)])
DOMAINS = {"plate": PLATE, "l_shape": L_SHAPE}


def ridge(points: jax.Array) -> jax.Array:
    """|r| peaked along x = 0.5 (crosses holes and the L's corner)."""
    return jnp.exp(-40.0 * (points[:, 0] - 0.5) ** 2) + 0.01


@pytest.mark.parametrize("domain_name", sorted(DOMAINS))
@pytest.mark.parametrize("name", sorted(registry.SAMPLERS))
def test_every_sampler_stays_inside_a_non_box_domain(name, domain_name):
    domain = DOMAINS[domain_name]
    sampler = registry.SAMPLERS[name](domain=domain, batch_size=BATCH, **SMALL.get(name, {}))
    state = sampler.init(jax.random.key(0))
    refresh = jax.jit(lambda s, k, t: sampler.refresh(s, k, t, ridge))
    sample = jax.jit(sampler.sample)
    period = max(sampler.refresh_every, 1)
    for r in range(1, 4):
        state = refresh(state, jax.random.key(10 + r), jnp.asarray(r * period, jnp.int32))
        batch = sample(state, jax.random.key(20 + r), jnp.asarray(r * period, jnp.int32))
        inside = np.asarray(domain.contains(batch.points))
        assert inside.all(), (name, np.asarray(batch.points)[~inside][:3])
        w = np.asarray(batch.weights)
        assert w.shape == (BATCH,) and np.all(np.isfinite(w)) and np.all(w > 0)
    if name in ("fixed", "uniform"):
        return
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(state)
              if jnp.ndim(x) == 2 and jnp.shape(x)[1] == 2]
    for pts in leaves:  # every stored set (bank, pool, buffer) lies in the domain
        assert np.asarray(domain.contains(jnp.asarray(pts))).all(), name


def test_hardbank_importance_weights_are_unbiased_on_the_plate():
    """E[w] = 1 under q (the draw): with cells cut by the holes weighted by their real share
    of the plate. Before, b(x) = n_cell * n_cells / bank counted every cell as 1/n_cells of
    the domain."""
    hb = HardBank(PLATE, 512, start_step=0, ramp_steps=0, p_max=0.5, pool_mult=8, bank_mult=4,
                  importance_weights=True, iw_cells=256)
    state = hb.init(jax.random.key(0))
    state = jax.jit(lambda s: hb.update(s, jax.random.key(1), 0, ridge))(state)
    sample = jax.jit(hb.sample)
    w = np.concatenate([np.asarray(sample(state, jax.random.key(5 + i), 10).weights)
                        for i in range(100)])
    assert w.std() > 0.05  # the bank really is concentrated
    np.testing.assert_allclose(w.mean(), 1.0, atol=0.01)
