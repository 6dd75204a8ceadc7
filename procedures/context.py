"""What a step executor gets: the station, the clock, the run's identity and a way to emit data."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from procedures.documents import StreamWriter


@dataclass
class StepContext:
    station: "object"
    protocol: "object"
    run_uid: str
    emit: Callable[[str, dict], None]
    step_index: int = 0
    streams: dict = field(default_factory=dict)
    run_t0: float = 0.0
    chamber_logger: "object" = None
    watch: "object" = None  # procedures.watch.ConditionWatch while the run uses the chamber
    progress: "object" = None
    control: "object" = None
    stored_streams: dict = field(default_factory=dict)
    """A resumed run's streams already in storage, by name: descriptor_uid, n_points, and for a
    cycler's stream the last record number stored (``last_record``)."""
    resume_position: dict | None = None
    """A resumed step's position from its last checkpoint (None when the step starts afresh)."""

    @property
    def clock(self):
        return self.station.clock

    def checkpoint(self) -> None:
        """A safe point inside a step whose kind allows pausing there (between measurements)."""
        if self.control is not None:
            self.control.checkpoint(
                on_hold=lambda: self.report_progress(state="paused", message="paused inside the step"),
                on_release=lambda: self.report_progress(message="resumed"))

    def save_position(self, **position) -> None:
        """Record how far this step has come; stored with the rows emitted before it, read back
        by resume (procedures/resume.py). Values must be JSON."""
        self.emit("checkpoint", {"run_uid": self.run_uid, "step_index": self.step_index,
                                 "position": position})

    def report_progress(self, **fields) -> None:
        if self.progress is not None:
            self.progress.report(**fields)

    @property
    def sample(self):
        return self.protocol.sample

    def new_stream(self, name: str, columns: dict, metadata: dict | None = None,
                   step_index: int | None = -1, continue_stored: bool = False) -> StreamWriter:
        """A uniquely named stream; a repeated name gets a numeric suffix. ``continue_stored``:
        in a resumed run, the stored stream of that name is continued (its rows go on from its
        stored count) instead, if there is one."""
        index = self.step_index if step_index == -1 else step_index
        stored = self._stored_stream(name, index) if continue_stored else None
        if stored is not None:
            writer = StreamWriter(self.emit, self.run_uid, stored["name"], columns,
                                  resume=(stored["descriptor_uid"], stored["n_points"]))
            self.streams[stored["name"]] = writer
            return writer
        base, n = name, 2
        while name in self.streams or name in self.stored_streams:
            name = f"{base}_{n}"
            n += 1
        writer = StreamWriter(self.emit, self.run_uid, name, columns, step_index=index,
                              metadata=metadata)
        self.streams[name] = writer
        return writer

    def _stored_stream(self, name: str, step_index: int | None) -> dict | None:
        """The stored stream ``name`` (or ``name_<n>``, as new_stream names repeats) of this
        step, not yet continued in this process."""
        pattern = re.compile(re.escape(name) + r"(_\d+)?")
        found = [s for n, s in self.stored_streams.items()
                 if pattern.fullmatch(n) and s["step_index"] == step_index and n not in self.streams]
        return found[-1] if found else None
