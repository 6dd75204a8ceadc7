"""The runner: executes a validated protocol on a station and emits the run's documents.

It owns the run's life cycle, not the data: steps emit streams, subscribers store and plot them.
However a run ends (completed, an abort from any front end or signal, an instrument error), the
instruments are put in their safe state, the analysis runs on whatever was measured, and the
``stop`` document carries the status, the reason and any traceback. A safe state that fails makes
the run ``unsafe``, whatever else happened: someone has to look at the station.

Control from any thread: ``abort()`` stops at the next clock wait; ``pause()`` stops at the next
safe point (between steps, or inside a step kind that allows it) until ``resume()``.

``run(protocol, resume=point)`` continues a stored run after a crash instead of starting one: the
same run uid, no mounting (the station is as the run left it), the analyzers first fed the stored
data, the steps ended by the crash closed, and the steps run from ``point.start_index``
(procedures/resume.py decides all of these).
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field

from config.documents import RunStatus
from instruments.clock import Aborted
from procedures.chamber_log import ChamberLogger
from procedures.context import StepContext
from procedures.documents import DocumentStream, new_uid
from procedures.steps import execute_step, expand_steps, plan_steps, uses_chamber
from procedures.watch import ConditionWatch

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    run_uid: str
    status: RunStatus
    reason: str = ""
    traceback: str | None = None
    analysis: dict = field(default_factory=dict)
    duration_s: float = 0.0  # clock time from start to stop (instrument time in simulation)
    suspensions: list = field(default_factory=list)  # the run's suspension documents, latest of each


class RunControl:
    """Pause, resume and abort requests for one station's runs (thread-safe)."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self._released = threading.Event()
        self._released.set()

    @property
    def pause_requested(self) -> bool:
        return not self._released.is_set()

    def pause(self) -> None:
        self._released.clear()

    def resume(self) -> None:
        self._released.set()

    def abort(self, reason: str = "abort requested") -> None:
        self.clock.abort(reason)

    def checkpoint(self, on_hold=None, on_release=None) -> None:
        """A safe point: wait here while a pause is requested (abortably)."""
        self.clock.check_abort()
        if self._released.is_set():
            return
        if on_hold is not None:
            on_hold()
        self.clock.hold(self._released)
        if on_release is not None:
            on_release()


class ProgressTracker:
    """Turns the runner's position into ``progress`` documents: step i of n, cycle k of N, elapsed
    and remaining time. Remaining time starts from the plan's estimates and is refined by what the
    running step reports of itself (a cycling step knows its cycle durations)."""

    def __init__(self, emit, run_uid: str, clock, planned) -> None:
        self.emit = emit
        self.run_uid = run_uid
        self.clock = clock
        self.planned = planned
        self.t0 = clock.now()
        self.wall_t0 = time.monotonic()
        self.step_index = 0
        self.step_t0 = self.t0

    def step_started(self, index: int) -> None:
        self.step_index = index
        self.step_t0 = self.clock.now()
        self.report()

    def later_steps_s(self) -> float:
        return sum(p.estimate.duration_s for p in self.planned[self.step_index + 1:])

    def report(self, *, cycle: int | None = None, n_cycles: int | None = None,
               step_remaining_s: float | None = None, state: str = "running", message: str = "") -> None:
        now = self.clock.now()
        planned = self.planned[self.step_index] if self.step_index < len(self.planned) else None
        if step_remaining_s is None and planned is not None:
            step_remaining_s = max(planned.estimate.duration_s - (now - self.step_t0), 0.0)
        remaining = (step_remaining_s or 0.0) + self.later_steps_s()
        self.emit("progress", {
            "run_uid": self.run_uid, "time": now, "elapsed_s": now - self.t0,
            "wall_elapsed_s": time.monotonic() - self.wall_t0, "step_index": self.step_index,
            "n_steps": len(self.planned), "step_name": planned.name if planned else "",
            "cycle": cycle, "n_cycles": n_cycles if n_cycles is not None else (
                planned.estimate.cycles if planned else None),
            "remaining_s": remaining, "state": state, "message": message})


