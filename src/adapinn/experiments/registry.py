"""The one place where names from configs and the CLI become objects.

A new sampler, weighting scheme or problem is one new file plus one entry here. Options are
checked against the entry's own fields (an Equinox module's dataclass fields, or a factory
function's keyword arguments) and converted with pydantic, so a typo or a wrong type gets an
error that names the key and lists the valid ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import inspect
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from adapinn.experiments.config import ConfigError, RunConfig, SamplerConfig
from adapinn.problems import Problem, allen_cahn, burgers
from adapinn.problems.dispersive_nd import dispersive_nd
from adapinn.problems.elliptic_peak import elliptic_peak
from adapinn.problems.helmholtz import helmholtz
from adapinn.problems.kovasznay import kovasznay, kovasznay_inverse
from adapinn.problems.ns_cylinder import ns_cylinder, ns_cylinder_inverse
from adapinn.problems.pinnacle import (
    pinnacle_burgers1d,
    pinnacle_heat2d_ms,
    pinnacle_heat_nd,
    pinnacle_ns2d_c,
    pinnacle_poisson2d_c,
    pinnacle_poisson_nd,
    pinnacle_wave1d,
)
from adapinn.problems.poisson_peak import poisson_peak
from adapinn.problems.reaction_diffusion_nd import reaction_diffusion_nd
from adapinn.problems.twobody import twobody_allen_cahn, twobody_poisson, twobody_sine_gordon
from adapinn.samplers import (
    GLF,
    R3,
    RAD,
    RARD,
    RARG,
    AbstractSampler,
    CausalR3,
    Fixed,
    HardBank,
    RSmote,
    StreamingHardBank,
    Uniform,
)
from adapinn.weighting import (
    NTK,
    RBA,
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
    "kovasznay": kovasznay,
    "kovasznay_inverse": kovasznay_inverse,
    "ns_cylinder": ns_cylinder,
    "ns_cylinder_inverse": ns_cylinder_inverse,
    "helmholtz": helmholtz,
    "poisson_peak": poisson_peak,
    "pinnacle_burgers1d": pinnacle_burgers1d,
    "pinnacle_poisson2d_c": pinnacle_poisson2d_c,
    "pinnacle_wave1d": pinnacle_wave1d,
    "pinnacle_heat2d_ms": pinnacle_heat2d_ms,
    "pinnacle_ns2d_c": pinnacle_ns2d_c,
    "pinnacle_poisson_nd": pinnacle_poisson_nd,
    "pinnacle_heat_nd": pinnacle_heat_nd,
    "twobody_poisson": twobody_poisson,
    "twobody_allen_cahn": twobody_allen_cahn,
    "twobody_sine_gordon": twobody_sine_gordon,
    "elliptic_peak": elliptic_peak,
    "reaction_diffusion_nd": reaction_diffusion_nd,
    "dispersive_nd": dispersive_nd,
}
SAMPLERS: dict[str, type[AbstractSampler]] = {
    "uniform": Uniform,
    "fixed": Fixed,
    "hardbank": HardBank,
    "hardbank_stream": StreamingHardBank,
    "rad": RAD,
    "rar_g": RARG,
    "rar_d": RARD,
    "rsmote": RSmote,
    "glf": GLF,
    "r3": R3,
    "causal_r3": CausalR3,
}
WEIGHTINGS: dict[str, type[AbstractWeighting]] = {
    "fixed": FixedWeights,
    "gradnorm": GradNorm,
    "ntk": NTK,
    "ema_balance": EMABalance,
    "causal": Causal,
    "pointwise_gradnorm": PointwiseGradNorm,
    "sa": SelfAdaptive,
    "rba": RBA,
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


def is_problem_file(name: str) -> bool:
    """`name` is `path/to/file.py:factory` (a problem defined in a Python file)."""
    path, sep, factory = name.rpartition(":")
    return bool(sep) and path.endswith(".py") and factory.isidentifier()


def is_user_problem(name: str) -> bool:
    """Neither a registered problem nor a problem file: a `Problem` passed to `fit` itself."""
    return name not in PROBLEMS and not is_problem_file(name)


def problem_file(name: str) -> dict[str, str]:
    """{"path": absolute path, "sha256": content hash} of a problem file (run records)."""
    path = Path(name.rpartition(":")[0]).resolve()
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


_PROBLEM_MODULES: dict[tuple[str, int, int], Any] = {}
"""Imported problem files by (resolved path, mtime_ns, size): a run completes, checks and
builds its config, each asking for the factory; the file runs once (again after an edit)."""


def _problem_module(path: Path) -> Any:
    """The problem file `path`, imported once per version of the file."""
    info = path.stat()
    key = (str(path.resolve()), info.st_mtime_ns, info.st_size)
    if key not in _PROBLEM_MODULES:
        digest = hashlib.sha256(key[0].encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(f"adapinn_problem_{digest}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # the user's file: report where it failed
            raise ConfigError(f"problem file {str(path)!r} failed to import: "
                              f"{type(err).__name__}: {err}") from err
        _PROBLEM_MODULES[key] = module
    return _PROBLEM_MODULES[key]


def problem_factory(name: str) -> Callable[..., Problem]:
    """The registered factory `name`, or the function `factory` of `file.py:factory`, whose
    keyword arguments are the problem's options. Errors name the file and what is missing."""
    if not is_problem_file(name):
        return lookup(PROBLEMS, "problem", name)
    file, _, attr = name.rpartition(":")
    path = Path(file)
    if not path.is_file():
        raise ConfigError(f"problem file {file!r} not found (problem.name={name!r}; a path "
                          "relative to the current folder, or absolute)")
    module = _problem_module(path)
    factory = getattr(module, attr, None)
    if not callable(factory):
        found = sorted(n for n, v in vars(module).items()
                       if callable(v) and not n.startswith("_") and inspect.isfunction(v))
        raise ConfigError(f"problem file {file!r} has no function {attr!r}; its functions: "
                          f"{', '.join(found) or 'none'}")
    return factory


