"""Re-attaching to the BioLogic channel after a crash (procedures/reattach.py): the channel ran on
while no process read it ([sim] offline_time), its finite memory ([sim] potentiostat_buffer_bytes)
kept the newest rows, and resume reads them back and records what was lost as a gap, counted
both by the instrument (IRQskipped) and against the technique's sampling, here recounted from
the stored rows themselves.

A crash is a child process (fork) that leaves with ``os._exit`` once a given number of rows of
one stream has reached the storage writer (as in test_resume.py).
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from config.documents import RunStatus
from storage.checkpoints import duplicate_and_gap_count
from storage.readers import get_run, read_stream

from tests.procedures.crash import crash_run, resume

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = ROOT / "config" / "protocols"
MEMORY_BYTES = 1024  # 51 CA or VSCAN rows (5 words), 18 PEIS rows (14 words)


def station_file(tmp_path: Path, offline_time: float, poll_s: float = 30.0) -> Path:
    """The shipped station with the channel memory made small and instrument time passing
    ``offline_time`` × the wall time while no process controls the simulated station."""
    text = (ROOT / "config" / "station.toml").read_text()
    text = re.sub(r"^potentiostat_poll_interval_s = .*$", f"potentiostat_poll_interval_s = {poll_s}",
                  text, count=1, flags=re.M)
    text = text.replace("[sim]\n", f"[sim]\noffline_time = {offline_time}\n"
                                   f"potentiostat_buffer_bytes = {MEMORY_BYTES}\n", 1)
    path = tmp_path / "station.toml"
    path.write_text(text)
    return path


def protocol_file(tmp_path: Path, name: str, replacements: dict) -> Path:
    text = (PROTOCOLS / f"{name}.toml").read_text()
    for pattern, value in replacements.items():
        text, n = re.subn(pattern, value, text, count=1, flags=re.M)
        assert n == 1, pattern
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def run_until_rows(protocol: Path, station: Path, db: Path, role: str, rows: int) -> int:
    """Run ``protocol`` in a child that dies once ``rows`` rows of its first stream of ``role``
    are committed; returns its exit code (9: died as asked). The writer commits at least every
    2 s of wall time (the simulation runs faster): the child waits that long once the rows have
    reached the writer, and dies at the stream's next page, which the writer commits with them."""
    uids, seen = set(), [0]

    def die(name: str, doc: dict) -> None:
        if name == "descriptor" and doc["metadata"].get("role") == role and not uids:
            uids.add(doc["descriptor_uid"])
        elif name == "event_page" and doc["descriptor_uid"] in uids:
            if seen[0] >= rows:
                os._exit(9)
            seen[0] += len(next(iter(doc["data"].values())))
            if seen[0] >= rows:
                time.sleep(2.1)
    return crash_run(protocol, db, die, station)


def stored_rows(db: Path, stream: str) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT n_points FROM streams WHERE name = ?", (stream,)).fetchone()[0]
    finally:
        con.close()


def assert_no_duplicates(db: Path) -> None:
    for name, counts in duplicate_and_gap_count(str(db), 1).items():
        assert counts["rows"] == counts["n_points"] and counts["contiguous"], (name, counts)


def one_gap(db: Path) -> dict:
    gaps = get_run(str(db), 1)["gaps"]
    assert len(gaps) == 1, gaps
    gap = gaps[0]
    # The instrument's count and the technique's sampling agree.
    assert gap["points_lost"] == gap["points_expected"] > 0, gap
    return gap


def test_eis_resumed_after_a_long_offline_time_reads_back_the_spectrum_end_and_counts_the_gap(tmp_path):
    protocol = protocol_file(tmp_path, "onbh_conductivity", {r"^temperatures_c = .*$": "temperatures_c = [30.0]"})
    # Polled every second: a spectrum's first frequencies come faster than 18 rows in 30 s.
    station = station_file(tmp_path, offline_time=1e5, poll_s=1.0)  # a wall second: over a day
    db = tmp_path / "eis.sqlite"
    assert run_until_rows(protocol, station, db, "eis_spectrum", 25) == 9
    before = stored_rows(db, "conductivity_peis_at_30_c")
    assert before > 0
    result = resume(db)
    assert result.status is RunStatus.COMPLETED
    gap = one_gap(db)
    assert gap["stream"] == "conductivity_peis_at_30_c" and gap["technique"] == "PEIS"
    # The channel finished the spectrum alone; its memory kept the last 18 frequency rows.
    cut = get_run(str(db), 1)["streams"]
    cut = next(s for s in cut if s["name"] == gap["stream"])
    assert cut["n_points"] == before + MEMORY_BYTES // (4 * 14)
    assert before + gap["points_lost"] + MEMORY_BYTES // (4 * 14) == 69  # the spectrum's frequencies
    frame = read_stream(str(db), 1, gap["stream"])
    assert frame["frequency_hz"].is_monotonic_decreasing
    assert frame["time_s"].iloc[before - 1] == pytest.approx(gap["from_s"])
    assert frame["time_s"].iloc[before] == pytest.approx(gap["to_s"])
    assert cut["metadata"].get("incomplete")  # measured again, complete, in a new stream
    assert [s["temperature_c"] for s in result.analysis["eis"]["spectra"]] == [pytest.approx(30.0, abs=0.5)]
    assert_no_duplicates(db)


