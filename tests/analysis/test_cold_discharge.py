"""Cold-discharge table: order, areal capacity and ratio to the room-temperature discharge."""

import pandas as pd
import pytest

from analysis.cold_discharge import ColdDischargeInputError, cold_discharge_table

AREA_CM2 = 0.785
# The paper's 45 mg/cm2 full cell, mAh/cm2 at RT, 0, -5, -10, -15 °C (in that order).
PAPER = [(25, 3.1), (0, 2.9), (-5, 2.8), (-10, 2.5), (-15, 1.5)]


def paper_entries():
    return [{"temperature_c": t, "discharge_mah": q * AREA_CM2} for t, q in PAPER]


def test_rows_keep_order_and_give_areal_capacity_and_ratio():
    rows = cold_discharge_table(paper_entries(), AREA_CM2)
    assert [row["temperature_c"] for row in rows] == [t for t, _ in PAPER]
    for row, (_, q) in zip(rows, PAPER):
        assert row["discharge_mah_per_cm2"] == pytest.approx(q)
        assert row["ratio_to_reference_pct"] == pytest.approx(100 * q / 3.1)
        assert "avg_discharge_voltage_v" not in row
    assert rows[-1]["ratio_to_reference_pct"] == pytest.approx(48.39, abs=0.01)


def test_dataframe_input_with_voltages_and_reference_not_first():
    entries = paper_entries()[1:] + paper_entries()[:1]  # the RT discharge measured last
    frame = pd.DataFrame(entries).assign(avg_discharge_voltage_v=[2.9, 2.85, 2.8, 2.6, 3.0])
    rows = cold_discharge_table(frame, AREA_CM2)
    assert [row["temperature_c"] for row in rows] == [0, -5, -10, -15, 25]
    assert rows[0]["ratio_to_reference_pct"] == pytest.approx(100 * 2.9 / 3.1)
    assert rows[3]["avg_discharge_voltage_v"] == pytest.approx(2.6)


def test_reference_is_matched_within_tolerance_and_first_one_wins():
    entries = [{"temperature_c": 24.6, "discharge_mah": 2.0}, {"temperature_c": 0, "discharge_mah": 1.5},
               {"temperature_c": 25.0, "discharge_mah": 1.0}]
    rows = cold_discharge_table(entries, None)
    assert [row["ratio_to_reference_pct"] for row in rows] == pytest.approx([100.0, 75.0, 50.0])
    assert all(row["discharge_mah_per_cm2"] is None for row in rows)


def test_without_reference_ratios_are_none():
    rows = cold_discharge_table(paper_entries()[1:], AREA_CM2)
    assert all(row["ratio_to_reference_pct"] is None for row in rows)
    rows = cold_discharge_table(paper_entries(), AREA_CM2, reference_temperature_c=0)
    assert rows[0]["ratio_to_reference_pct"] == pytest.approx(100 * 3.1 / 2.9)


@pytest.mark.parametrize("discharges, area, message", [
    ([{"temperature_c": 0}], 1.0, "entry 0 has no 'discharge_mah'"),
    ([{"temperature_c": 0, "discharge_mah": -1}], 1.0, ">= 0"),
    ([{"temperature_c": "cold", "discharge_mah": 1}], 1.0, "not a number"),
    ([{"temperature_c": 0, "discharge_mah": 1}, 5], 1.0, "entry 1 is not a mapping"),
    ([{"temperature_c": 0, "discharge_mah": 1}], 0.0, "area_cm2"),
    ("25,3.1", 1.0, "list of mappings"),
])
def test_bad_input_raises_named_errors(discharges, area, message):
    with pytest.raises(ColdDischargeInputError, match=message):
        cold_discharge_table(discharges, area)


