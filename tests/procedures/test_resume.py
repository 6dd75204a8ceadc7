"""Resume after a crash (issue 9, scope 1): a run killed mid-way and resumed ends as an
uninterrupted run does, with no point stored twice; the full measurement (20 random SIGKILLs per
protocol) is bench/bench_resume.py.

A crash is a child process (fork) that leaves with ``os._exit`` from inside the document stream
once a given number of rows has passed the storage writer (no clean-up of any kind runs: like a
SIGKILL); one test kills a real ``main.py run`` with SIGKILL.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.documents import RunStatus
from config.station import load_station
from procedures.service import RunService
from storage.checkpoints import duplicate_and_gap_count
from storage.liveness import effective_status, host_name, process_started
from storage.readers import get_run

from tests.procedures.crash import crash_run, resume

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = ROOT / "config" / "protocols"


def short_cycling(tmp_path: Path) -> Path:
    """full_cell_45mg with 8 cycles instead of 100 (CI-sized)."""
    path = tmp_path / "full_cell_8.toml"
    path.write_text(re.sub(r"count = 100\b", "count = 8", (PROTOCOLS / "full_cell_45mg.toml").read_text()))
    return path


def run_until_crash(protocol, db: Path, after_rows: int) -> int:
    """Run ``protocol`` in a child process that dies once ``after_rows`` rows went to storage;
    returns the child's exit code (9 when it died as asked, 0 if the run ended first)."""
    seen = [0]

    def die(name: str, doc: dict) -> None:
        if name == "event_page":
            seen[0] += len(next(iter(doc["data"].values())))
            if seen[0] >= after_rows:
                os._exit(9)
    return crash_run(protocol, db, die)


_REFERENCES: dict = {}


def reference(protocol, db: Path):
    """An uninterrupted run of ``protocol`` (once per protocol file: it is deterministic)."""
    key = str(protocol)
    if key not in _REFERENCES:
        _REFERENCES[key] = (RunService(load_station(simulate=True), db=str(db), report_dir=False)
                            .run_file(protocol), db)
    return _REFERENCES[key][0]


def assert_no_duplicates(db: Path) -> None:
    for name, counts in duplicate_and_gap_count(str(db), 1).items():
        assert counts["rows"] == counts["n_points"] and counts["contiguous"], (name, counts)
    con = sqlite3.connect(db)
    for sid, layout in con.execute("SELECT id, layout FROM streams"):
        slot = json.loads(layout).get("record")
        if slot:
            records = [r[0] for r in con.execute(f"SELECT {slot} FROM points WHERE stream_id = ? "
                                                 "ORDER BY seq", (sid,))]
            assert records == list(range(1, len(records) + 1))
    con.close()


def sigma_by_temperature(analysis: dict) -> dict:
    return {round(s["temperature_c"]): s["sigma_total_s_per_cm"] for s in analysis["spectra"]}


@pytest.mark.parametrize("after_rows", [400, 1800])
def test_conductivity_run_killed_and_resumed_equals_an_uninterrupted_run(tmp_path, after_rows):
    ref = reference("onbh_conductivity", tmp_path / "ref.sqlite")
    db = tmp_path / "crash.sqlite"
    assert run_until_crash("onbh_conductivity", db, after_rows) == 9
    assert get_run(str(db), 1)["status"] == "interrupted"  # at once: its process is gone
    result = resume(db)
    assert result.status is RunStatus.COMPLETED and result.run_id == 1
    got, want = sigma_by_temperature(result.analysis["eis"]), sigma_by_temperature(ref.analysis["eis"])
    assert got.keys() == want.keys()
    for t in want:
        assert got[t] == pytest.approx(want[t], rel=0.01)
    assert_no_duplicates(db)
    run = get_run(str(db), 1)
    assert run["status"] == "completed"
    # A spectrum cut by the crash is kept, marked incomplete; every temperature has a complete one.
    complete = [s for s in run["streams"] if s["metadata"].get("role") == "eis_spectrum"
                and not s["metadata"].get("incomplete")]
    assert sorted(s["n_points"] for s in complete) == [69] * 7