def build_problem(config: RunConfig) -> Problem:
    name = config.problem.name
    factory = problem_factory(name)
    options = validate_options(factory, "problem", name, config.problem.options)
    if "nt" in option_types(factory):
        options = {"nt": config.eval.nt, "nx": config.eval.nx, **options}
    problem = factory(**options)
    if not isinstance(problem, Problem):
        raise ConfigError(f"problem {name!r} returned {type(problem).__name__}, not an "
                          "adapinn Problem")
    return problem


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


_EVAL_OPTIONS = {"nt", "nx"}
"""Problem options that `build_problem` fills from the `eval` section, not the problem's own."""


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a registry entry: its config key, type, default and meaning."""

    name: str
    type: str
    default: Any = dataclasses.MISSING  # MISSING: required
    help: str = ""

    def __str__(self) -> str:
        default = "required" if self.default is dataclasses.MISSING else f"{self.default!r}"
        text = f"{self.name}: {self.type} = {default}"
        return f"{text}  ({self.help})" if self.help else text


@dataclasses.dataclass(frozen=True)
class Entry:
    """One thing `adapinn list` shows: a name, its one-line description and its options."""

    name: str
    summary: str
    options: tuple[Option, ...] = ()


def _type_name(tp: Any) -> str:
    """int, float, 'a'|'b', list[str], ...: a type as a user writes it."""
    if typing.get_origin(tp) is typing.Literal:
        return "|".join(str(a) for a in typing.get_args(tp))
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    text = str(tp).replace("typing.", "").replace("adapinn.weighting.base.", "")
    return text.replace("tuple[AbstractWeighting, ...]", "list of {name: ...} schemes")


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _raw_defaults(entry: Any) -> dict[str, Any]:
    """The declared defaults of an entry's options (dataclass field defaults or factories,
    or a factory function's keyword defaults); options without one are left out."""
    out: dict[str, Any] = {}
    if dataclasses.is_dataclass(entry):
        for f in dataclasses.fields(entry):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
    else:
        for p in inspect.signature(entry).parameters.values():
            if p.default is not inspect.Parameter.empty:
                out[p.name] = p.default
    return out


def option_defaults(entry: Any, exclude: set[str] = frozenset()) -> dict[str, Any]:
    """The defaults of an entry's user-settable options as plain YAML values that validate
    against the option's type (a stored form such as FixedWeights' `()` becomes `{}`)."""
    types, raw = option_types(entry), _raw_defaults(entry)
    out = {}
    for name, tp in types.items():
        if name in exclude or name not in raw:
            continue
        value = raw[name]
        for candidate in (value, *_conversions(value)):
            adapter = TypeAdapter(tp)
            try:
                checked = adapter.validate_python(candidate)
            except (ValidationError, TypeError, ValueError):
                continue
            out[name] = adapter.dump_python(checked, mode="json")
            break
    return out


def _conversions(value: Any) -> list[Any]:
    """Other forms a stored default may be written in (pairs -> dict, tuple -> list)."""
    out = []
    for convert in (dict, list):
        with contextlib.suppress(TypeError, ValueError):
            out.append(convert(value))
    return out


def entry_options(entry: Any, exclude: set[str] = frozenset()) -> tuple[Option, ...]:
    """Every user-settable option of an entry with its type and default (MISSING: required)."""
    defaults = option_defaults(entry, exclude)
    return tuple(Option(n, _type_name(t), defaults.get(n, dataclasses.MISSING))
                 for n, t in option_types(entry).items() if n not in exclude)


def _section_options(model: type, prefix: str, names: typing.Iterable[str]) -> tuple:
    """Options of a config section (a pydantic model) with their defaults and descriptions."""
    out = []
    for name in names:
        field = model.model_fields[name]
        default = field.get_default(call_default_factory=True)
        out.append(Option(f"{prefix}.{name}", _type_name(field.annotation), default,
                          field.description or ""))
    return tuple(out)


