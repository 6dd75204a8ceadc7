"""The cycling analysis of a run, made block by block as records arrive (flat memory), equals the
analysis of the whole stored record at once."""
from __future__ import annotations

import pytest

from analysis.cycling import summarize_cycles
from procedures.analyzers import CycleChunks
from storage.readers import read_stream


def test_block_by_block_equals_the_whole_record(tmp_path, shortened_protocol, run_protocol_object, monkeypatch):
    monkeypatch.setattr(CycleChunks, "CHUNK_CYCLES", 7)  # 30 cycles: blocks of 7, 7, 7, 7 and 2
    db = f"sqlite:///{tmp_path / 'c.sqlite'}"
    outcome, run_id, _ = run_protocol_object(shortened_protocol("full_cell_15mg", 30), db)
    assert outcome.status == "completed", outcome.reason
    chunked = outcome.analysis["cycling"]
    records = read_stream(db, run_id, "cycling").rename(columns={"test_time_s": "time_s"})
    cell = shortened_protocol("full_cell_15mg", 30).cell
    whole = summarize_cycles(records, mass_mg=cell.active_mass_mg, area_cm2=cell.area_cm2)
    assert [c["cycle"] for c in chunked["cycles"]] == [c["cycle"] for c in whole["cycles"]] == list(range(1, 31))
    for a, b in zip(chunked["cycles"], whole["cycles"]):
        for key in ("charge_mah", "discharge_mah", "ce_pct", "avg_discharge_voltage_v", "cv_charge_share_pct"):
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), (a["cycle"], key)
    for key in ("ice_pct", "mean_ce_pct", "retention_pct"):
        assert chunked[key] == pytest.approx(whole[key], rel=1e-12)


def test_report_of_a_long_run_reads_only_the_cycles_its_figures_draw(tmp_path, shortened_protocol,
                                                                     run_protocol_object, monkeypatch):
    from analysis import report as report_module
    from procedures import service
    monkeypatch.setattr(service, "FIGURE_CYCLES_FROM", 10)
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    _, run_id, _ = run_protocol_object(shortened_protocol("full_cell_15mg", 25), db)
    seen = {}
    render = report_module.render_report
    monkeypatch.setattr(report_module, "render_report",
                        lambda run, frames, out: seen.update(frames) or render(run, frames, out))
    path = service.write_run_report(db, run_id, tmp_path / "rep")
    cycles = sorted(set(seen["cycling"]["cycle"].tolist()))
    assert cycles == [0, 1, 2, 3, 9, 10, 11, 23, 24, 25] or cycles == [1, 2, 3, 9, 10, 11, 23, 24, 25]
    full = read_stream(db, run_id, "cycling")
    part = full[full["cycle"].isin(cycles)]
    assert seen["cycling"]["voltage_v"].tolist() == part["voltage_v"].tolist()
    assert "cycles 1, 2, 10, 25" in path.read_text(encoding="utf-8")
