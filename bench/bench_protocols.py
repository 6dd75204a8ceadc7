"""Every shipped protocol, full length, on the simulated station: wall time and the paper's figures.

Run: .venv/bin/python bench/bench_protocols.py [protocol ...]
Each run goes through the same path as `main.py run --simulate` (drivers, simulators, storage in a
temporary SQLite file, analysis), and prints its wall time next to the acceptance target.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.protocol import load_protocol  # noqa: E402
from config.station import load_station  # noqa: E402
from procedures.service import RunService  # noqa: E402

TARGETS_S = {"onbh_conductivity": 20.0, "lsv_oxidation": 10.0, "full_cell_15mg": 30.0,
             "full_cell_30mg": 30.0, "full_cell_45mg": 30.0}


def _fmt(value, spec: str) -> str:
    """A figure, or a dash where the analysis gives none (a cold run's CE over mixed temperatures)."""
    return "—" if value is None else format(value, spec)


def figures(name: str, analysis: dict) -> str:
    if "eis" in analysis:
        eis = analysis["eis"]
        by_t = {round(s["temperature_c"]): s["sigma_total_s_per_cm"] for s in eis["spectra"]}
        arr = eis["arrhenius"]["total"] if eis.get("arrhenius") else {}
        return (f"sigma(30 C) = {by_t.get(30, float('nan')) * 1e3:.3f} mS/cm, "
                f"sigma(-10 C) = {by_t.get(-10, float('nan')) * 1e3:.4f} mS/cm, "
                f"Ea = {arr.get('ea_ev', float('nan')):.4f} eV")
    if "lsv" in analysis:
        return f"onset (threshold) = {analysis['lsv']['onset_threshold_v']}"
    if "dcpol" in analysis:
        return f"sigma_e = {analysis['dcpol']['sigma_e_s_per_cm']:.4e} S/cm"
    if "symmetric" in analysis:
        c = analysis["symmetric"]["cycles"]
        return f"{len(c)} cycles, overpotential {c[0]['overpotential_mean_v']*1e3:.2f} -> {c[-1]['overpotential_mean_v']*1e3:.2f} mV"
    result = analysis.get("cycling") or analysis.get("cold_discharge")
    cycles = result["cycles"]
    text = (f"{len(cycles)} cycles; first charge {cycles[0]['charge_mah_per_cm2']:.3f}, first discharge "
            f"{cycles[0]['discharge_mah_per_cm2']:.3f}, last discharge {cycles[-1]['discharge_mah_per_cm2']:.3f}"
            f" mAh/cm2; ICE {_fmt(result['ice_pct'], '.2f')} %, mean CE {_fmt(result['mean_ce_pct'], '.3f')} %, "
            f"retention {_fmt(result['retention_pct'], '.1f')} %")
    if "cold_discharge" in result:
        text += "; cold: " + ", ".join(f"{r['temperature_c']:g} C {r['discharge_mah_per_cm2']:.2f}"
                                       for r in result["cold_discharge"])
    return text


def main(names) -> int:
    station = load_station(simulate=True)
    names = names or sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "config" / "protocols").glob("*.toml"))
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            protocol = load_protocol(name, station)
            t0 = time.perf_counter()
            outcome = RunService(station, f"sqlite:///{tmp}/bench.sqlite", report_dir=False).run(protocol)
            wall = time.perf_counter() - t0
            target = TARGETS_S.get(name)
            verdict = "" if target is None else f" (target < {target:g} s: {'met' if wall < target else 'NOT met'})"
            print(f"{name:<22} {outcome.status:<10} wall {wall:6.2f} s{verdict}")
            if outcome.status == "completed":
                print(f"    {figures(name, outcome.analysis)}")
            else:
                print(f"    {outcome.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
