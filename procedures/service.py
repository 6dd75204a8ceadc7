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

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from config.documents import RunStatus
from config.errors import ConfigError
from config.protocol import Protocol, load_protocol, resolve_protocol_path
from procedures.analyzers import analyzers_for
from procedures.documents import DocumentStream
from procedures.operator import Operator, UnattendedOperator
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

    @property
    def completed(self) -> bool:
        return self.status is RunStatus.COMPLETED

    def to_json(self) -> dict:
        """The CLI's run document: one analysis is shown as that object, several keyed by name."""
        out = {"run_id": self.run_id, "status": self.status.value,
               "analysis": single_or_keyed(self.analysis)}
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


def write_run_report(db, run_id: int, out_dir=None) -> Path:
    """The run's report (Markdown + figures) from what storage holds, in ``out_dir`` (default
    reports/run_<id>/ under the project)."""
    from analysis.report import render_report
    from storage.readers import get_run, read_stream
    run = get_run(db, run_id)
    frames = {s["name"]: read_stream(db, run_id, s["name"]) for s in run.get("streams", [])}
    out = Path(out_dir) if out_dir else PROJECT_ROOT / "reports" / f"run_{run_id}"
    return render_report(run, frames, out)


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
        self._lock = threading.Lock()
        self._stop_reason = ""

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

    def run_all(self, names_or_paths, subscribers: Iterable[Subscriber] = ()) -> list[RunResult]:
        """Validate every file first, then run them in order; after an abort the rest are not
        started."""
        results = []
        for protocol, source in self.load_all(names_or_paths):
            if self._stop_reason:
                break
            results.append(self.run(protocol, source, subscribers))
        return results

    def run(self, protocol: Protocol, source: str = "",
            subscribers: Iterable[Subscriber] = ()) -> RunResult:
        """Run one validated protocol with storage, the subscribers and the report hook."""
        from storage.writer import StorageWriter
        stream = DocumentStream()
        writer = StorageWriter(self.db)
        stream.subscribe(writer, critical=True)
        for subscriber in [*self.subscribers, *subscribers]:
            stream.subscribe(subscriber)
        with Station(self.station_cfg, operator=self.operator) as station:
            runner = Runner(station, stream, analyzers_for(protocol))
            with self._lock:
                self._runner = runner
                if self._stop_reason:
                    runner.abort(self._stop_reason)
            if self.on_runner is not None:
                self.on_runner(runner)
            try:
                with stop_on_signals(self.abort):
                    outcome = runner.run(protocol, protocol_source=source)
            finally:
                with self._lock:
                    self._runner = None
        writer.close()
        result = RunResult(run_id=writer.last_run_id, status=outcome.status,
                           protocol_name=protocol.protocol.name, source=source,
                           reason=outcome.reason, analysis=outcome.analysis,
                           duration_s=outcome.duration_s)
        if self.report_dir is not False and result.run_id is not None:
            result.report = self._report(result.run_id)
        return result

    def _report(self, run_id: int) -> str | None:
        out = Path(self.report_dir) / f"run_{run_id}" if self.report_dir else None
        try:
            return str(write_run_report(self.db, run_id, out))
        except Exception as exc:  # noqa: BLE001 - a report failure must not hide the run's result
            log.error("report of run %s not written: %s", run_id, exc)
            return None
