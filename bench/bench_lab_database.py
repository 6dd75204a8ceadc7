"""The lab database: four station processes write to one fresh PostgreSQL while a fifth follows.

Each station process is ``main.py -v run PROTOCOL --simulate --db URL --json``: its own simulated
station, a 100-cycle full cell at C/10 (the paper's 15, 30, 45 and again 45 mg/cm² cells by
default), all four started at once on a database without a schema (they race to create it).
The fifth process follows every run as it appears, through storage.follow.RunFollower (what
``show RUN --follow`` uses), and records when it saw each stream's points.

Checks (exit 1 if one fails):

- every run completed, its first-cycle discharge within 5 % of the paper (1.3/2.2/3.5 mAh/cm² for
  15/30/45 mg; tests/procedures/test_cycler_protocols.py's tolerance);
- no point lost or duplicated: per stream, the stored count equals ``streams.n_points``, the
  sequence numbers are exactly 0..n-1, (stream, seq) is unique, the cycler's record numbers are
  1..n (every record the simulated Landt wrote), and the follower received each point once;
- no deadlock: every process ended within ``--timeout``;
- follower latency: for every commit of every run (its time logged by the writer at debug level,
  after the commit returned), the time until the follower had the commit's last point; max and
  p95 must be <= 2 s.

Run: ``.venv/bin/python bench/bench_lab_database.py [--cycles N] [--json]`` with
``CELLBENCH_BENCH_POSTGRES_URL`` (or ``CELLBENCH_TEST_POSTGRES_URL``) naming a database on a
server where the user may create databases. ``--cycles`` shortens every loop (the CI test uses 2).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

URL_VARS = ("CELLBENCH_BENCH_POSTGRES_URL", "CELLBENCH_TEST_POSTGRES_URL")
PROTOCOLS = ("full_cell_15mg", "full_cell_30mg", "full_cell_45mg", "full_cell_45mg")
PAPER_MAH_PER_CM2 = {"15mg": 1.3, "30mg": 2.2, "45mg": 3.5}
CAPACITY_REL_TOL = 0.05
LATENCY_LIMIT_S = 2.0
COMMIT_LINE = re.compile(r"DEBUG storage\.writer: run (\d+): committed (\d+) rows at ([\d.]+): (.*)")


# --- the fifth process --------------------------------------------------------------------------
def follow_all(url: str, n_runs: int, out_path: str) -> None:
    """Follow every run of the database until ``n_runs`` runs have ended; write what was seen,
    and when, to ``out_path`` (JSON)."""
    from storage.follow import POLL_INTERVAL_S, RunFollower
    from storage.readers import list_runs

    followers: dict[int, RunFollower] = {}
    seqs: dict[tuple[int, str], list[np.ndarray]] = {}
    arrivals = []  # (time seen, run id, stream, largest seq seen so far)
    status: dict[int, str] = {}
    while len(followers) < n_runs or not all(f.ended for f in followers.values()):
        started = time.monotonic()
        if len(followers) < n_runs:
            for run_id in list_runs(url)["run_id"].tolist():
                followers.setdefault(run_id, RunFollower(url, run_id))
        for run_id, follower in followers.items():
            if follower.ended:
                continue
            update = follower.poll()
            seen_at = time.time()
            status[run_id] = update.status
            for name, frame in update.points.items():
                index = frame.index.to_numpy(np.int64)
                seqs.setdefault((run_id, name), []).append(index)
                arrivals.append((seen_at, run_id, name, int(index.max())))
        time.sleep(max(0.0, started + POLL_INTERVAL_S - time.monotonic()))
    received = {}
    for (run_id, name), parts in seqs.items():
        all_seqs = np.concatenate(parts)
        received.setdefault(str(run_id), {})[name] = {
            "received": int(all_seqs.size), "distinct": int(np.unique(all_seqs).size)}
    Path(out_path).write_text(json.dumps({"status": status, "received": received,
                                          "arrivals": arrivals}))


# --- the bench ----------------------------------------------------------------------------------
def protocol_files(names: list[str], cycles: int | None, tmp: Path) -> list[str]:
    """The shipped protocols, or copies with every loop cut to ``cycles``."""
    if cycles is None:
        return names
    from config.protocol import resolve_protocol_path
    files = []
    for i, name in enumerate(names):
        text = resolve_protocol_path(name).read_text(encoding="utf-8")
        short, n = re.subn(r"(?m)^count = \d+", f"count = {cycles}", text)
        assert n, f"{name}: no loop count to shorten"
        path = tmp / f"{i}_{name}.toml"
        path.write_text(short, encoding="utf-8")
        files.append(str(path))
    return files


def check_database(url: str) -> dict:
    """Per run and stream: stored rows, n_points, seq range, duplicates; cycler record numbers."""
    from sqlalchemy import text

    from storage.engine import make_engine
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT s.run_id, s.name, s.n_points, count(p.seq), min(p.seq), max(p.seq), "
            "count(DISTINCT p.seq) FROM streams s LEFT JOIN points p ON p.stream_id = s.id "
            "GROUP BY s.id, s.run_id, s.name, s.n_points ORDER BY s.id")).all()
        duplicates = conn.execute(text(
            "SELECT count(*) FROM (SELECT stream_id, seq FROM points GROUP BY stream_id, seq "
            "HAVING count(*) > 1) d")).scalar()
    engine.dispose()
    from storage.readers import read_stream
    streams: dict[str, dict] = {}
    for run_id, name, n_points, stored, lo, hi, distinct in rows:
        entry = {"n_points": n_points, "stored": stored, "distinct": distinct,
                 "seq_0_to_n_minus_1": stored == 0 or (lo == 0 and hi == stored - 1)}
        if name == "cycling":
            record = read_stream(url, run_id, name)["record"].to_numpy()
            entry["records_1_to_n"] = bool(np.array_equal(record, np.arange(1, record.size + 1)))
        streams.setdefault(str(run_id), {})[name] = entry
    return {"streams": streams, "duplicate_keys": int(duplicates)}


def latencies(commits: list[tuple[int, float, str, int]], arrivals: list) -> np.ndarray:
    """Seconds from each commit to the follower holding that commit's last point."""
    by_stream: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
    for key in {(run_id, name) for _, run_id, name, _ in arrivals}:
        seen = sorted((t, s) for t, r, n, s in arrivals if (r, n) == key)
        times = np.array([t for t, _ in seen])
        # The largest seq held by each arrival time (arrivals only grow, except late pages).
        held = np.maximum.accumulate(np.array([s for _, s in seen]))
        by_stream[key] = (times, held)
    out = []
    for run_id, committed_at, name, last_seq in commits:
        times, held = by_stream.get((run_id, name), (np.array([]), np.array([])))
        i = np.searchsorted(held, last_seq)
        out.append(times[i] - committed_at if i < held.size else np.inf)
    return np.array(out)


