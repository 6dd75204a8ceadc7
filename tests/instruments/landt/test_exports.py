"""Landt export layouts (research/landt_espec.md §2.3), generated here, read to one canonical frame."""
from __future__ import annotations

import sys
import types

import numpy as np
import openpyxl
import pandas as pd
import pytest

from instruments.cycler import CANONICAL_COLUMNS
from instruments.landt.exports import ExportFormatError, read_export

# (step type, current in mA, number of records); records 10 s apart, a step starts 10 s after the
# previous one ends.
STEPS = [("rest", 0.0, 3), ("cc_charge", 0.42, 6), ("rest", 0.0, 3), ("cc_discharge", -0.42, 6),
         ("rest", 0.0, 3), ("cc_charge", 0.40, 5), ("rest", 0.0, 2), ("cc_discharge", -0.38, 4)]
CYCLES = [1, 1, 1, 1, 1, 2, 2, 2]


def truth() -> pd.DataFrame:
    rows = []
    t = 0
    for number, ((kind, current_ma, n), cycle) in enumerate(zip(STEPS, CYCLES), start=1):
        for k in range(n):
            voltage = 2.9 + 0.01 * k if current_ma >= 0 else 3.2 - 0.02 * k
            rows.append(dict(cycle=cycle, step=number, step_type=kind, test_time_s=float(t),
                             step_time_s=10.0 * k, voltage_v=voltage, current_a=current_ma * 1e-3))
            t += 10
    df = pd.DataFrame(rows)
    df.insert(0, "record", np.arange(1, len(df) + 1))
    capacity, energy = [], []
    for _, group in df.groupby("step", sort=True):
        q = e = 0.0
        prev = None
        for row in group.itertuples():
            if prev is not None:
                dt = row.step_time_s - prev.step_time_s
                q += 0.5 * (abs(row.current_a) + abs(prev.current_a)) * dt / 3600
                e += 0.5 * (abs(row.current_a * row.voltage_v) + abs(prev.current_a * prev.voltage_v)) * dt / 3600
            capacity.append(q)
            energy.append(e)
            prev = row
    df["capacity_ah"] = capacity
    df["energy_wh"] = energy
    return df[list(CANONICAL_COLUMNS)]


TRUTH = truth()
STATUS = {"rest": "Rest", "cc_charge": "CC_Chg", "cc_discharge": "CC_DChg"}


def hms(seconds: float, days: bool = False, ms: bool = False) -> str:
    s = int(round(seconds))
    d, s = divmod(s, 86400) if days else (0, s)
    text = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" + (".000" if ms else "")
    return f"{d} {text}" if days else text


def lanhe_xlsx(path):
    book = openpyxl.Workbook()
    info = book.active
    info.title = "Test information"
    info.append(["Test name", "sample 7"])
    info.append(["Channel", 1])
    proc = book.create_sheet("Ch1_Proc")
    proc.append(["Order", "Name", "Unit Scheme"])
    proc.append([1, "Rest", "uA"])
    book.create_sheet("Log").append(["2025-01-01 10:00:00", "start"])
    data = book.create_sheet("Ch1_DefaultGroup")
    data.append(["Cycle", "Step", "Record", "SysTime", "TestTime", "Voltage/V", "Current/uA",
                 "Capacity/uAh", "SpeCap/mAh/g", "dQdV/uAh/V"])
    for r in TRUTH.itertuples():
        data.append([r.cycle, r.step, r.record, "2025-01-01 10:00:00.000", hms(r.test_time_s, days=True, ms=True),
                     r.voltage_v, r.current_a * 1e6, r.capacity_ah * 1e6, 0.0, 0.0])
    book.save(path)


def landdt_rows():
    header = ["Test Time", "Step Time", "Current", "Voltage", "AuxVolt", "SysTime", "StepNo", "StepStatus"]
    return header, [[r.test_time_s, r.step_time_s, abs(r.current_a) * 1e3, r.voltage_v, 0.0,
                     "2025-01-01 10:00:00", r.step, STATUS[r.step_type]] for r in TRUTH.itertuples()]


