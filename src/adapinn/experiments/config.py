"""Typed run configuration: YAML files and `--set key=value` overrides validated into pydantic
models. Every key is documented in the README (section "Configuration").

Resolution order: model defaults <- config file <- preset <- `--set` overrides <- `--seed`.
Sampler, weighting and problem options are free-form here and validated against the fields of
the chosen registry entry (see `adapinn.experiments.registry`), so a new sampler brings its own
options without touching this file.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapinn.errors import ConfigError
from adapinn.nn.spec import NetworkSpec

__all__ = ["ConfigError", "RunConfig", "build_config", "validate"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class _Named(BaseModel):
    """A registry entry chosen by `name`; the other keys are that entry's options."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ProblemConfig(_Named):
    name: str = "burgers"


class SamplerConfig(_Named):
    name: str = "uniform"


class WeightingConfig(_Named):
    name: str = "fixed"


class AggregatorConfig(_Named):
    """How per-term gradients become one: `sum` (the plain loss gradient) or `pcgrad`."""

    name: str = "sum"


class RoundsConfig(_Strict):
    """Adam-then-L-BFGS rounds (RAD, Wu et al. 2023; RSmote): per round `adam_steps` Adam
    steps, then up to `lbfgs_steps` L-BFGS iterations, then every sampler refreshes once."""

    enabled: bool = False
    adam_steps: int = Field(1000, gt=0, description="Adam steps per round")
    lbfgs_steps: int = Field(1000, ge=0, description="L-BFGS iterations per round (at most)")
    lbfgs_tol: float = Field(0.0, ge=0, description="stop a round's L-BFGS early when 100 "
                             "iterations lower the loss by less than this relative amount")


NetworkConfig = NetworkSpec
"""The `network` section: `adapinn.nn.NetworkSpec` (its options live with the networks)."""


class TrainConfig(_Strict):
    steps: int = Field(10_000, ge=0)
    batch_size: int = Field(1024, gt=0, description="collocation points per step for 'pde'")
    condition_batch_size: int = Field(256, gt=0, description="points per step for ic/bc terms")
    condition_points: Literal["fresh", "fixed"] = Field(
        "fresh", description="ic/bc points: fresh uniform draws every step, or one fixed "
        "Sobol set of condition_batch_size points for the whole run (PINNacle's protocol)")
    optimizer: Literal["adam", "soap", "muon"] = Field(
        "adam", description="the network's optimiser (adapinn.train.optim.network_optimizer); "
        "the schedule, grad_clip and the coefficients' Adam apply to each")
    precondition_frequency: int = Field(
        10, gt=0, description="soap: steps between refreshes of the eigenbasis")
    lr: float = Field(1e-3, gt=0)
    warmup_steps: int = Field(0, ge=0)
    decay_steps: int = Field(2000, gt=0)
    decay_rate: float = Field(0.9, gt=0, le=1)
    grad_clip: float | None = Field(None, gt=0)
    parameter_lr: float | None = Field(None, gt=0)
    """Inverse problems: Adam learning rate of the unknown coefficients (None: train.lr)."""
    parameter_frozen_steps: int = Field(0, ge=0)
    """Inverse problems: the coefficients stay at their initial guess for this many steps."""
    lbfgs_steps: int = Field(0, ge=0, description="L-BFGS iterations after Adam, on a fixed set")
    lbfgs_batch_size: int = Field(4096, gt=0)
    eval_every: int = Field(500, gt=0)
    checkpoint_every: int = Field(5000, gt=0)
    scan_steps: int = Field(100, gt=0, description="steps fused per compiled call (upper bound)")
    residual_chunk: int = Field(8192, gt=0, description="points per chunk when scoring pools")
    time_budget_s: float | None = Field(
        None, gt=0, description="stop Adam once training time reaches this (equal-time runs)")
    snapshot_points: int = Field(
        0, ge=0, description="points of a drawn 'pde' batch saved at each eval; 0 = off")
    loggers: list[Literal["wandb", "tensorboard"]] = Field(
        default_factory=list, description="experiment trackers the metrics, config and plots "
        "go to (any of wandb, tensorboard; see adapinn.train.loggers)")
    logger_group: str | None = Field(
        None, description="the trackers' group of runs (compare: the comparison's folder); "
        "the run's name is its folder's")


