"""Cycling, symmetric-cell and cold-discharge protocols on the simulated station (issue: Landt).

Loops are shortened here to keep `make test` fast; bench/bench_protocols.py runs them full length.
"""
from __future__ import annotations

import pytest

from storage.readers import get_run, read_stream


def test_full_cell_45mg_capacity_ice_and_ce(tmp_path, shortened_protocol, run_protocol_object):
    db = f"sqlite:///{tmp_path / 'full.sqlite'}"
    outcome, run_id, _ = run_protocol_object(shortened_protocol("full_cell_45mg", 6), db)
    assert outcome.status == "completed", outcome.reason
    result = outcome.analysis["cycling"]
    cycles = result["cycles"]
    assert [c["cycle"] for c in cycles] == [1, 2, 3, 4, 5, 6]
    assert cycles[0]["discharge_mah_per_cm2"] == pytest.approx(3.5, rel=0.05)
    assert 70.0 <= result["ice_pct"] <= 81.0
    assert 99.8 <= result["mean_ce_pct"] <= 99.9
    # Every record the simulated Landt wrote to its export reached the database.
    records = read_stream(db, run_id, "cycling")
    assert records["record"].tolist() == list(range(1, len(records) + 1))
    assert set(records["step_type"]) >= {"cc_charge", "cc_discharge"}


def test_half_cell_first_charge_and_ice(tmp_path, shortened_protocol, run_protocol_object):
    outcome, _, _ = run_protocol_object(shortened_protocol("half_cell_nzc_onbh", 3),
                                        f"sqlite:///{tmp_path / 'half.sqlite'}")
    assert outcome.status == "completed", outcome.reason
    result = outcome.analysis["cycling"]
    assert result["cycles"][0]["charge_mah_per_cm2"] == pytest.approx(1.7, abs=0.1)
    assert result["ice_pct"] == pytest.approx(98.0, abs=1.0)


def test_symmetric_cell_overpotential_per_cycle(tmp_path, shortened_protocol, run_protocol_object):
    outcome, _, _ = run_protocol_object(shortened_protocol("symmetric_na9sn4", 4),
                                        f"sqlite:///{tmp_path / 'sym.sqlite'}")
    assert outcome.status == "completed", outcome.reason
    cycles = outcome.analysis["symmetric"]["cycles"]
    assert len(cycles) == 4
    assert all(c["overpotential_mean_v"] > 0 for c in cycles)


def test_cold_discharge_matches_the_paper(tmp_path, run_simulated):
    db = f"sqlite:///{tmp_path / 'cold.sqlite'}"
    outcome, run_id, wall, _ = run_simulated("cold_discharge", db)
    assert outcome.status == "completed", outcome.reason
    table = outcome.analysis["cold_discharge"]["cold_discharge"]
    assert [row["temperature_c"] for row in table] == [25.0, 0.0, -5.0, -10.0, -15.0]
    for row, expected in zip(table, [3.1, 2.9, 2.8, 2.5, 1.5]):
        assert row["discharge_mah_per_cm2"] == pytest.approx(expected, abs=0.1)
    eis = outcome.analysis["cold_discharge"]["cell_eis"]
    assert [e["temperature_c"] for e in eis] == [25.0, 0.0, -5.0, -10.0, -15.0]
    ohmic = [e["r_ohmic_ohm"] for e in eis]
    assert ohmic == sorted(ohmic), "the electrolyte's resistance grows as the cell gets colder"
    # The chamber followed the cycler: each discharge ran at its temperature.
    chamber = read_stream(db, run_id, "chamber")
    assert chamber["setpoint_c"].min() == -15.0
    assert get_run(db, run_id)["status"] == "completed"


def test_abort_during_cycling_stops_the_cycler(tmp_path, shortened_protocol, run_protocol_object):
    stations = []

    def abort_after_a_day(runner):
        stations.append(runner.station)
        start = runner.station.clock.now()
        runner.station.clock.every(3600.0, lambda now: runner.abort("test abort")
                                   if now - start > 86400 else None)

    outcome, run_id, _ = run_protocol_object(shortened_protocol("full_cell_15mg", 20),
                                             f"sqlite:///{tmp_path / 'abort.sqlite'}",
                                             on_runner=abort_after_a_day)
    assert outcome.status == "aborted"
    assert stations[0].instruments.lab.thermal.controlled is False
    assert "cycler not stopped" not in outcome.reason
