"""The paper's figures (Oh et al., Joule 2025) that each shipped protocol reproduces, with the
tolerances accepted for the simulated station, read out of a run's analysis.

``paper_figures(protocol_name, analysis)`` gives, for a shipped protocol, one row per figure:
its label, the value found (None when the analysis has none), the paper's value, the tolerance
and whether the value is within it. A protocol the paper has no figure for gives no rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Figure:
    label: str
    unit: str
    paper: float | None  # None: the paper reports no onset (the reductive sweep)
    tolerance: float
    read: Callable[[dict], float | None]
    relative: bool = False

    def check(self, analysis: dict) -> dict:
        try:
            value = self.read(analysis)
        except (KeyError, IndexError, TypeError):
            value = None
        if self.paper is None:
            ok = value is None
        elif value is None:
            ok = False
        else:
            allowed = self.tolerance * abs(self.paper) if self.relative else self.tolerance
            ok = abs(value - self.paper) <= allowed
        return {"figure": self.label, "unit": self.unit, "value": value, "paper": self.paper,
                "tolerance": self.tolerance, "relative": self.relative, "ok": ok}


def _sigma_at(t_c: float):
    def read(a: dict):
        sigma = next((s["sigma_total_s_per_cm"] for s in a["eis"]["spectra"]
                      if round(s["temperature_c"]) == t_c), None)
        return None if sigma is None else sigma * 1e3
    return read


def _cycling(a: dict) -> dict:
    return a.get("cycling") or a["cold_discharge"]


def _cold_at(t_c: float):
    def read(a: dict):
        rows = a["cold_discharge"]["cold_discharge"]
        return next((r["discharge_mah_per_cm2"] for r in rows if r["temperature_c"] == t_c), None)
    return read


def _first_discharge(a: dict) -> float:
    return _cycling(a)["cycles"][0]["discharge_mah_per_cm2"]


PAPER_FIGURES: dict[str, list[Figure]] = {
    "onbh_conductivity": [
        Figure("σ(30 °C)", "mS/cm", 4.6, 0.1, _sigma_at(30)),
        Figure("σ(−10 °C)", "mS/cm", 0.30, 0.01, _sigma_at(-10)),
        Figure("Ea", "eV", 0.49, 0.01, lambda a: a["eis"]["arrhenius"]["total"]["ea_ev"]),
    ],
    "onbh_stability": [
        Figure("σ change after 30 days", "%", 0.0, 1.5,
               lambda a: a["eis"]["stability"][0]["change_pct"]),
    ],
    "dc_polarization": [
        Figure("σe", "S/cm", 1e-8, 0.10, lambda a: a["dcpol"]["sigma_e_s_per_cm"], relative=True),
    ],
    "lsv_oxidation": [
        Figure("oxidative onset", "V", 2.2, 0.05, lambda a: a["lsv"]["onset_threshold_v"]),
    ],
    "lsv_reduction": [
        Figure("reductive onset (none before −0.1 V)", "V", None, 0.0,
               lambda a: a["lsv"]["onset_threshold_v"]),
    ],
    "full_cell_15mg": [Figure("first discharge", "mAh/cm²", 1.3, 0.05, _first_discharge, relative=True)],
    "full_cell_30mg": [Figure("first discharge", "mAh/cm²", 2.2, 0.05, _first_discharge, relative=True)],
    "full_cell_45mg": [Figure("first discharge", "mAh/cm²", 3.5, 0.05, _first_discharge, relative=True)],
    "half_cell_nzc_onbh": [
        Figure("first charge", "mAh/cm²", 1.7, 0.1, lambda a: a["cycling"]["cycles"][0]["charge_mah_per_cm2"]),
        Figure("ICE", "%", 98.0, 1.0, lambda a: a["cycling"]["ice_pct"]),
    ],
    "symmetric_na9sn4": [
        Figure("cycles", "", 100, 0, lambda a: len(a["symmetric"]["cycles"])),
    ],
    "cold_discharge": [Figure(f"discharge at {t:g} °C", "mAh/cm²", paper, 0.1, _cold_at(t))
                       for t, paper in ((25.0, 3.1), (0.0, 2.9), (-5.0, 2.8), (-10.0, 2.5),
                                        (-15.0, 1.5))],
}


def paper_figures(protocol_name: str, analysis: dict | None) -> list[dict]:
    """One row per paper figure of ``protocol_name`` (none for a protocol the paper lacks)."""
    return [figure.check(analysis or {}) for figure in PAPER_FIGURES.get(protocol_name, [])]
