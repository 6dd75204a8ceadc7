"""Scripted protocol: measure the pellet's conductivity, and sweep the LSV pair only if it conducts.

    python examples/conductivity_then_lsv.py [--simulate] [--db URL] [--station FILE]

Runs ``onbh_conductivity``; if σ_total at 30 °C exceeds 1 mS/cm, runs ``lsv_oxidation`` and
``lsv_reduction``. Prints one JSON summary on stdout. This is the pattern for any decision
between measurements: run, read the analysis, decide what comes next.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.station import load_station  # noqa: E402
from procedures.service import RunService  # noqa: E402

THRESHOLD_S_PER_CM = 1e-3


def sigma_at(analysis: dict, temperature_c: float, tolerance_c: float = 1.0) -> float | None:
    for spectrum in analysis["eis"]["spectra"]:
        t = spectrum["temperature_c"]
        if t is not None and abs(t - temperature_c) <= tolerance_c:
            return spectrum["sigma_total_s_per_cm"]
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulate", action="store_true")
    parser.add_argument("--station", default=None)
    parser.add_argument("--db", default=None)
    parser.add_argument("--report-dir", default=None)
    args = parser.parse_args(argv)

    service = RunService(load_station(args.station, simulate=True if args.simulate else None),
                         args.db, report_dir=args.report_dir)
    conductivity = service.run_file("onbh_conductivity")
    summary = {"conductivity": conductivity.to_json(), "lsv": []}
    lsv = []
    sigma = sigma_at(conductivity.analysis, 30.0) if conductivity.completed else None
    summary["sigma_30c_s_per_cm"] = sigma
    if sigma is not None and sigma > THRESHOLD_S_PER_CM:
        summary["decision"] = f"σ(30 °C) = {sigma * 1e3:.2f} mS/cm > 1 mS/cm: LSV pair run"
        lsv = service.run_all(["lsv_oxidation", "lsv_reduction"])
        summary["lsv"] = [r.to_json() for r in lsv]
    else:
        summary["decision"] = "σ(30 °C) unknown or ≤ 1 mS/cm: LSV pair skipped"
    json.dump(summary, sys.stdout, indent=2, default=str)
    print()
    return 0 if all(r.completed for r in [conductivity, *lsv]) else 1


if __name__ == "__main__":
    sys.exit(main())
