"""The hard bank with its refresh amortised into the training step (our construction, on seed
000's hybrid sampler, `adapinn.samplers.hardbank`).

The pooled hard bank scores `pool_mult * B` extra candidates every `refresh_every` steps and
writes the top `n_top` of them into the bank. This variant scores nothing extra: the step's
loss has already evaluated r at its own fresh uniform points, so after every step (`observe`)

    the top  n_write = max(1, round(n_top / refresh_every))  of the batch's always-fresh slots
    (the B - round(p_max B) points no bank point can take) by |r| go into random bank slots,

with |r| stored as their scores. The bank's turnover (n_top points per `refresh_every` steps),
its size, the batch mix p(step) (ramp, anneal) and the importance weights are those of the
pooled bank; what changes is the candidate set: over one period it sees
refresh_every (B - round(p_max B)) fresh points (160 B at seed 000's settings, against a
pool of 50 B), each scored by the model of its own step, and the top n_write per step rather
than the top `top_frac` of one pool. Writes start one period before `start_step`, as the
pooled refreshes do. The "benefit" schedule needs the pool's mean and is not offered here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from adapinn.samplers.base import Batch, ScoreFn
from adapinn.samplers.density import finite_scores
from adapinn.samplers.hardbank import HardBank, HardBankState


class StreamingHardBank(HardBank):
    """The hard bank fed by the top residuals of every step's own fresh points."""

    def __check_init__(self):
        if self.schedule == "benefit":
            raise ValueError("hardbank_stream: the benefit schedule compares the bank with a "
                             "scored pool, which this sampler does not draw; use "
                             "schedule=ramp|anneal or the pooled `hardbank`")
        if self.n_fresh < 1:
            raise ValueError("hardbank_stream needs p_max < 1: the batch's always-fresh "
                             "points are its candidates")

    @property
    def n_fresh(self) -> int:
        """Batch slots that always hold fresh uniform points: B - round(p_max B)."""
        return self.batch_size - self.n_bank_max

    @property
    def n_write(self) -> int:
        """Bank points written per step: the pooled bank's turnover, spread over its period."""
        return min(self.n_fresh, max(1, round(self.n_top / max(self.refresh_every, 1))))

    def refresh(self, state: HardBankState, key: Array, step: Array,
                score_fn: ScoreFn) -> HardBankState:
        """No pool to score: the bank is written in `observe`."""
        return state

    def observe(self, state: HardBankState, batch: Batch, squared_residuals: Array,
                key: Array, step: Array) -> HardBankState:
        def write(state):
            fresh = batch.points[self.n_bank_max:].astype(state.bank.dtype)
            scores = jnp.sqrt(finite_scores(squared_residuals[self.n_bank_max:]))
            top_scores, top = jax.lax.top_k(scores, self.n_write)
            slots = self._write_slots(state, key)
            bank = state.bank.at[slots].set(fresh[top])
            new_scores = state.scores.at[slots].set(top_scores.astype(state.scores.dtype))
            return HardBankState(bank, new_scores, self._histogram(bank))

        warm = step + 1 + self.refresh_every >= self.start_step
        return jax.lax.cond(warm, write, lambda s: s, state)

    def _write_slots(self, state: HardBankState, key: Array) -> Array:
        """n_write slots: random ones drawn with replacement (a collision loses one write,
        probability about n_write^2 / (2 bank_size): 0.6% at seed 000's settings; a draw
        without replacement would shuffle the whole bank every step), or the lowest-scored."""
        if self.replace == "lowest":
            return jax.lax.top_k(-state.scores, self.n_write)[1]
        return jax.random.randint(key, (self.n_write,), 0, self.bank_size)
