"""The arms of a comparison: what each compares (a sampler and a weighting, each a registry
name with options), its seed, its folder, and the plan that holds them with their configs and
the budget. Shared by `compare` (which runs them) and `report` (which reads them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from adapinn.experiments.config import ConfigError, RunConfig, parse_override

ARMS = "arms"
SPEC_FILE = "arm.yaml"
LOG_FILE = "compare.log"
CACHE = ".jax_cache"
DEFAULT_SNAPSHOT_POINTS = 256
UNBOUNDED_STEPS = 1_000_000_000
"""`train.steps` of an equal-time arm: the time budget, not the step count, ends it."""


@dataclass(frozen=True)
class Spec:
    """A registry name with options: "hardbank:p_max=0.3" -> name, ("p_max=0.3",)."""

    name: str
    options: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Spec:
        name, *options = [part.strip() for part in text.strip().split(":")]
        if not name:
            raise ConfigError(f"empty name in {text!r}")
        for item in options:
            parse_override(item)  # raises a ConfigError naming the bad item
        return cls(name, tuple(options))

    @property
    def label(self) -> str:
        return ":".join((self.name, *self.options))


@dataclass(frozen=True)
class Arm:
    """One run of the comparison."""

    sampler: Spec
    weighting: Spec | None
    seed: int

    @property
    def group(self) -> str:
        """What the arm compares (seeds are replicates of a group)."""
        if self.weighting is None:
            return self.sampler.label
        return f"{self.sampler.label} / {self.weighting.label}"

    @property
    def folder(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.group.replace(" / ", "__"))
        return f"{slug}__s{self.seed}"


@dataclass
class Plan:
    """What to run: arms with their resolved configs, and the budget."""

    problem: str
    arms: list[Arm]
    configs: dict[Arm, RunConfig]
    budget_steps: int | None = None
    budget_seconds: float | None = None
    command: str = ""
    status: dict[Arm, str] = field(default_factory=dict)
