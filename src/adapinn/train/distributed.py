"""Multi-process (multi-host) runs on JAX's own distributed runtime.

Every process runs the same `adapinn run` command, one process per host (or per GPU):

    adapinn run burgers --coordinator HOST:PORT --num-processes N --process-id I

(each process then uses all its local devices, or those in JAX_LOCAL_DEVICE_IDS), or, without
these flags, as one task of several started by a launcher that JAX recognises by
itself (`jax.distributed.initialize()` with no arguments):

* SLURM (`srun`): SLURM_JOB_ID, SLURM_STEP_NODELIST, SLURM_NTASKS (> 1), SLURM_PROCID and
  SLURM_LOCALID. The coordinator is the first node of the step, on a port derived from the job
  id (override with JAX_COORDINATOR_PORT); on GPUs each task then sees the one GPU numbered by
  SLURM_LOCALID.
* Open MPI 4 (`mpirun`): OMPI_MCA_orte_hnp_uri, OMPI_COMM_WORLD_SIZE (> 1), OMPI_COMM_WORLD_RANK.

`initialize` waits at most `timeout_s` seconds for the coordinator and the other processes,
then ends the process with a one-line error (exit status 2), never a hang. Afterwards
`jax.devices()` lists the devices of all processes, the data mesh spans them (see
`adapinn.train.sharding`), every process runs the same compiled step on its share of the global
batch, and only process 0 writes the run folder (`is_main_process`).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Mapping

import jax

from adapinn.errors import ConfigError
from adapinn.train import records

SLURM_VARS = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID",
              "SLURM_LOCALID")
OPENMPI_VARS = ("OMPI_MCA_orte_hnp_uri", "OMPI_COMM_WORLD_SIZE")
log = logging.getLogger("adapinn")
_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+):(\d{1,5})$")


class DistributedError(RuntimeError):
    """This process could not join the distributed job (coordinator unreachable, timeout)."""


def launcher(environ: Mapping[str, str] | None = None) -> str | None:
    """'slurm' or 'openmpi' when this process is one of several tasks started by that
    launcher (so `jax.distributed.initialize()` can find its peers alone), else None."""
    env = os.environ if environ is None else environ
    if all(v in env for v in SLURM_VARS) and _int(env["SLURM_NTASKS"]) > 1:
        return "slurm"
    if all(v in env for v in OPENMPI_VARS) and _int(env["OMPI_COMM_WORLD_SIZE"]) > 1:
        return "openmpi"
    return None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def check_flags(coordinator: str | None, num_processes: int | None,
                process_id: int | None) -> None:
    """Raise ConfigError unless the three flags are given together and are consistent."""
    if None in (coordinator, num_processes, process_id):
        raise ConfigError(
            "--coordinator, --num-processes and --process-id go together: give all three "
            "(or none, under a SLURM / Open MPI launcher that JAX detects by itself)"
        )
    match = _ADDRESS.match(coordinator)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise ConfigError(f"--coordinator {coordinator!r} is not of the form HOST:PORT "
                          "(e.g. 10.0.0.1:1234)")
    if num_processes < 1:
        raise ConfigError(f"--num-processes must be at least 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise ConfigError(f"--process-id must be in 0..{num_processes - 1}, got {process_id}")


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, timeout_s: float = 120,
               environ: Mapping[str, str] | None = None) -> bool:
    """Join the distributed job, if this process is part of one; call before any JAX work.

    JAX's runtime aborts the process (SIGABRT, no Python exception) when the coordinator
    cannot be reached in time, so a watchdog thread ends the process first, after `timeout_s`
    seconds, with a one-line explanation on stderr and exit status 2.

    Args:
        coordinator: "HOST:PORT" of process 0's coordinator service (all processes agree).
        num_processes: number of processes in the job.
        process_id: this process's rank, 0..num_processes-1; 0 hosts the coordinator.
        timeout_s: how long to wait for the coordinator and the other processes.
        environ: environment to inspect for a launcher (default os.environ).

    Returns:
        True if `jax.distributed.initialize` ran, False for a single-process run.
    """
    if (coordinator, num_processes, process_id) == (None, None, None):
        found = launcher(environ)
        if found is None:
            return False
        kwargs: dict = {}
        where = f"the coordinator that JAX's {found} detection chose"
    else:
        check_flags(coordinator, num_processes, process_id)
        # The flags say everything: no launcher detection, which would otherwise limit each
        # process to one GPU (SLURM_LOCALID) under srun.
        kwargs = {"coordinator_address": coordinator, "num_processes": num_processes,
                  "process_id": process_id, "cluster_detection_method": "deactivate"}
        where = f"coordinator {coordinator} (as process {process_id} of {num_processes})"
    if jax.config.jax_cpu_collectives_implementation is None:
        # CPU devices of different processes talk through gloo (the default in recent JAX).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    log.info("joining the distributed job through %s; waiting at most %g s", where, timeout_s)
    watchdog = threading.Timer(timeout_s, _give_up, (where, coordinator, process_id, timeout_s))
    watchdog.daemon = True
    watchdog.start()
    try:
        # JAX's own limit is a little longer, so that the watchdog's clear message comes first.
        jax.distributed.initialize(**kwargs, initialization_timeout=int(timeout_s) + 10)
    except Exception as err:  # JAX raises its runtime's own error types
        raise DistributedError(f"could not join the distributed job through {where}: "
                               f"{err}") from err
    finally:
        watchdog.cancel()
    return True


def _give_up(where: str, coordinator: str | None, process_id: int | None,
             timeout_s: float) -> None:
    """Watchdog: explain why the job did not assemble, then end this process (status 2)."""
    answer = _probe(coordinator) if coordinator and process_id else None
    if answer is not None:
        reason = (f"nothing answers at the coordinator {coordinator} ({answer}). Start process "
                  "0 with the same --coordinator, check the address and port, the firewall "
                  "and any HTTP(S)_PROXY variables")
    else:
        reason = ("not every process joined. Start all processes (--process-id 0 to N-1) with "
                  "the same --coordinator and --num-processes")
    sys.stdout.flush()
    print(f"adapinn: error: could not join the distributed job through {where} within "
          f"{timeout_s:g} s: {reason}, or raise --init-timeout.", file=sys.stderr, flush=True)
    os._exit(2)


def _probe(coordinator: str) -> str | None:
    """None if a TCP connection to HOST:PORT succeeds, else the reason it failed."""
    host, port = coordinator.rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
            return None
    except OSError as err:
        return err.strerror or type(err).__name__


def is_main_process() -> bool:
    """True on process 0, the one that writes the run folder (and on single-process runs)."""
    return jax.process_index() == 0


class MemoryLog(records.MetricsLog):
    """The metrics log of a process that writes no files (every process but 0)."""

    def __init__(self) -> None:  # no file: deliberately skips MetricsLog.__init__
        self.path = None
        self.rows: list[dict] = []

    def append(self, row: dict) -> None:
        self.rows.append(row)
