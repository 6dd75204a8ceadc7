"""Rendering a program as the Landt step table the operator loads."""
from __future__ import annotations

import csv
import io

import pytest

from config.cycling import CellSection, load_program
from instruments.landt.steptable import render_step_table

CELL = CellSection(kind="full", anode="Sn", active_mass_mg=10.0, area_cm2=0.785, lower_cutoff_v=1.5,
                   upper_cutoff_v=3.4)        # 1.2 mAh: C/10 = 0.12 mA
PROGRAM = load_program({"steps": [
    {"kind": "rest", "duration_s": 3600},
    {"kind": "cccv", "tag": "c", "rate_c": 0.1, "voltage_v": 3.4, "until_rate_c": 0.05, "until_time_s": 7200},
    {"kind": "cc", "direction": "discharge", "rate_c": 0.1, "until_voltage_v": 1.5, "until_capacity_ah": 2e-3},
    {"kind": "cv", "voltage_v": 1.5, "until_current_a": 1e-5},
    {"kind": "loop", "to_tag": "c", "count": 100},
], "safety": {"voltage_min_v": 1.0, "voltage_max_v": 3.6, "current_max_a": 0.005}, "record_interval_s": 30})


def test_step_table_rows_in_landt_vocabulary():
    table = render_step_table(PROGRAM, CELL, sample_id="F45-1", channel=3)
    modes = [(r.number, r.mode) for r in table.rows]
    assert modes == [(1, "Rest"), (2, "CC_Chg"), (3, "CV_Chg"), (4, "CC_DChg"), (5, "CV_DChg"), (6, "Cycle"),
                     (7, "End")]
    rest, cc, cv, dchg, cvd, loop, _ = table.rows
    assert rest.limits == ("t>=1:00:00",)
    assert cc.current_ma == pytest.approx(0.12) and cc.limits == ("V>=3.4000 V",)
    assert cv.voltage_v == 3.4 and cv.limits == ("I<=0.0600 mA", "t>=2:00:00")
    assert dchg.current_ma == pytest.approx(0.12) and dchg.limits == ("V<=1.5000 V", "Q>=2.0000 mAh")
    assert cvd.limits == ("I<=0.0100 mA",)
    assert (loop.goto_step, loop.count) == (2, 100)
    assert table.last_work_step == 5
    assert table.numbers == {0: 1, 1: 2, 2: 4, 3: 5, 4: 6}


def test_text_and_csv():
    table = render_step_table(PROGRAM, CELL, sample_id="F45-1", channel=3)
    text = table.text()
    assert "sample F45-1, channel 3" in text and "nominal capacity (1 C) 1.2000 mAh" in text
    assert "|I| <= 5 mA" in text and "Record every 30 s or 5 mV" in text
    assert "StepTime" in text                      # the export columns the follower needs
    rows = list(csv.DictReader(io.StringIO(table.csv())))
    assert [r["mode"] for r in rows] == ["Rest", "CC_Chg", "CV_Chg", "CC_DChg", "CV_DChg", "Cycle", "End"]
    assert rows[1]["current_ma"] == "0.1200" and rows[1]["record_interval_s"] == "30"
    assert rows[5]["goto_step"] == "2" and rows[5]["count"] == "100" and rows[5]["record_interval_s"] == ""


def test_chamber_rests_are_inserted_and_loops_return_to_them():
    table = render_step_table(PROGRAM, CELL, chamber_rests=[(1, 5400.0)])
    modes = [r.mode for r in table.rows]
    assert modes == ["Rest", "Rest", "CC_Chg", "CV_Chg", "CC_DChg", "CV_DChg", "Cycle", "End"]
    assert table.rows[1].limits == ("t>=1:30:00",)
    assert table.rows[6].goto_step == 2            # the chamber rest runs again on every pass
