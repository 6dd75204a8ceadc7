"""Follow the growing tab-separated text export the Landt software writes during a test.

Each ``read_new()`` reads only the bytes appended since the previous call (a byte offset), parses
the complete lines among them and returns them as canonical records. A last line without its
newline is being written: it stays in the file and is read next time (or at once with
``include_partial=True``, once the writer is known to have finished).

Lines before the header (the software's metadata block) are skipped. A file that shrinks, is
replaced by another one (new inode) or disappears after data were read raises
``ExportRotatedError``: the procedure must decide whether that is a new test. A file that cannot
be read this time (the Landt software holds it: a sharing violation, a network share that
hiccups) raises ``ExportReadError`` with nothing consumed; ``read_retrying`` tries again under
the instruments' retry policy.

A chunk is parsed on its own (the header once, then numpy per column; durations in one pass),
and what the whole-file reader would derive from earlier rows (step numbers, step time,
capacity and energy, cycles) is carried from chunk to chunk (``exports.StreamState``), so a
default LANHE text export with only test time, voltage and current is followed as well as one
with every column. The only thing a chunk cannot know is the cycle of rests that come before the
first charge or discharge (cycle 0 if that is a discharge): without a Cycle column such rows are
held back until the first current-carrying record arrives (or the file is read to its end).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd

from instruments.cycler import empty_columns, n_records, records_frame
from instruments.retry import DEFAULT_RETRY
from instruments.landt.exports import (ExportFormatError, StreamState, canonical_columns, decode_text,
                                       find_header, header_roles, split_text_rows)

EXPORT_COLUMNS_HINT = ("Record, Cycle, Step, StepStatus, TestTime, StepTime, Voltage, Current, "
                       "Capacity, Energy")
_MAX_PREAMBLE_BYTES = 1 << 20


class ExportRotatedError(ExportFormatError):
    """The followed file shrank, was replaced or vanished."""


class ExportReadError(OSError):
    """The export could not be read this time; nothing was consumed, a later read may succeed."""


class ExportFollower:
    """Reads what was appended to ``path`` since the last call (see module doc). ``opener``
    opens the file (``open``; the simulated Landt's can fail like a real share)."""

    def __init__(self, path, *, default_units: dict | None = None, opener=open) -> None:
        self.path = Path(path)
        self.default_units = default_units
        self.opener = opener
        self._offset = 0
        self._identity: tuple[int, int] | None = None
        self._headers: list[str] | None = None
        self._derive_cycles = False
        self._state = StreamState()
        self._held: list[str] = []
        self._records = 0

    @property
    def started(self) -> bool:
        """True once the header line has been read."""
        return self._headers is not None

    @property
    def records_read(self) -> int:
        return self._records

    def has_data(self) -> bool:
        """Whether the file exists with anything beyond a header (a quick check before a start)."""
        try:
            with self.opener(self.path, "rb") as fh:
                lines = [line for line in fh.read(_MAX_PREAMBLE_BYTES).splitlines() if line.strip()]
        except FileNotFoundError:
            return False
        except OSError:
            return False  # not readable this time: known at a later look
        rows = split_text_rows(decode_text(b"\n".join(lines)).splitlines())
        at = find_header(rows)
        return at is not None and len(rows) > at + 1

    def read_new(self, include_partial: bool = False) -> pd.DataFrame:
        """Canonical records appended since the last call (an empty frame when there are none)."""
        return records_frame(self.read_new_columns(include_partial))

    def read_new_columns(self, include_partial: bool = False) -> dict:
        """``read_new`` as numpy columns by canonical name."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            if self._offset:
                raise ExportRotatedError(f"{self.path}: the followed export disappeared after "
                                         f"{self._records} records") from None
            return empty_columns()
        identity = (stat.st_dev, stat.st_ino)
        if self._identity is not None and identity != self._identity:
            raise ExportRotatedError(f"{self.path}: the followed export was replaced by another file "
                                     f"after {self._records} records")
        if stat.st_size < self._offset:
            raise ExportRotatedError(f"{self.path}: the followed export shrank from {self._offset} to "
                                     f"{stat.st_size} bytes (truncated or rewritten)")
        self._identity = identity
        if stat.st_size == self._offset:
            return empty_columns()
        try:
            with self.opener(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read(stat.st_size - self._offset)
        except FileNotFoundError:
            raise ExportRotatedError(f"{self.path}: the followed export disappeared after "
                                     f"{self._records} records") from None
        except OSError as exc:
            raise ExportReadError(exc.errno, f"{self.path}: the export cannot be read now: "
                                  f"{exc.strerror or exc}") from exc
        end = len(chunk) if include_partial else chunk.rfind(b"\n") + 1
        if end <= 0:
            return empty_columns()
        lines = [line for line in decode_text(chunk[:end]).splitlines() if line.strip()]
        consumed = self._offset + end
        if self._headers is None:
            rows = split_text_rows(lines)
            at = find_header(rows, max_rows=len(rows))
            if at is None:
                if consumed > _MAX_PREAMBLE_BYTES:
                    raise ExportFormatError(f"{self.path}: no header line with test time, voltage and "
                                            f"current in the first {consumed} bytes; enable at least "
                                            f"TestTime, Voltage and Current in the export (better: "
                                            f"{EXPORT_COLUMNS_HINT})")
                self._offset = consumed
                return empty_columns()
            self._headers = [h.strip() for h in rows[at]]
            self._separator = "\t" if "\t" in lines[at] else ","
            self._derive_cycles = "cycle" not in header_roles(self._headers)
            lines = lines[at + 1:]
        self._offset = consumed
        lines = self._held + lines
        self._held = []
        if not lines:
            return empty_columns()
        rows = [line.split(self._separator) for line in lines]
        width = len(self._headers)
        for i, row in enumerate(rows):
            if len(row) != width:
                raise ExportFormatError(f"{self.path}: record line {self._records + i + 1} has {len(row)} "
                                        f"fields, the header has {width}")
        state = dataclasses.replace(self._state)
        records, _ = canonical_columns(list(zip(*rows)), self._headers, str(self.path),
                                       default_units=self.default_units, record_start=self._records,
                                       state=state)
        if self._derive_cycles and state.active_sign == 0 and not include_partial:
            self._held = lines  # only rests so far: their cycle depends on what comes next
            return empty_columns()
        self._state = state
        self._records += n_records(records)
        return records


def read_retrying(follower: ExportFollower, clock, include_partial: bool = False, on_retry=None) -> dict:
    """``follower.read_new_columns`` with a read error retried under the retry policy, on
    ``clock``; ``on_retry(exc)`` counts the retries."""
    return DEFAULT_RETRY.call(lambda n: follower.read_new_columns(include_partial), clock=clock,
                              transient=lambda exc: isinstance(exc, ExportReadError),
                              describe=f"Landt export {follower.path}", on_retry=on_retry)
