"""The run service: the one way every front end (CLI, GUI, scripts, tests, benchmarks) runs protocols.

For each protocol it opens the station (real or simulated, from the station file), validates the
protocol against it, runs it with the storage writer and the caller's subscribers on the document
stream, runs the post-run hooks (the report) and returns a :class:`RunResult`. In the main thread
SIGINT, SIGTERM and SIGHUP abort the run like Ctrl+C (procedures/signals.py). Several protocols
run one after another in one process (:meth:`RunService.run_all`); ``abort``, ``pause`` and
``resume`` act on the run in progress from any thread, and an abort of a queue stops the queue.

    service = RunService(load_station(simulate=True), db="data/lab.sqlite")
    result = service.run_file("onbh_conductivity")
    print(result.status, result.analysis["arrhenius"]["total"]["ea_ev"])
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from config.documents import RunStatus, StreamRole
from config.errors import ConfigError
from config.protocol import Protocol, load_protocol, resolve_protocol_path
from instruments.shared_clock import PROCESS_CPUS, cores_beside_timelines
from procedures.analyzers import analyzers_for
from procedures.documents import DocumentStream
from procedures.operator import Operator, UnattendedOperator
from procedures.resume import (ResumeError, SimStateSaver, open_resumed_station, plan_resume,
                               stored_protocol)
from procedures.runner import Runner
from procedures.signals import stop_on_signals
from procedures.station import Station

log = logging.getLogger(__name__)

Subscriber = Callable[[str, dict], None]
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RunResult:
    """What a run left: its id in storage, status, reason, analysis (by analyzer name), report."""

    run_id: int | None
    status: RunStatus
    protocol_name: str
    source: str = ""
    reason: str = ""
    analysis: dict = field(default_factory=dict)
    report: str | None = None
    duration_s: float = 0.0  # clock time of the run (instrument time in simulation), s
    suspensions: list = field(default_factory=list)  # suspension documents (procedures/watch.py)

    @property
    def completed(self) -> bool:
        return self.status is RunStatus.COMPLETED

    def to_json(self) -> dict:
        """The CLI's run document: one analysis is shown as that object, several keyed by name."""
        out = {"run_id": self.run_id, "status": self.status.value,
               "analysis": single_or_keyed(self.analysis)}
        if self.suspensions:
            out["suspensions"] = self.suspensions
        if self.reason:
            out["reason"] = self.reason
        if self.report:
            out["report"] = self.report
        return out


def single_or_keyed(analysis: dict):
    if not analysis:
        return None
    if len(analysis) == 1:
        return next(iter(analysis.values()))
    return analysis


FIGURE_CYCLES_FROM = 200
"""A cycling stream with more cycles than this has its figures drawn from some of them."""


def figure_cycles(last_cycle: int) -> list[int]:
    """The cycles a long run's figures are drawn from: those the report profiles, each with the
    cycle before and after it (a record's charge is counted from the record before it, so a drawn
    cycle needs its neighbours' boundary records), and the last two. The analysis always uses
    every record."""
    from analysis.report import VOLTAGE_PROFILE_CYCLES
    drawn = {*VOLTAGE_PROFILE_CYCLES, last_cycle - 1, last_cycle}
    return sorted({c + d for c in drawn for d in (-1, 0, 1) if 0 <= c + d <= last_cycle})


def write_run_report(db, run_id: int, out_dir=None) -> Path:
    """The run's report (Markdown + figures) from what storage holds, in ``out_dir`` (default
    reports/run_<id>/ under the project). A long cycling stream is read only for the cycles its
    figures show (``figure_cycles``), so memory stays flat however long the run."""
    from analysis.report import render_report
    from storage.readers import column_max, get_run, read_stream
    run = get_run(db, run_id)
    frames = {}
    for s in run.get("streams", []):
        where_in = None
        if (s["metadata"] or {}).get("role") == StreamRole.CYCLING and s["n_points"]:
            last = column_max(db, run_id, s["name"], "cycle")
            if last is not None and last > FIGURE_CYCLES_FROM:
                where_in = {"cycle": figure_cycles(int(last))}
        frames[s["name"]] = read_stream(db, run_id, s["name"], where_in=where_in)
    out = Path(out_dir) if out_dir else PROJECT_ROOT / "reports" / f"run_{run_id}"
    return render_report(run, frames, out)


