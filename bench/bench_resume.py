"""Resume after a crash, measured: SIGKILL `main.py run PROTOCOL --simulate` at random moments,
then `main.py resume RUN_ID`, and compare with an uninterrupted run of the same protocol.

For each protocol (onbh_conductivity, full_cell_45mg, its 1,000-cycle variant, cold_discharge):
one uninterrupted reference run, then N runs each killed (SIGKILL, no clean-up) a random 0-300 ms
after its stored rows reach a random fraction of the reference's rows (read every 10 ms from the
database by this process, as another cellbench process would). After each kill it checks that `runs` shows the run
`interrupted` at once (pid check), resumes it, and measures:

- the analysis against the reference: σ per temperature (within 1 %), capacities per cycle
  (within 0.5 %), cold-discharge capacity per temperature (within 0.5 %);
- duplicates: every stream's rows numbered 0..n-1 without repeat, the cycler's record numbers
  unique and consecutive, time stamps of each point stream increasing;
- loss: cycler records and complete spectra against the reference (any difference is loss);
  chamber-log readings that were taken but not yet stored when the process died (the chamber
  does not keep its readings: a gap of the log), counted from gaps in its time stamps.

    python bench/bench_resume.py [--kills 20] [--protocols onbh_conductivity,...] [--seed 1]
    python bench/bench_resume.py --chain --kills 20 --protocols full_cell_45mg_1000

``--chain`` kills one run of each protocol N times in a row, resuming it after each kill, and
compares the end of the last resume with the uninterrupted run: N kills for the price of about one
run, for the 1,000-cycle variant (30 min of wall time per run on a loaded machine).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PROTOCOLS = ["onbh_conductivity", "full_cell_45mg", "full_cell_45mg_1000", "cold_discharge"]
SIGMA_TOLERANCE = 0.01
CAPACITY_TOLERANCE = 0.005


def cli(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def protocol_files(tmp: Path) -> tuple[dict[str, Path], Path]:
    """The protocols, and a station allowing the 1,000-cycle variant (bench_run_service.py)."""
    files = {name: ROOT / "config" / "protocols" / f"{name}.toml" for name in PROTOCOLS[:2] + PROTOCOLS[3:]}
    text = files["full_cell_45mg"].read_text()
    long = tmp / "full_cell_45mg_1000.toml"
    long.write_text(re.sub(r"count = 100\b", "count = 1000", text))
    files["full_cell_45mg_1000"] = long
    station = tmp / "station.toml"
    station.write_text(re.sub(r"max_protocol_duration_s = [0-9.e+]+", "max_protocol_duration_s = 1.6e8",
                              (ROOT / "config" / "station.toml").read_text()))
    return files, station


def stored_rows(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5)
    except sqlite3.Error:
        return 0
    try:
        return int(conn.execute("SELECT coalesce(sum(n_points), 0) FROM streams").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def run_and_kill(protocol: Path, station: Path, db: Path, at_rows: int, delay_s: float = 0.0,
                 limit_s: float = 1800) -> dict:
    """Start a run and SIGKILL it ``delay_s`` after ``at_rows`` rows are stored (rows are
    committed in batches: the delay spreads the kills between commits); returns what happened."""
    return _start_and_kill(["run", str(protocol), "--simulate", "--station", str(station)], db,
                           at_rows, delay_s, limit_s)


def resume_and_kill(db: Path, at_rows: int, delay_s: float = 0.0, limit_s: float = 3600) -> dict:
    """Resume run 1 of ``db`` and SIGKILL that process as ``run_and_kill`` does."""
    return _start_and_kill(["resume", "1"], db, at_rows, delay_s, limit_s)


def _start_and_kill(args: list[str], db: Path, at_rows: int, delay_s: float, limit_s: float) -> dict:
    proc = subprocess.Popen([PYTHON, str(ROOT / "main.py"), *args, "--db", str(db), "--report-dir",
                             str(db.parent / "reports")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    t0 = time.monotonic()
    rows = 0
    while proc.poll() is None and time.monotonic() - t0 < limit_s:
        rows = stored_rows(db)
        if rows >= at_rows:
            time.sleep(delay_s)
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    return {"killed": proc.returncode == -signal.SIGKILL, "rows_at_kill": rows,
            "returncode": proc.returncode}


def run_status(db: Path) -> str:
    out = cli("runs", "--db", str(db), "--json")
    return json.loads(out.stdout)[0]["status"] if out.returncode == 0 and out.stdout.strip() else "?"


# --- comparison ----------------------------------------------------------------------------------
def _rel(a, b) -> float:
    if a is None or b is None:
        return float("inf") if (a is None) != (b is None) else 0.0
    return abs(a - b) / abs(b) if b else abs(a - b)


def analysis_deviation(kind: str, got: dict, ref: dict) -> float:
    """The largest relative deviation of the resumed run's figures from the reference's."""
    if kind == "eis":
        by_t = {round(s["temperature_c"]): s["sigma_total_s_per_cm"] for s in ref["spectra"]}
        got_t = {round(s["temperature_c"]): s["sigma_total_s_per_cm"] for s in got["spectra"]}
        if set(by_t) != set(got_t):
            return float("inf")
        return max(_rel(got_t[t], by_t[t]) for t in by_t)
    cycles_ref = {c["cycle"]: c for c in ref["cycles"]}
    cycles_got = {c["cycle"]: c for c in got["cycles"]}
    if set(cycles_ref) != set(cycles_got):
        return float("inf")
    worst = max((_rel(cycles_got[c][key], cycles_ref[c][key]) for c in cycles_ref
                 for key in ("charge_mah", "discharge_mah") if cycles_ref[c].get(key) is not None),
                default=0.0)
    if kind == "cold_discharge":
        ref_t = {r["temperature_c"]: r for r in ref["cold_discharge"]}
        got_t = {r["temperature_c"]: r for r in got["cold_discharge"]}
        if set(ref_t) != set(got_t):
            return float("inf")
        worst = max([worst] + [_rel(got_t[t]["discharge_mah"], ref_t[t]["discharge_mah"]) for t in ref_t])
    return worst


def stream_checks(db: Path, run_id: int, ref_db: Path) -> dict:
    """Duplicates and losses of the resumed run's stored points against the reference."""
    conn = sqlite3.connect(db)
    ref = sqlite3.connect(ref_db)
    out = {"duplicates": 0, "lost_records": 0, "complete_spectra_missing": 0,
           "incomplete_spectra": 0, "chamber_log_gap_readings": 0}
    streams = conn.execute("SELECT id, name, n_points, metadata, layout FROM streams WHERE run_id = ?",
                           (run_id,)).fetchall()
    ref_streams = {name: (sid, n, json.loads(meta), json.loads(layout)) for sid, name, n, meta, layout
                   in ref.execute("SELECT id, name, n_points, metadata, layout FROM streams")}
    for sid, name, n, meta, layout in streams:
        meta, layout = json.loads(meta), json.loads(layout)
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT seq) FROM points WHERE stream_id = ?",
                                      (sid,)).fetchone()
        out["duplicates"] += rows - distinct + abs(rows - n)
        if meta.get("incomplete"):
            out["incomplete_spectra"] += 1
            continue
        if "record" in layout:
            slot = layout["record"]
            recs = [r[0] for r in conn.execute(f"SELECT {slot} FROM points WHERE stream_id = ? ORDER BY seq", (sid,))]
            out["duplicates"] += len(recs) - len(set(recs))
            ref_n = ref_streams[name][1] if name in ref_streams else 0
            out["lost_records"] += max(ref_n - len(set(recs)), 0)
            if recs and recs != list(range(int(recs[0]), int(recs[0]) + len(recs))):
                out["duplicates"] += 1  # out of order or a hole inside
        elif meta.get("role") == "chamber_log":
            times = [r[0] for r in conn.execute("SELECT time_s FROM points WHERE stream_id = ? ORDER BY seq", (sid,))]
            ref_times = [r[0] for r in ref.execute("SELECT time_s FROM points WHERE stream_id = ? "
                                                   "ORDER BY seq LIMIT 100", (ref_streams[name][0],))]
            interval = sorted(b - a for a, b in zip(ref_times, ref_times[1:]))[len(ref_times) // 2]
            out["chamber_log_gap_readings"] += sum(max(round((b - a) / interval) - 1, 0)
                                                   for a, b in zip(times, times[1:]))
            out["duplicates"] += sum(1 for a, b in zip(times, times[1:]) if b <= a)
    names = {name for _, name, _, meta, _ in streams if not json.loads(meta).get("incomplete")}
    for name, (_, n, meta, _) in ref_streams.items():
        if meta.get("role") in ("eis_spectrum", "cell_eis") and not any(
                x == name or x.startswith(name + "_") for x in names):
            out["complete_spectra_missing"] += 1
    conn.close()
    ref.close()
    return out


def analysis_kind(name: str) -> str:
    return ("eis" if name == "onbh_conductivity" else
            "cold_discharge" if name == "cold_discharge" else "cycling")


def reference(name: str, files: dict, station: Path, tmp: Path) -> tuple[Path, dict, int]:
    """An uninterrupted run of protocol ``name``: its database, its ``run --json`` and its rows."""
    ref_db = tmp / f"{name}-ref.sqlite"
    t = time.monotonic()
    ref = cli("run", str(files[name]), "--simulate", "--station", str(station), "--db", str(ref_db),
              "--json", "--report-dir", str(tmp / "reports"), timeout=7200)
    if ref.returncode != 0:
        sys.exit(f"{name}: the reference run failed: {ref.stderr[-2000:]}")
    total = stored_rows(ref_db)
    print(f"\n{name}: reference run {total} rows, {time.monotonic() - t:.1f} s wall", flush=True)
    return ref_db, json.loads(ref.stdout), total


def bench(protocols: list[str], kills: int, seed: int, keep: bool) -> list[dict]:
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    files, station = protocol_files(tmp)
    rows_out = []
    for name in protocols:
        ref_db, ref_result, total = reference(name, files, station, tmp)
        kind = analysis_kind(name)
        for i in range(kills):
            db = tmp / f"{name}-{i}.sqlite"
            at = int(rng.uniform(0.02, 0.98) * total)
            killed = run_and_kill(files[name], station, db, at, delay_s=rng.uniform(0.0, 0.3))
            t = time.monotonic()
            status = run_status(db)
            look_s = time.monotonic() - t
            t = time.monotonic()
            res = cli("resume", "1", "--db", str(db), "--json", "--report-dir", str(tmp / "reports"))
            resume_wall = time.monotonic() - t
            entry = {"protocol": name, "kill": i, "at_rows": at, **killed, "status_after_kill": status,
                     "runs_s": round(look_s, 2), "resume_exit": res.returncode,
                     "resume_wall_s": round(resume_wall, 1)}
            if res.returncode == 0:
                got = json.loads(res.stdout)
                entry["status"] = got["status"]
                entry["deviation"] = analysis_deviation(kind, got["analysis"], ref_result["analysis"])
                entry.update(stream_checks(db, 1, ref_db))
            else:
                entry["error"] = (res.stderr or res.stdout)[-600:]
            rows_out.append(entry)
            print(json.dumps(entry), flush=True)
            if not keep:
                for p in db.parent.glob(db.name + "*"):
                    if p.is_dir():
                        import shutil
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
    return rows_out


def chain(protocols: list[str], kills: int, seed: int) -> list[dict]:
    """One run per protocol killed ``kills`` times: SIGKILL at a random moment, ``resume``, SIGKILL
    the resumed process at a later random moment, and so on; the last resume runs to the end and
    is compared with an uninterrupted run. Each kill is checked as in ``bench`` (interrupted at
    once); the stream checks then cover every resume at once (a point written twice by any of
    them is a duplicate). For runs too long to repeat ``kills`` times (the 1,000-cycle variant)."""
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-resume-chain-"))
    files, station = protocol_files(tmp)
    out = []
    for name in protocols:
        ref_db, ref_result, total = reference(name, files, station, tmp)
        db = tmp / f"{name}-chain.sqlite"
        targets = sorted(int(rng.uniform(0.02, 0.98) * total) for _ in range(kills))
        made = []
        for i, target in enumerate(targets):
            at = max(target, (made[-1]["rows_at_kill"] + 1) if made else 0)
            delay = rng.uniform(0.0, 0.3)
            killed = (run_and_kill(files[name], station, db, at, delay) if i == 0
                      else resume_and_kill(db, at, delay))
            killed.update(kill=i, at_rows=at, status_after_kill=run_status(db))
            made.append(killed)
            print(json.dumps({"protocol": name, **killed}), flush=True)
            if not killed["killed"]:
                break  # the run ended before this kill: nothing left to kill
        t = time.monotonic()
        res = cli("resume", "1", "--db", str(db), "--json", "--report-dir", str(tmp / "reports"),
                  timeout=7200)
        entry = {"protocol": name, "kills": len(made), "killed": sum(k["killed"] for k in made),
                 "interrupted": sum(k["status_after_kill"] == "interrupted" for k in made if k["killed"]),
                 "resume_exit": res.returncode, "last_resume_wall_s": round(time.monotonic() - t, 1)}
        if res.returncode == 0:
            got = json.loads(res.stdout)
            entry.update(status=got["status"],
                         deviation=analysis_deviation(analysis_kind(name), got["analysis"],
                                                      ref_result["analysis"]),
                         **stream_checks(db, 1, ref_db))
        else:
            entry["error"] = (res.stderr or res.stdout)[-600:]
        print(json.dumps(entry), flush=True)
        out.append(entry)
    return out


def summary(rows: list[dict]) -> None:
    print("\nprotocol               kills  killed  interrupted  completed  max dev     dup  lost rec  "
          "missing spectra  incomplete spectra  chamber-log gap readings")
    for name in dict.fromkeys(r["protocol"] for r in rows):
        rs = [r for r in rows if r["protocol"] == name]
        done = [r for r in rs if r.get("status") == "completed"]
        limit = SIGMA_TOLERANCE if name == "onbh_conductivity" else CAPACITY_TOLERANCE
        dev = max((r["deviation"] for r in done), default=float("nan"))
        print(f"{name:<22} {len(rs):>5} {sum(r['killed'] for r in rs):>7} "
              f"{sum(r['status_after_kill'] == 'interrupted' for r in rs if r['killed']):>12} "
              f"{len(done):>10} {dev * 100:>7.3f} % {'ok' if dev <= limit else 'OVER':>4} "
              f"{sum(r.get('duplicates', 0) for r in rs):>4} {sum(r.get('lost_records', 0) for r in rs):>9} "
              f"{sum(r.get('complete_spectra_missing', 0) for r in rs):>16} "
              f"{sum(r.get('incomplete_spectra', 0) for r in rs):>19} "
              f"{sum(r.get('chamber_log_gap_readings', 0) for r in rs):>25}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--chain", action="store_true",
                        help="kill one run --kills times, resuming it after each kill (see chain)")
    args = parser.parse_args()
    if args.chain:
        chain(args.protocols.split(","), args.kills, args.seed)
        return
    rows = bench(args.protocols.split(","), args.kills, args.seed, args.keep)
    summary(rows)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
