"""The run service (issue: Run service): one way to run, operator requests, pause/resume, signals,
estimates and progress, layering."""
from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from config.documents import RunStatus
from config.station import load_station
from procedures.operator import (CallbackOperator, ConsoleOperator, OperatorRequest,
                                 OperatorUnavailable, UnattendedOperator)
from procedures.service import RunService
from procedures.station import Station
from storage.readers import get_run, list_streams

ROOT = Path(__file__).resolve().parents[2]
PY_DIRS = ("analysis", "config", "gui", "instruments", "procedures", "storage", "bench", "examples", "tests")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_module_imports_main_and_procedures_never_import_the_simulator():
    offenders, sim = [], []
    for folder in PY_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            names = _imports(path)
            if "main" in names and path.name != "test_cli.py":
                offenders.append(str(path.relative_to(ROOT)))
            if folder == "procedures" and any(n.startswith("instruments.sim") for n in names):
                sim.append(str(path.relative_to(ROOT)))
    assert offenders == []
    assert sim == []


class _NeedsLeads:
    """Instruments whose cell EIS needs the operator to move the leads (as a real station's)."""

    simulated = False
    clock = None

    def cell_reachable_by_potentiostat(self):
        return None


def test_unattended_operator_fails_the_step_with_what_was_needed():
    from instruments.clock import WallClock
    instruments = _NeedsLeads()
    instruments.clock = WallClock()
    station = Station(load_station(simulate=True), operator=UnattendedOperator(), instruments=instruments)
    with pytest.raises(OperatorUnavailable, match="move_leads.*unattended.*Connect the cell's leads"):
        station.cell_on_potentiostat()


def test_script_operator_answers_and_console_without_terminal_refuses():
    from instruments.clock import WallClock
    seen = []
    instruments = _NeedsLeads()
    instruments.clock = WallClock()
    station = Station(load_station(simulate=True), operator=CallbackOperator(seen.append),
                      instruments=instruments)
    assert station.cell_on_potentiostat() is True
    assert seen == [OperatorRequest(seen[0].message, "move_leads")]

    class Pipe:
        def isatty(self):
            return False
    import io
    out = io.StringIO()
    with pytest.raises(OperatorUnavailable, match="no terminal"):
        ConsoleOperator(stdin=Pipe(), out=out).request("Load the step table", kind="load_program")
    assert "OPERATOR: Load the step table" in out.getvalue()


def test_console_operator_wait_ends_on_abort():
    from instruments.clock import Aborted, WallClock

    class Terminal:
        def isatty(self):
            return True

        def readline(self):
            time.sleep(30)  # nobody presses Enter
            return "\n"
    clock = WallClock()
    threading.Timer(0.3, clock.abort, args=("aborted while waiting",)).start()
    t0 = time.monotonic()
    with pytest.raises(Aborted):
        ConsoleOperator(stdin=Terminal(), out=open(os.devnull, "w")).request("x", clock=clock)
    assert time.monotonic() - t0 < 2.0


def test_pause_holds_at_the_next_step_and_resume_finishes(tmp_path, shortened_protocol):
    """Paused between steps: no step starts and virtual time stands still until resume."""
    from config.protocol import Protocol
    data = shortened_protocol("onbh_conductivity", 1).model_dump()
    data["steps"][0]["temperatures_c"] = [20.0, 30.0]
    data["steps"][0]["soak_s"] = 600.0
    protocol = Protocol.model_validate(data)
    docs = []
    service = RunService(load_station(simulate=True), f"sqlite:///{tmp_path / 'p.sqlite'}",
                         report_dir=False, subscribers=[lambda n, d: docs.append((n, d))])

    def pause_at_first_peis(name, doc):
        if name == "step_start" and doc["kind"] == "peis" and not any(
                d.get("state") == "paused" for n, d in docs if n == "progress"):
            service.pause()
    service.subscribers.append(pause_at_first_peis)
    result = {}
    worker = threading.Thread(target=lambda: result.update(r=service.run(protocol)))
    worker.start()
    deadline = time.monotonic() + 30
    while not any(n == "progress" and d["state"] == "paused" for n, d in docs):
        assert time.monotonic() < deadline, "never paused"
        time.sleep(0.02)
    paused = [d for n, d in docs if n == "progress" and d["state"] == "paused"][0]
    starts_when_paused = sum(n == "step_start" for n, _ in docs)
    clock_when_paused = service.current_runner.station.clock.now()
    time.sleep(0.5)
    assert sum(n == "step_start" for n, _ in docs) == starts_when_paused
    assert service.current_runner.station.clock.now() == clock_when_paused
    assert paused["step_index"] == 1  # held after the first spectrum, before the next chamber step
    service.resume()
    worker.join(30)
    assert result["r"].status is RunStatus.COMPLETED
    assert sum(n == "step_start" for n, _ in docs) == 4