class Runner:
    """Runs protocols on one station; ``abort()``, ``pause()`` and ``resume()`` may be called from
    any thread."""

    def __init__(self, station, stream: DocumentStream | None = None, analyzers=(), gate=None) -> None:
        self.station = station
        self.stream = stream or DocumentStream()
        self.analyzers = list(analyzers)
        # A run sharing its station's chambers asks its gate before each step
        # (procedures/campaign.py): any waiting happens there, never inside a step.
        self.gate = gate
        self.control = RunControl(station.clock)

    def abort(self, reason: str = "abort requested") -> None:
        self.control.abort(reason)

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def run(self, protocol, protocol_source: str = "", resume=None) -> RunOutcome:
        """Run ``protocol``. The instruments it needs are opened and identified before the run
        is announced (and so stored): one that does not answer raises InstrumentUnreachable and
        leaves no run behind. ``resume``: a stored run to continue (procedures/resume.py); its
        sample is on the instruments already."""
        clock = self.station.clock
        run_uid = resume.run_uid if resume is not None else new_uid()
        emit = self.stream.emit
        planned = plan_steps(protocol, self.station.config)
        try:
            self.station.open_for(protocol, mount=resume is None)
        except Aborted:
            pass  # stopped while connecting: stored as aborted below, like any abort
        # The analyzers listen to their own stream, which forwards the run's documents: a resumed
        # run feeds them its stored data there first, without storing it again.
        analysis_stream = DocumentStream()
        forward = self.stream.subscribe(analysis_stream.emit)
        for analyzer in self.analyzers:
            analyzer.attach(analysis_stream, protocol)
        if resume is not None:
            resume.replay(analysis_stream.emit)
        emit("start", {
            "run_uid": run_uid, "time": clock.now(), "protocol_name": protocol.protocol.name,
            "protocol": protocol.model_dump(mode="json"), "protocol_source": protocol_source,
            "sample": protocol.sample.model_dump(mode="json"),
            "station": self.station.snapshot(), "simulated": self.station.simulated,
            "plan": {"steps": [{"name": p.name, "kind": p.kind,
                                "expected_duration_s": p.estimate.duration_s,
                                "basis": p.estimate.basis} for p in planned],
                     "expected_duration_s": sum(p.estimate.duration_s for p in planned)},
            **({"resume_run_id": resume.run_id} if resume is not None else {}),
        })
        progress = ProgressTracker(emit, run_uid, clock, planned)
        ctx = StepContext(station=self.station, protocol=protocol, run_uid=run_uid, emit=emit,
                          run_t0=clock.now() if resume is None else resume.clock_t0,
                          progress=progress, control=self.control,
                          stored_streams=resume.stored_streams if resume is not None else {})
        outcome = RunOutcome(run_uid=run_uid, status=RunStatus.COMPLETED)
        logger = None
        try:
            clock.check_abort()
            steps = list(expand_steps(protocol))
            if resume is not None:
                resume.reattach(ctx)  # what the potentiostat still holds, before the steps close
                for index, status, summary in resume.close_steps:
                    emit("step_stop", {"run_uid": run_uid, "step_index": index, "status": status,
                                       "time": clock.now(), "summary": summary})
            elif self.gate is not None:  # before the run's first instrument command
                self.gate.before_step(ctx, 0, steps[0])
            if uses_chamber(protocol):
                interval = protocol.protocol.chamber_log_interval_s
                ctx.watch = ConditionWatch(ctx, protocol.protocol.watch, interval)
                logger = ChamberLogger(ctx, interval)
                logger.start()
                ctx.chamber_logger = logger
            for index, step in enumerate(steps):
                if resume is not None and index < resume.start_index:
                    continue
                self.control.checkpoint(
                    on_hold=lambda: progress.report(state="paused", message="paused between steps"),
                    on_release=lambda: progress.report(message="resumed"))
                if self.gate is not None:
                    self.gate.before_step(ctx, index, step)
                ctx.resume_position = (resume.position if resume is not None
                                       and index == resume.start_index else None)
                self._run_step(ctx, index, step)
            # A step the crash left that cannot be taken up again ended failed; the steps after
            # it ran, but the run is not complete.
            cut = [(i, summary) for i, status, summary in (resume.close_steps if resume else ())
                   if status == "failed"]
            if cut:
                outcome.status = RunStatus.FAILED
                outcome.reason = "; ".join(f"step {i}: {summary.get('reason', 'not resumable')}"
                                           for i, summary in cut)
        except Aborted as exc:
            outcome.status, outcome.reason = RunStatus.ABORTED, str(exc) or "aborted"
        except Exception as exc:  # an instrument or step failure: the run fails, cleanly
            outcome.status = RunStatus.FAILED
            outcome.reason = f"{type(exc).__name__}: {exc}"
            outcome.traceback = traceback.format_exc()
            log.error("run failed: %s", outcome.reason)
        finally:
            if logger is not None:
                logger.stop()
            if self.gate is not None:
                self.gate.finish(ctx)
            clock.clear_abort()
            self.control.resume()
            problems = self.station.safe_state()
            if problems:
                outcome.status = RunStatus.UNSAFE
                outcome.reason = "; ".join(filter(None, [outcome.reason, *problems]))
            for analyzer in self.analyzers:
                try:
                    result = analyzer.finish(emit, run_uid)
                    if result is not None:
                        outcome.analysis[analyzer.name] = result
                except Exception as exc:
                    log.exception("analysis %s failed", analyzer.name)
                    outcome.analysis[analyzer.name] = {"error": f"{type(exc).__name__}: {exc}"}
            if ctx.watch is not None:
                outcome.suspensions = [dict(doc) for doc in ctx.watch.suspensions]
            self.stream.unsubscribe(forward)
            outcome.duration_s = clock.now() - ctx.run_t0
            emit("stop", {"run_uid": run_uid, "time": clock.now(), "status": outcome.status.value,
                          "reason": outcome.reason, "traceback": outcome.traceback})
        return outcome

    def _run_step(self, ctx: StepContext, index: int, step) -> None:
        ctx.step_index = index
        emit = ctx.emit
        emit("step_start", {"run_uid": ctx.run_uid, "step_index": index, "kind": step.kind,
                            "name": step.name, "params": step.model_dump(mode="json"),
                            "time": ctx.clock.now(),
                            **({"position": ctx.resume_position} if ctx.resume_position else {})})
        ctx.progress.step_started(index)
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
