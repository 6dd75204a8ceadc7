"""The storage writer sustains 1 kHz acquisition while another process reads the same SQLite
database every 10 ms, without "database is locked" on either side (issue 9, acceptance)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bench_writer_concurrent import RATE_HZ, run  # noqa: E402


def test_1khz_acquisition_with_a_reader_process_every_10_ms(tmp_path):
    written, read = run(tmp_path / "concurrent.sqlite", seconds=3.0)
    assert written.errors == [] and read.errors == []
    assert written.rows == 3 * RATE_HZ
    assert written.rate_hz >= 0.9 * RATE_HZ, written
    assert written.flushes >= 2                      # the reader met commits, not one at the end
    assert read.reads >= 20 and read.last_n_points > 0, read
