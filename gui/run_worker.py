"""Runs protocols through the run service in a worker thread; the GUI sees documents as Qt signals.

Operator requests arrive as a signal too: the window shows a dialog and answers; the worker thread
waits for the answer, and an abort from the window ends that wait.
"""
from __future__ import annotations

import traceback

from PyQt6.QtCore import QThread, pyqtSignal

from config.documents import RunStatus
from procedures.operator import EventOperator
from procedures.service import RunService


class RunWorker(QThread):
    """One run: the station, storage writer and runner live in this thread; the GUI only sees
    documents (queued signal, so plots update in the GUI thread), operator requests and the
    final result (the same RunResult as the CLI's, report included)."""

    document = pyqtSignal(str, object)
    operator_request = pyqtSignal(object, object)
    finished_run = pyqtSignal(object)

    def __init__(self, protocol, station_cfg, db, source: str = "", report_dir=None) -> None:
        super().__init__()
        self.protocol = protocol
        self.source = source
        self._pause_requested = False
        self.service = RunService(
            station_cfg, db, report_dir=report_dir,
            operator=EventOperator(lambda request, answer: self.operator_request.emit(request, answer)),
            subscribers=[lambda name, doc: self.document.emit(name, doc)],
            on_runner=self._on_runner)

    def _on_runner(self, runner) -> None:
        # A pause asked for before the run had started holds it at its first safe point.
        if self._pause_requested:
            runner.pause()

    def run(self) -> None:  # QThread entry point
        try:
            result = self.service.run(self.protocol, self.source).to_json()
        except Exception as exc:  # noqa: BLE001 - reported in the GUI, never a silent thread death
            result = {"status": RunStatus.FAILED.value, "run_id": None,
                      "reason": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        self.finished_run.emit(result)

    def abort(self) -> None:
        self.service.abort("aborted from the GUI")

    def pause(self) -> None:
        self._pause_requested = True
        self.service.pause()

    def resume(self) -> None:
        self._pause_requested = False
        self.service.resume()
