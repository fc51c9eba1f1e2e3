"""Optimisers: Adam with linear warm-up and exponential decay (jaxpi: lr 1e-3, x0.9 every
2000-5000 steps), optionally with global-norm clipping."""

import optax


def learning_rate_schedule(lr: float, warmup_steps: int = 0, decay_steps: int = 2000,
                           decay_rate: float = 0.9) -> optax.Schedule:
    """lr(s) = lr s / warmup for s < warmup, then lr decay_rate^((s - warmup) / decay_steps)."""
    decay = optax.exponential_decay(lr, decay_steps, decay_rate)
    if warmup_steps == 0:
        return decay
    warmup = optax.linear_schedule(0.0, lr, warmup_steps)
    return optax.join_schedules([warmup, decay], [warmup_steps])


def adam(schedule: optax.Schedule, grad_clip: float | None = None
         ) -> optax.GradientTransformation:
    """Adam on a learning-rate schedule, with optional global-norm gradient clipping."""
    parts = [optax.clip_by_global_norm(grad_clip)] if grad_clip else []
    return optax.chain(*parts, optax.adam(schedule))
