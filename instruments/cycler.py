"""The cycler abstraction every cycler driver and simulator implements.

A channel runs one vendor-neutral ``CyclingProgram`` (config.cycling) on one cell and hands back
its records as a pandas DataFrame with the canonical columns (current positive on charge,
capacity and energy counted from the start of each step, >= 0).

Drivers differ in what they can do, and say so in ``capabilities``: the Landt software cannot be
started remotely (the operator loads the step table), a simulator can do everything. Procedures
read the flags and adapt; calling an operation a channel does not offer raises
``CyclerCapabilityError`` instead of pretending.
"""
from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

CANONICAL_COLUMNS = ("record", "cycle", "step", "step_type", "test_time_s", "step_time_s",
                     "voltage_v", "current_a", "capacity_ah", "energy_wh")
_DTYPES = {"record": np.int64, "cycle": np.int64, "step": np.int64,
           "test_time_s": np.float64, "step_time_s": np.float64, "voltage_v": np.float64,
           "current_a": np.float64, "capacity_ah": np.float64, "energy_wh": np.float64}


def records_frame(columns: dict) -> pd.DataFrame:
    """A canonical records DataFrame from a dict of equally long arrays (all columns needed)."""
    arrays = [pd.array(np.asarray(columns[name], dtype=object), dtype=str) if name == "step_type"
              else np.asarray(columns[name], dtype=_DTYPES[name]) for name in CANONICAL_COLUMNS]
    # step_type uses pandas' text dtype (object in pandas 2, str in pandas 3), also when empty, so
    # frames concatenate without changing dtype. _from_arrays skips the dict-constructor's
    # inference, which costs a followed export ~1 ms per poll, a third of a long simulated run.
    return pd.DataFrame._from_arrays(arrays, columns=list(CANONICAL_COLUMNS),
                                     index=pd.RangeIndex(len(arrays[0])), verify_integrity=False)


def empty_columns() -> dict[str, np.ndarray]:
    """Canonical columns with no rows."""
    return {name: np.asarray([], dtype=_DTYPES.get(name, object)) for name in CANONICAL_COLUMNS}


def concat_columns(batches: list[dict]) -> dict[str, np.ndarray]:
    """One batch of canonical columns from several, in order."""
    if not batches:
        return empty_columns()
    if len(batches) == 1:
        return batches[0]
    return {name: np.concatenate([b[name] for b in batches]) for name in CANONICAL_COLUMNS}


def n_records(columns: dict) -> int:
    return len(columns["record"])


def empty_records() -> pd.DataFrame:
    """A canonical records DataFrame with no rows."""
    return records_frame({name: [] for name in CANONICAL_COLUMNS})


class CyclerState(str, enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    FAULT = "fault"


@dataclass(frozen=True)
class CyclerCapabilities:
    """remote_start: start()/stop() act on the instrument without an operator.
    live_data: records can be read while the program runs. pause: pause()/resume() work."""

    remote_start: bool
    live_data: bool
    pause: bool


class CyclerError(RuntimeError):
    """A cycler failed; the message names the instrument and what it was asked to do."""


class CyclerCapabilityError(CyclerError):
    """The channel cannot do what was asked (see its ``capabilities``)."""


Prompt = Callable[[str], None]


class CyclerChannel(abc.ABC):
    """One cycler channel. Use as a context manager; ``close()`` releases it."""

    capabilities: CyclerCapabilities
    name: str = "cycler"

    @abc.abstractmethod
    def state(self) -> CyclerState:
        """The channel's state now."""

    @abc.abstractmethod
    def start(self, program, cell, sample_id: str, on_prompt: Prompt | None = None) -> None:
        """Run ``program`` (config.cycling.CyclingProgram) on ``cell`` (CellSection).
        ``on_prompt(text)`` is called with instructions when the operator must act."""

    def attach(self, program, cell, sample_id: str) -> None:
        """Follow ``program`` already running on the channel, started by an earlier process that
        died (resume after a crash): no start, the records come on from where the channel is.
        Records the caller has stored already are its to skip, by their record numbers."""
        raise CyclerCapabilityError(f"{self.name}: cannot re-attach to a running program")

    @abc.abstractmethod
    def stop(self) -> None:
        """End the program now."""

    @abc.abstractmethod
    def read_new_columns(self) -> dict[str, np.ndarray]:
        """Records not returned before, as numpy columns by canonical name (CANONICAL_COLUMNS):
        what acquisition streams, without a DataFrame built and taken apart at every poll."""

    def read_new_records(self) -> pd.DataFrame:
        """Records not returned before, as a canonical DataFrame."""
        return records_frame(self.read_new_columns())

    def pause(self) -> None:
        """Hold the program (only with capabilities.pause)."""
        raise CyclerCapabilityError(f"{self.name}: this channel cannot pause")

    def resume(self) -> None:
        """Continue a paused program (only with capabilities.pause)."""
        raise CyclerCapabilityError(f"{self.name}: this channel cannot resume")

    def close(self) -> None:
        """Release the channel (a running program is left alone)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
