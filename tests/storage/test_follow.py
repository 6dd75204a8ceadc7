"""Following a live run: every committed point exactly once, the end, `show --follow`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update

from procedures.documents import DocumentStream, StreamWriter, new_uid
from storage.engine import make_engine
from storage.follow import RunFollower, SeqRanges
from storage.readers import RunNotFound
from storage.schema import runs
from storage.writer import StorageWriter

ROOT = Path(__file__).resolve().parents[2]


def live_run(url):
    engine = make_engine(url)
    writer = StorageWriter(engine, flush_rows=10**6, flush_interval_s=1e9)
    docs = DocumentStream()
    docs.subscribe(writer, critical=True)
    uid = new_uid()
    docs.emit("start", {"run_uid": uid, "time": 0.0, "protocol_name": "p", "protocol": {},
                        "sample": {}, "station": {}, "simulated": True})
    return engine, writer, docs, uid


def test_follower_gets_each_commit_once_new_streams_and_the_end(db_url):
    engine, writer, docs, uid = live_run(db_url)
    follower = RunFollower(db_url, writer.run_id)
    first = follower.poll()
    assert (first.status, first.new_streams, first.points, first.ended) == ("running", [], {},
                                                                            False)
    v = StreamWriter(docs.emit, uid, "v", {"time_s": "s", "tag": ("", "str")})
    v.write({"time_s": [0.0, 1.0], "tag": ["a", None]})
    assert follower.poll().new_streams[0].columns["tag"] == {"unit": "", "dtype": "str"}
    assert follower.poll().points == {}  # rows buffered, not committed: nothing to see
    writer.flush()
    got = follower.poll()
    assert got.points["v"]["tag"].tolist() == ["a", None] and got.points["v"].index.tolist() == [0, 1]
    assert follower.poll().points == {}
    v.write({"time_s": [2.0], "tag": ["b"]})
    t = StreamWriter(docs.emit, uid, "t", {"temperature_c": "degC"})
    t.write({"temperature_c": [25.0, 25.5]})
    docs.emit("stop", {"run_uid": uid, "time": 1.0, "status": "completed", "reason": "",
                       "traceback": None})
    last = follower.poll()
    assert [s.name for s in last.new_streams] == ["t"]
    assert {k: f.index.tolist() for k, f in last.points.items()} == {"v": [2], "t": [0, 1]}
    assert last.ended and last.status == "completed" and follower.n_points_seen == 5
    engine.dispose()


def test_rows_committed_out_of_seq_order_are_delivered_once(db_url):
    engine, writer, docs, uid = live_run(db_url)
    stream = StreamWriter(docs.emit, uid, "s", {"x": "V"})
    follower = RunFollower(db_url, writer.run_id)
    stream.seq = 10
    stream.write({"x": [10.0, 11.0, 12.0]})
    writer.flush()
    assert follower.poll().points["s"].index.tolist() == [10, 11, 12]
    stream.seq = 0  # a late page with lower sequence numbers, committed with a new one
    stream.write({"x": [0.0, 1.0]})
    stream.seq = 13
    stream.write({"x": [13.0]})
    writer.flush()
    frame = follower.poll().points["s"]
    assert frame.index.tolist() == [0, 1, 13] and frame["x"].tolist() == [0.0, 1.0, 13.0]
    assert follower.poll().points == {} and follower.n_points_seen == 6
    engine.dispose()


def test_a_run_whose_writer_died_ends_the_follow_as_interrupted(db_url):
    engine, writer, docs, uid = live_run(db_url)
    stale = datetime.now(timezone.utc) - timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == writer.run_id).values(updated_at=stale))
    updates = list(RunFollower(db_url, writer.run_id).follow(interval_s=0.01))
    assert [(u.status, u.ended) for u in updates] == [("interrupted", True)]
    with pytest.raises(RunNotFound):
        RunFollower(db_url, 99)
    engine.dispose()


def test_seq_ranges_merge_and_report_what_is_missing():
    ranges = SeqRanges()
    ranges.add(np.array([5, 6, 7, 9]))
    ranges.add(np.array([0, 1, 8]))
    assert (ranges.starts.tolist(), ranges.ends.tolist(), ranges.count) == ([0, 5], [1, 9], 7)
    assert ranges.missing(np.arange(12)).tolist() == [2, 3, 4, 10, 11] and ranges.max == 9


def test_show_follow_prints_points_as_they_are_committed_then_the_end(db_url):
    engine, writer, docs, uid = live_run(db_url)
    stream = StreamWriter(docs.emit, uid, "cycling", {"v": "V", "step_type": ("", "str")})
    url = engine.url.render_as_string(hide_password=False)
    follower = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "show", str(writer.run_id), "--follow", "--json",
         "--interval", "0.05", "--db", url], cwd=ROOT, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert json.loads(follower.stdout.readline())["type"] == "stream"
        for k in range(3):
            stream.write({"v": [float(k), np.nan], "step_type": ["cc", "rest"]})
            writer.flush()
            committed = time.monotonic()
            line = json.loads(follower.stdout.readline())  # blocks until the follower prints
            # A generous bound: the follower polls every 50 ms; CI machines are slow.
            assert time.monotonic() - committed < 10.0
            assert line == {"type": "points", "stream": "cycling", "seq": [2 * k, 2 * k + 1],
                            "data": {"v": [float(k), None], "step_type": ["cc", "rest"]}}
        docs.emit("stop", {"run_uid": uid, "time": 1.0, "status": "failed", "reason": "relay",
                           "traceback": None})
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert json.loads(out) == {"type": "end", "run_id": writer.last_run_id, "status": "failed",
                               "reason": "relay", "n_points": 6}
    assert follower.returncode == 1, err
    engine.dispose()
