"""Following a run from another process: its new points as they are committed.

A :class:`RunFollower` polls the database; each poll is one short read transaction that reads, in
this order, the run's row (status, heartbeat), its streams with their committed point counts
(``streams.n_points``), and, for each stream whose count grew, the points after the largest
``seq`` already seen (a range scan of the points' primary key). The order is what makes the end
exact on every backend and isolation level: the writer commits a stream's rows in the same
transaction as its count, and a run's final status after its last rows, so once a poll has read a
final status, the point queries that follow it see every point the run will ever have.

Rows committed out of ``seq`` order (a producer's late page with lower sequence numbers) are not
lost: when fewer points have been seen than the count says, the stream's sequence numbers are
read and the ones never seen are fetched. A stream's seen sequence numbers are kept as ranges,
one range for a stream written in order, so a long run costs the follower no memory per point.

Nothing here writes: a follower may watch a live run on a lab server while the station writes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from sqlalchemy import select

from config.documents import FINAL_STATUSES, RunStatus
from storage.engine import engine_for
from storage.liveness import effective_status
from storage.readers import Database, _iso, _run_row, stream_frame
from storage.schema import points, runs, streams

POLL_INTERVAL_S = 0.25
"""Default pause between polls: well inside the 2 s within which a follower should show a commit,
and a few indexed queries per poll, so many followers cost the server little."""
END_STATUSES = (*FINAL_STATUSES, RunStatus.INTERRUPTED.value)
"""Statuses after which a run gets no more points."""


@dataclass
class StreamInfo:
    """A stream as a follower first sees it."""

    name: str
    step_index: int | None
    columns: dict
    metadata: dict


@dataclass
class FollowUpdate:
    """What one poll found: the run's status, streams not seen before, new points by stream name
    (DataFrames as storage.readers.read_stream returns them, index ``seq``), and whether the run
    has ended with every point read."""

    status: str
    reason: str | None
    updated_at: str | None
    new_streams: list[StreamInfo] = field(default_factory=list)
    points: dict[str, pd.DataFrame] = field(default_factory=dict)
    ended: bool = False

    @property
    def n_new_points(self) -> int:
        return sum(len(frame) for frame in self.points.values())


class SeqRanges:
    """A set of sequence numbers kept as sorted, disjoint, inclusive ranges."""

    def __init__(self) -> None:
        self.starts = np.empty(0, dtype=np.int64)
        self.ends = np.empty(0, dtype=np.int64)
        self.count = 0

    @property
    def max(self) -> int | None:
        return int(self.ends[-1]) if self.ends.size else None

    def add(self, seqs: np.ndarray) -> None:
        """Add sorted, distinct, not yet present ``seqs``."""
        if seqs.size == 0:
            return
        breaks = np.flatnonzero(np.diff(seqs) != 1)
        starts = np.concatenate([self.starts, seqs[np.r_[0, breaks + 1]]])
        ends = np.concatenate([self.ends, seqs[np.r_[breaks, seqs.size - 1]]])
        order = np.argsort(starts, kind="stable")
        merged_starts, merged_ends = [], []
        for start, end in zip(starts[order].tolist(), ends[order].tolist()):
            if merged_ends and start <= merged_ends[-1] + 1:
                merged_ends[-1] = max(merged_ends[-1], end)
            else:
                merged_starts.append(start)
                merged_ends.append(end)
        self.starts = np.array(merged_starts, dtype=np.int64)
        self.ends = np.array(merged_ends, dtype=np.int64)
        self.count += int(seqs.size)

    def missing(self, seqs: np.ndarray) -> np.ndarray:
        """The ``seqs`` not in the set."""
        if self.starts.size == 0:
            return seqs
        i = np.searchsorted(self.starts, seqs, side="right") - 1
        covered = (i >= 0) & (seqs <= self.ends[np.maximum(i, 0)])
        return seqs[~covered]


class RunFollower:
    """Polls run ``run_id`` in ``db`` for what was committed since the previous poll.

    Raises storage.readers.RunNotFound at construction for an unknown run.
    """

    def __init__(self, db: Database, run_id: int) -> None:
        self.engine = engine_for(db)
        self.run_id = int(run_id)
        with self.engine.connect() as conn:
            _run_row(conn, self.engine, self.run_id)
        self._seen: dict[int, SeqRanges] = {}
        self._names: dict[int, str] = {}
        self.ended = False

    @property
    def n_points_seen(self) -> int:
        """Points delivered so far, over all streams."""
        return sum(seen.count for seen in self._seen.values())

    def poll(self) -> FollowUpdate:
        """One read transaction; see the module docstring for why its order matters."""
        with self.engine.connect() as conn:
            run = _run_row(conn, self.engine, self.run_id)
            status = effective_status(run.status, _iso(run.updated_at))
            update = FollowUpdate(status=status, reason=run.reason,
                                  updated_at=_iso(run.updated_at))
            rows = conn.execute(select(streams).where(streams.c.run_id == self.run_id)
                                .order_by(streams.c.id)).all()
            for stream in rows:
                if stream.id not in self._seen:
                    self._seen[stream.id] = SeqRanges()
                    self._names[stream.id] = stream.name
                    update.new_streams.append(StreamInfo(stream.name, stream.step_index,
                                                         stream.columns, stream.metadata or {}))
                seen = self._seen[stream.id]
                if stream.n_points <= seen.count:
                    continue
                frame = stream_frame(conn, stream, after_seq=seen.max)
                seen.add(frame.index.to_numpy(np.int64))
                if seen.count < stream.n_points:
                    late = self._late_points(conn, stream, seen)
                    frame = pd.concat([late, frame]).sort_index() if len(frame) else late
                if len(frame):
                    update.points[stream.name] = frame
        update.ended = self.ended = status in END_STATUSES
        return update

    def follow(self, interval_s: float = POLL_INTERVAL_S,
               sleep: Callable[[float], None] = time.sleep) -> Iterator[FollowUpdate]:
        """Poll every ``interval_s`` (from the start of one poll to the next, so a slow poll
        does not add its time to the wait) until the run has ended; yields every poll's update
        that has something new (the first one always), the last one with ``ended`` True."""
        first = True
        last_status = None
        while True:
            started = time.monotonic()
            update = self.poll()
            if first or update.ended or update.new_streams or update.points \
                    or update.status != last_status:
                yield update
            if update.ended:
                return
            first, last_status = False, update.status
            sleep(max(0.0, started + interval_s - time.monotonic()))

    def _late_points(self, conn, stream, seen: SeqRanges) -> pd.DataFrame:
        """Points of ``stream`` committed with a seq below one already seen."""
        stored = np.array(conn.execute(select(points.c.seq).where(
            points.c.stream_id == stream.id).order_by(points.c.seq)).scalars().all(),
            dtype=np.int64)
        missing = seen.missing(stored)
        frame = stream_frame(conn, stream, seqs=missing.tolist())
        seen.add(frame.index.to_numpy(np.int64))
        return frame
