"""Experiment tracking: forward the metrics log, the run config and the plots to Weights &
Biases and / or TensorBoard (`train.loggers`).

Every backend is optional and imported only when named; `check_available` says at the start
of a run (not at its first evaluation) which package is missing and how to install it.

    loggers = open_loggers(["tensorboard"], out, config, name="burgers", group=None)
    metrics_log = LoggedMetrics(records.MetricsLog(...), loggers)   # rows go to both
    ...
    loggers.log_images({"convergence": out / "plots" / "convergence.png"})
    loggers.close()

What each backend writes:

* `tensorboard` (tensorboardX): event files in `OUT/tensorboard`, one scalar per numeric
  metrics.jsonl column at the row's step, the config as a text summary (`config`) and as
  hyperparameters (HParams dashboard, scored by `rel_l2` and `loss`), the plots as images.
  The folder mirrors metrics.jsonl: a resumed run rewrites it from the kept rows.
* `wandb`: one W&B run per invocation of the run (a resumed run is a new W&B run named like the
  first, tagged `resumed`, holding the kept rows again), its files under `OUT/wandb` unless
  WANDB_DIR is set. The project is WANDB_PROJECT, else `adapinn`. Offline with
  WANDB_MODE=offline (sync later with `wandb sync OUT/wandb/offline-run-*`); W&B never prompts
  for a login here: without credentials, a run that is not offline fails at start.

Nothing here knows the run configuration's types: the config arrives as a plain dict.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from adapinn.errors import ConfigError

TENSORBOARD_DIR = "tensorboard"
WANDB_DIR = "wandb"
NAMES = ("wandb", "tensorboard")
_PACKAGES = {"wandb": ("wandb",), "tensorboard": ("tensorboardX",)}
"""The modules each logger imports (the writer only: reading events needs `tensorboard`)."""


def check_available(names: Iterable[str]) -> None:
    """Raise ConfigError naming the fix unless every named logger's package imports."""
    for name in names:
        if name not in _PACKAGES:
            raise ConfigError(f"unknown logger {name!r}; choose from {', '.join(NAMES)}")
        for module in _PACKAGES[name]:
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise ConfigError(
                    f"train.loggers names {name!r}, but its package {module!r} is not "
                    f"installed ({err}); install it with: pip install -e \".[{name}]\" (or "
                    f"drop {name!r} from train.loggers)") from None


def numeric(row: Mapping[str, Any]) -> dict[str, float]:
    """The loggable values of a metrics row: its numbers (not the step, the phase, or None)."""
    return {k: float(v) for k, v in row.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'train': {'lr': 1e-3}} -> {'train.lr': 1e-3}; lists and None become text."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, full + "."))
        elif isinstance(value, (bool, int, float, str)):
            out[full] = value
        else:
            out[full] = json.dumps(value)
    return out


