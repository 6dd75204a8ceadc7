"""The paper's figures read out of a run's analysis: a figure the run did not reach is missing,
not an error (a campaign stopped with Ctrl+C sums up its aborted runs)."""
from __future__ import annotations

from analysis.paper_figures import paper_figures


def _row(rows, label):
    return next(r for r in rows if r["figure"] == label)


def test_a_conductivity_run_stopped_before_30_c_has_no_sigma_there():
    analysis = {"eis": {"spectra": [{"temperature_c": -10.2, "sigma_total_s_per_cm": 3.0e-4}]}}
    rows = paper_figures("onbh_conductivity", analysis)
    assert _row(rows, "σ(30 °C)")["value"] is None and not _row(rows, "σ(30 °C)")["ok"]
    low = _row(rows, "σ(−10 °C)")
    assert low["value"] == 0.3 and low["ok"]
    assert _row(rows, "Ea")["value"] is None  # no Arrhenius fit in an aborted run


def test_a_cold_discharge_stopped_before_minus_15_c_has_no_capacity_there():
    analysis = {"cold_discharge": {"cycles": [{"discharge_mah_per_cm2": 3.14}],
                                   "cold_discharge": [{"temperature_c": 25.0, "discharge_mah_per_cm2": 3.14}]}}
    rows = paper_figures("cold_discharge", analysis)
    assert _row(rows, "discharge at 25 °C")["ok"]
    assert _row(rows, "discharge at -15 °C")["value"] is None
