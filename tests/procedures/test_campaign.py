"""Campaigns (issue 11): runs side by side on the positions of one simulated station, one clock,
shared chambers with visible waits, the band check, the plan and the JSON document."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from config.campaign import load_campaign
from config.errors import ConfigError
from config.station import load_station
from instruments.shared_clock import PROCESS_CPUS, RunClock, SharedVirtualTimeline
from procedures.chamber_arbiter import ChamberArbiter, Claim

ROOT = Path(__file__).resolve().parents[2]
PAPER_LAB = ROOT / "config" / "stations" / "paper_lab.toml"
PAPER = ROOT / "config" / "campaigns" / "paper.toml"


def cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def _pellet_protocol(name: str, temperature_c: float) -> str:
    return f"""
[protocol]
name = "{name}"
analysis = "eis"
chamber_log_interval_s = 60.0
[sample]
id = "{name}-pellet"
thickness_um = 1000.0
diameter_mm = 10.0
[[steps]]
kind = "temperature_eis_series"
temperatures_c = [{temperature_c}]
soak_s = 1800.0
[steps.stabilization]
tolerance_c = 0.3
dwell_s = 120.0
[steps.peis]
initial_frequency_hz = 1e6
final_frequency_hz = 100.0
points_per_decade = 5
"""


@pytest.fixture
def small_campaign(tmp_path):
    """Three pellets in chamber_a: two at 30 °C (they share), one at 45 °C between them."""
    for name, t in (("warm_a", 30.0), ("hot", 45.0), ("warm_b", 30.0)):
        (tmp_path / f"{name}.toml").write_text(_pellet_protocol(name, t), encoding="utf-8")
    path = tmp_path / "small.toml"
    path.write_text(f"""
