"""Progress for a person at a terminal, on stderr: a bar when stderr is a terminal, lines otherwise.

It subscribes to the document stream like any other consumer, so it shows what the runner
reports: step i of n, cycle k of N, elapsed and remaining time (virtual and wall in simulation).
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone

from config.documents import DocumentRouter, gap_text


def hms(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    days, s = divmod(s, 86400)
    text = f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}d {text}" if days else text


def describe_progress(doc: dict, simulated: bool) -> str:
    """One line: 'step 3/14 PEIS at 10 °C · cycle 12/100 · 5:02:11 elapsed, 20:13:00 left'."""
    parts = [f"step {doc['step_index'] + 1}/{doc['n_steps']} {doc.get('step_name', '')}".rstrip()]
    if doc.get("cycle") is not None:
        parts.append(f"cycle {doc['cycle']}/{doc.get('n_cycles') or '?'}")
    timing = f"{hms(doc['elapsed_s'])} elapsed, {hms(doc.get('remaining_s'))} left"
    if simulated:
        timing += f" (instrument time; {doc['wall_elapsed_s']:.1f} s wall)"
    parts.append(timing)
    if doc.get("state") and doc["state"] != "running":
        parts.append(doc["state"].upper())
    return " · ".join(parts)


class ProgressPrinter(DocumentRouter):
    """Shows a run's progress on ``stream`` (stderr): a tqdm bar on a terminal, else one line per
    step and per change of state."""

    def __init__(self, stream=None, bar: bool | None = None) -> None:
        self.out = stream or sys.stderr
        self.use_bar = self.out.isatty() if bar is None else bar
        self.t0 = None
        self.simulated = False
        self.bar = None
        self._last_key = None

    def start(self, doc) -> None:
        self.t0 = doc["time"]
        self.simulated = bool(doc.get("simulated"))
        when = datetime.fromtimestamp(doc["time"], timezone.utc).isoformat(timespec="seconds")
        sim = " (simulated)" if self.simulated else ""
        total = (doc.get("plan") or {}).get("expected_duration_s")
        self._say(f"run {doc['protocol_name']} started {when}{sim}, sample {doc['sample'].get('id')}"
                  + (f", expected {hms(total)}" if total else ""))
        if self.use_bar:
            from tqdm import tqdm
            self.bar = tqdm(total=1000, file=self.out, leave=False, dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {desc}")

    def step_start(self, doc) -> None:
        self._say(f"[{self._elapsed(doc['time'])}] step {doc['step_index']}: {doc['name'] or doc['kind']}")

    def step_stop(self, doc) -> None:
        if doc["status"] != "completed":
            self._say(f"[{self._elapsed(doc['time'])}] step {doc['step_index']} {doc['status']}")

    def progress(self, doc) -> None:
        line = describe_progress(doc, self.simulated)
        if self.bar is not None:
            remaining = doc.get("remaining_s") or 0.0
            done = doc["elapsed_s"] / (doc["elapsed_s"] + remaining) if doc["elapsed_s"] + remaining > 0 else 0
            self.bar.n = int(1000 * done)
            self.bar.set_description_str(line, refresh=True)
        else:
            # Without a terminal, a line per change of state and per tenth cycle is enough.
            cycle = doc.get("cycle")
            key = (doc.get("state"), doc["step_index"], cycle if cycle and cycle % 10 == 0 else None)
            if key != self._last_key and (key[0] != "running" or key[2] is not None):
                self._say(line)
            self._last_key = key

    def suspension(self, doc) -> None:
        at = f"[{self._elapsed(doc['time'])}]"
        if doc["state"] == "suspended" and doc["time"] == doc["started_at"]:
            self._say(f"{at} run SUSPENDED at step {doc['step_index']}: {doc['reason']}")
        elif doc["state"] == "suspended":
            self._say(f"{at} while suspended: {doc['action']}")
        elif doc["state"] == "recovered":
            self._say(f"{at} run resumed after {hms(doc['ended_at'] - doc['started_at'])} suspended "
                      f"({doc['reason']})" + (f"; {doc['action']}" if doc.get("action") else ""))
        else:
            self._say(f"{at} suspension not recovered: {doc['reason']}; {doc['action']}")

    def gap(self, doc) -> None:
        self._say(f"[{self._elapsed(doc['time'])}] GAP at step {doc['step_index']}: {gap_text(doc)}")

    def analysis(self, doc) -> None:
        self._say(f"analysis {doc['name']} done")

    def stop(self, doc) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        reason = f": {doc['reason']}" if doc.get("reason") else ""
        self._say(f"[{self._elapsed(doc['time'])}] run {doc['status']}{reason}")

    def _elapsed(self, t: float) -> str:
        return hms(t - (self.t0 or t))

    def _say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.out)
        else:
            print(text, file=self.out, flush=True)
