"""Runs a protocol in a worker thread and hands its documents to the GUI thread as Qt signals."""
from __future__ import annotations

import traceback

from PyQt6.QtCore import QThread, pyqtSignal


class RunWorker(QThread):
    """One run: the station, storage writer and runner live in this thread; the GUI only sees
    documents (queued signal, so plots update in the GUI thread) and the final outcome."""

    document = pyqtSignal(str, object)
    finished_run = pyqtSignal(object)

    def __init__(self, protocol, station_cfg, db, source: str = "") -> None:
        super().__init__()
        self.protocol = protocol
        self.station_cfg = station_cfg
        self.db = db
        self.source = source
        self._runner = None

    def run(self) -> None:  # QThread entry point
        from main import record_run

        try:
            outcome, run_id = record_run(
                self.protocol, self.station_cfg, self.db, self.source,
                subscribers=[lambda name, doc: self.document.emit(name, doc)],
                on_runner=lambda runner: setattr(self, "_runner", runner))
            result = {"status": outcome.status, "run_id": run_id, "reason": outcome.reason,
                      "analysis": outcome.analysis}
        except Exception as exc:  # noqa: BLE001 - reported in the GUI, never a silent thread death
            result = {"status": "failed", "run_id": None, "reason": f"{type(exc).__name__}: {exc}",
                      "traceback": traceback.format_exc()}
        self.finished_run.emit(result)

    def abort(self) -> None:
        if self._runner is not None:
            self._runner.abort("aborted from the GUI")
