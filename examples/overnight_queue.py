"""Scripted overnight queue: several protocol files one after another, a summary table at the end.

    python examples/overnight_queue.py PROTOCOL [PROTOCOL ...] [--simulate] [--db URL]

Every file is validated before the first instrument command. Progress goes to stderr, operator
requests fail the step (nobody is there overnight), Ctrl+C or a plain ``kill`` aborts the run in
progress and skips the rest. The summary lists each run's status, reason and headline figure.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.errors import ConfigError  # noqa: E402
from config.station import load_station  # noqa: E402
from procedures.operator import UnattendedOperator  # noqa: E402
from procedures.progress import ProgressPrinter, hms  # noqa: E402
from procedures.service import RunService  # noqa: E402
from procedures.signals import stop_on_signals  # noqa: E402


def headline(result) -> str:
    """The figure a person looks for first in each kind of analysis."""
    a = result.analysis
    if "eis" in a and a["eis"].get("arrhenius"):
        return f"Ea = {a['eis']['arrhenius']['total']['ea_ev']:.3f} eV"
    if "lsv" in a:
        onset = a["lsv"].get("onset_threshold_v")
        return "no onset" if onset is None else f"onset {onset:.3f} V"
    if "dcpol" in a:
        return f"σe = {a['dcpol']['sigma_e_s_per_cm']:.2e} S/cm"
    for name in ("cycling", "cold_discharge"):
        if name in a and a[name].get("cycles"):
            last = a[name]["cycles"][-1]
            return f"{len(a[name]['cycles'])} cycles, last discharge {last['discharge_mah_per_cm2']:.2f} mAh/cm²"
    if "symmetric" in a:
        return f"{len(a['symmetric']['cycles'])} symmetric cycles"
    return ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocols", nargs="+")
    parser.add_argument("--simulate", action="store_true")
    parser.add_argument("--station", default=None)
    parser.add_argument("--db", default=None)
    parser.add_argument("--report-dir", default=None)
    args = parser.parse_args(argv)

    service = RunService(load_station(args.station, simulate=True if args.simulate else None),
                         args.db, operator=UnattendedOperator(), report_dir=args.report_dir,
                         subscribers=[ProgressPrinter()])
    try:
        with stop_on_signals(service.abort):
            results = service.run_all(args.protocols)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'run':>4}  {'protocol':<22} {'status':<10} {'instrument time':>15}  result")
    for r in results:
        print(f"{r.run_id:>4}  {r.protocol_name:<22} {r.status.value:<10} {hms(r.duration_s):>15}  "
              f"{headline(r) if r.completed else r.reason}")
    skipped = len(args.protocols) - len(results)
    if skipped:
        print(f"{skipped} protocol(s) not run: {service.stop_requested}")
    return 0 if not skipped and all(r.completed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
