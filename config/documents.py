"""The vocabulary shared by acquisition, storage, plots, analysis and reports.

Acquisition (procedures/) emits documents; storage, the GUI, progress displays and the analysis
subscribe to them. None of the subscribers imports acquisition code, so what they have in common
lives here, once: the document shapes (typed dicts, as in Bluesky's event model), the router base
that dispatches them, the run statuses and the stream roles.

Documents travel as ``(name, doc)`` pairs; ``doc`` is a plain dict of the shape below, so that
any subscriber (a storage writer in another process, a Qt signal) can take it as it is.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypedDict


class RunStatus(str, enum.Enum):
    """How a run stands. ``UNSAFE``: the run ended and an instrument could not be put in its safe
    state (a channel left running, a chamber not in standby): someone must look at the station."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"
    INTERRUPTED = "interrupted"
    UNSAFE = "unsafe"

    @property
    def finished(self) -> bool:
        return self is not RunStatus.RUNNING

    def __str__(self) -> str:
        return self.value


FINAL_STATUSES = tuple(s.value for s in RunStatus if s not in (RunStatus.RUNNING, RunStatus.INTERRUPTED))
"""What a ``stop`` document may say."""

STEP_STATUSES = ("completed", "failed", "aborted", "interrupted")
"""``interrupted``: the process died inside the step; resume ended it and did it again."""


# --- stream roles -------------------------------------------------------------------------------
class StreamRole(str, enum.Enum):
    """What a stream holds, stated in its descriptor's ``metadata["role"]``."""

    EIS_SPECTRUM = "eis_spectrum"
    CELL_EIS = "cell_eis"
    CHAMBER_LOG = "chamber_log"
    OCV = "ocv"
    LSV = "lsv"
    DC_POLARIZATION = "dc_polarization"
    CYCLING = "cycling"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class RoleInfo:
    """How a role's streams are read: the columns they must have, the x–y view that suits them
    (``y_sign`` −1 plots −Z'' upwards), whether time restarts at 0 in each stream (so a live
    plot offsets them to avoid overlap), and a human title."""

    title: str
    required_columns: tuple[str, ...]
    x: str
    y: str
    y_sign: float = 1.0
    x_label: str = ""
    y_label: str = ""
    equal_axes: bool = False


STREAM_ROLES: dict[StreamRole, RoleInfo] = {
    StreamRole.EIS_SPECTRUM: RoleInfo("Nyquist (pellet)", ("frequency_hz", "z_real_ohm", "z_imag_ohm"),
                                      "z_real_ohm", "z_imag_ohm", -1.0, "Z' / Ω", "−Z'' / Ω", True),
    StreamRole.CELL_EIS: RoleInfo("Nyquist (cell)", ("frequency_hz", "z_real_ohm", "z_imag_ohm"),
                                  "z_real_ohm", "z_imag_ohm", -1.0, "Z' / Ω", "−Z'' / Ω", True),
    StreamRole.CHAMBER_LOG: RoleInfo("Chamber", ("time_s", "temperature_c", "setpoint_c"),
                                     "time_s", "temperature_c", 1.0, "time / s", "T / °C"),
    StreamRole.OCV: RoleInfo("Open-circuit rest", ("time_s", "ewe_v"), "time_s", "ewe_v", 1.0,
                             "time / s", "E / V"),
    StreamRole.LSV: RoleInfo("LSV", ("time_s", "ewe_v", "i_a"), "ewe_v", "i_a", 1.0,
                             "E / V", "I / A"),
    StreamRole.DC_POLARIZATION: RoleInfo("DC polarization", ("time_s", "setpoint_v", "i_a", "step"),
                                         "time_s", "i_a", 1.0, "time / s", "I / A"),
    StreamRole.CYCLING: RoleInfo("Cycling", ("test_time_s", "voltage_v", "current_a", "cycle", "step"),
                                 "test_time_s", "voltage_v", 1.0, "time / s", "U / V"),
}


def role_of(descriptor: dict) -> StreamRole | None:
    """The role a descriptor declares, or None for a stream no consumer interprets."""
    try:
        return StreamRole((descriptor.get("metadata") or {}).get("role"))
    except ValueError:
        return None


# --- documents ----------------------------------------------------------------------------------
class ColumnSpec(TypedDict):
    unit: str
    dtype: str  # "float" | "int" | "str"


class StartDoc(TypedDict, total=False):
    run_uid: str
    time: float  # clock time (virtual in simulation), s since the epoch
    protocol_name: str
    protocol: dict
    protocol_source: str
    sample: dict
    station: dict
    simulated: bool
    plan: dict  # the run's estimate: steps with expected durations
    resume_run_id: int  # set when this start continues a stored run after a crash (its id)


class DescriptorDoc(TypedDict):
    run_uid: str
    descriptor_uid: str
    stream: str
    step_index: int | None
    columns: dict[str, ColumnSpec]
    metadata: dict


class EventPageDoc(TypedDict):
    descriptor_uid: str
    seq_start: int
    data: dict[str, Any]


