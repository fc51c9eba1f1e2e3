"""Errors a user can fix. The CLI prints them as one line (exit code 2), never a traceback."""


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and the fix."""


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite; the last good state was kept as the checkpoint."""


class TrainingInterrupted(RuntimeError):
    """A signal (Ctrl-C, SIGTERM) stopped training; a checkpoint of the last completed chunk
    was saved, so the run resumes from there."""