def landdt_xlsx(path):
    header, rows = landdt_rows()
    book = openpyxl.Workbook()
    first = book.active
    first.title = "Record"
    second = book.create_sheet("Record1")
    for sheet, chunk in ((first, rows[:17]), (second, rows[17:])):
        sheet.append(header)
        for row in chunk:
            sheet.append(row)
    book.create_sheet("Step").append(["Step", "Mode", "Period", "Capacity", "Power", "Start Volt", "End Volt"])
    book.create_sheet("Cycle").append(["Cycle", "Charge Capacity", "Discharge Capacity"])
    book.save(path)


def landdt_continued_xlsx(path):
    """LANDdt splits long tests over Record, Record1, ...; only the first sheet has the header."""
    header, rows = landdt_rows()
    book = openpyxl.Workbook()
    first = book.active
    first.title = "Record"
    first.append(header)
    for row in rows[:11]:
        first.append(row)
    for name, chunk in (("Record1", rows[11:22]), ("Record2", rows[22:])):
        sheet = book.create_sheet(name)
        for row in chunk:
            sheet.append(row)
    book.create_sheet("Step").append(["Step", "Mode", "Period", "Capacity", "Power", "Start Volt", "End Volt"])
    book.save(path)


def cycle_split_xlsx(path):
    """One block of columns per cycle, side by side, under a row of 'Cycle-n' labels."""
    block = ["Record", "Step", "StepStatus", "TestTime", "StepTime", "Voltage/V", "Current/mA"]
    cycles = sorted(TRUTH["cycle"].unique())
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Cycle split"
    labels, header = [], []
    for cycle in cycles:
        labels += [f"Cycle-{cycle}"] + [None] * (len(block) - 1) + [None]
        header += block + [None]                     # an empty spacer column between blocks
    sheet.append(labels)
    sheet.append(header)
    per_cycle = [TRUTH[TRUTH["cycle"] == c] for c in cycles]
    for k in range(max(len(t) for t in per_cycle)):
        row = []
        for part in per_cycle:
            if k < len(part):
                r = part.iloc[k]
                row += [int(r.record), int(r.step), STATUS[r.step_type], hms(r.test_time_s, True, True),
                        hms(r.step_time_s, True, True), float(r.voltage_v), abs(float(r.current_a)) * 1e3, None]
            else:
                row += [None] * (len(block) + 1)
        sheet.append(row)
    book.save(path)