def _stop_signals() -> set:
    import signal
    return {getattr(signal, name) for name in ("SIGINT", "SIGHUP") if hasattr(signal, name)}


@contextlib.contextmanager
def _stop_signals_held():
    """The calling thread's Ctrl+C and hang-up held back, so that a process started meanwhile
    begins with them held (the mask survives exec): in the interpreter's first seconds, before
    its initializer ignores them, they would end it with a KeyboardInterrupt."""
    import signal
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _stop_signals())
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _init_report_process() -> None:
    """A report process finishes its report when the terminal's Ctrl+C or hang-up reaches the
    whole process group: stopping is the run process's business."""
    import atexit
    import gc
    import multiprocessing
    import signal
    for signum in _stop_signals():
        signal.signal(signum, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _stop_signals())
    threading.Thread(target=_end_with_parent, args=(multiprocessing.parent_process().sentinel,),
                     name="report-parent-watch", daemon=True).start()
    # The run process waits for this one to exit: skip the final collections over everything
    # matplotlib and pandas made (half a second); the reports are written and closed by then.
    atexit.register(gc.freeze)
    import analysis.report  # noqa: F401 - loaded while the runs go on, not once a report is due


REPORT_PROCESSES = len(PROCESS_CPUS or ()) or 1


def _end_with_parent(parent_sentinel) -> None:
    """End this report process once the run process is gone. A run process killed outright
    (SIGKILL, a crash) cannot shut its pool down, and the worker holds its own end of the task
    queue, so it would wait for work forever: an orphan per killed run. A report it was writing
    is for a run that no process follows any more. The sentinel (multiprocessing's pipe from the
    parent, inherited at spawn) is ready as soon as the parent has gone, even before this runs."""
    from multiprocessing.connection import wait
    wait([parent_sentinel])
    os._exit(0)