class StepStartDoc(TypedDict, total=False):
    run_uid: str
    step_index: int
    kind: str
    name: str
    params: dict
    time: float
    position: dict  # a step taken up again after a crash: its checkpoint's position


class StepStopDoc(TypedDict):
    run_uid: str
    step_index: int
    status: str
    time: float
    summary: dict


class ProgressDoc(TypedDict, total=False):
    run_uid: str
    time: float  # clock time
    wall_elapsed_s: float
    elapsed_s: float  # clock time since the run started
    step_index: int
    n_steps: int
    step_name: str
    cycle: int | None
    n_cycles: int | None
    remaining_s: float | None  # estimate for the whole run
    state: str  # "running" | "paused" | "waiting for operator" | "waiting" (for a shared chamber)
    message: str


class AnalysisDoc(TypedDict):
    run_uid: str
    name: str
    step_index: int | None
    result: dict


class SuspensionState(str, enum.Enum):
    """Where a suspension stands: the run is ``suspended`` (a watched condition was lost), it
    ``recovered`` (the condition is back and the run goes on), or it is ``unrecovered`` (not back
    within the protocol's recovery time: the run ends safe, failed)."""

    SUSPENDED = "suspended"
    RECOVERED = "recovered"
    UNRECOVERED = "unrecovered"

    def __str__(self) -> str:
        return self.value


class SuspensionDoc(TypedDict):
    """A watched condition lost and what became of it. One suspension is emitted once per state
    it passes through, with the same ``suspension_uid``; storage keeps the latest."""

    run_uid: str
    suspension_uid: str
    state: str  # SuspensionState
    step_index: int
    reason: str  # what was lost: "chamber at 27.9 °C, outside 30 ± 0.5 °C", "chamber alarm 9", ...
    setpoint_c: float
    started_at: float  # clock time the condition was lost
    ended_at: float | None  # clock time it came back (recovered) or was given up (unrecovered)
    time: float  # clock time of this document
    invalidated: list[str]  # streams measured while suspended and marked invalid (EIS spectra)
    action: str  # what the step kind did: "spectrum measured again", "step failed", ...
class GapDoc(TypedDict):
    """Points an instrument measured and no longer holds when it was read again: a BioLogic
    channel whose finite buffer overflowed while no controller read it (procedures/reattach.py).
    The stream's rows on either side of the gap are stored; these are not."""

    run_uid: str
    stream: str
    step_index: int
    technique: str  # the technique the channel was running ("CA", "LSV", "PEIS", ...)
    from_s: float  # run time (s) of the last row read before the gap
    to_s: float  # run time (s) of the first row read after it
    points_lost: int  # as the instrument counted them (TDataInfos.IRQskipped)
    points_expected: int | None  # the same from the technique's sampling and the gap's length
    time: float  # clock time the gap was found


def gap_text(gap: dict) -> str:
    """One line saying what a gap lost (progress output, ``show``, the report)."""
    expected = gap.get("points_expected")
    check = "" if expected is None else f"; {expected} by the technique's sampling"
    return (f"{gap['points_lost']} points of {gap['stream']} ({gap.get('technique') or '?'}) lost "
            f"between t = {gap['from_s']:.1f} s and {gap['to_s']:.1f} s: the channel's buffer "
            f"overflowed while no controller read it{check}")


class CheckpointDoc(TypedDict):
    """How far the run has come, stored in the same transaction as the rows emitted before it
    (procedures/resume.py reads it back): the step index and that step's own position."""

    run_uid: str
    step_index: int
    position: dict


class StopDoc(TypedDict):
    run_uid: str
    time: float
    status: str
    reason: str
    traceback: str | None


DOCUMENT_NAMES = ("start", "descriptor", "event_page", "step_start", "step_stop", "progress",
                  "suspension", "gap", "checkpoint", "analysis", "stop")


class DocumentRouter:
    """Base of every subscriber: ``router(name, doc)`` calls the method of that name.

    Subclasses override the documents they care about; the others are ignored. An unknown name
    is an error, so a typo in an emitter cannot pass unseen.
    """

    def __call__(self, name: str, doc: dict) -> None:
        if name not in DOCUMENT_NAMES:
            raise ValueError(f"unknown document name {name!r}; expected one of {DOCUMENT_NAMES}")
        getattr(self, name)(doc)

    def start(self, doc: StartDoc) -> None:
        pass

    def descriptor(self, doc: DescriptorDoc) -> None:
        pass

    def event_page(self, doc: EventPageDoc) -> None:
        pass

    def step_start(self, doc: StepStartDoc) -> None:
        pass

    def step_stop(self, doc: StepStopDoc) -> None:
        pass

    def progress(self, doc: ProgressDoc) -> None:
        pass

    def suspension(self, doc: SuspensionDoc) -> None:
        pass

    def gap(self, doc: GapDoc) -> None:
        pass

    def checkpoint(self, doc: CheckpointDoc) -> None:
        pass

    def analysis(self, doc: AnalysisDoc) -> None:
        pass

    def stop(self, doc: StopDoc) -> None:
        pass
