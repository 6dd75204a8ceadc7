"""What a step executor gets: the station, the clock, the run's identity and a way to emit data."""
from __future__ import annotations

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

    @property
    def clock(self):
        return self.station.clock

    def checkpoint(self) -> None:
        """A safe point inside a step whose kind allows pausing there (between measurements)."""
        if self.control is not None:
            self.control.checkpoint(
                on_hold=lambda: self.report_progress(state="paused", message="paused inside the step"),
                on_release=lambda: self.report_progress(message="resumed"))

    def report_progress(self, **fields) -> None:
        if self.progress is not None:
            self.progress.report(**fields)

    @property
    def sample(self):
        return self.protocol.sample

    def new_stream(self, name: str, columns: dict, metadata: dict | None = None,
                   step_index: int | None = -1) -> StreamWriter:
        """A uniquely named stream; a repeated name gets a numeric suffix."""
        base, n = name, 2
        while name in self.streams:
            name = f"{base}_{n}"
            n += 1
        writer = StreamWriter(self.emit, self.run_uid, name, columns,
                              step_index=self.step_index if step_index == -1 else step_index,
                              metadata=metadata)
        self.streams[name] = writer
        return writer
