"""R3 sampling, Retain-Resample-Release (Daw, Bu, Wang, Perdikaris, Karpatne, ICML 2023,
"Mitigating Propagation Failures in Physics-informed Neural Networks using
Retain-Resample-Release (R3) Sampling", Algorithm 1), and its causal variant (same paper,
section "Causal R3"; the authors' code, arkadaw9/r3_sampling_icml2023).

A persistent population P of B = batch_size points is the whole batch at every step. After
the step, with the residuals that step's loss already computed (`observe`: no extra
evaluation, the residuals are those of the parameters before the update, as in the paper),

    F(x) = |r(x)|                                   fitness (r3)
    retain    P_r = {x in P : F(x) > mean_P F}     (strictly above the population mean)
    resample  P_s = B - |P_r| fresh uniform points
    release   the others;  P <- P_r ∪ P_s

Causal R3 gates the fitness and the residual loss by time,

    g(t) = (1 - tanh(alpha (t_hat - beta))) / 2  = sigmoid(-2 alpha (t_hat - beta))
    t_hat = (t - t_0) / (t_1 - t_0)                 time is input 0; [t_0, t_1] the domain's
    F(x) = |r(x)| g(t)                              bounding box along it
    L_r = mean_i (g(t_i) r_i)^2                     Batch.weights = g^2 (the paper's loss)
    beta <- beta + eta min(exp(-tol mean_P F^2), clip)

so the gate opens (beta grows) only once the gated residual is small. Both use the state's
beta of the step (the authors' order: loss and fitness with the old beta, then its update).
The sigmoid form is the same function, computed without the cancellation of 1 - tanh.
Defaults (issue 15, the authors' KS settings): alpha = 5, beta_0 = -0.5, eta = 1e-3, tol = 20,
clip = 0.1 (their `grad_clip`).

Shapes are static: fresh points are drawn for all B slots and `where(keep, old, fresh)` picks
per slot. Slot i is row i of every batch (`slots = batch_size`) and `Batch.replaced` marks the
slots refilled by the last `observe`, so a weighting that carries one value per point with
the point (RBA, `weighting.rba`) resets it where the point was released. `fixed_set_size` is
None: the points move, so SA-PINN (whose weights are not reset) refuses R3. With
`rounds.enabled` R3 still evolves every Adam step: `observe` is not a refresh.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from adapinn.samplers.base import AbstractSampler, Batch
from adapinn.samplers.density import finite_scores


class R3State(eqx.Module):
    """points (B, d): the population; replaced (B,) bool: slots refilled by the last observe."""

    points: Array
    replaced: Array


class CausalR3State(R3State):
    """R3's state plus beta, the causal gate's shift (scalar)."""

    beta: Array


class R3(AbstractSampler):
    """Keep the points whose |r| exceeds the population mean, replace the rest uniformly."""

    @property
    def slots(self) -> int:
        return self.batch_size

    def init(self, key: Array) -> R3State:
        points = self.domain.sample(key, self.batch_size)
        return R3State(points, jnp.zeros(self.batch_size, bool))

    def gate(self, state: R3State, points: Array) -> Array:
        """Per-point factor of the fitness, shape (B,): 1 (the causal variant gates by time)."""
        return jnp.ones(points.shape[0], points.dtype)

    def sample(self, state: R3State, key: Array, step: Array) -> Batch:
        """The whole population; loss weights g^2 (1 for r3)."""
        return Batch(state.points, jnp.square(self.gate(state, state.points)), state.replaced)

    def retain(self, state: R3State, points: Array, squared_residuals: Array) -> tuple:
        """(keep mask (B,), fitness F (B,)): keep = F > mean F, non-finite F counted as 0."""
        fitness = finite_scores(jnp.sqrt(squared_residuals)).astype(points.dtype)
        fitness = fitness * self.gate(state, points)
        return fitness > jnp.mean(fitness), fitness

    def observe(self, state: R3State, batch: Batch, squared_residuals: Array, key: Array,
                step: Array) -> R3State:
        keep, fitness = self.retain(state, batch.points, squared_residuals)
        fresh = self.domain.sample(key, self.batch_size).astype(batch.points.dtype)
        points = jnp.where(keep[:, None], batch.points, fresh)
        return self.next_state(state, points, ~keep, fitness)

    def next_state(self, state: R3State, points: Array, replaced: Array,
                   fitness: Array) -> R3State:
        return R3State(points, replaced)


class CausalR3(R3):
    """R3 with the time gate g(t) on the fitness and the loss, and beta's update."""

    alpha: float = eqx.field(static=True, default=5.0)
    beta0: float = eqx.field(static=True, default=-0.5)
    eta: float = eqx.field(static=True, default=1e-3)
    tol: float = eqx.field(static=True, default=20.0)
    clip: float = eqx.field(static=True, default=0.1)

    def __check_init__(self):
        box = self.domain.bounding_box
        if not box.high[0] > box.low[0]:
            raise ValueError("causal_r3 gates by time, input 0, but the domain has no extent "
                             f"along it ({box.low[0]} to {box.high[0]})")
        if self.eta < 0 or self.tol < 0 or self.clip < 0:
            raise ValueError("causal_r3: eta, tol and clip must be non-negative")

    def init(self, key: Array) -> CausalR3State:
        base = super().init(key)
        return CausalR3State(base.points, base.replaced,
                             jnp.asarray(self.beta0, base.points.dtype))

    def gate(self, state: CausalR3State, points: Array) -> Array:
        """g(t) = (1 - tanh(alpha (t_hat - beta))) / 2, shape (B,)."""
        box = self.domain.bounding_box
        t_hat = (points[:, 0] - box.low[0]) / (box.high[0] - box.low[0])
        return jax.nn.sigmoid(-2.0 * self.alpha * (t_hat - state.beta.astype(points.dtype)))

    def next_state(self, state: CausalR3State, points: Array, replaced: Array,
                   fitness: Array) -> CausalR3State:
        """beta <- beta + eta min(exp(-tol mean(F^2)), clip)."""
        push = jnp.minimum(jnp.exp(-self.tol * jnp.mean(jnp.square(fitness))), self.clip)
        beta = state.beta + (self.eta * push).astype(state.beta.dtype)
        return CausalR3State(points, replaced, beta)