class EvalConfig(_Strict):
    nt: int = Field(201, gt=1)
    nx: int = Field(512, gt=1)
    reference_file: str | None = None
    """A reference on scattered points (.npz with points, values; or text columns) that
    replaces the problem's own (`adapinn.problems.data.load_reference`)."""


class RunConfig(_Strict):
    problem: ProblemConfig = Field(default_factory=ProblemConfig)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    weighting: WeightingConfig = Field(default_factory=WeightingConfig)
    aggregator: AggregatorConfig = Field(default_factory=AggregatorConfig)
    rounds: RoundsConfig = Field(default_factory=RoundsConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    seed: int = 0


def _merge(base: dict, override: dict, section: str = "") -> dict:
    """Deep-merge `override` into `base`. A sampler, weighting, problem or aggregator section
    whose `name` changes is replaced whole: the old entry's options do not apply to the new
    one. The network section always merges: width, depth and embeddings are shared by every
    architecture, so `network.name=pirate` keeps them."""
    renamed = "name" in override and base.get("name", override["name"]) != override["name"]
    if renamed and section != "network":
        return dict(override)
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, key if not section else f"{section}.{key}")
        else:
            out[key] = value
    return out


def parse_override(item: str) -> dict:
    """'train.steps=100' -> {'train': {'steps': 100}}; the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value (e.g. train.steps=100)")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    out: dict = value
    for part in reversed(key.strip().split(".")):
        if not part:
            raise ConfigError(f"override {item!r} has an empty key part")
        out = {part: out}
    return out


def load_yaml(path: Path, what: str = "config file") -> dict:
    """Read a YAML mapping, with a clear error (naming the file as `what`) when the file is
    missing or malformed."""
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} {str(path)!r} does not parse as YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {str(path)!r} must hold a mapping of sections")
    return data


def build_config(
    base: dict, preset: str | None = None, overrides: list[str] = (), seed: int | None = None
) -> RunConfig:
    """Resolve a raw config dict (optionally with a `presets:` section) into a `RunConfig`."""
    data = dict(base)
    presets = data.pop("presets", {}) or {}
    if preset is not None:
        if preset not in presets:
            valid = ", ".join(sorted(presets)) or "none"
            raise ConfigError(f"unknown preset {preset!r}; this config offers: {valid}")
        data = _merge(data, presets[preset] or {})
    for item in overrides:
        data = _merge(data, parse_override(item))
    if seed is not None:
        data["seed"] = seed
    return validate(data)


def validate(data: dict) -> RunConfig:
    """Validate into a RunConfig, turning pydantic's report into one readable message."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"])
            if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
                lines.append(_unknown_key(tuple(str(p) for p in e["loc"])))
            elif e["type"] == "value_error":  # a range check of a dataclass section
                lines.append(e["msg"].removeprefix("Value error, "))
            else:
                lines.append(f"{key}: {e['msg']} (got {e.get('input')!r})")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def _keys_of(model: Any) -> list[str]:
    """The keys a section (a pydantic model or a dataclass) accepts, in declaration order."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    if dataclasses.is_dataclass(model):
        return [f.name for f in dataclasses.fields(model) if f.init]
    return []


def _unknown_key(loc: tuple[str, ...]) -> str:
    """'unknown section ...' / 'unknown key ...' with the valid choices and the nearest one."""
    if len(loc) == 1:
        valid = [k for k, f in RunConfig.model_fields.items() if _keys_of(f.annotation)]
        scalars = [k for k in RunConfig.model_fields if k not in valid]
        near = difflib.get_close_matches(loc[0], list(RunConfig.model_fields), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return (f"unknown section {loc[0]!r}{hint}; valid sections: {', '.join(valid)}; "
                f"top-level keys: {', '.join(scalars)}")
    key = ".".join(loc)
    field = RunConfig.model_fields.get(loc[0])
    valid = _keys_of(field.annotation) if field is not None and len(loc) == 2 else []
    if not valid:
        return f"unknown key {key!r}"
    near = difflib.get_close_matches(loc[1], valid, n=1)
    hint = f" (did you mean {loc[0] + '.' + near[0]!r}?)" if near else ""
    return f"unknown key {key!r}{hint}; keys of {loc[0]}: {', '.join(valid)}"


def dump(config: RunConfig) -> str:
    """The exact, fully resolved config as YAML (saved with every run)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