class RunService:
    """Runs protocols on the station described by ``station_cfg``, storing them in ``db``.

    operator: who answers the run's requests (default: nobody; such a step fails clearly);
    subscribers: document subscribers added to every run (plots, progress);
    report_dir: where reports go — ``None`` for reports/run_<id>/, a folder for ``DIR/run_<id>/``,
    ``False`` for no report; on_runner: called with each run's Runner before it starts (a front
    end that wants the runner itself).
    """

    def __init__(self, station_cfg, db=None, *, operator: Operator | None = None,
                 subscribers: Iterable[Subscriber] = (), report_dir=None,
                 on_runner: Callable[[Runner], None] | None = None) -> None:
        self.station_cfg = station_cfg
        self.db = db
        self.operator = operator or UnattendedOperator()
        self.subscribers = list(subscribers)
        self.report_dir = report_dir
        self.on_runner = on_runner
        self._runner: Runner | None = None
        self._writer = None
        self._lock = threading.Lock()
        self._stop_reason = ""
        self._pool = None
        self._pending_reports: dict[int, object] = {}

    # --- control (any thread) -------------------------------------------------------------------
    def abort(self, reason: str = "abort requested") -> None:
        """Abort the run in progress and every run still to come in this call."""
        with self._lock:
            self._stop_reason = reason
            if self._runner is not None:
                self._runner.abort(reason)

    def pause(self) -> None:
        with self._lock:
            if self._runner is not None:
                self._runner.pause()

    def resume(self) -> None:
        with self._lock:
            if self._runner is not None:
                self._runner.resume()

    @property
    def current_runner(self) -> Runner | None:
        """The runner of the run in progress (None between runs)."""
        return self._runner

    @property
    def current_run_id(self) -> int | None:
        """The storage id of the run in progress (None before its start is stored)."""
        return self._writer.run_id if self._writer is not None else None

    @property
    def stop_requested(self) -> str:
        return self._stop_reason

    # --- protocols ------------------------------------------------------------------------------
    def load(self, name_or_path) -> tuple[Protocol, str]:
        """A shipped protocol's name or a file, validated against this station (ConfigError)."""
        path = resolve_protocol_path(name_or_path)
        return load_protocol(path, self.station_cfg), str(path)

    def run_file(self, name_or_path, subscribers: Iterable[Subscriber] = ()) -> RunResult:
        protocol, source = self.load(name_or_path)
        return self.run(protocol, source, subscribers)

    def load_all(self, names_or_paths) -> list[tuple[Protocol, str]]:
        """Validate every file; ConfigError lists the problems of all of them at once."""
        loaded, problems = [], []
        for name in names_or_paths:
            try:
                loaded.append(self.load(name))
            except ConfigError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError("protocols", problems)
        return loaded

    def run(self, protocol: Protocol, source: str = "", subscribers: Iterable[Subscriber] = (),
            report_later: bool = False, resume=None, *, instruments=None, gate=None) -> RunResult:
        """Run one validated protocol with storage, the subscribers and the report hook.

        Raises InstrumentUnreachable (procedures.station), with no run stored, when an instrument
        the protocol needs does not answer.

        ``report_later``: write the report in a helper process while the caller goes on (the next
        run of a queue uses the other core); ``finish_reports`` then waits for it and fills in
        ``RunResult.report``. ``resume`` and ``instruments``: continue a stored run on the
        instruments it left (see :meth:`resume_run`). ``instruments`` and ``gate``: a run on one
        position of a shared station (procedures/campaign.py) — its instruments, and who it asks
        for its chamber."""
        from storage.writer import StorageWriter
        stream = DocumentStream()
        writer = self._writer = StorageWriter(self.db)
        stream.subscribe(writer, critical=True)
        for subscriber in [*self.subscribers, *subscribers]:
            stream.subscribe(subscriber)
        try:
            with Station(self.station_cfg, operator=self.operator, instruments=instruments) as station:
                if station.simulated and gate is None:
                    # The simulated station outlives this process as its saved state (resume).
                    writer.on_transaction = SimStateSaver(self.db, station.instruments)
                runner = Runner(station, stream, analyzers_for(protocol), gate=gate)
                with self._lock:
                    self._runner = runner
                    if self._stop_reason:
                        runner.abort(self._stop_reason)
                if self.on_runner is not None:
                    self.on_runner(runner)
                try:
                    with stop_on_signals(self.abort):
                        outcome = runner.run(protocol, protocol_source=source, resume=resume)
                finally:
                    with self._lock:
                        self._runner = None
        finally:
            writer.close()
        if writer.on_transaction is not None and writer.last_run_id is not None \
                and outcome.status is not RunStatus.ABORTED:
            writer.on_transaction.discard(writer.last_run_id)
        result = RunResult(run_id=writer.last_run_id, status=outcome.status,
                           protocol_name=protocol.protocol.name, source=source,
                           reason=outcome.reason, analysis=outcome.analysis,
                           duration_s=outcome.duration_s, suspensions=outcome.suspensions)
        if self.report_dir is not False and result.run_id is not None:
            if report_later:
                self.submit_report(result)
            else:
                result.report = self._report(result.run_id)
        return result

    def resume_run(self, run: dict, subscribers: Iterable[Subscriber] = ()) -> RunResult:
        """Continue stored run ``run`` (storage.readers.get_run) where it stopped, on this
        service's station, which must be the run's own (procedures/resume.py: ``stored_station``).
        Raises ResumeError when it cannot be resumed."""
        from storage.checkpoints import read_checkpoint
        from storage.claims import RunHeld, claim_run, release_run
        protocol = stored_protocol(run, self.station_cfg)
        # Claimed before any instrument is opened: a second resume stops here (storage/claims.py).
        try:
            claim_run(self.db, run["run_id"])
        except RunHeld as exc:
            raise ResumeError(str(exc)) from None
        try:
            checkpoint = read_checkpoint(self.db, run["run_id"])
            point = plan_resume(self.db, run, protocol, checkpoint)
            instruments = open_resumed_station(self.db, run, checkpoint, self.station_cfg)
            return self.run(protocol, f"run {run['run_id']}", subscribers, resume=point,
                            instruments=instruments)
        except BaseException:
            # A resume that failed before its run started (no instrument answered, a missing
            # state) leaves the run as it found it; one that ran has stored its own status.
            release_run(self.db, run["run_id"])
            raise

    def submit_report(self, result: RunResult) -> None:
        """Write ``result``'s report in the helper process; ``finish_reports`` collects it."""
        from concurrent.futures.process import BrokenProcessPool
        if result.run_id is None:
            return
        try:
            self._pending_reports[id(result)] = self._submit_report_task(
                write_run_report, self.db, result.run_id, self._report_out(result.run_id))
        except BrokenProcessPool as exc:
            log.error("report of run %s not written: %s", result.run_id, exc)

    def run_all(self, names_or_paths, subscribers: Iterable[Subscriber] = ()) -> list[RunResult]:
        """Validate every file first, then run them in order, each report written while the next
        run goes on; after an abort the rest are not started."""
        results = []
        for protocol, source in self.load_all(names_or_paths):
            if self._stop_reason:
                break
            results.append(self.run(protocol, source, subscribers, report_later=True))
        self.finish_reports(results)
        return results

    def finish_reports(self, results: Iterable[RunResult]) -> None:
        """Wait for the reports written in the background and record their paths. The runs are
        over, so the report processes may take every core now, the runs' own included."""
        self._place_report_processes(PROCESS_CPUS)
        for result in results:
            future = self._pending_reports.pop(id(result), None)
            if future is None:
                continue
            try:
                result.report = str(future.result())
            except Exception as exc:  # noqa: BLE001 - a report failure must not hide the run's result
                log.error("report of run %s not written: %s", result.run_id, exc)
        if not self._pending_reports and self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def start_report_processes(self) -> None:
        """Start a report process per core now, beside the runs' core, each loading the report's
        modules: reports asked for together (campaign runs that end together) then share every
        core once the runs are over, instead of queueing for one process or waiting for a new
        one to start its interpreter (2-3 s)."""
        for _ in range(REPORT_PROCESSES):
            # The executor starts a process per task until one of them is idle.
            self._submit_report_task(os.getpid)

    def _report_pool(self):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
            # spawn: a fresh interpreter, not a fork of one holding open database connections.
            self._pool = ProcessPoolExecutor(max_workers=REPORT_PROCESSES,
                                             mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_report_process)
        return self._pool

    def _submit_report_task(self, fn, *args):
        pool = self._report_pool()  # first: starting multiprocessing's tracker unblocks SIGINT
        with _stop_signals_held():
            future = pool.submit(fn, *args)
        # A process the executor has just started was forked from this thread; from a campaign
        # run's thread it would import analysis and matplotlib on the runs' one core
        # (instruments/shared_clock.py). It goes to the cores the runs leave free at once.
        self._place_report_processes(cores_beside_timelines())
        return future

    def _place_report_processes(self, cpus) -> None:
        if self._pool is None or cpus is None:
            return
        # The executor's own table of its worker processes: it has no public one.
        for process in list(self._pool._processes.values()):
            try:
                os.sched_setaffinity(process.pid, cpus)
            except OSError:
                pass  # a worker that is gone needs no core; the executor reports its loss

    def _report_out(self, run_id: int) -> Path | None:
        return Path(self.report_dir) / f"run_{run_id}" if self.report_dir else None

    def _report(self, run_id: int) -> str | None:
        try:
            return str(write_run_report(self.db, run_id, self._report_out(run_id)))
        except Exception as exc:  # noqa: BLE001 - a report failure must not hide the run's result
            log.error("report of run %s not written: %s", run_id, exc)
            return None