class TensorBoardLogger:
    """tensorboardX event files in `OUT/tensorboard`."""

    def __init__(self, out: Path, config: dict, *, name: str, group: str | None):
        from tensorboardX import SummaryWriter
        from tensorboardX.summary import hparams

        self.dir = Path(out) / TENSORBOARD_DIR
        if self.dir.is_dir():  # a resumed run: the kept rows are logged again
            for old in self.dir.glob("events.out.tfevents.*"):
                old.unlink()
        self.writer = SummaryWriter(logdir=str(self.dir), flush_secs=30)
        header = f"run `{name}`" + (f", group `{group}`" if group else "")
        self.writer.add_text("config", f"{header}\n\n```\n{json.dumps(config, indent=1)}\n```")
        hp = flatten(config)
        hp.update({"run": name, "group": group or ""})
        for summary in hparams(hp, {"rel_l2": 0.0, "loss": 0.0}):
            self.writer.file_writer.add_summary(summary)

    def log_row(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def log_images(self, paths: Mapping[str, Path], step: int) -> None:
        from matplotlib import image

        for key, path in paths.items():
            pixels = image.imread(str(path))  # HxWx{3,4} floats in [0, 1] for a PNG
            self.writer.add_image(f"plots/{key}", pixels[..., :3], step, dataformats="HWC")

    def close(self, failed: bool = False) -> None:
        self.writer.close()


class WandbLogger:
    """One W&B run; offline with WANDB_MODE=offline."""

    def __init__(self, out: Path, config: dict, *, name: str, group: str | None,
                 resumed: bool = False):
        import wandb

        self.wandb = wandb
        _check_login(wandb)
        directory = None  # W&B writes DIRECTORY/wandb/; WANDB_DIR, where set, decides
        if not os.environ.get("WANDB_DIR"):
            directory = Path(out)
            directory.mkdir(parents=True, exist_ok=True)
        try:
            self.run = wandb.init(
                project=os.environ.get("WANDB_PROJECT", "adapinn"), name=name, group=group,
                config=config, dir=None if directory is None else str(directory),
                tags=["resumed"] if resumed else None, reinit="create_new",
                settings=wandb.Settings(console="off"))
        except Exception as err:  # no credentials, no network: say what to do, at start
            raise ConfigError(
                f"train.loggers: W&B could not start a run ({type(err).__name__}: {err}); "
                "log in (`wandb login`), or run offline with WANDB_MODE=offline and sync "
                "later (`wandb sync`)") from err

    def log_row(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def log_images(self, paths: Mapping[str, Path], step: int) -> None:
        self.run.log({f"plots/{k}": self.wandb.Image(str(p)) for k, p in paths.items()},
                     step=step)

    def close(self, failed: bool = False) -> None:
        self.run.finish(exit_code=1 if failed else 0)


def _check_login(wandb) -> None:
    """Outside offline / disabled mode, refuse to start without W&B credentials (an API key in
    WANDB_API_KEY or ~/.netrc) instead of prompting for one."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "dryrun", "disabled"):
        return
    if "prompt" not in inspect.signature(wandb.login).parameters:
        return  # an older wandb: it raises by itself when there is no terminal to prompt on
    if not wandb.login(prompt=False, verify=False):
        raise ConfigError(
            "train.loggers names 'wandb', but W&B has no credentials: set WANDB_API_KEY, run "
            "`wandb login`, or log offline with WANDB_MODE=offline (sync later with "
            "`wandb sync`)")


_BACKENDS = {"tensorboard": TensorBoardLogger, "wandb": WandbLogger}


class Loggers:
    """The open loggers of one run, behind one interface (no loggers: every call is a no-op).

    Steps only grow: a row at a step below the last one logged (none in a run's log) goes to
    the step logged last, as W&B drops it otherwise."""

    def __init__(self, backends: Sequence[Any] = ()):
        self.backends = list(backends)
        self.step = 0

    def __bool__(self) -> bool:
        return bool(self.backends)

    def log_row(self, row: Mapping[str, Any]) -> None:
        """Log the numeric values of a metrics.jsonl row at `row["step"]` (None skipped)."""
        if not self.backends:
            return
        self.step = max(self.step, int(row.get("step", self.step)))
        values = numeric(row)
        for backend in self.backends:
            backend.log_row(values, self.step)

    def log_images(self, paths: Mapping[str, Path]) -> None:
        """Log image files (the run's plots) at the last step; missing files are skipped."""
        present = {k: Path(p) for k, p in paths.items() if Path(p).is_file()}
        for backend in self.backends:
            if present:
                backend.log_images(present, self.step)

    def close(self, failed: bool = False) -> None:
        """Close every backend (each is tried, the first error is raised); `failed` marks the
        run as failed where the backend knows runs that fail (W&B)."""
        error = None
        for backend in self.backends:
            try:
                backend.close(failed)
            except Exception as err:  # close the others all the same
                error = error or err
        self.backends = []
        if error is not None:
            raise error

    def __enter__(self) -> Loggers:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(failed=kind is not None)


def open_loggers(names: Iterable[str], out: Path, config: dict, *, name: str,
                 group: str | None = None, resumed: bool = False) -> Loggers:
    """Open the named loggers (`check_available` first); `config` is logged as the run's
    hyperparameters, `name` and `group` name the run and its comparison."""
    names = list(dict.fromkeys(names))
    check_available(names)
    opened: list[Any] = []
    try:
        for n in names:
            extra = {"resumed": resumed} if n == "wandb" else {}
            opened.append(_BACKENDS[n](Path(out), config, name=name, group=group, **extra))
    except BaseException:
        Loggers(opened).close()
        raise
    return Loggers(opened)


class LoggedMetrics:
    """A metrics log (`records.MetricsLog`) whose every appended row also goes to `loggers`;
    the rows it already holds (a resumed run's kept rows) are logged when it is made."""

    def __init__(self, log: Any, loggers: Loggers):
        self.log, self.loggers = log, loggers
        for row in log.rows:
            loggers.log_row(row)

    def append(self, row: dict) -> None:
        self.log.append(row)
        self.loggers.log_row(row)

    @property
    def rows(self) -> list[dict]:
        return self.log.rows

    @property
    def best(self) -> dict | None:
        return self.log.best

    def __getattr__(self, name: str):  # anything else of the wrapped log (its path)
        return getattr(self.log, name)
