"""The document stream: what acquisition emits and what storage, plots and analysis consume.

Documents are plain dicts so that subscribers (storage, gui, analysis) never import acquisition
code; this module only defines their shape and the dispatcher. Each document travels as a
``(name, doc)`` pair, as in Bluesky's event model:

``start``       run_uid, time (wall-clock epoch s), protocol_name, protocol (validated dict),
                sample (dict), station (snapshot dict), simulated (bool)
``descriptor``  run_uid, descriptor_uid, stream (unique name within the run), step_index (int or
                None), columns ({name: {"unit": str, "dtype": "float" | "int" | "str"}}),
                metadata (dict, e.g. {"setpoint_c": 30.0})
``event_page``  descriptor_uid, seq_start (int, 0-based sequence of the first row), data
                ({column: sequence}, every column of the descriptor, equal lengths)
``step_start``  run_uid, step_index, kind, name, params (dict), time
``step_stop``   run_uid, step_index, status ("completed" | "failed" | "aborted"), time, summary (dict)
``analysis``    run_uid, name (e.g. "eis"), step_index (int or None), result (JSON-able dict)
``stop``        run_uid, time, status ("completed" | "failed" | "aborted"), reason (str),
                traceback (str or None)
"""
from __future__ import annotations

import logging
import uuid
from typing import Any, Callable, Iterable, Mapping

import numpy as np

log = logging.getLogger(__name__)

DOCUMENT_NAMES = ("start", "descriptor", "event_page", "step_start", "step_stop", "analysis", "stop")

Subscriber = Callable[[str, dict], None]


def new_uid() -> str:
    return uuid.uuid4().hex


class DocumentStream:
    """Dispatches documents to subscribers in subscription order.

    A subscriber that raises is reported and kept: one failing consumer (a plot, say) must not
    stop acquisition. Storage is the exception the caller can opt into: ``critical=True``
    subscribers re-raise, because losing data silently is worse than stopping the run.
    """

    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, bool]] = []

    def subscribe(self, callback: Subscriber, critical: bool = False) -> Subscriber:
        self._subscribers.append((callback, critical))
        return callback

    def unsubscribe(self, callback: Subscriber) -> None:
        self._subscribers = [(cb, c) for cb, c in self._subscribers if cb is not callback]

    def emit(self, name: str, doc: dict) -> None:
        if name not in DOCUMENT_NAMES:
            raise ValueError(f"unknown document name {name!r}; expected one of {DOCUMENT_NAMES}")
        for callback, critical in list(self._subscribers):
            try:
                callback(name, doc)
            except Exception:
                if critical:
                    raise
                log.exception("subscriber %r failed on %s document", callback, name)


class StreamWriter:
    """Emits one stream's descriptor once, then event pages with a running sequence number."""

    def __init__(self, emit: Callable[[str, dict], None], run_uid: str, stream: str,
                 columns: Mapping[str, str | tuple[str, str]], step_index: int | None = None,
                 metadata: dict | None = None) -> None:
        self._emit = emit
        self.stream = stream
        self.columns = {name: _column_spec(spec) for name, spec in columns.items()}
        self.descriptor_uid = new_uid()
        self.seq = 0
        emit("descriptor", {
            "run_uid": run_uid, "descriptor_uid": self.descriptor_uid, "stream": stream,
            "step_index": step_index, "columns": self.columns, "metadata": dict(metadata or {}),
        })

    def write(self, data: Mapping[str, Iterable[Any]]) -> int:
        """Emit rows given column-wise; returns the number of rows written."""
        missing = set(self.columns) - set(data)
        extra = set(data) - set(self.columns)
        if missing or extra:
            raise ValueError(f"stream {self.stream!r}: missing columns {sorted(missing)}, "
                             f"unexpected columns {sorted(extra)}")
        cols = {k: np.asarray(v) for k, v in data.items()}
        lengths = {len(v) for v in cols.values()}
        if len(lengths) != 1:
            raise ValueError(f"stream {self.stream!r}: columns of unequal length {lengths}")
        n = lengths.pop()
        if n == 0:
            return 0
        self._emit("event_page", {"descriptor_uid": self.descriptor_uid, "seq_start": self.seq,
                                  "data": cols})
        self.seq += n
        return n

    def write_row(self, **row: Any) -> None:
        self.write({k: [v] for k, v in row.items()})


def _column_spec(spec: str | tuple[str, str]) -> dict:
    if isinstance(spec, str):
        return {"unit": spec, "dtype": "float"}
    unit, dtype = spec
    if dtype not in ("float", "int", "str"):
        raise ValueError(f"column dtype must be float, int or str, not {dtype!r}")
    return {"unit": unit, "dtype": dtype}
