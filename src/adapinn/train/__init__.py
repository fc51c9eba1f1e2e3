"""Training: state, the jitted step, the fit loop, checkpoints and records."""

from adapinn.train.state import TrainState
from adapinn.train.trainer import Trainer

__all__ = ["TrainState", "Trainer"]
