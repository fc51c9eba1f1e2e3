"""Optimisers: Adam with linear warm-up and exponential decay (jaxpi: lr 1e-3, x0.9 every
2000-5000 steps), optionally with global-norm clipping; for inverse problems the unknown
coefficients get their own Adam (`with_parameter_optimizer`)."""

import jax
import optax

from adapinn.problems.parameters import WithParameters


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


def parameter_schedule(lr: float, frozen_steps: int = 0) -> optax.Schedule:
    """0 for the first `frozen_steps` steps (the coefficients wait for the network), then
    constant `lr`."""
    if frozen_steps == 0:
        return optax.constant_schedule(lr)
    return optax.join_schedules([optax.constant_schedule(0.0), optax.constant_schedule(lr)],
                                [frozen_steps])


def with_parameter_optimizer(network_opt: optax.GradientTransformation,
                             parameter_opt: optax.GradientTransformation
                             ) -> optax.GradientTransformation:
    """`network_opt` on the network's leaves and `parameter_opt` on the raw coefficients of a
    `WithParameters` model (`optax.multi_transform`, labelled by where a leaf sits)."""

    def labels(params):
        network = jax.tree_util.tree_map(lambda _: "network", params.network)
        raw = jax.tree_util.tree_map(lambda _: "coefficients", params.raw)
        return WithParameters(network, raw, params.declared)

    return optax.multi_transform({"network": network_opt, "coefficients": parameter_opt},
                                 labels)