def test_sub_milliamp_hour_discharges_give_areal_capacity_and_ratio():
    # A 6 mm coin-type cell: 0.3 mAh at room temperature, nothing left at -30 °C.
    area = 0.283
    entries = [{"temperature_c": 25, "discharge_mah": 0.3}, {"temperature_c": -15, "discharge_mah": 0.12},
               {"temperature_c": -30, "discharge_mah": 0.0}]
    rows = cold_discharge_table(entries, area)
    assert [row["discharge_mah"] for row in rows] == [0.3, 0.12, 0.0]
    assert [row["discharge_mah_per_cm2"] for row in rows] == pytest.approx([0.3 / area, 0.12 / area, 0.0])
    assert [row["ratio_to_reference_pct"] for row in rows] == pytest.approx([100.0, 40.0, 0.0])


def test_a_reference_that_delivered_nothing_gives_no_ratios():
    # 0 mAh at the reference temperature: a ratio to it would divide by zero.
    rows = cold_discharge_table([{"temperature_c": 25, "discharge_mah": 0.0},
                                 {"temperature_c": 0, "discharge_mah": 0.2}], None)
    assert [row["ratio_to_reference_pct"] for row in rows] == [None, None]


def test_default_tolerance_is_one_degree_inclusive():
    entries = [{"temperature_c": 23.95, "discharge_mah": 4.0}, {"temperature_c": 24.0, "discharge_mah": 2.0},
               {"temperature_c": 0, "discharge_mah": 1.0}]
    rows = cold_discharge_table(entries, None)
    assert [row["ratio_to_reference_pct"] for row in rows] == pytest.approx([200.0, 100.0, 50.0])


def test_zero_tolerance_needs_the_exact_temperature():
    entries = [{"temperature_c": 24.9, "discharge_mah": 4.0}, {"temperature_c": 25.0, "discharge_mah": 2.0}]
    rows = cold_discharge_table(entries, None, reference_tolerance_c=0.0)
    assert [row["ratio_to_reference_pct"] for row in rows] == pytest.approx([200.0, 100.0])
    rows = cold_discharge_table(entries, None, reference_tolerance_c=0.5)
    assert [row["ratio_to_reference_pct"] for row in rows] == pytest.approx([100.0, 50.0])


def test_missing_values_in_a_dataframe_are_handled_per_field():
    frame = pd.DataFrame({"temperature_c": [25.0, 0.0], "discharge_mah": [3.0, 2.4],
                          "avg_discharge_voltage_v": [3.1, float("nan")]})
    rows = cold_discharge_table(frame, 1.0)
    assert rows[0]["avg_discharge_voltage_v"] == 3.1
    assert "avg_discharge_voltage_v" not in rows[1]
    assert rows[1]["ratio_to_reference_pct"] == pytest.approx(80.0)
    frame.loc[1, "discharge_mah"] = float("nan")
    with pytest.raises(ColdDischargeInputError, match="entry 1 has no 'discharge_mah'"):
        cold_discharge_table(frame, 1.0)


@pytest.mark.parametrize("entries, area, tolerance, message", [
    ([{"temperature_c": 25, "discharge_mah": 1}, {"discharge_mah": 1}], 1.0, 1.0,
     "entry 1 has no 'temperature_c'"),
    ([{"temperature_c": 25, "discharge_mah": 1}, {"temperature_c": 0, "discharge_mah": float("inf")}], 1.0,
     1.0, "entry 1: 'discharge_mah' is not finite"),
    ([{"temperature_c": 25, "discharge_mah": 1}, {"temperature_c": 0, "discharge_mah": 1,
                                                  "avg_discharge_voltage_v": "n/a"}], 1.0, 1.0,
     "entry 1: 'avg_discharge_voltage_v' is not a number"),
    ([{"temperature_c": 25, "discharge_mah": 1}], float("inf"), 1.0, "area_cm2 must be a positive number"),
    ([{"temperature_c": 25, "discharge_mah": 1}], "1.0", 1.0, "area_cm2 must be a positive number"),
    ([{"temperature_c": 25, "discharge_mah": 1}], 1.0, -0.5, "reference_tolerance_c must be >= 0"),
])
def test_more_bad_input_names_entry_and_field(entries, area, tolerance, message):
    with pytest.raises(ColdDischargeInputError, match=message):
        cold_discharge_table(entries, area, reference_tolerance_c=tolerance)


