"""A document subscriber that tells a person at a terminal what the run is doing (on stderr)."""
from __future__ import annotations

import sys
from datetime import datetime, timezone


class ProgressPrinter:
    def __init__(self, stream=None) -> None:
        self.out = stream or sys.stderr
        self.t0 = None
        self.rows = {}

    def __call__(self, name: str, doc: dict) -> None:
        if name == "start":
            self.t0 = doc["time"]
            when = datetime.fromtimestamp(doc["time"], timezone.utc).isoformat(timespec="seconds")
            sim = " (simulated)" if doc.get("simulated") else ""
            self._say(f"run {doc['protocol_name']} started {when}{sim}, sample {doc['sample'].get('id')}")
        elif name == "step_start":
            self._say(f"[{self._elapsed(doc['time'])}] step {doc['step_index']}: {doc['name'] or doc['kind']}")
        elif name == "step_stop" and doc["status"] != "completed":
            self._say(f"[{self._elapsed(doc['time'])}] step {doc['step_index']} {doc['status']}")
        elif name == "analysis":
            self._say(f"analysis {doc['name']} done")
        elif name == "stop":
            reason = f": {doc['reason']}" if doc.get("reason") else ""
            self._say(f"[{self._elapsed(doc['time'])}] run {doc['status']}{reason}")

    def _elapsed(self, t: float) -> str:
        s = int(t - (self.t0 or t))
        return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)
