"""The lab-database acceptance scenario, small: four station processes (simulated full cells of
one cycle) write to one fresh PostgreSQL database at once while a fifth follows them
(bench/bench_lab_database.py runs it at full length)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_four_stations_and_a_follower_on_one_fresh_postgresql_database(pg_server_url):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_lab_database.py"), "--cycles", "1",
         "--timeout", "600", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "CELLBENCH_BENCH_POSTGRES_URL": pg_server_url,
             "PYTHONPATH": str(ROOT)})
    result = json.loads(done.stdout)
    assert result["problems"] == [] and done.returncode == 0, result["problems"]
    runs = result["runs"]
    assert [r["status"] for r in runs] == ["completed"] * 4
    assert sorted(r["run_id"] for r in runs) == [1, 2, 3, 4]
    assert [r["first_discharge_mah_per_cm2"] == pytest.approx(r["paper_mah_per_cm2"], rel=0.05)
            for r in runs] == [True] * 4
    streams = result["database"]["streams"]
    assert {name for run in streams.values() for name in run} == {"chamber", "cycling"}
    assert all(s["stored"] > 0 for run in streams.values() for s in run.values())
    assert result["latency_s"]["commits"] >= 4 and result["latency_s"]["max"] <= 2.0
