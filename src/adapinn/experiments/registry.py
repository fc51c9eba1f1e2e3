"""The one place where names from configs and the CLI become objects.

A new sampler, weighting scheme or problem is one new file plus one entry here. Options are
checked against the entry's own fields (an Equinox module's dataclass fields, or a factory
function's keyword arguments) and converted with pydantic, so a typo or a wrong type gets an
error that names the key and lists the valid ones.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from adapinn.experiments.config import ConfigError, RunConfig, SamplerConfig
from adapinn.problems import Problem, allen_cahn, burgers
from adapinn.samplers import (
    GLF,
    RAD,
    RARD,
    RARG,
    AbstractSampler,
    Fixed,
    HardBank,
    RSmote,
    Uniform,
)
from adapinn.weighting import (
    NTK,
    AbstractWeighting,
    Causal,
    EMABalance,
    FixedWeights,
    GradNorm,
    PointwiseGradNorm,
    SelfAdaptive,
)
from adapinn.weighting.chain import Chain
from adapinn.weighting.surgery import PCGrad, Sum

PROBLEMS: dict[str, Callable[..., Problem]] = {
    "burgers": burgers,
    "allen_cahn": allen_cahn,
}
SAMPLERS: dict[str, type[AbstractSampler]] = {
    "uniform": Uniform,
    "fixed": Fixed,
    "hardbank": HardBank,
    "rad": RAD,
    "rar_g": RARG,
    "rar_d": RARD,
    "rsmote": RSmote,
    "glf": GLF,
}
WEIGHTINGS: dict[str, type[AbstractWeighting]] = {
    "fixed": FixedWeights,
    "gradnorm": GradNorm,
    "ntk": NTK,
    "ema_balance": EMABalance,
    "causal": Causal,
    "pointwise_gradnorm": PointwiseGradNorm,
    "sa": SelfAdaptive,
    "chain": Chain,
}
AGGREGATORS: dict[str, type[Sum | PCGrad]] = {
    "sum": Sum,
    "pcgrad": PCGrad,
}
NETWORKS: tuple[str, ...] = typing.get_args(
    typing.get_type_hints(RunConfig.model_fields["network"].annotation)["name"]
)

# Filled in by the samplers/weightings themselves, never by the user.
_CONTEXT_FIELDS = {"domain", "batch_size"}


def lookup(registry: Mapping[str, Any], kind: str, name: str) -> Any:
    """The entry called `name`, or a ConfigError that lists the valid names."""
    if name not in registry:
        valid = ", ".join(sorted(registry))
        raise ConfigError(f"unknown {kind} {name!r}; valid {kind}s: {valid}")
    return registry[name]


def option_types(entry: Any) -> dict[str, Any]:
    """User-settable options of a registry entry and their annotated types."""
    if dataclasses.is_dataclass(entry):
        hints = typing.get_type_hints(entry)
        names = [f.name for f in dataclasses.fields(entry) if f.init]
    else:
        hints = typing.get_type_hints(entry)
        names = list(inspect.signature(entry).parameters)
    return {n: hints.get(n, Any) for n in names if n not in _CONTEXT_FIELDS}


def validate_options(entry: Any, kind: str, name: str, options: dict[str, Any]) -> dict:
    """Check option names and convert their values to the declared types."""
    types = option_types(entry)
    out = {}
    for key, value in options.items():
        if key not in types:
            valid = ", ".join(sorted(types)) or "none"
            raise ConfigError(f"{kind} {name!r} has no option {key!r}; its options: {valid}")
        try:
            out[key] = TypeAdapter(types[key]).validate_python(value)
        except ValidationError as err:
            msg = err.errors()[0]["msg"]
            raise ConfigError(f"{kind}.{key}: {msg} (got {value!r})") from None
    return out


def build_problem(config: RunConfig) -> Problem:
    factory = lookup(PROBLEMS, "problem", config.problem.name)
    options = validate_options(factory, "problem", config.problem.name, config.problem.options)
    if "nt" in option_types(factory):
        options = {"nt": config.eval.nt, "nx": config.eval.nx, **options}
    return factory(**options)


def build_sampler(cfg: SamplerConfig, domain, batch_size: int) -> AbstractSampler:
    cls = lookup(SAMPLERS, "sampler", cfg.name)
    options = validate_options(cls, "sampler", cfg.name, cfg.options)
    try:
        return cls(domain=domain, batch_size=batch_size, **options)
    except ValueError as err:
        raise ConfigError(f"sampler {cfg.name!r}: {err}") from None


def build_weighting(config: RunConfig) -> AbstractWeighting:
    return weighting_from_spec({"name": config.weighting.name, **config.weighting.options})


def weighting_from_spec(spec: dict[str, Any]) -> AbstractWeighting:
    """A weighting from `{name: ..., **options}`; `chain` builds its `schemes` the same way."""
    spec = dict(spec)
    name = spec.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"a weighting needs a `name`; got {spec!r}")
    cls = lookup(WEIGHTINGS, "weighting", name)
    if cls is Chain:
        schemes = spec.pop("schemes", None)
        if not isinstance(schemes, list) or spec:
            raise ConfigError("chain takes one option, `schemes`: a list of {name: ...} entries")
        try:
            return Chain(tuple(weighting_from_spec(s) for s in schemes))
        except ValueError as err:
            raise ConfigError(f"weighting 'chain': {err}") from None
    return cls(**validate_options(cls, "weighting", name, spec))


def build_aggregator(config: RunConfig) -> Sum | PCGrad | None:
    """The per-term gradient aggregator; None for a plain `sum` (the one-backward-pass path)."""
    cfg = config.aggregator
    cls = lookup(AGGREGATORS, "aggregator", cfg.name)
    options = validate_options(cls, "aggregator", cfg.name, cfg.options)
    if cls is Sum:
        return None
    return cls(**options)


def describe() -> dict[str, list[str]]:
    """Everything `adapinn list` prints."""
    from adapinn.experiments.presets import preset_names

    return {
        "problems": sorted(PROBLEMS),
        "samplers": sorted(SAMPLERS),
        "weightings": sorted(WEIGHTINGS),
        "networks": list(NETWORKS),
        "presets": preset_names(),
    }
