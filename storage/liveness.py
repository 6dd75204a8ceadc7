"""Whether a run marked ``running`` is still alive.

A run whose process died without a ``stop`` document keeps ``running`` in storage. Every reader
(``runs``, ``show``, ``resume``, the GUI) asks :func:`effective_status`, which says
``interrupted`` as soon as that can be known:

- on the host that runs it, by its process: the writer stores the host name, the pid and the
  process's start time as the operating system reports it (Linux: ``/proc/<pid>/stat``, in clock
  ticks since boot, with the boot id; a pid reused by another process has another start time). A
  process that is gone, or is another process now, is a dead run, at once.
- from another host, by the heartbeat (``runs.updated_at``, refreshed at every flush: at least
  every ``flush_interval_s`` of clock time while points arrive, the chamber log's included, and at
  every other document): older than ``HEARTBEAT_STALE_S`` of wall time means dead. The threshold
  covers a quiet wait with no chamber logging (a cycler rest between sparse records).
- runs written before the process was stored (schema 0002) have only the heartbeat.

Where the operating system cannot say (no ``/proc``), the pid's existence is the test.
"""
from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from functools import lru_cache

HEARTBEAT_STALE_S = 10 * 60.0
"""Wall seconds without a heartbeat after which another host calls a run dead."""


def host_name() -> str:
    return socket.gethostname()


def process_started(pid: int) -> str | None:
    """An identity of process ``pid``'s start, or None if no such process runs (or it cannot be
    told: then ``""`` when the process exists)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return _exists_only(pid)
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):  # field 3, state: killed, not yet reaped by its parent
        return None
    return f"{_boot_id()}:{int(fields[19])}"   # field 22: starttime


def _exists_only(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except (PermissionError, OSError):
        pass
    return ""


@lru_cache(maxsize=1)
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def this_process() -> dict:
    """The values a writer stores with its run."""
    pid = os.getpid()
    return {"host": host_name(), "pid": pid, "process_started": process_started(pid) or ""}


def process_alive(host: str | None, pid: int | None, started: str | None) -> bool | None:
    """True/False when this host can tell (the run's process is on this host), else None."""
    if not host or pid is None or host != host_name():
        return None
    now = process_started(int(pid))
    if now is None:
        return False
    return not started or not now or now == started


def effective_status(status: str, updated_at: str | datetime | None, host: str | None = None,
                     pid: int | None = None, started: str | None = None) -> str:
    """``interrupted`` for a ``running`` run whose writer is known to be dead, else ``status``."""
    if status != "running":
        return status
    alive = process_alive(host, pid, started)
    if alive is not None:
        return "running" if alive else "interrupted"
    if not updated_at:
        return status
    if isinstance(updated_at, str):
        updated_at = datetime.fromisoformat(updated_at)
    age = (datetime.now(timezone.utc) - updated_at).total_seconds()
    return "interrupted" if age > HEARTBEAT_STALE_S else status