def run_bench(server: str, protocols: list[str], cycles: int | None, timeout_s: float) -> dict:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"cellbench_lab_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as tmp_dir:
            return _run_processes(url, protocols, cycles, timeout_s, Path(tmp_dir))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _run_processes(url: str, protocols: list[str], cycles: int | None, timeout_s: float,
                   tmp: Path) -> dict:
    files = protocol_files(protocols, cycles, tmp)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    stations = []
    for i, path in enumerate(files):
        out, err = open(tmp / f"station{i}.json", "w"), open(tmp / f"station{i}.err", "w")
        stations.append((subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "-v", "run", path, "--simulate", "--db", url,
             "--json", "--report-dir", str(tmp / "reports")], cwd=ROOT, env=env, stdout=out,
            stderr=err), out, err))
    follower = subprocess.Popen([sys.executable, __file__, "--follower", url, str(len(files)),
                                 str(tmp / "follower.json")], cwd=ROOT, env=env,
                                stderr=open(tmp / "follower.err", "w"))
    hung = []
    for i, (proc, out, err) in enumerate([*stations, (follower, None, None)]):
        try:
            proc.wait(timeout=max(1.0, timeout_s - (time.perf_counter() - t0)))
        except subprocess.TimeoutExpired:
            hung.append(i)
            proc.kill()
            proc.wait()
        for f in (out, err):
            if f is not None:
                f.close()
    wall_s = time.perf_counter() - t0

    runs, commits = [], []
    for i, (proc, _, _) in enumerate(stations):
        stdout = (tmp / f"station{i}.json").read_text()
        stderr = (tmp / f"station{i}.err").read_text()
        result = json.loads(stdout) if stdout.strip() else {}
        analysis = result.get("analysis") or {}
        # `run --json` keys analyses by name only when a run has several.
        cycling = analysis.get("cycling", analysis)
        first = (cycling.get("cycles") or [{}])[0].get("discharge_mah_per_cm2")
        first = None if first is None else round(first, 3)
        loading = re.search(r"(\d+mg)", protocols[i]).group(1)
        runs.append({"protocol": protocols[i], "run_id": result.get("run_id"),
                     "status": result.get("status"), "exit_code": proc.returncode,
                     "n_cycles": len(cycling.get("cycles") or []),
                     "first_discharge_mah_per_cm2": first,
                     "paper_mah_per_cm2": PAPER_MAH_PER_CM2[loading],
                     "stderr_tail": None if proc.returncode == 0 else stderr[-2000:]})
        for match in COMMIT_LINE.finditer(stderr):
            run_id, at = int(match.group(1)), float(match.group(3))
            for item in match.group(4).split():
                stream, last_seq = item.rsplit("@", 1)
                commits.append((run_id, at, stream, int(last_seq)))
    seen = json.loads((tmp / "follower.json").read_text()) if follower.returncode == 0 else {}
    lat = latencies(commits, seen.get("arrivals", [])) if seen else np.array([np.inf])
    return {"wall_s": wall_s, "runs": runs, "hung_processes": hung,
            "follower_exit_code": follower.returncode,
            "follower_stderr_tail": (tmp / "follower.err").read_text()[-2000:],
            "database": check_database(url), "follower": {
                "status": seen.get("status"), "received": seen.get("received")},
            "latency_s": {"commits": int(lat.size), "max": float(lat.max()),
                          "p95": float(np.percentile(lat, 95)), "median": float(np.median(lat))}}


