"""BioLogic files (tests/data/biologic, see tests/data/README.md) read and analysed against EC-Lab's own
per-cycle counters: ``Q charge/mA.h``, ``Q discharge/mA.h`` and ``Efficiency/%`` of the .mpt export."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.biologic_files import (BiologicFile, BiologicFileError, cycling_records, eis_spectra,
                                     is_biologic_file, read_biologic)
from analysis.cycling import summarize_cycles
from analysis.eis import analyze_eis_series

DATA = Path(__file__).resolve().parent.parent / "data" / "biologic"

# stem: (technique, first half is a charge)
CYCLING_FILES = {
    "gcpl.issue_149": ("GCPL", True),      # EC-Lab 11.50, 11 records per charge half
    "gcpl.issue_226.I": ("GCPL", True),    # EC-Lab 11.61, 7 and 8 records per half cycle
    "mb.issue_95": ("MB", True),           # EC-Lab 11.43, Modulo Bat, instantaneous I/mA
    "gcpl.pr_182.1": ("unknown", False),   # export without settings header, discharge first
    "bcd.issue_241": ("BCD", False),       # BT-Lab 1.79, CRLF, discharge first
}


def eclab_reference(mpt: Path, charge_first: bool) -> dict:
    """EC-Lab's own per-cycle numbers, keyed by cellbench's cycle number: its cumulative counters at
    the end of each of its cycles, and its Efficiency at the last record with a discharge."""
    data = read_biologic(mpt).data
    reference = {}
    for eclab_cycle, rows in data.groupby("cycle number", sort=True):
        charge = float(rows["Q charge/mA.h"].max())
        discharge = float(rows["Q discharge/mA.h"].max())
        with_discharge = rows[rows["Q discharge/mA.h"] > 0]
        efficiency = float(with_discharge["Efficiency/%"].iloc[-1]) if charge > 0 and discharge > 0 else None
        reference[int(eclab_cycle) + (1 if charge_first else 0)] = {
            "charge": charge or None, "discharge": discharge or None, "ce": efficiency}
    return reference


def assert_matches_eclab(result: dict, reference: dict) -> None:
    cycles = {entry["cycle"]: entry for entry in result["cycles"]}
    assert sorted(cycles) == sorted(reference)
    for number, expected in reference.items():
        got = cycles[number]
        for half in ("charge", "discharge"):
            if expected[half] is None:
                assert got[f"{half}_mah"] is None, (number, half)
            else:
                assert got[f"{half}_mah"] == pytest.approx(expected[half], rel=1e-3), (number, half)
        if expected["ce"] is not None:
            assert got["ce_pct"] == pytest.approx(expected["ce"], abs=0.1), number


def summary(path) -> dict:
    return summarize_cycles(cycling_records(read_biologic(path)))


@pytest.mark.parametrize("stem", sorted(CYCLING_FILES))
@pytest.mark.parametrize("suffix", [".mpt", ".mpr"])
def test_capacities_match_eclabs_own_counters(stem, suffix):
    technique, charge_first = CYCLING_FILES[stem]
    bf = read_biologic(DATA / f"{stem}{suffix}")
    if suffix == ".mpt" or technique != "unknown":
        assert bf.technique == technique
    assert_matches_eclab(summarize_cycles(cycling_records(bf)),
                         eclab_reference(DATA / f"{stem}.mpt", charge_first))


@pytest.mark.parametrize("stem", ["gcpl.issue_149", "gcpl.issue_226.I", "gcpl.pr_182.1"])
def test_mean_current_times_interval_alone_reproduces_eclab(stem):
    # Without the instrument's counter, Σ <I>_k·Δt_k must give EC-Lab's numbers by itself.
    records = cycling_records(read_biologic(DATA / f"{stem}.mpt")).drop(columns="dq_ah")
    assert_matches_eclab(summarize_cycles(records), eclab_reference(DATA / f"{stem}.mpt", CYCLING_FILES[stem][1]))


def test_gcpl_mpr_has_no_current_column_and_is_read_from_its_charge_counter():
    bf = read_biologic(DATA / "gcpl.issue_149.mpr")
    assert not {"<I>/mA", "I/mA"} & set(bf.data.columns)
    text = cycling_records(read_biologic(DATA / "gcpl.issue_149.mpt"))
    binary = cycling_records(bf)
    active = text["current_a"].abs() > 1e-6
    assert np.allclose(binary["current_a"][active], text["current_a"][active], rtol=1e-4)


def _as_crlf(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return target


def _as_lf(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes().replace(b"\r\n", b"\n"))
    return target


@pytest.mark.parametrize("stem", ["gcpl.issue_149", "bcd.issue_241", "mb.issue_95"])
def test_same_numbers_from_mpr_lf_mpt_and_crlf_mpt(stem, tmp_path):
    lf = _as_lf(DATA / f"{stem}.mpt", tmp_path / "lf.mpt")
    crlf = _as_crlf(DATA / f"{stem}.mpt", tmp_path / "crlf.mpt")
    assert b"\r\n" in crlf.read_bytes() and b"\r\n" not in lf.read_bytes()
    results = [summary(path) for path in (DATA / f"{stem}.mpr", lf, crlf)]
    assert read_biologic(crlf).metadata["line_ends"] == "CRLF"
    for other in results[1:]:
        assert [c["cycle"] for c in other["cycles"]] == [c["cycle"] for c in results[0]["cycles"]]
        for mine, theirs in zip(results[0]["cycles"], other["cycles"]):
            for key in ("charge_mah", "discharge_mah", "ce_pct"):
                assert (mine[key] is None) == (theirs[key] is None), key
                if mine[key] is not None:
                    assert mine[key] == pytest.approx(theirs[key], rel=1e-6), key


def test_decimal_comma_export_reads_like_the_decimal_point_one():
    comma = read_biologic(DATA / "mb.issue_95.de.mpt")
    point = read_biologic(DATA / "mb.issue_95.mpt")
    assert comma.metadata["decimal_mark"] == "," and point.metadata["decimal_mark"] == "."
    assert comma.data.shape == point.data.shape
    assert np.allclose(comma.data["Ewe/V"], point.data["Ewe/V"])
    assert_matches_eclab(summary(DATA / "mb.issue_95.de.mpt"), eclab_reference(DATA / "mb.issue_95.de.mpt", True))


def test_latin1_header_is_read():
    bf = read_biologic(DATA / "gcpl.issue_149.mpt")
    assert "Capacitance charge/µF" in bf.data.columns
    assert bf.metadata["software"].startswith("EC-Lab for windows v11.50")
    assert bf.metadata["cycle_definition"] == "Charge/Discharge alternance"


def thinned(mpt: Path, per_half: int, gap: slice | None = None) -> pd.DataFrame:
    """EC-Lab's records kept at ``per_half`` evenly spaced instants of each half cycle (its first and
    last among them), less the rows in ``gap``; each kept record's current is re-logged as a cycler
    logging this sparsely would log it: the mean since the previous kept record (from EC-Lab's dq)."""
    data = read_biologic(mpt).data
    keep = []
    for _, rows in data.groupby("half cycle", sort=False):
        index = rows.index.to_numpy()
        keep.extend(index[np.unique(np.linspace(0, index.size - 1, per_half).round().astype(int))])
    keep = np.array(sorted(set(keep) - set(range(len(data))[gap] if gap else [])))
    charge_ah = np.cumsum(data["dq/mA.h"].to_numpy()) / 1e3
    time_s = data["time/s"].to_numpy()[keep]
    q = charge_ah[keep]
    mean_a = np.concatenate(([0.0], np.diff(q) * 3600 / np.diff(time_s)))
    voltage = data["Ewe/V"].to_numpy()[keep]
    return pd.DataFrame({"time_s": time_s, "voltage_v": voltage, "current_a": mean_a})


def test_sparse_records_fewer_than_ten_per_half_cycle_match_eclab():
    # Derived from a real record (see tests/data/README.md): 6 records per half cycle.
    mpt = DATA / "gcpl.pr_182.1.mpt"
    records = thinned(mpt, per_half=6)
    reference = eclab_reference(mpt, charge_first=False)
    assert (records["time_s"].diff().iloc[1:] > 0).all() and len(records) < 6 * 9
    assert_matches_eclab(summarize_cycles(records), reference)


def test_logging_gap_across_a_step_boundary_matches_eclab():
    # 400 records missing across the end of the first charge and the rest that follows it: the record
    # after the gap carries the gap's mean current, which belongs to the charge.
    mpt = DATA / "gcpl.pr_182.1.mpt"
    data = read_biologic(mpt).data
    end_of_charge = int(data.index[data["half cycle"] == 2][-1])
    records = thinned(mpt, per_half=400, gap=slice(end_of_charge - 200, end_of_charge + 5))
    reference = eclab_reference(mpt, charge_first=False)
    assert_matches_eclab(summarize_cycles(records), reference)
    # The trapezoid rule, on the same records, lends half of the gap to the rest and misses.
    t, i = records["time_s"].to_numpy(), records["current_a"].to_numpy()
    cycle_1 = (t[1:] > data["time/s"][data["half cycle"] == 2].iloc[0]) & (t[1:] <= data["time/s"][end_of_charge + 5])
    trapezoid_mah = (0.5 * (i[1:] + i[:-1]) * np.diff(t))[cycle_1 & (i[1:] > 0)].sum() / 3.6
    assert abs(trapezoid_mah / reference[1]["charge"] - 1) > 0.005


def test_eclab_cycle_number_is_mapped_not_taken_as_is():
    charge_first = cycling_records(read_biologic(DATA / "gcpl.issue_149.mpt"))
    assert charge_first["cycle"].iloc[0] == 1  # EC-Lab's cycle 0 is cellbench's cycle 1
    discharge_first = cycling_records(read_biologic(DATA / "bcd.issue_241.mpt"))
    assert discharge_first["cycle"].iloc[0] == 0  # the discharge before the first charge
    assert [c["cycle"] for c in summary(DATA / "gcpl.issue_149.mpt")["cycles"]] == [1, 2, 3, 4]


def test_implausible_efficiency_carries_a_warning():
    result = summary(DATA / "gcpl.pr_182.1.mpt")
    by_cycle = {entry["cycle"]: entry for entry in result["cycles"]}
    assert by_cycle[3]["ce_pct"] > 105.0
    assert any(w.startswith("cycle 3: CE 105.0") for w in result["warnings"])
    assert not any(w.startswith("cycle 2") for w in result["warnings"])


def test_counter_and_current_disagreeing_is_reported():
    records = cycling_records(read_biologic(DATA / "gcpl.issue_149.mpt"))
    honest = summarize_cycles(records)
    assert not honest["warnings"]
    off = summarize_cycles(records.assign(dq_ah=records["dq_ah"] * 1.02))
    assert any("cycle 1 charge" in w and "counter is reported" in w for w in off["warnings"])
    assert off["cycles"][0]["charge_mah"] == pytest.approx(1.02 * honest["cycles"][0]["charge_mah"], rel=1e-9)
    unusable = summarize_cycles(records.assign(dq_ah=records["dq_ah"] * 1000))  # Ah taken for mAh
    assert any("cycle 1 charge" in w and "current × time is reported" in w for w in unusable["warnings"])
    assert unusable["cycles"][0]["charge_mah"] == pytest.approx(honest["cycles"][0]["charge_mah"], rel=1e-6)


def test_multi_spectrum_peis_gives_one_spectrum_per_loop_in_file_order():
    for suffix in (".mpt", ".mpr"):
        bf = read_biologic(DATA / f"peis.issue_149{suffix}")
        assert bf.technique == "PEIS"
        spectra = eis_spectra(bf)
        assert [s["label"].rsplit("#", 1)[1] for s in spectra] == ["1", "2", "3", "4"]
        assert all(s["frequency_hz"].size == 21 for s in spectra)
        assert all(np.all(np.diff(s["frequency_hz"]) < 0) for s in spectra)
        start = bf.data.loc[bf.data["freq/Hz"] > 0, "time/s"].to_numpy()
        assert start[0] < start[21] < start[42] < start[63]
    mpt, mpr = (eis_spectra(read_biologic(DATA / f"peis.issue_149{s}")) for s in (".mpt", ".mpr"))
    for a, b in zip(mpt, mpr):
        assert np.allclose(a["z_imag_ohm"], b["z_imag_ohm"], rtol=1e-6)
        assert np.all(a["z_imag_ohm"][:5] < 0)  # Im Z of EC-Lab's -Im(Z) column, capacitive
    result = analyze_eis_series(mpt, thickness_um=1000.0, diameter_mm=10.0)
    assert len(result["spectra"]) == 4
    assert [s["file"] for s in result["spectra"]] == [s["label"] for s in mpt]


def test_a_foreign_file_offered_as_mpt_is_refused(tmp_path):
    landt = tmp_path / "landt_export.mpt"
    landt.write_text("Record,Cycle,Step,TestTime,Voltage/V,Current/mA\n1,1,1,0,3.0,1.0\n", encoding="utf-8")
    assert not is_biologic_file(landt)
    with pytest.raises(BiologicFileError, match="not a BioLogic file"):
        read_biologic(landt)


def test_a_header_that_lies_about_its_length_is_refused(tmp_path):
    text = (DATA / "gcpl.issue_226.I.mpt").read_bytes().decode("latin-1")
    broken = tmp_path / "broken.mpt"
    broken.write_bytes(text.replace("Nb header lines : 77", "Nb header lines : 70").encode("latin-1"))
    with pytest.raises(BiologicFileError, match="time/s"):
        read_biologic(broken)


def test_current_against_oxred_is_refused():
    bf = read_biologic(DATA / "gcpl.issue_149.mpt")
    flipped = bf.data.assign(**{"<I>/mA": -bf.data["<I>/mA"], "dq/mA.h": -bf.data["dq/mA.h"]})
    with pytest.raises(BiologicFileError, match="ox/red"):
        cycling_records(BiologicFile(bf.path, bf.technique, flipped, bf.metadata))


def test_impedance_file_has_no_cycling_record_and_cycling_file_no_spectrum():
    with pytest.raises(BiologicFileError, match="impedance"):
        cycling_records(read_biologic(DATA / "peis.issue_149.mpt"))
    with pytest.raises(BiologicFileError, match="not an impedance file"):
        eis_spectra(read_biologic(DATA / "gcpl.issue_149.mpt"))


def test_an_mpr_column_the_reader_does_not_know_is_refused_by_name():
    with pytest.raises(BiologicFileError, match=r"mb.issue_223.mpr: unreadable .mpr file .*Column ID 112.*\.mpt"):
        read_biologic(DATA / "mb.issue_223.mpr")
