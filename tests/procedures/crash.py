"""A run that dies like a SIGKILLed process, and its resume, for the resume tests.

The run goes on in a forked child, which ``os._exit``s (no clean-up, no flush: what SIGKILL
leaves) when its subscriber ``die(name, doc)`` says so.
"""
from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Callable

from config.documents import RunStatus
from config.station import load_station
from procedures.resume import check_resumable, stored_station
from procedures.service import RunService
from storage.readers import get_run


def crash_run(protocol, db: Path, die: Callable[[str, dict], None], station=None) -> int:
    """Run ``protocol`` in a forked child with subscriber ``die``, which calls ``os._exit(9)``
    when the child is to die; returns the child's exit code (0 if the run ended first)."""
    def child() -> None:
        RunService(load_station(station, simulate=True), db=str(db), report_dir=False).run_file(
            protocol, subscribers=[die])
        os._exit(0)
    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(300)
    return process.exitcode


def resume(db: Path, run_id: int = 1):
    """Resume the interrupted run ``run_id`` of ``db`` in this process, as ``main.py resume`` does."""
    run = get_run(str(db), run_id)
    assert check_resumable(run) == RunStatus.INTERRUPTED.value
    return RunService(stored_station(run), db=str(db), report_dir=False).resume_run(run)