def problems_of(result: dict) -> list[str]:
    problems = []
    if result["hung_processes"]:
        problems.append(f"processes {result['hung_processes']} did not end in time (deadlock?)")
    for run in result["runs"]:
        if run["status"] != "completed" or run["exit_code"] != 0:
            problems.append(f"{run['protocol']}: {run['status']} (exit {run['exit_code']}): "
                            f"{run['stderr_tail']}")
        elif run["first_discharge_mah_per_cm2"] is None or abs(
                run["first_discharge_mah_per_cm2"] / run["paper_mah_per_cm2"] - 1) \
                > CAPACITY_REL_TOL:
            problems.append(f"{run['protocol']}: first discharge "
                            f"{run['first_discharge_mah_per_cm2']} mAh/cm², paper "
                            f"{run['paper_mah_per_cm2']}")
    db = result["database"]
    if db["duplicate_keys"]:
        problems.append(f"{db['duplicate_keys']} duplicated (stream, seq) keys")
    received = result["follower"]["received"] or {}
    for run_id, streams in db["streams"].items():
        for name, s in streams.items():
            where = f"run {run_id} stream {name}"
            if not (s["stored"] == s["n_points"] == s["distinct"] and s["seq_0_to_n_minus_1"]):
                problems.append(f"{where}: stored {s['stored']}, n_points {s['n_points']}, "
                                f"distinct {s['distinct']}, seq 0..n-1: {s['seq_0_to_n_minus_1']}")
            if s.get("records_1_to_n") is False:
                problems.append(f"{where}: cycler record numbers are not 1..n")
            got = received.get(run_id, {}).get(name, {"received": 0, "distinct": 0})
            if not got["received"] == got["distinct"] == s["stored"]:
                problems.append(f"{where}: follower received {got['received']} points "
                                f"({got['distinct']} distinct) of {s['stored']}")
    if result["follower_exit_code"] != 0:
        problems.append(f"follower exited {result['follower_exit_code']}: "
                        f"{result['follower_stderr_tail']}")
    lat = result["latency_s"]
    if not lat["commits"] or lat["max"] > LATENCY_LIMIT_S or lat["p95"] > LATENCY_LIMIT_S:
        problems.append(f"follower latency over {lat['commits']} commits: max {lat['max']:.3f} s, "
                        f"p95 {lat['p95']:.3f} s (limit {LATENCY_LIMIT_S} s)")
    return problems


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--follower":
        follow_all(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=None,
                        help="cut every loop to N cycles (default: the shipped 100)")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS),
                        help="comma-separated full-cell protocols, one station process each")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds for all processes")
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    args = parser.parse_args()
    server = next((os.environ[v] for v in URL_VARS if os.environ.get(v)), None)
    if server is None:
        print(f"bench_lab_database: skipped: set {URL_VARS[0]} (or {URL_VARS[1]}) to a "
              "PostgreSQL database on a server where the user may create databases")
        return 0
    protocols = args.protocols.split(",")
    result = run_bench(server, protocols, args.cycles, args.timeout)
    result["problems"] = problems = problems_of(result)
    if args.json:
        print(json.dumps(result, indent=2))
        return 1 if problems else 0
    print(f"{len(protocols)} station processes + 1 follower on one fresh PostgreSQL database, "
          f"{result['wall_s']:.1f} s wall")
    for run in result["runs"]:
        streams = result["database"]["streams"].get(str(run["run_id"]), {})
        counts = ", ".join(f"{n} {s['stored']}" for n, s in streams.items())
        print(f"  run {run['run_id']}: {run['protocol']:<16} {run['status']:<10} "
              f"{run['n_cycles']} cycles, first discharge {run['first_discharge_mah_per_cm2']}"
              f" mAh/cm² (paper {run['paper_mah_per_cm2']}); points: {counts}")
    lat = result["latency_s"]
    print(f"follower latency over {lat['commits']} commits: median {lat['median']:.3f} s, "
          f"p95 {lat['p95']:.3f} s, max {lat['max']:.3f} s (limit {LATENCY_LIMIT_S} s)")
    print(f"duplicated (stream, seq) keys: {result['database']['duplicate_keys']}; "
          f"hung processes: {result['hung_processes'] or 'none'}")
    print("all checks passed" if not problems else "PROBLEMS:\n  " + "\n  ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
