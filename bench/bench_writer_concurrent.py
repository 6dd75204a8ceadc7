"""The storage writer at 1 kHz while another process reads the same SQLite database every 10 ms.

One process acquires: a stream of 1,000 rows/s in wall time (one event page of ``PAGE`` rows
every ``PAGE`` ms; late pages are caught up, so the writer's throughput decides the rate) through
StorageWriter with its default flushing (5,000 rows or 2 s). Another process, started with spawn
as a GUI or a second CLI would be, reads every 10 ms the run (``get_run``: run, steps, streams,
counts) and every 100 ms also the stream's rows (``read_stream``, at least as many as the run
counted), each read its own short transaction.

Measured: the achieved rate (rows committed / wall time), the longest document call that
committed (commit latency), the writer's lag behind its 1 kHz schedule, the reads done and the
longest one, and the errors on either side ("database is locked" or any other). Target: 1,000
rows/s sustained, 0 errors.

Run: ``.venv/bin/python bench/bench_writer_concurrent.py [SECONDS]`` (default 10) from the
repository root. tests/storage/test_writer_concurrent.py runs the same for a few seconds.
"""
from __future__ import annotations

import multiprocessing
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RATE_HZ = 1000
PAGE = 10          # rows per event page: one page every 10 ms
READ_PERIOD_S = 0.010
STREAM_EVERY = 10  # the stream's rows every 10th read (100 ms, a live view's refresh)
COLUMNS = {"time_s": "s", "ewe_v": "V", "i_a": "A"}


@dataclass
class ReaderReport:
    reads: int = 0
    max_read_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    last_n_points: int = 0


@dataclass
class WriterReport:
    rows: int
    elapsed_s: float
    max_commit_s: float
    max_lag_s: float
    flushes: int
    errors: list[str]

    @property
    def rate_hz(self) -> float:
        return self.rows / self.elapsed_s


def read_loop(url: str, run_id: int, ready, stop, out) -> None:
    """The reading process: every READ_PERIOD_S the run and its newest rows, until ``stop``;
    ``ready`` is set once it reads."""
    from storage.readers import get_run, read_stream
    report = ReaderReport()
    while not stop.is_set():
        ready.set()
        t0 = time.perf_counter()
        try:
            run = get_run(url, run_id)
            n = next((s["n_points"] for s in run.get("streams", []) if s["name"] == "data"), 0)
            if n and report.reads % STREAM_EVERY == 0:
                rows = len(read_stream(url, run_id, "data"))
                if rows < n:
                    report.errors.append(f"read {rows} rows of a stream that counts {n}")
            report.last_n_points = n
        except Exception as exc:  # noqa: BLE001 - every failure is what this measures
            report.errors.append(f"{type(exc).__name__}: {exc}")
        report.max_read_s = max(report.max_read_s, time.perf_counter() - t0)
        report.reads += 1
        time.sleep(max(READ_PERIOD_S - (time.perf_counter() - t0), 0.0))
    out.put(report)


def write_at_1khz(writer, seconds: float) -> WriterReport:
    """Stream RATE_HZ rows/s for ``seconds`` of wall time into an open run of ``writer``."""
    n_pages = int(seconds * RATE_HZ / PAGE)
    t = np.arange(PAGE) / RATE_HZ
    max_commit = max_lag = 0.0
    errors = []
    t0 = time.perf_counter()
    for k in range(n_pages):
        due = t0 + k * PAGE / RATE_HZ
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        max_lag = max(max_lag, time.perf_counter() - due)
        page = {"descriptor_uid": "data", "seq_start": k * PAGE,
                "data": {"time_s": k * PAGE / RATE_HZ + t, "ewe_v": 3.0 + 1e-3 * t,
                         "i_a": np.full(PAGE, 1e-4)}}
        flushes = writer.flushes
        c0 = time.perf_counter()
        try:
            writer("event_page", page)
        except Exception as exc:  # noqa: BLE001 - counted, and the run goes on as acquisition would
            errors.append(f"{type(exc).__name__}: {exc}")
        if writer.flushes != flushes:
            max_commit = max(max_commit, time.perf_counter() - c0)
    c0 = time.perf_counter()
    writer.flush()
    max_commit = max(max_commit, time.perf_counter() - c0)
    return WriterReport(writer.rows_written, time.perf_counter() - t0, max_commit, max_lag,
                        writer.flushes, errors)


def run(path: Path, seconds: float) -> tuple[WriterReport, ReaderReport]:
    from storage.writer import StorageWriter
    url = f"sqlite:///{path}"
    writer = StorageWriter(url)
    writer("start", {"run_uid": "concurrent", "time": time.time(), "protocol_name": "bench",
                     "protocol": {}, "sample": {}, "station": {}, "simulated": False})
    writer("descriptor", {"run_uid": "concurrent", "descriptor_uid": "data", "stream": "data",
                          "step_index": None, "metadata": {},
                          "columns": {c: {"unit": u, "dtype": "float"} for c, u in COLUMNS.items()}})
    context = multiprocessing.get_context("spawn")
    ready, stop, out = context.Event(), context.Event(), context.Queue()
    reader = context.Process(target=read_loop, args=(url, writer.run_id, ready, stop, out), daemon=True)
    reader.start()
    try:
        if not ready.wait(timeout=300):
            raise RuntimeError("the reading process did not start within 300 s")
        written = write_at_1khz(writer, seconds)
        time.sleep(3 * READ_PERIOD_S)  # the reader sees the last commit too
    finally:
        stop.set()
        read = out.get(timeout=120)
        reader.join(timeout=30)
    writer("stop", {"run_uid": "concurrent", "time": time.time(), "status": "completed",
                    "reason": "", "traceback": None})
    writer.close()
    return written, read


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    with tempfile.TemporaryDirectory() as tmp:
        written, read = run(Path(tmp) / "concurrent.sqlite", seconds)
    print(f"writer: {written.rows:,} rows in {written.elapsed_s:.2f} s = {written.rate_hz:,.0f} rows/s "
          f"(target {RATE_HZ:,}), {written.flushes} commits, max commit {written.max_commit_s * 1e3:.1f} ms, "
          f"max lag behind schedule {written.max_lag_s * 1e3:.1f} ms, errors {len(written.errors)}")
    print(f"reader (other process, every {READ_PERIOD_S * 1e3:.0f} ms): {read.reads:,} reads, "
          f"max read {read.max_read_s * 1e3:.1f} ms, last saw {read.last_n_points:,} points, "
          f"errors {len(read.errors)}")
    for error in (written.errors + read.errors)[:5]:
        print(f"  error: {error}")


if __name__ == "__main__":
    main()
