"""The run service's figures, measured in one run of this script:

1. all shipped protocols in ONE `main.py run ... --simulate --json` process, reports included:
   wall time (target <= 30 s on 2 cores) and the paper's figures of each run;
2. peak RSS of a 1,000-cycle full_cell_45mg run against the shipped 100-cycle one, each in its own
   process through the same command (target ratio <= 1.3).

Run: .venv/bin/python bench/bench_run_service.py [--skip-memory] [--skip-all]
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
import tomllib
from pathlib import Path

from bench_protocols import figures

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = sorted((ROOT / "config" / "protocols").glob("*.toml"))


def run_cli(args: list[str]) -> tuple[float, int, int, str]:
    """(wall s, peak RSS kB, exit code, stdout) of `main.py ARGS` in a child process; the CPU time
    of the child and its own children (the report process) is printed, because on a loaded
    machine wall time says little."""
    import resource
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(f"    [main.py {args[0]}: wall {time.perf_counter() - t0:.1f} s, CPU {cpu:.1f} s (process tree), "
          f"load average {os.getloadavg()[0]:.1f}]")
    return time.perf_counter() - t0, usage.ru_maxrss, proc.returncode, out


def figure(path: Path, result: dict) -> str:
    """The paper's figures of one run, as bench_protocols.py prints them (the CLI shows a run's
    single analysis unkeyed: its name is the protocol's [protocol] analysis)."""
    analysis = result["analysis"] or {}
    name = tomllib.loads(path.read_text(encoding="utf-8"))["protocol"].get("analysis", "eis")
    return figures(name, {name: analysis})


def bench_all(tmp: Path) -> None:
    wall, rss, code, out = run_cli(["run", *map(str, PROTOCOLS), "--simulate", "--json",
                                    "--db", str(tmp / "all.sqlite"), "--report-dir", str(tmp / "reports")])
    results = json.loads(out)
    print(f"all {len(PROTOCOLS)} shipped protocols in one process: wall {wall:.1f} s (target <= 30 s: "
          f"{'met' if wall <= 30 else 'NOT met'}), exit {code}, peak RSS {rss / 1024:.0f} MB")
    for path, result in zip(PROTOCOLS, results):
        print(f"  {path.stem:<22} {result['status']:<10} report {'yes' if result.get('report') else 'NO '}  {figure(path, result)}")


def bench_memory(tmp: Path) -> None:
    text = (ROOT / "config" / "protocols" / "full_cell_45mg.toml").read_text()
    long = tmp / "full_cell_45mg_1000.toml"
    long.write_text(re.sub(r"count = 100\b", "count = 1000", text))
    # 1,000 C/10 cycles may take 1,667 days with every timeout reached: beyond the shipped
    # station's one-year limit, so both runs use a station that allows five years.
    station = tmp / "station.toml"
    station.write_text(re.sub(r"max_protocol_duration_s = [0-9.e+]+", "max_protocol_duration_s = 1.6e8",
                              (ROOT / "config" / "station.toml").read_text()))
    rows = []
    for path in (ROOT / "config" / "protocols" / "full_cell_45mg.toml", long):
        wall, rss, code, out = run_cli(["run", str(path), "--simulate", "--json", "--station", str(station),
                                        "--db", str(tmp / f"{path.stem}.sqlite"), "--report-dir", str(tmp / "rep")])
        result = json.loads(out)
        rows.append((path.stem, wall, rss, len(result["analysis"]["cycles"]), result["status"]))
        print(f"  {path.stem:<22} {result['status']:<10} {rows[-1][3]:5d} cycles  wall {wall:7.1f} s  "
              f"peak RSS {rss / 1024:7.1f} MB")
    ratio = rows[1][2] / rows[0][2]
    print(f"peak RSS ratio 1000/100 cycles: {ratio:.2f} (target <= 1.3: {'met' if ratio <= 1.3 else 'NOT met'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-all", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_all:
            bench_all(Path(tmp))
        if not args.skip_memory:
            bench_memory(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