def test_per_temperature_summary_compares_only_cycles_at_one_temperature():
    from analysis.cold_discharge import per_temperature_summary

    cycles = [{"cycle": 1, "discharge_mah": 1.8, "ce_pct": 80.0},   # formation, 25 °C
              {"cycle": 2, "discharge_mah": 1.7, "ce_pct": 99.0},   # 25 °C
              {"cycle": 3, "discharge_mah": 1.2, "ce_pct": 90.0},   # -10 °C
              {"cycle": 4, "discharge_mah": 1.5, "ce_pct": 97.0},   # 25.4 °C: the 25 °C group
              {"cycle": 5, "discharge_mah": 0.9, "ce_pct": 70.0}]   # not listed: left out
    summary = per_temperature_summary(cycles, {1: 25.0, 2: 25.0, 3: -10.0, 4: 25.4})
    assert [g["temperature_c"] for g in summary] == [25.0, -10.0]
    warm, cold = summary
    assert warm["cycles"] == [1, 2, 4]
    assert warm["mean_ce_pct"] == pytest.approx(98.0)  # cycles 2 and 4: cycle 1's CE is the ICE
    assert warm["retention_pct"] == pytest.approx(1.5 / 1.8 * 100)
    assert cold == {"temperature_c": -10.0, "cycles": [3], "mean_ce_pct": 90.0, "retention_pct": None}
    assert per_temperature_summary(cycles, {1: 25.0})[0]["mean_ce_pct"] is None


def test_per_temperature_summary_names_bad_input():
    from analysis.cold_discharge import per_temperature_summary

    with pytest.raises(ColdDischargeInputError, match="cycle 7 has a discharge temperature but no cycle entry"):
        per_temperature_summary([{"cycle": 1, "discharge_mah": 1.0, "ce_pct": 90.0}], {7: 25.0})
    with pytest.raises(ColdDischargeInputError, match="entry 0 has no 'cycle'"):
        per_temperature_summary([{"discharge_mah": 1.0}], {1: 25.0})
    with pytest.raises(ColdDischargeInputError, match="tolerance_c must be >= 0"):
        per_temperature_summary([], {}, tolerance_c=-1.0)


def test_per_temperature_summary_at_its_edges():
    from analysis.cold_discharge import per_temperature_summary

    # Sub-mAh discharges; an empty discharge first in its group leaves nothing to retain from.
    cycles = [{"cycle": 1, "discharge_mah": 0.5, "ce_pct": 80.0}, {"cycle": 2, "discharge_mah": 0.0, "ce_pct": 0.0},
              {"cycle": 3, "discharge_mah": 0.0, "ce_pct": 50.0}, {"cycle": 4, "discharge_mah": 0.4, "ce_pct": 95.0}]
    warm, cold = per_temperature_summary(cycles, {1: 25.0, 2: 24.0, 3: -20.0, 4: -20.0})
    assert warm["cycles"] == [1, 2]  # 1 °C apart: one group, the tolerance is inclusive
    assert warm["retention_pct"] == 0.0  # two discharges suffice; the second delivered nothing
    assert warm["mean_ce_pct"] == 0.0
    assert cold["cycles"] == [3, 4] and cold["retention_pct"] is None
    assert cold["mean_ce_pct"] == pytest.approx(72.5)
    exact = per_temperature_summary(cycles, {1: 25.0, 2: 24.9}, tolerance_c=0.0)
    assert [g["cycles"] for g in exact] == [[1], [2]]
    half = per_temperature_summary(cycles, {1: 25.0, 2: 24.6, 4: 24.4}, tolerance_c=0.5)
    assert [g["cycles"] for g in half] == [[1, 2], [4]]
    assert half[0]["retention_pct"] == 0.0
