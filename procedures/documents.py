"""The emitting side of the document stream: the dispatcher and the stream writer.

The documents' shapes, names, run statuses and stream roles are defined once, in
config/documents.py, where every subscriber (storage, GUI, analysis) reads them without
importing acquisition code.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from config.documents import DOCUMENT_NAMES

log = logging.getLogger(__name__)

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
                 metadata: dict | None = None, resume: tuple[str, int] | None = None) -> None:
        """``resume``: (descriptor uid, next seq) of a stored stream that a resumed run continues;
        its descriptor is in storage already and is not emitted again."""
        self._emit = emit
        self.stream = stream
        self.columns = {name: _column_spec(spec) for name, spec in columns.items()}
        if resume is not None:
            self.descriptor_uid, self.seq = resume[0], int(resume[1])
            return
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
