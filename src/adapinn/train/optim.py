"""Optimisers: Adam with linear warm-up and exponential decay (jaxpi: lr 1e-3, x0.9 every
2000-5000 steps), optionally with global-norm clipping."""

import optax

from adapinn.experiments.config import TrainConfig


def learning_rate_schedule(cfg: TrainConfig) -> optax.Schedule:
    """lr(s) = lr s / warmup for s < warmup, then lr decay_rate^((s - warmup) / decay_steps)."""
    decay = optax.exponential_decay(cfg.lr, cfg.decay_steps, cfg.decay_rate)
    if cfg.warmup_steps == 0:
        return decay
    warmup = optax.linear_schedule(0.0, cfg.lr, cfg.warmup_steps)
    return optax.join_schedules([warmup, decay], [cfg.warmup_steps])


def adam(cfg: TrainConfig) -> optax.GradientTransformation:
    """Adam on the schedule above, with optional gradient clipping."""
    parts = [optax.clip_by_global_norm(cfg.grad_clip)] if cfg.grad_clip else []
    return optax.chain(*parts, optax.adam(learning_rate_schedule(cfg)))