NETWORK_SUMMARIES = {
    "mlp": "Fully connected network: depth hidden layers of width units.",
    "modified_mlp": "Modified MLP (Wang, Teng, Perdikaris 2021): two encoders gate every "
                    "hidden layer.",
    "pirate": "PirateNet (Wang et al. 2024): gated residual blocks with adaptive skip "
              "connections (depth = blocks).",
    "siren": "SIREN (Sitzmann et al. 2020): sine activations, frequency siren_omega0.",
}
LOGGER_SUMMARIES = {
    "wandb": "Weights & Biases: metrics, config and plots (pip install -e \".[wandb]\"; "
             "WANDB_MODE=offline).",
    "tensorboard": "TensorBoard event files in RUN/tensorboard (pip install -e "
                   "\".[tensorboard]\").",
}


def _protocols() -> list[Entry]:
    from adapinn.experiments.config import RoundsConfig, TrainConfig

    adam = ("steps", "batch_size", "condition_batch_size", "lr", "warmup_steps",
            "decay_steps", "decay_rate", "grad_clip", "time_budget_s")
    return [
        Entry("adam", "Adam steps (always on): linear warm-up, then lr * rate^(step / "
              "decay_steps); stops at train.steps or train.time_budget_s.",
              _section_options(TrainConfig, "train", adam)),
        Entry("lbfgs", "L-BFGS finish after Adam on a fixed set of points; on when "
              "train.lbfgs_steps > 0.",
              _section_options(TrainConfig, "train", ("lbfgs_steps", "lbfgs_batch_size"))),
        Entry("rounds", "Adam-then-L-BFGS rounds (RAD / RSmote protocol); on with "
              "rounds.enabled=true, samplers refresh once per round.",
              _section_options(RoundsConfig, "rounds", RoundsConfig.model_fields)),
    ]


def describe() -> dict[str, list[Entry]]:
    """Everything `adapinn list` prints: each registry's entries (sorted by name) with their
    one-line descriptions and options (type and default)."""
    from adapinn.experiments.config import NetworkConfig, TrainConfig
    from adapinn.experiments.presets import DEFAULT_PRESET, preset_names

    def entries(registry: Mapping[str, Any], exclude: set[str] = frozenset()) -> list[Entry]:
        return [Entry(n, _first_line(e), entry_options(e, exclude))
                for n, e in sorted(registry.items())]

    network_options = tuple(o for o in entry_options(NetworkConfig) if o.name != "name")
    networks = [Entry(n, NETWORK_SUMMARIES.get(n, ""), network_options) for n in NETWORKS]
    presets = []
    for item in preset_names():
        config, preset = item.split(":", 1)
        default = " (the default)" if preset == DEFAULT_PRESET else ""
        presets.append(Entry(item, f"adapinn run {config} --preset {preset}{default}"))
    logger_help = TrainConfig.model_fields["logger_group"].description or ""
    loggers = [Entry(n, LOGGER_SUMMARIES[n],
                     (Option("train.logger_group", "str | None", None, logger_help),))
               for n in typing.get_args(typing.get_args(
                   TrainConfig.model_fields["loggers"].annotation)[0])]
    return {
        "problems": entries(PROBLEMS, _EVAL_OPTIONS),
        "samplers": entries(SAMPLERS),
        "weightings": entries(WEIGHTINGS),
        "aggregators": entries(AGGREGATORS),
        "networks": networks,
        "protocols": _protocols(),
        "loggers": loggers,
        "presets": presets,
    }


SELECTED_BY = {
    "problems": "problem.name", "samplers": "sampler.name", "weightings": "weighting.name",
    "aggregators": "aggregator.name", "networks": "network.name", "loggers": "train.loggers",
    "presets": "--preset",
}
"""The config key (or flag) that picks an entry of each kind."""


def complete(config: RunConfig, problem: bool = True) -> RunConfig:
    """`config` with every named section's options filled in: the chosen problem's, sampler's,
    weighting's (each scheme of a `chain` too) and aggregator's defaults, given values kept.
    The result is the exact config a run uses (saved as config.yaml); completing twice
    changes nothing. `problem=False` leaves the problem section as it is (a user-defined
    problem replaces it). Unknown names raise the ConfigError that lists the valid ones."""
    from adapinn.experiments.config import validate

    data = config.model_dump(mode="json")
    if problem:
        factory = problem_factory(config.problem.name)
        data["problem"] = {**option_defaults(factory, _EVAL_OPTIONS), **data["problem"]}
    sampler = lookup(SAMPLERS, "sampler", config.sampler.name)
    data["sampler"] = {**option_defaults(sampler), **data["sampler"]}
    data["weighting"] = _complete_weighting(data["weighting"])
    aggregator = lookup(AGGREGATORS, "aggregator", config.aggregator.name)
    data["aggregator"] = {**option_defaults(aggregator), **data["aggregator"]}
    return validate(data)


def _complete_weighting(spec: Any) -> Any:
    """A weighting spec with its defaults; a chain's schemes each completed."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        return spec  # weighting_from_spec reports it
    cls = lookup(WEIGHTINGS, "weighting", spec["name"])
    if cls is Chain:
        schemes = spec.get("schemes")
        if isinstance(schemes, list):
            return {**spec, "schemes": [_complete_weighting(s) for s in schemes]}
        return spec
    return {"name": spec["name"], **option_defaults(cls), **spec}