def test_lsv_resumed_after_a_long_offline_time_has_a_gap_of_the_size_its_sampling_says(tmp_path):
    protocol = PROTOCOLS / "lsv_oxidation.toml"
    station = station_file(tmp_path, offline_time=3600.0)  # a wall second: an hour
    db = tmp_path / "lsv.sqlite"
    assert run_until_rows(protocol, station, db, "lsv", 40) == 9
    before = stored_rows(db, "lsv")
    time.sleep(1.0)  # an hour offline: 180 rows of the sweep, the memory holds 51
    result = resume(db)
    assert result.status is RunStatus.FAILED and "LSV sweep cannot be resumed" in result.reason
    gap = one_gap(db)
    assert (gap["stream"], gap["technique"]) == ("lsv", "VSCAN")
    frame = read_stream(str(db), 1, "lsv")
    dt = 0.001 / 50e-6  # record every 1 mV at 50 µV/s
    t = frame["time_s"].to_numpy()
    # Every row the sweep recorded from its start to the last one read is stored or lost.
    assert len(t) + gap["points_lost"] == round((t[-1] - t[0]) / dt) + 1
    assert len(t) - before == MEMORY_BYTES // (4 * 5)  # the full memory's newest rows, read back
    assert np.allclose(np.diff(t[:before]), dt) and np.allclose(np.diff(t[before:]), dt)
    assert t[before] - t[before - 1] == pytest.approx((gap["points_lost"] + 1) * dt)
    assert_no_duplicates(db)


def test_dc_polarization_resumed_after_a_long_offline_time_records_its_gap_and_goes_on(tmp_path):
    protocol = protocol_file(tmp_path, "dc_polarization", {r"^voltages_v = .*$": "voltages_v = [0.1, 0.2]"})
    station = station_file(tmp_path, offline_time=3600.0)
    db = tmp_path / "dcpol.sqlite"
    assert run_until_rows(protocol, station, db, "dc_polarization", 50) == 9
    before = stored_rows(db, "dcpol")
    time.sleep(1.0)  # an hour offline: 360 rows of the level, the memory holds 51
    result = resume(db)
    assert result.status is RunStatus.COMPLETED
    gap = one_gap(db)
    assert (gap["stream"], gap["technique"]) == ("dcpol", "CA")
    frame = read_stream(str(db), 1, "dcpol")
    t = frame["time_s"].to_numpy()
    dt = 10.0
    assert t[before - 1] == pytest.approx(gap["from_s"]) and t[before] == pytest.approx(gap["to_s"])
    assert round((gap["to_s"] - gap["from_s"]) / dt) - 1 == gap["points_lost"]
    read_back = MEMORY_BYTES // (4 * 5)
    assert np.allclose(np.diff(t[before:before + read_back]), dt)
    assert set(frame["step"].iloc[:before + read_back]) == {0}
    # The level is then held again from its start, and the next one follows.
    assert set(frame["step"].iloc[before + read_back:]) == {0, 1}
    assert len(result.analysis["dcpol"]["steps"]) == 2
    assert_no_duplicates(db)


def test_a_short_offline_time_loses_nothing_and_reports_no_gap(tmp_path):
    protocol = protocol_file(tmp_path, "dc_polarization", {r"^voltages_v = .*$": "voltages_v = [0.1]"})
    station = station_file(tmp_path, offline_time=1.0)  # the lab ran on in real time: seconds
    db = tmp_path / "short.sqlite"
    assert run_until_rows(protocol, station, db, "dc_polarization", 50) == 9
    before = stored_rows(db, "dcpol")
    result = resume(db)
    assert result.status is RunStatus.COMPLETED
    assert get_run(str(db), 1)["gaps"] == []
    t = read_stream(str(db), 1, "dcpol")["time_s"].to_numpy()
    # What the channel held was read back after the stored rows, none missing: the only step in
    # the 10 s sampling is where the level is held again from its start.
    irregular = np.flatnonzero(~np.isclose(np.diff(t), 10.0))
    assert len(irregular) <= 1 and (irregular >= before - 1).all()
    show = subprocess.run([sys.executable, str(ROOT / "main.py"), "show", "1", "--db", str(db), "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert show.returncode == 0 and json.loads(show.stdout)["gaps"] == []