def test_cycling_run_reattaches_to_the_running_program_and_reads_every_record_once(tmp_path):
    protocol = short_cycling(tmp_path)
    ref = reference(protocol, tmp_path / "ref.sqlite")
    ref_records = get_run(str(_REFERENCES[str(protocol)][1]), 1)["streams"]
    db = tmp_path / "crash.sqlite"
    assert run_until_crash(protocol, db, 4000) == 9
    result = resume(db)
    assert result.status is RunStatus.COMPLETED
    want = {c["cycle"]: c for c in ref.analysis["cycling"]["cycles"]}
    got = {c["cycle"]: c for c in result.analysis["cycling"]["cycles"]}
    assert got.keys() == want.keys()
    for cycle, c in want.items():
        assert got[cycle]["discharge_mah"] == pytest.approx(c["discharge_mah"], rel=0.005)
        assert got[cycle]["charge_mah"] == pytest.approx(c["charge_mah"], rel=0.005)
    assert_no_duplicates(db)
    stored = {s["name"]: s["n_points"] for s in get_run(str(db), 1)["streams"]}
    assert stored["cycling"] == next(s["n_points"] for s in ref_records if s["name"] == "cycling")
    steps = get_run(str(db), 1)["steps"]
    # One program: the step was taken up again, not started again.
    assert [(s["step_index"], s["status"]) for s in steps] == [(0, "interrupted"), (0, "completed")]


def test_a_resumed_run_that_crashes_again_resumes_again(tmp_path):
    protocol = short_cycling(tmp_path)
    ref = reference(protocol, tmp_path / "ref.sqlite")
    db = tmp_path / "crash.sqlite"
    assert run_until_crash(protocol, db, 3000) == 9

    def crash_resuming() -> None:
        def die(name: str, doc: dict) -> None:
            if name == "event_page":
                os._exit(9)
        run = get_run(str(db), 1)
        from procedures.resume import stored_station
        RunService(stored_station(run), db=str(db), report_dir=False).resume_run(run, [die])
        os._exit(0)
    second = multiprocessing.get_context("fork").Process(target=crash_resuming)
    second.start()
    second.join(300)
    assert second.exitcode == 9
    result = resume(db)
    assert result.status is RunStatus.COMPLETED
    want = [c["discharge_mah"] for c in ref.analysis["cycling"]["cycles"]]
    assert [c["discharge_mah"] for c in result.analysis["cycling"]["cycles"]] == pytest.approx(want, rel=0.005)
    assert_no_duplicates(db)


def test_cold_discharge_resumes_its_single_program_with_its_chamber_actions(tmp_path):
    ref = reference("cold_discharge", tmp_path / "ref.sqlite")
    db = tmp_path / "crash.sqlite"
    assert run_until_crash("cold_discharge", db, 6000) == 9
    result = resume(db)
    assert result.status is RunStatus.COMPLETED
    want = {r["temperature_c"]: r["discharge_mah"] for r in ref.analysis["cold_discharge"]["cold_discharge"]}
    got = {r["temperature_c"]: r["discharge_mah"] for r in result.analysis["cold_discharge"]["cold_discharge"]}
    assert got.keys() == want.keys()
    for t in want:
        assert got[t] == pytest.approx(want[t], rel=0.005)
    assert len(result.analysis["cold_discharge"]["cell_eis"]) == len(want)
    assert_no_duplicates(db)