[campaign]
name = "small"
station = "{PAPER_LAB.as_posix()}"
[[runs]]
protocol = "warm_a.toml"
position = "a1"
[[runs]]
protocol = "hot.toml"
position = "a2"
[[runs]]
protocol = "warm_b.toml"
position = "a6"
""", encoding="utf-8")
    return path


def test_a_small_campaign_shares_its_chamber_waits_visibly_and_keeps_the_band(small_campaign, tmp_path):
    db = tmp_path / "c.sqlite"
    captured = cli("campaign", str(small_campaign), "--simulate", "--json", "--db", str(db),
                   "--report-dir", str(tmp_path / "reports"))
    assert captured.returncode == 0, captured.stderr
    doc = json.loads(captured.stdout)
    assert set(doc) >= {"campaign", "status", "makespan_h", "serial_h", "runs"}
    assert doc["campaign"] == "small" and doc["status"] == "completed" and doc["band_ok"] is True
    runs = {r["protocol"]: r for r in doc["runs"]}
    assert list(runs) == ["warm_a", "hot", "warm_b"]
    for r in doc["runs"]:
        assert set(r) >= {"run_id", "protocol", "channels", "chamber", "status", "start_h", "end_h",
                          "instrument_h", "waited_h", "analysis"}
        assert r["status"] == "completed" and r["chamber"] == "chamber_a"
        # Every wait here comes before the run's first command: its instrument time is all of it.
        assert r["waited_h"] == pytest.approx(r["start_h"], abs=1e-3)
        assert r["instrument_h"] == pytest.approx(r["end_h"] - r["start_h"], abs=1e-3)
        assert r["band"]["ok"] and r["band"]["readings_checked"] > 10
        spectrum = r["analysis"]["spectra"][0]
        assert spectrum["sigma_total_s_per_cm"] > 0
    assert runs["warm_a"]["channels"] == ["cycler:1", "potentiostat:1"]
    # 45 °C waits for the first 30 °C run; first come, first served: the second 30 °C run, which
    # asked after it, waits for 45 °C rather than slipping in beside the first.
    warm_a, hot, warm_b = runs["warm_a"], runs["hot"], runs["warm_b"]
    assert warm_a["waited_h"] == 0 and warm_a["start_h"] == 0
    assert hot["start_h"] == pytest.approx(warm_a["end_h"], abs=0.01)
    assert warm_b["start_h"] == pytest.approx(hot["end_h"], abs=0.01)
    assert hot["waits"][0]["reason"] == f"chamber_a held at 30 °C by run {warm_a['run_id']}"
    assert warm_b["waits"][0]["reason"] == f"chamber_a promised first to run {hot['run_id']} at 45 °C"
    assert doc["makespan_h"] == pytest.approx(warm_b["end_h"])
    assert doc["serial_h"] == pytest.approx(sum(r["instrument_h"] for r in doc["runs"]))
    # Each spectrum was measured at its own temperature, 45 °C conducting better than 30 °C.
    sigma = {name: r["analysis"]["spectra"][0] for name, r in runs.items()}
    assert sigma["hot"]["temperature_c"] == pytest.approx(45.0, abs=0.3)
    assert sigma["warm_b"]["temperature_c"] == pytest.approx(30.0, abs=0.3)
    assert sigma["hot"]["sigma_total_s_per_cm"] > 1.3 * sigma["warm_a"]["sigma_total_s_per_cm"]
    # Waiting was a visible state with its reason, on the progress line.
    assert f"hot waits: chamber_a held at 30 °C by run {warm_a['run_id']}" in captured.stderr
    summary = Path(doc["summary"]).read_text(encoding="utf-8")
    assert f"| {hot['run_id']} | hot | cycler:2, potentiostat:2 | chamber_a | completed |" in summary
    assert "0 outside the band, 0 at another set point — ok" in summary
    assert all(Path(r["report"]).exists() for r in doc["runs"])


def test_the_paper_campaign_plan():
    proc = cli("campaign", str(PAPER), "--plan", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    shipped = sorted(p.stem for p in (ROOT / "config" / "protocols").glob("*.toml"))
    assert sorted(r["protocol"] for r in plan["runs"]) == shipped
    by = {r["protocol"]: r for r in plan["runs"]}
    assert {by[n]["chamber"] for n in ("full_cell_15mg", "full_cell_30mg", "full_cell_45mg",
                                        "half_cell_nzc_onbh", "symmetric_na9sn4")} == {"chamber_a"}
    assert {by[n]["chamber"] for n in ("onbh_conductivity", "onbh_stability", "cold_discharge")} == {"chamber_b"}
    assert by["lsv_oxidation"]["chamber"] is None and by["full_cell_45mg"]["channels"] == [
        "cycler:3", "potentiostat:3"]
    # The 25 °C cells share chamber A from the start; chamber B's runs take turns, and say why.
    assert all(by[n]["waited_h"] == 0 for n in ("full_cell_15mg", "half_cell_nzc_onbh", "symmetric_na9sn4"))
    assert by["cold_discharge"]["waits"] and "chamber_b held at" in by["cold_discharge"]["waits"][0]["reason"]
    longest = max(r["instrument_h"] for r in plan["runs"])
    assert plan["makespan_h"] <= 1.1 * longest
    assert plan["serial_h"] > 4 * plan["makespan_h"]
    for r in plan["runs"]:
        assert r["end_h"] == pytest.approx(r["start_h"] + r["instrument_h"] + sum(
            w["to_h"] - max(w["from_h"], r["start_h"]) for w in r["waits"] if w["to_h"] > r["start_h"]), abs=0.01)
    text = cli("campaign", str(PAPER), "--plan").stdout
    assert "makespan" in text and "waits" in text and "chamber_b held at" in text


def test_bad_campaign_files_list_every_problem_and_exit_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(f"""
[campaign]
name = "bad"
station = "{PAPER_LAB.as_posix()}"
[[runs]]
protocol = "lsv_oxidation"
position = "a1"
[[runs]]
protocol = "full_cell_15mg"
position = "bench1"
[[runs]]
protocol = "onbh_conductivity"
position = "nowhere"
[[runs]]
protocol = "dc_polarization"
position = "a1"
""", encoding="utf-8")
    proc = cli("campaign", str(path), "--plan")
    assert proc.returncode == 2
    err = proc.stderr
    assert "Traceback" not in err
    assert "runs[0] (lsv_oxidation) on position 'a1': sets no temperature" in err
    assert "runs[1] (full_cell_15mg) on position 'bench1': needs a cycler channel" in err
    assert "sets chamber temperatures but the position is in no chamber" in err
    assert "runs[2].position: no position 'nowhere'" in err
    assert "runs[3].position: 'a1' is already runs[0]'s" in err
    path.write_text('[campaign]\nname = "x"\nstaton = "y"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_campaign(path)
    assert "staton" in str(exc.value) and "runs" in str(exc.value)


def test_station_positions_are_checked(tmp_path):
    text = PAPER_LAB.read_text(encoding="utf-8").replace(
        '[positions.bench4]\nchannels = ["cycler:8", "potentiostat:15"]',
        '[positions.bench4]\nchannels = ["cycler:9", "potentiostat:1", "oven:2"]\nchamber = "chamber_c"')
    path = tmp_path / "station.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_station(path)
    text = str(exc.value)
    assert "'cycler:9': the cycler has channels 1…8" in text
    assert "'potentiostat:1' is already position 'a1''s" in text
    assert "'oven:2' is not 'instrument:channel'" in text
    assert "no chamber 'chamber_c'" in text


def test_the_arbiter_shares_one_temperature_and_serves_others_in_order():
    arbiter = ChamberArbiter("chamber_a")
    a, b, c, d = (Claim("run 1", (30.0,), 0.5), Claim("run 2", (45.0,), 0.5),
                  Claim("run 3", (30.0,), 0.5), Claim("run 4", (0.0, -10.0), 0.5))
    assert arbiter.request("a", a) == ["a"]
    assert arbiter.request("b", b) == []
    assert arbiter.why_waiting("b") == "chamber_a held at 30 °C by run 1"
    assert arbiter.request("c", c) == []  # would share, but b asked first
    assert arbiter.why_waiting("c") == "chamber_a promised first to run 2 at 45 °C"
    assert arbiter.request("d", d) == []
    assert arbiter.release("a") == ["b"]
    assert arbiter.release("b") == ["c"]
    assert arbiter.why_waiting("d") == "chamber_a held at 30 °C by run 3"
    assert arbiter.release("c") == ["d"]
    assert arbiter.request("a", a) == []  # the exclusive claim holds the chamber to itself
    assert arbiter.release("d") == ["a"]


def test_the_shared_clock_interleaves_runs_in_virtual_time_without_sleeping():
    timeline = SharedVirtualTimeline(start=0.0)
    log = []
    clocks = [RunClock(timeline, f"run {k}") for k in range(3)]

    def run(k: int, clock: RunClock) -> None:
        with clock.participate():
            clock.every(7.0 + k, lambda now, k=k: log.append(("task", k, now)), first_at=5.0)
            for _ in range(5):
                clock.sleep(10.0 * (k + 1))
                log.append(("wake", k, clock.now()))

    threads = [threading.Thread(target=run, args=(k, c)) for k, c in enumerate(clocks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    times = [now for _, _, now in log]
    assert times == sorted(times)  # every event in virtual-time order, across the three runs
    assert [now for kind, k, now in log if kind == "wake" and k == 2] == [30.0, 60.0, 90.0, 120.0, 150.0]
    assert timeline.now() == 150.0
    assert len([e for e in log if e[0] == "task" and e[1] == 0]) == 7  # 5, 12, …, 47 within 50 s


@pytest.mark.skipif(PROCESS_CPUS is None or len(PROCESS_CPUS) < 2,
                    reason="needs two cores and sched_setaffinity")
def test_the_runs_of_a_virtual_timeline_share_one_core_and_get_the_process_cores_back():
    timeline = SharedVirtualTimeline(start=0.0)
    seen = {}

    def run(k: int, clock: RunClock) -> None:
        with clock.participate():
            clock.sleep(1.0 + k)
            seen[k] = os.sched_getaffinity(0)
        seen[f"after {k}"] = os.sched_getaffinity(0)

    threads = [threading.Thread(target=run, args=(k, RunClock(timeline, f"run {k}"))) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert timeline.cpus is not None and len(timeline.cpus) == 1
    assert seen[0] == seen[1] == set(timeline.cpus)
    assert seen["after 0"] == seen["after 1"] == set(PROCESS_CPUS)
    assert os.sched_getaffinity(0) == set(PROCESS_CPUS)  # this thread never took part


@pytest.mark.skipif(PROCESS_CPUS is None or len(PROCESS_CPUS) < 2,
                    reason="needs two cores and sched_setaffinity")
def test_a_report_process_started_from_a_run_thread_runs_beside_the_timelines_core():
    from procedures.service import RunService
    timeline = SharedVirtualTimeline(start=0.0)
    service = RunService(load_station(None), report_dir=False)
    out = {}

    def run(clock: RunClock) -> None:
        with clock.participate():
            out["helper"] = service._submit_report_task(os.sched_getaffinity, 0).result(60)

    thread = threading.Thread(target=run, args=(RunClock(timeline, "run"),))
    thread.start()
    thread.join(90)
    service.finish_reports([])
    assert out["helper"] == set(PROCESS_CPUS - timeline.cpus) and out["helper"]


@pytest.mark.skipif(PROCESS_CPUS is None or len(PROCESS_CPUS) < 2,
                    reason="needs two cores and sched_setaffinity")
def test_once_the_runs_are_over_the_report_processes_take_every_core():
    from procedures.service import RunService
    timeline = SharedVirtualTimeline(start=0.0)
    service = RunService(load_station(None), report_dir=False)
    futures = []

    def run(clock: RunClock) -> None:
        with clock.participate():
            futures.append(service._submit_report_task(os.sched_getaffinity, 0))

    thread = threading.Thread(target=run, args=(RunClock(timeline, "run"),))
    thread.start()
    thread.join(90)
    service.finish_reports([])  # before the new process has started its interpreter
    assert futures[0].result(60) == set(PROCESS_CPUS)


@pytest.mark.skipif(PROCESS_CPUS is None or len(PROCESS_CPUS) < 2,
                    reason="needs two cores and sched_setaffinity")
def test_a_campaign_starts_a_report_process_per_core_at_once_beside_the_runs_core():
    from instruments.shared_clock import cores_beside_timelines
    from procedures.service import REPORT_PROCESSES, RunService
    service = RunService(load_station(None), report_dir=False)
    service.start_report_processes()
    try:
        processes = list(service._pool._processes.values())
        assert len(processes) == REPORT_PROCESSES == len(PROCESS_CPUS)
        assert all(os.sched_getaffinity(p.pid) == set(cores_beside_timelines()) for p in processes)
    finally:
        service.finish_reports([])


def test_an_abort_reaches_every_run_also_those_waiting_for_the_chamber(small_campaign, tmp_path):
    from procedures.campaign import CampaignRunner
    campaign = load_campaign(small_campaign, simulate=True)
    seen = []

    def abort_at_first_spectrum(run, name, doc):
        seen.append((run.name, name, doc.get("state")))
        if name == "step_start" and doc["kind"] == "peis":
            runner.abort("test abort")

    runner = CampaignRunner(campaign, f"sqlite:///{tmp_path / 'a.sqlite'}", report_dir=False,
                            subscribers=[abort_at_first_spectrum])
    done = []
    thread = threading.Thread(target=lambda: done.append(runner.run()), daemon=True)
    thread.start()
    thread.join(120)
    assert done, "the campaign did not end after its abort"
    result = done[0]
    assert [r.status for r in result.runs] == ["aborted", "aborted", "aborted"]
    assert all("test abort" in r.result.reason for r in result.runs)
    assert ("hot", "progress", "waiting") in seen
    # The runs that waited never touched an instrument: they have no start and no measurement.
    hot = result.runs[1]
    assert hot.start_h is None and hot.waited_h > 0
    # An aborted run can be resumed, but not a campaign's (its station is the campaign's).
    first = result.runs[0].result.run_id
    refused = cli("resume", str(first), "--db", str(tmp_path / "a.sqlite"))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: run {first} ran in a campaign (position 'a1'); campaign runs cannot be resumed")


def test_a_station_whose_chamber_does_not_open_runs_nothing_and_says_why(small_campaign, tmp_path):
    from procedures.campaign import CampaignRunner
    campaign = load_campaign(small_campaign, simulate=True)
    campaign.station.sim.faults = {"chamber": {"na_on": "TYPE"}}  # refuses the range query
    result = CampaignRunner(campaign, f"sqlite:///{tmp_path / 'f.sqlite'}", report_dir=False).run()
    assert result.status == "failed" and not result.completed
    assert "did not open" in result.problems[0]
    assert all(r.result is None and r.status == "failed" for r in result.runs)


def test_a_run_that_changes_its_chamber_claim_stops_watching_its_old_set_point():
    """Its held set point is no longer its own once it claims other temperatures (another run may
    take the chamber elsewhere meanwhile): the paper campaign's cold discharge, back from waiting
    at 20.6 h, had been suspended for 14 min because the pellets had left the chamber at 0 °C."""
    from types import SimpleNamespace

    from config.protocol import ChamberStep
    from procedures.campaign import ChamberGate

    class Watch:
        disarmed = 0

        def disarm(self):
            self.disarmed += 1

    timeline = SharedVirtualTimeline(start=0.0)
    clock = RunClock(timeline, "run")
    gate = ChamberGate(ChamberArbiter("chamber_b"), clock, 0.5, lambda: "run 1")
    ctx = SimpleNamespace(run_t0=0.0, watch=Watch(), report_progress=lambda **kw: None)
    step_25 = ChamberStep(kind="chamber", setpoint_c=25.0, soak_s=60.0)
    gate.before_step(ctx, 0, step_25)
    assert ctx.watch.disarmed == 1  # the first claim: nothing held yet, nothing lost
    gate.before_step(ctx, 1, step_25)
    assert ctx.watch.disarmed == 1  # the same temperatures: still its set point, still watched
    gate.before_step(ctx, 2, ChamberStep(kind="chamber", setpoint_c=0.0, soak_s=60.0))
    assert ctx.watch.disarmed == 2
