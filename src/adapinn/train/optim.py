"""Optimisers: Adam, SOAP or Muon (`network_optimizer`) on a learning-rate schedule with
linear warm-up and exponential decay (jaxpi: lr 1e-3, x0.9 every 2000-5000 steps), optionally
with global-norm clipping; for inverse problems the unknown coefficients get their own Adam
(`with_parameter_optimizer`)."""

from typing import Any

import jax
import optax
from optax.contrib import muon as optax_muon

from adapinn.problems.parameters import WithParameters
from adapinn.train.soap import soap

OPTIMIZERS = ("adam", "soap", "muon")
"""The network optimisers `network_optimizer` knows by name."""


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
    return network_optimizer("adam", schedule, grad_clip)


def muon(schedule: optax.ScalarOrSchedule, **options: Any) -> optax.GradientTransformation:
    """Muon (Jordan et al. 2024, `optax.contrib.muon`): the Nesterov momentum of a matrix
    parameter's gradient, orthogonalised by 5 Newton-Schulz iterations (M -> ~U V^T for
    M = U S V^T), scaled by sqrt(max(1, fan_out / fan_in)) and the learning rate. Every
    parameter that is not 2-D (biases, scalars) goes to Adam(W) on the same schedule, as Muon's
    authors recommend; `optax.contrib.muon` already routes them so (labels by `ndim == 2`).

    Args:
        schedule: the learning rate of both halves.
        options: keyword arguments of `optax.contrib.muon` (beta 0.95, ns_steps 5,
            adam_b1 0.9, adam_b2 0.999, ...).
    """
    return optax_muon(schedule, **options)


def network_optimizer(name: str, schedule: optax.ScalarOrSchedule,
                      grad_clip: float | None = None, **options: Any
                      ) -> optax.GradientTransformation:
    """The network's optimiser `name` (one of OPTIMIZERS) on `schedule`, after optional
    global-norm clipping of the gradient to `grad_clip`.

    Args:
        name: "adam" (`optax.adam`), "soap" (`adapinn.train.soap.soap`) or "muon" (`muon`).
        schedule: learning rate, a float or an optax schedule of the step.
        grad_clip: the global-norm bound (None: no clipping).
        options: keyword arguments of the chosen optimiser, e.g. SOAP's
            `precondition_frequency`.
    """
    makers = {"adam": optax.adam, "soap": soap, "muon": muon}
    if name not in makers:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    parts = [optax.clip_by_global_norm(grad_clip)] if grad_clip else []
    return optax.chain(*parts, makers[name](schedule, **options))


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
