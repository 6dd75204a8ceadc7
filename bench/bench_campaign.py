"""The paper's campaign (config/campaigns/paper.toml) on the simulated paper lab: all 11 protocols
side by side on one virtual clock. Prints the makespan against the serial sum of the runs'
instrument time, the wall and CPU time, the machine's load, the thread hand-overs of the shared
clock, the chamber-band check and every paper figure with its verdict. With --cli it then times,
in a process of its own, the whole command issue 11 asks about (``main.py campaign
config/campaigns/paper.toml --simulate --json``: imports, reports and summary included).

Run: .venv/bin/python bench/bench_campaign.py [--reports] [--cli [N]] [--station FILE]
Without --reports no report is written (the campaign alone is timed); with it, the reports are
written in a helper process while the campaign runs, as `main.py campaign` does.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.paper_figures import paper_figures  # noqa: E402
from config.campaign import load_campaign  # noqa: E402
from procedures.campaign import CampaignRunner  # noqa: E402

WALL_TARGET_S = 30.0
MAKESPAN_FACTOR = 1.1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", action="store_true")
    parser.add_argument("--station", default=None)
    parser.add_argument("--cli", type=int, nargs="?", const=1, default=0, metavar="N",
                        help="also time the whole main.py command, N times (default 1)")
    args = parser.parse_args()
    campaign = load_campaign(ROOT / "config" / "campaigns" / "paper.toml", args.station, simulate=True)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        runner = CampaignRunner(campaign, f"sqlite:///{tmp}/campaign.sqlite",
                                report_dir=Path(tmp) / "reports" if args.reports else False)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = runner.run()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    load_after = os.getloadavg()
    longest = max(r.instrument_h or 0.0 for r in result.runs)
    print(f"campaign {result.name}: {result.status}, {len(result.runs)} runs")
    for r in result.runs:
        print(f"  {r.run.name:<20} {r.status:<10} start {r.start_h:8.1f} h  end {r.end_h:8.1f} h  "
              f"instrument {r.instrument_h:8.1f} h  waited {r.waited_h:6.1f} h")
    print(f"makespan {result.makespan_h:,.1f} h; serial sum of instrument time {result.serial_h:,.1f} h "
          f"({result.serial_h / result.makespan_h:.2f} x); largest run {longest:,.1f} h; makespan / "
          f"largest = {result.makespan_h / longest:.3f} (target <= {MAKESPAN_FACTOR}: "
          f"{'met' if result.makespan_h <= MAKESPAN_FACTOR * longest else 'NOT met'})")
    print(f"wall {wall:.1f} s (target <= {WALL_TARGET_S:g} s: {'met' if wall <= WALL_TARGET_S else 'NOT met'}), "
          f"CPU of this process {cpu:.1f} s, clock hand-overs {result.clock_switches}, load average "
          f"{load_before[0]:.1f} before / {load_after[0]:.1f} after on {os.cpu_count()} cores"
          + (", reports in a helper process" if args.reports else ", no reports"))
    band = [r.band for r in result.runs if r.band is not None]
    print(f"chamber band: {'ok' if result.band_ok else 'NOT ok'} ({sum(b['readings_checked'] for b in band)} "
          f"readings checked, {sum(b['outside_band'] for b in band)} outside, "
          f"{sum(b['foreign_setpoint'] for b in band)} at another run's set point)")
    failed = 0
    for r in result.runs:
        for row in paper_figures(r.run.name, r.result.analysis if r.result else None):
            failed += not row["ok"]
            value = "none" if row["value"] is None else f"{row['value']:.4g}"
            print(f"  {r.run.name:<20} {row['figure']:<38} {value:>10}  paper {row['paper']}  "
                  f"{'ok' if row['ok'] else 'OUTSIDE TOLERANCE'}")
    print(f"paper figures: {'all within tolerance' if not failed else f'{failed} outside tolerance'}")
    cli_ok = time_cli(args.station, args.cli) if args.cli else True
    return 0 if result.completed and not failed and result.band_ok and cli_ok else 1


def time_cli(station: str | None, runs: int) -> bool:
    """Wall time of the whole command, each time in a fresh process with its own database and
    reports; with several runs, the median and the spread (the same code varies by several
    seconds from one run to the next on a shared machine)."""
    walls, ok = [], True
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, str(ROOT / "main.py"), "campaign",
                       str(ROOT / "config" / "campaigns" / "paper.toml"), "--simulate", "--json",
                       "--db", f"sqlite:///{tmp}/cli.sqlite", "--report-dir", f"{tmp}/reports",
                       *(["--station", station] if station else [])]
            wall0 = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True)
            walls.append(time.perf_counter() - wall0)
        ok &= proc.returncode == 0
        print(f"main.py campaign --simulate --json: exit {proc.returncode}, wall {walls[-1]:.1f} s, "
              f"load average {os.getloadavg()[0]:.1f} after")
    median = statistics.median(walls)
    print(f"whole command over {runs} run(s): median {median:.1f} s (target <= {WALL_TARGET_S:g} s: "
          f"{'met' if median <= WALL_TARGET_S else 'NOT met'}), {min(walls):.1f}-{max(walls):.1f} s, "
          f"{sum(w <= WALL_TARGET_S for w in walls)} of {runs} within the target")
    return ok


if __name__ == "__main__":
    sys.exit(main())