def navani_xlsx(path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sheet1"
    sheet.append(["LANDdt export", None])
    sheet.append(["Active mass", "10.2 mg"])
    sheet.append([])
    sheet.append(["Index", "Current/mA", "Voltage/V", "Capacity/mAh", "TestTime/h"])
    for r in TRUTH.itertuples():
        sheet.append([r.record, r.current_a * 1e3, r.voltage_v, r.capacity_ah * 1e3, r.test_time_s / 3600])
    book.save(path)


def old_land_txt(path):
    lines = ["Data_Point\tTest_Time\tStep_Time\tVoltage\tCurrent\tCapacity\tEnergy\tDate_Time"]
    for r in TRUTH.itertuples():
        lines.append(f"{r.record}\t{hms(r.test_time_s)}\t{hms(r.step_time_s)}\t{r.voltage_v:.6f}\t"
                     f"{r.current_a * 1e3:.6f}\t{r.capacity_ah * 1e3:.9f}\t{r.energy_wh * 1e3:.9f}\t"
                     "2025-01-01 10:00:00")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def lanhe_micro_txt(path):
    lines = ["Channel\t1", "Unit scheme\tµA",
             "Record\tCycle\tStep\tStepStatus\tTestTime\tStepTime\tVoltage/V\tCurrent/µA\tCapacity/µAh\tEnergy/µWh"]
    for r in TRUTH.itertuples():
        lines.append(f"{r.record}\t{r.cycle}\t{r.step}\t{STATUS[r.step_type]}\t"
                     f"{hms(r.test_time_s, True, True)}\t{hms(r.step_time_s, True, True)}\t{r.voltage_v:.6f}\t"
                     f"{r.current_a * 1e6:.4f}\t{r.capacity_ah * 1e6:.6f}\t{r.energy_wh * 1e6:.6f}")
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")


def amp_csv(path):
    lines = ["Cycle,Step,Test Time(min),Step Time(min),Voltage(V),Current(A),Capacity(Ah),Energy(Wh)"]
    for r in TRUTH.itertuples():
        lines.append(f"{r.cycle},{r.step},{r.test_time_s / 60!r},{r.step_time_s / 60!r},{r.voltage_v!r},"
                     f"{r.current_a!r},{r.capacity_ah!r},{r.energy_wh!r}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


LAYOUTS = {"lanhe.xlsx": lanhe_xlsx, "landdt.xlsx": landdt_xlsx, "navani.xlsx": navani_xlsx,
           "old_land.txt": old_land_txt, "lanhe_micro.txt": lanhe_micro_txt, "amps.csv": amp_csv,
           "landdt_continued.xlsx": landdt_continued_xlsx, "cycle_split.xlsx": cycle_split_xlsx}
WITH_STATUS = {"landdt.xlsx", "lanhe_micro.txt", "landdt_continued.xlsx", "cycle_split.xlsx"}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_every_layout_reads_to_the_same_canonical_frame(tmp_path, name):
    path = tmp_path / name
    LAYOUTS[name](path)
    frame = read_export(path)
    assert tuple(frame.columns) == CANONICAL_COLUMNS
    assert len(frame) == len(TRUTH)
    for column in ("record", "cycle", "step"):
        assert frame[column].tolist() == TRUTH[column].tolist(), column
    np.testing.assert_allclose(frame["test_time_s"], TRUTH["test_time_s"], atol=1e-6)
    np.testing.assert_allclose(frame["step_time_s"], TRUTH["step_time_s"], atol=1e-6)
    np.testing.assert_allclose(frame["voltage_v"], TRUTH["voltage_v"], atol=1e-6)
    np.testing.assert_allclose(frame["current_a"], TRUTH["current_a"], atol=1e-9)
    np.testing.assert_allclose(frame["capacity_ah"], TRUTH["capacity_ah"], atol=1e-11)
    np.testing.assert_allclose(frame["energy_wh"], TRUTH["energy_wh"], atol=1e-11)
    if name in WITH_STATUS:
        assert frame["step_type"].tolist() == TRUTH["step_type"].tolist()
    else:
        expected = TRUTH["step_type"].str.replace("cc_", "", regex=False)
        assert frame["step_type"].tolist() == expected.tolist()


def test_xls_is_read_through_xlrd(tmp_path, monkeypatch):
    header, rows = landdt_rows()

    class Sheet:
        def __init__(self, name, table):
            self.name, self.table, self.nrows = name, table, len(table)

        def row_values(self, i):
            return list(self.table[i])

    book = types.SimpleNamespace(sheets=lambda: [Sheet("Record", [header] + rows),
                                                 Sheet("Step", [["Step", "Mode"]])])
    monkeypatch.setitem(sys.modules, "xlrd", types.SimpleNamespace(open_workbook=lambda path: book))
    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    frame = read_export(path)
    assert frame["step_type"].tolist() == TRUTH["step_type"].tolist()
    np.testing.assert_allclose(frame["current_a"], TRUTH["current_a"], atol=1e-12)


def test_unsigned_current_takes_its_sign_from_the_step_state(tmp_path):
    lines = ["TestTime/s\tVoltage/V\tCurrent/mA\tStepStatus",
             "0\t3.0\t0.5\tCCCV_Chg", "10\t3.1\t0.5\tCV_Chg", "20\t3.0\t0.5\tCC_DChg", "30\t3.0\t0.5\t放电"]
    path = tmp_path / "x.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    frame = read_export(path)
    assert frame["current_a"].tolist() == [5e-4, 5e-4, -5e-4, -5e-4]
    assert frame["step_type"].tolist() == ["cccv_charge", "cv_charge", "cc_discharge", "discharge"]


def test_errors_name_the_file_the_sheet_and_the_column(tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "Info"
    data = book.create_sheet("DefaultGroup")
    data.append(["Record", "TestTime", "Voltage/V", "Current/kA"])
    data.append([1, "0 00:00:01", 3.0, 1.0])
    path = tmp_path / "bad.xlsx"
    book.save(path)
    with pytest.raises(ExportFormatError, match=r"bad.xlsx, sheet 'DefaultGroup', column 'Current/kA'.*unit"):
        read_export(path)

    path = tmp_path / "missing.txt"
    path.write_text("Record\tTestTime\tVoltage/V\tCurrent/mA\tStep\n1\t0\t3.0\t1.0\t1\n", encoding="utf-8")
    from instruments.landt.exports import canonical_records
    with pytest.raises(ExportFormatError, match="no column for capacity"):
        canonical_records([["1"], ["0"], ["3.0"], ["1.0"], ["1"]],
                          ["Record", "TestTime", "Voltage/V", "Current/mA", "Step"], str(path),
                          require=("capacity",))

    path = tmp_path / "text.txt"
    path.write_text("TestTime/s\tVoltage/V\tCurrent/mA\n0\t3.0\t1.0\n10\tabc\t1.0\n", encoding="utf-8")
    with pytest.raises(ExportFormatError, match=r"text.txt, column 'Voltage/V'.*'abc' \(data row 2\)"):
        read_export(path)

    path = tmp_path / "nodata.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Step"
    book.active.append(["Step", "Mode"])
    book.save(path)
    with pytest.raises(ExportFormatError, match=r"nodata.xlsx: no sheet has a data header.*'Step'"):
        read_export(path)


def test_rows_with_blank_cycle_or_step_are_dropped_not_filled(tmp_path):
    path = tmp_path / "summary_rows.txt"
    lines = ["Record\tCycle\tStep\tTestTime\tVoltage/V\tCurrent/mA\tCapacity/mAh"]
    lines += ["1\t1\t1\t0\t2.90\t0.0\t0.0", "2\t1\t1\t10\t2.90\t0.0\t0.0",
              "\t\t\t\t\t\t",                        # an empty line of cells
              "\t1\t\t20\t3.00\t0.42\t0.5",           # a step summary: no step number
              "3\t1\t2\t20\t2.95\t0.42\t0.0", "4\t1\t2\t30\t3.00\t0.42\t0.00117"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    frame = read_export(path)
    assert frame["record"].tolist() == [1, 2, 3, 4]
    assert frame["step"].tolist() == [1, 1, 2, 2]
    assert frame.attrs["dropped_rows"] == 1


def test_a_sheet_named_otherwise_is_not_taken_as_a_continuation(tmp_path):
    header, rows = landdt_rows()
    book = openpyxl.Workbook()
    first = book.active
    first.title = "Record"
    first.append(header)
    for row in rows:
        first.append(row)
    book.create_sheet("Notes").append([1, 2, 3])
    book.save(tmp_path / "notes.xlsx")
    assert len(read_export(tmp_path / "notes.xlsx")) == len(TRUTH)


def test_cycle_blocks_with_different_headers_are_refused(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Cycle-1", None, None, "Cycle-2", None, None])
    sheet.append(["TestTime", "Voltage/V", "Current/mA", "TestTime", "Voltage/V", "Current/uA"])
    sheet.append([0, 3.0, 1.0, 100, 3.1, 1000.0])
    book.save(tmp_path / "mixed.xlsx")
    with pytest.raises(ExportFormatError, match=r"mixed.xlsx, sheet 'Sheet'.*cycle block 2"):
        read_export(tmp_path / "mixed.xlsx")
