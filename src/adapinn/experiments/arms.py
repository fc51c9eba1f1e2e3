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
    """One run of the comparison; `name` labels an arm of an arms file (`compare.load_arms`)."""

    sampler: Spec
    weighting: Spec | None
    seed: int
    name: str | None = None

    @property
    def group(self) -> str:
        """What the arm compares (seeds are replicates of a group)."""
        if self.name is not None:
            return self.name
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
    equal_time: bool = False
    """With budget_steps: the first group's arms run the steps, every other arm gets the
    training time of its `reference` arm (`compare`)."""
    at_steps: tuple[int, ...] = ()
    """Extra report columns: rel. L2 at these steps."""
    targets: tuple[float, ...] = ()
    """Extra report columns: training seconds until rel. L2 first reached each target."""
    command: str = ""
    status: dict[Arm, str] = field(default_factory=dict)

    def reference(self, arm: Arm) -> Arm | None:
        """The arm whose training time is `arm`'s budget under `equal_time`: the first
        group's arm with the same seed (and weighting, where it has one); None for those
        arms themselves and without `equal_time`."""
        first = [a for a in self.arms if a.group == self.arms[0].group]
        if not self.equal_time or arm in first:
            return None
        same_seed = [a for a in first if a.seed == arm.seed]
        return next((a for a in same_seed if a.weighting == arm.weighting), same_seed[0])