def test_an_lsv_cut_by_a_crash_ends_failed_with_its_reason_and_is_not_analysed(tmp_path):
    db = tmp_path / "crash.sqlite"
    assert run_until_crash("lsv_oxidation", db, 300) == 9
    result = resume(db)
    steps = get_run(str(db), 1)["steps"]
    lsv = [s for s in steps if s["kind"] == "lsv"]
    assert lsv[-1]["status"] == "failed" and "cannot be resumed" in lsv[-1]["summary"]["reason"]
    assert result.analysis.get("lsv") is None
    # the run is not complete: it ends failed, saying which step could not be taken up
    assert result.status == "failed" and result.reason.startswith(f"step {steps.index(lsv[-1])}: ")
    assert "cannot be resumed" in result.reason
    incomplete = [s for s in get_run(str(db), 1)["streams"] if s["metadata"].get("incomplete")]
    assert [s["name"] for s in incomplete] == ["ocv", "lsv"]  # the step's streams


def test_liveness_by_pid_and_process_start_and_by_heartbeat_from_another_host():
    from datetime import datetime, timedelta, timezone
    me, now = os.getpid(), datetime.now(timezone.utc)
    started = process_started(me)
    assert effective_status("running", now, host_name(), me, started) == "running"
    # the same pid with another start time: another process reusing the pid
    assert effective_status("running", now, host_name(), me, started + "1") == "interrupted"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert effective_status("running", now, host_name(), dead.pid, "x") == "interrupted"
    assert effective_status("running", now, "elsewhere", 1, "x") == "running"
    assert effective_status("running", now - timedelta(minutes=11), "elsewhere", 1, "x") == "interrupted"
    assert effective_status("completed", now, host_name(), dead.pid, "x") == "completed"


def test_a_killed_process_not_yet_reaped_is_dead():
    """A SIGKILLed run whose parent has not reaped it yet is a zombie: its /proc entry, pid and
    start time remain, but it will never write again."""
    import signal
    import time
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = process_started(zombie.pid)
    os.kill(zombie.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_started(zombie.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.01)  # until the kernel has made it a zombie (we do not wait() for it)
    assert os.path.exists(f"/proc/{zombie.pid}/stat")  # still there, unreaped
    assert process_started(zombie.pid) is None
    assert effective_status("running", None, host_name(), zombie.pid, started) == "interrupted"
    zombie.wait()


def cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600, **kw)


def test_cli_sigkill_shows_interrupted_at_once_and_resume_completes_the_run(tmp_path):
    db = tmp_path / "k.sqlite"
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "run", "onbh_conductivity",
                             "--simulate", "--db", str(db), "--report-dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            n = con.execute("SELECT coalesce(sum(n_points), 0) FROM streams").fetchone()[0]
            con.close()
        except sqlite3.Error:
            n = 0
        if n >= 500:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait() == -signal.SIGKILL
    runs = json.loads(cli("runs", "--db", str(db), "--json").stdout)
    assert runs[0]["status"] == "interrupted"
    # Two resumes at once (issue 9, concurrent resumes): one drives the run, the other is
    # refused with one line naming it, exit 2, before it opens anything.
    both = [subprocess.Popen([sys.executable, str(ROOT / "main.py"), "resume", "1", "--db", str(db),
                              "--json", "--report-dir", str(tmp_path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in both]
    codes = [p.returncode for p in both]
    assert sorted(codes) == [0, 2], [err[-2000:] for _, err in outputs]
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    refused = outputs[loser][1]
    assert refused.count("\n") == 1 and refused.startswith("error: run 1 ")
    assert f"process {both[winner].pid} on {host_name()}" in refused
    assert outputs[loser][0] == ""
    out = json.loads(outputs[winner][0])
    assert out["run_id"] == 1 and out["status"] == "completed"
    assert len(out["analysis"]["spectra"]) == 7
    again = cli("resume", "1", "--db", str(db), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["analysis"] == out["analysis"]
    assert "nothing to resume" in again.stderr
    unknown = cli("resume", "7", "--db", str(db))
    assert unknown.returncode == 2 and "no run with id 7" in unknown.stderr
    assert "Traceback" not in unknown.stderr
