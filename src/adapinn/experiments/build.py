"""`build(config)`: a validated run config becomes a problem, a trainer and an initial state,
seeded by `config.seed`. The one place where config sections meet the layers below (through
the registry)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import optax

from adapinn.errors import ConfigError
from adapinn.experiments import registry
from adapinn.experiments.config import RunConfig
from adapinn.nn import OutputTransform, build_network, pirate_ic_init
from adapinn.problems.base import Problem, ReferenceData
from adapinn.problems.data import load_reference
from adapinn.problems.parameters import with_parameters
from adapinn.samplers import Fixed, Uniform
from adapinn.train.optim import (
    learning_rate_schedule,
    network_optimizer,
    parameter_schedule,
    with_parameter_optimizer,
)
from adapinn.train.state import TrainState
from adapinn.train.trainer import Trainer


@dataclass
class Run:
    """Everything built from a config: the trainer, the initial state, the reference."""

    config: RunConfig
    problem: Problem
    trainer: Trainer
    state: TrainState
    reference: ReferenceData | None


def schedule_of(config: RunConfig):
    """The network optimiser's learning-rate schedule of `config.train`."""
    tc = config.train
    return learning_rate_schedule(tc.lr, tc.warmup_steps, tc.decay_steps, tc.decay_rate)


def build(config: RunConfig, with_reference: bool = True, problem: Problem | None = None) -> Run:
    """Turn a validated config into a trainer and an initial state (seeded by config.seed).

    `problem` replaces the registry's `config.problem` (a user-defined PDE). A float64 run
    (`network.dtype`) must be built inside `jax.enable_x64(True)` (as `fit` does): the
    process-wide switch is never flipped here."""
    try:
        return _build(config, with_reference, problem)
    except ValueError as err:  # a module rejecting its options: the user's to fix
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(str(err)) from err


def _build(config: RunConfig, with_reference: bool, problem: Problem | None) -> Run:
    problem = problem or registry.build_problem(config)
    k_net, k_train = jax.random.split(jax.random.PRNGKey(config.seed))
    box = problem.domain.bounding_box
    network = build_network(config.network, problem.dim, problem.n_outputs, problem.periodic,
                            k_net, box=(box.low, box.high))
    if config.network.pirate_ls_init:  # last layer fitted to the "ic" condition (nn.pirate)
        network = pirate_ic_init(network, problem, jax.random.fold_in(k_net, 0x1C))
    if problem.output_transform is not None:  # a hard constraint (nn.transform)
        network = OutputTransform(network, problem.output_transform)
    tc = config.train
    soap = tc.optimizer == "soap"
    options = {"precondition_frequency": tc.precondition_frequency} if soap else {}
    optimizer = network_optimizer(tc.optimizer, schedule_of(config), tc.grad_clip, **options)
    if problem.parameters:  # inverse problem: the unknown coefficients train with the network
        network = with_parameters(network, problem.declared_parameters,
                                  jax.tree_util.tree_leaves(network)[0].dtype)
        optimizer = with_parameter_optimizer(optimizer, optax.adam(parameter_schedule(
            tc.parameter_lr or tc.lr, tc.parameter_frozen_steps)))
    weighting, n_cond = registry.build_weighting(config), config.train.condition_batch_size
    samplers = {
        name: registry.build_sampler(config.sampler, cond.domain,
                                     cond.batch_size or config.train.batch_size)
        if name == "pde"  # fixed ic/bc sets: asked for, or a weighting with per-point state (SA)
        else Fixed(cond.domain, cond.batch_size or n_cond, size=cond.batch_size or n_cond)
        if weighting.point_state or config.train.condition_points == "fixed"
        else Uniform(cond.domain, cond.batch_size or n_cond)
        for name, cond in problem.conditions.items()
    }
    trainer = Trainer(problem, samplers, weighting,
                      optimizer,
                      config.train.residual_chunk, registry.build_aggregator(config),
                      refresh_samplers=not config.rounds.enabled)  # rounds refresh per round
    state = trainer.init(network, k_train)
    if with_reference and config.eval.reference_file:  # scattered points from a file
        reference = load_reference(config.eval.reference_file, problem.domain, problem.n_outputs)
    else:  # none: the run trains and logs losses, without rel. L2
        reference = (problem.reference_data() if with_reference and problem.has_reference
                     else None)
    return Run(config, problem, trainer, state, reference)
