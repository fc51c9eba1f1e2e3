"""Stopping a run on a signal, between chunks."""

from __future__ import annotations

import threading

STOP = threading.Event()
"""Set by SIGINT / SIGTERM (`adapinn.experiments.fit` installs the handler): every phase
stops after the chunk it is running, saves a checkpoint and raises `TrainingInterrupted`.
A flag rather than an exception raised from the handler: an exception raised at an
arbitrary point can land in a `__del__` or a callback, where Python prints and drops it,
and the run went on (a SIGTERM during L-BFGS once left a run training for 20 minutes)."""


def check_stop() -> None:
    """Raise KeyboardInterrupt (caught by the phases) once a stop was requested."""
    if STOP.is_set():
        raise KeyboardInterrupt
