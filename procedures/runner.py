"""The runner: executes a validated protocol on a station and emits the run's documents.

It owns the run's life cycle, not the data: steps emit streams, subscribers store and plot them.
However a run ends (completed, Ctrl+C, an instrument error), the instruments are put in their
safe state, the analysis runs on whatever was measured, and the ``stop`` document carries the
status, the reason and any traceback, so storage marks the run ``completed``, ``aborted`` or
``failed`` with its data kept.
"""
from __future__ import annotations

import logging
import signal
import threading
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field

from instruments.clock import Aborted
from procedures.context import StepContext
from procedures.documents import DocumentStream, new_uid
from procedures.executors import execute_step, expand_steps, uses_chamber
from procedures.chamber_log import ChamberLogger

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    run_uid: str
    status: str
    reason: str = ""
    traceback: str | None = None
    analysis: dict = field(default_factory=dict)


class Runner:
    """Runs protocols on one station; ``abort()`` may be called from any thread."""

    def __init__(self, station, stream: DocumentStream | None = None, analyzers=()) -> None:
        self.station = station
        self.stream = stream or DocumentStream()
        self.analyzers = list(analyzers)

    def abort(self, reason: str = "abort requested") -> None:
        self.station.clock.abort(reason)

    def run(self, protocol, protocol_source: str = "") -> RunOutcome:
        clock = self.station.clock
        clock.clear_abort()
        run_uid = new_uid()
        emit = self.stream.emit
        for analyzer in self.analyzers:
            analyzer.attach(self.stream, protocol)
        emit("start", {
            "run_uid": run_uid, "time": clock.now(), "protocol_name": protocol.protocol.name,
            "protocol": protocol.model_dump(mode="json"), "protocol_source": protocol_source,
            "sample": protocol.sample.model_dump(mode="json"),
            "station": self.station.snapshot(), "simulated": self.station.simulated,
        })
        ctx = StepContext(station=self.station, protocol=protocol, run_uid=run_uid, emit=emit,
                          run_t0=clock.now())
        outcome = RunOutcome(run_uid=run_uid, status="completed")
        logger = None
        try:
            with _ctrl_c_aborts(clock):
                self.station.prepare(protocol)
                if uses_chamber(protocol):
                    logger = ChamberLogger(ctx, protocol.protocol.chamber_log_interval_s)
                    logger.start()
                    ctx.chamber_logger = logger
                for index, step in enumerate(expand_steps(protocol)):
                    self._run_step(ctx, index, step)
        except Aborted as exc:
            outcome.status, outcome.reason = "aborted", str(exc) or "aborted"
        except Exception as exc:  # an instrument or step failure: the run fails, cleanly
            outcome.status = "failed"
            outcome.reason = f"{type(exc).__name__}: {exc}"
            outcome.traceback = traceback.format_exc()
            log.error("run failed: %s", outcome.reason)
        finally:
            if logger is not None:
                logger.stop()
            clock.clear_abort()
            problems = self.station.safe_state()
            if problems:
                outcome.reason = "; ".join(filter(None, [outcome.reason, *problems]))
            for analyzer in self.analyzers:
                try:
                    result = analyzer.finish(emit, run_uid)
                    if result is not None:
                        outcome.analysis[analyzer.name] = result
                except Exception as exc:
                    log.exception("analysis %s failed", analyzer.name)
                    outcome.analysis[analyzer.name] = {"error": f"{type(exc).__name__}: {exc}"}
            emit("stop", {"run_uid": run_uid, "time": clock.now(), "status": outcome.status,
                          "reason": outcome.reason, "traceback": outcome.traceback})
        return outcome

    def _run_step(self, ctx: StepContext, index: int, step) -> None:
        ctx.step_index = index
        emit = ctx.emit
        emit("step_start", {"run_uid": ctx.run_uid, "step_index": index, "kind": step.kind,
                            "name": step.name, "params": step.model_dump(mode="json"),
                            "time": ctx.clock.now()})
        status, summary = "failed", {}
        try:
            summary = execute_step(ctx, step) or {}
            status = "completed"
        except Aborted:
            status = "aborted"
            raise
        finally:
            emit("step_stop", {"run_uid": ctx.run_uid, "step_index": index, "status": status,
                               "time": ctx.clock.now(), "summary": summary})


@contextmanager
def _ctrl_c_aborts(clock):
    """First Ctrl+C aborts at the next clock wait (instruments are then made safe); a second one
    interrupts at once. Only the main thread can own signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    presses = []

    def handler(signum, frame):
        presses.append(signum)
        if len(presses) > 1:
            raise KeyboardInterrupt
        clock.abort("interrupted by Ctrl+C")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