def test_failed_safe_state_makes_the_run_unsafe_and_says_why(tmp_path, run_simulated):
    cfg = load_station(simulate=True)
    cfg.sim.faults = {"potentiostat": {"fail_on": {"BL_StopChannel": -1}}}
    outcome, run_id, _, _ = run_simulated("lsv_reduction", f"sqlite:///{tmp_path / 'u.sqlite'}",
                                          station_cfg=cfg)
    assert outcome.status is RunStatus.UNSAFE
    assert "potentiostat not made safe" in outcome.reason
    assert get_run(f"sqlite:///{tmp_path / 'u.sqlite'}", run_id)["status"] == "unsafe"


def _plan(*files, station=None) -> tuple[int, list]:
    cmd = [sys.executable, str(ROOT / "main.py"), "plan", *files, "--json"]
    if station:
        cmd += ["--station", station]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    return proc.returncode, json.loads(proc.stdout)


def test_plan_estimates_every_shipped_protocol_with_its_basis(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[protocol]\nname = "x"\n[sample]\nid = "s"\n[[steps]]\nkind = "hold"\nduration_s = -1\n')
    unreadable = tmp_path / "missing.toml"
    shipped = sorted(str(p) for p in (ROOT / "config" / "protocols").glob("*.toml"))
    code, entries = _plan(*shipped, str(bad), str(unreadable))
    assert code == 2
    assert [e["file"] for e in entries] == [*shipped, str(bad), str(unreadable)]
    for entry in entries[:-2]:
        assert entry["valid"] and entry["errors"] == []
        assert entry["expected_duration_s"] == pytest.approx(sum(s["expected_duration_s"] for s in entry["steps"]))
        for step in entry["steps"]:
            assert step["expected_duration_s"] > 0 and step["basis"] and step["estimate"] in (
                "fixed", "nominal", "maximum")
    assert entries[-2]["valid"] is False and any("duration_s" in e for e in entries[-2]["errors"])
    assert entries[-1]["valid"] is False and "file not found" in entries[-1]["errors"][0]


def test_fixed_duration_estimates_within_one_percent_of_the_simulated_run(tmp_path, run_simulated):
    """PEIS (instrument timing) and holds (set by the protocol) are estimated as they run."""
    from procedures.steps import plan_steps
    from config.protocol import load_protocol
    cfg = load_station(simulate=True)
    db = f"sqlite:///{tmp_path / 'f.sqlite'}"
    checked = 0
    for name in ("onbh_stability",):
        outcome, run_id, _, _ = run_simulated(name, db)
        planned = plan_steps(load_protocol(name, cfg), cfg)
        steps = get_run(db, run_id)["steps"]
        for plan, step in zip(planned, steps):
            if plan.estimate.kind != "fixed":
                continue
            from datetime import datetime
            actual = (datetime.fromisoformat(step["ended_at"]) - datetime.fromisoformat(step["started_at"])).total_seconds()
            assert plan.estimate.duration_s == pytest.approx(actual, rel=0.01), step["name"]
            checked += 1
    assert checked >= 3  # two spectra and the 30-day hold


def test_remaining_time_at_half_way_is_within_ten_percent(tmp_path, run_simulated):
    docs = []
    outcome, _, _, _ = run_simulated("full_cell_15mg", f"sqlite:///{tmp_path / 'r.sqlite'}",
                                     subscribers=[lambda n, d: docs.append(d) if n == "progress" else None])
    assert outcome.status is RunStatus.COMPLETED
    total = outcome.duration_s
    half = min(docs, key=lambda d: abs(d["elapsed_s"] - total / 2))
    actual_remaining = total - half["elapsed_s"]
    assert half["remaining_s"] == pytest.approx(actual_remaining, rel=0.10)
    assert half["n_cycles"] == 100 and 40 <= half["cycle"] <= 60


def test_several_protocols_in_one_process_give_a_list_in_argument_order(tmp_path):
    db = tmp_path / "m.sqlite"
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "run", "lsv_reduction", "dc_polarization",
                           "--simulate", "--db", str(db), "--report-dir", str(tmp_path / "rep"), "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)
    assert [r["status"] for r in results] == ["completed", "completed"]
    assert "onset_threshold_v" in results[0]["analysis"] and "sigma_e_s_per_cm" in results[1]["analysis"]
    for r in results:
        assert Path(r["report"]) == tmp_path / "rep" / f"run_{r['run_id']}" / "report.md"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_abort_a_cycling_run_and_keep_its_data(tmp_path, sig):
    db = tmp_path / "s.sqlite"
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "run", "full_cell_45mg", "--simulate",
                             "--db", str(db), "--json"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # progress lines: kill it mid-run, ten cycles in
        if "cycle 10/" in line:
            break
    proc.send_signal(sig)
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 1
    name = signal.Signals(sig).name
    assert json.loads(out)["status"] == "aborted"
    runs = json.loads(subprocess.run([sys.executable, str(ROOT / "main.py"), "runs", "--db", str(db), "--json"],
                                     capture_output=True, text=True, cwd=ROOT).stdout)
    assert runs[0]["status"] == "aborted" and name in runs[0]["reason"]
    streams = list_streams(str(db), runs[0]["run_id"])
    assert int(streams.set_index("name").loc["cycling", "n_points"]) > 1000


@pytest.mark.parametrize("script,args", [
    ("conductivity_then_lsv.py", []),
    ("overnight_queue.py", ["lsv_reduction", "dc_polarization"]),
])
def test_example_scripts_run_on_the_simulated_station(tmp_path, script, args):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args, "--simulate",
                           "--db", str(tmp_path / "e.sqlite"), "--report-dir", str(tmp_path / "rep")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    if script == "conductivity_then_lsv.py":
        summary = json.loads(proc.stdout)
        assert summary["sigma_30c_s_per_cm"] == pytest.approx(4.6e-3, rel=0.03)
        assert [r["status"] for r in summary["lsv"]] == ["completed", "completed"]
    else:
        assert "lsv_reduction" in proc.stdout and "dc_polarization" in proc.stdout
        assert "σe =" in proc.stdout


def test_the_step_kind_registry_covers_every_protocol_step_model():
    from typing import get_args

    from config.protocol import STEP_KINDS as PROTOCOL_KINDS, Step
    from procedures.steps import STEP_KINDS
    models = {m.model_fields["kind"].annotation.__args__[0]: m for m in get_args(get_args(Step)[0])}
    assert set(STEP_KINDS) == set(PROTOCOL_KINDS) == set(models)
    for kind, entry in STEP_KINDS.items():
        assert entry.model is models[kind]
        assert (entry.execute is None) == (entry.expand is not None)  # run, or expand into steps that run


def test_a_report_process_ends_when_its_run_process_is_killed_outright(tmp_path):
    """SIGKILL leaves the run process no chance to shut its report pool down; the report process
    must not stay behind as an orphan waiting for work."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from config.station import load_station\n"
        "from procedures.service import RunService\n"
        "if __name__ == '__main__':\n"
        "    service = RunService(load_station(None), report_dir=False)\n"
        "    print(service._report_pool().submit(os.getpid).result(60), flush=True)\n"
        "    time.sleep(120)\n", encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        os.kill(worker, 0)  # alive while its run process is
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(worker, signal.SIGKILL)
            pytest.fail(f"report process {worker} outlived its killed run process by 10 s")
    finally:
        parent.kill()


def _run_parent_script(tmp_path, body: str, **popen) -> subprocess.Popen:
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, signal, sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from config.station import load_station\n"
        "from procedures.service import RunService\n"
        "if __name__ == '__main__':\n"
        "    service = RunService(load_station(None), report_dir=False)\n" + body, encoding="utf-8")
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, **popen)


def test_report_processes_end_when_their_run_process_is_killed_while_they_start(tmp_path):
    """Killed before a report process has run its initializer, the run process is not there to
    be watched any more: the report process must be tied to it from its spawn, not find it later."""
    parent = _run_parent_script(tmp_path, (
        "    service.start_report_processes()\n"
        "    print(' '.join(str(p.pid) for p in service._pool._processes.values()), flush=True)\n"
        "    time.sleep(120)\n"))
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert workers
        parent.kill()  # within milliseconds of their start: still loading Python
        parent.wait(10)
        deadline = time.monotonic() + 30
        alive = set(workers)
        while alive and time.monotonic() < deadline:
            for pid in list(alive):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    alive.discard(pid)
            time.sleep(0.1)
        for pid in alive:
            os.kill(pid, signal.SIGKILL)
        assert not alive, f"report processes {sorted(alive)} outlived their killed run process"
    finally:
        parent.kill()


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="needs POSIX signal masks")
def test_a_ctrl_c_while_report_processes_start_leaves_them_working(tmp_path):
    """The terminal's Ctrl+C reaches the whole process group; report processes still starting
    their interpreter must not die of it (the pool would be broken: no report for any run)."""
    parent = _run_parent_script(tmp_path, (
        "    signal.signal(signal.SIGINT, lambda *args: None)  # reset to the default by exec\n"
        "    service.start_report_processes()\n"
        "    os.killpg(0, signal.SIGINT)\n"
        "    print(service._submit_report_task(os.getpid).result(60), flush=True)\n"
        "    service.finish_reports([])\n"), start_new_session=True)
    try:
        out, _ = parent.communicate(timeout=90)
    finally:
        parent.kill()
    assert parent.returncode == 0 and int(out)
