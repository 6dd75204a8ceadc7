"""Landt workbooks in the layouts ``exports.read_export`` reads, written from canonical records.

The simulated Landt re-exports its test through these, so each layout the reader supports is
also written by the simulator and read back on the tested path.
"""
from __future__ import annotations

import pandas as pd

WORKBOOK_LAYOUTS = ("multisheet", "cycle_split")
_STATUS_LABEL = {"rest": "Rest", "cc_charge": "CC_Chg", "cv_charge": "CV_Chg", "cccv_charge": "CCCV_Chg",
                 "charge": "Chg", "cc_discharge": "CC_DChg", "cv_discharge": "CV_DChg",
                 "cccv_discharge": "CCCV_DChg", "discharge": "DChg"}


def write_workbook(records: pd.DataFrame, path, layout: str, *, rows_per_sheet: int = 65000) -> None:
    """Write canonical ``records`` as an xlsx in one of ``WORKBOOK_LAYOUTS``:

    * ``multisheet``: LANDdt's ``Record`` sheets of at most ``rows_per_sheet`` rows, only the
      first with the header row (``Record1``, ``Record2`` ... continue it), unsigned current with
      the step state, then a ``Step`` summary sheet;
    * ``cycle_split``: one sheet, a row of ``Cycle-n`` labels above one block of columns per
      cycle, side by side with an empty column between blocks.
    """
    import openpyxl  # only when a workbook is written: every simulated run imports this module

    if layout not in WORKBOOK_LAYOUTS:
        raise ValueError(f"workbook layout must be one of {WORKBOOK_LAYOUTS}, not {layout!r}")
    if rows_per_sheet < 1:
        raise ValueError(f"rows_per_sheet must be >= 1, not {rows_per_sheet}")
    book = openpyxl.Workbook()
    status = [_STATUS_LABEL.get(t, t) for t in records["step_type"]]
    if layout == "multisheet":
        header = ["Test Time/s", "Step Time/s", "Current/mA", "Voltage/V", "Capacity/mAh", "Energy/mWh",
                  "Cycle", "StepNo", "StepStatus"]
        rows = [[float(r.test_time_s), float(r.step_time_s), abs(float(r.current_a)) * 1e3, float(r.voltage_v),
                 float(r.capacity_ah) * 1e3, float(r.energy_wh) * 1e3, int(r.cycle), int(r.step), label]
                for r, label in zip(records.itertuples(), status)]
        for k, start in enumerate(range(0, max(len(rows), 1), rows_per_sheet)):
            sheet = book.active if k == 0 else book.create_sheet(f"Record{k}")
            if k == 0:
                sheet.title = "Record"
                sheet.append(header)
            for row in rows[start:start + rows_per_sheet]:
                sheet.append(row)
        book.create_sheet("Step").append(["Step", "Mode", "Period", "Capacity", "Power", "Start Volt", "End Volt"])
    else:
        block = ["Record", "Step", "StepStatus", "TestTime/s", "StepTime/s", "Voltage/V", "Current/mA",
                 "Capacity/mAh", "Energy/mWh"]
        sheet = book.active
        sheet.title = "Cycle"
        cycles = sorted(set(int(c) for c in records["cycle"]))
        parts = []
        for cycle in cycles:
            mask = (records["cycle"] == cycle).to_numpy()
            part = records[mask]
            labels = [s for s, m in zip(status, mask) if m]
            parts.append([[int(r.record), int(r.step), label, float(r.test_time_s), float(r.step_time_s),
                           float(r.voltage_v), float(r.current_a) * 1e3, float(r.capacity_ah) * 1e3,
                           float(r.energy_wh) * 1e3] for r, label in zip(part.itertuples(), labels)])
        sheet.append([cell for cycle in cycles for cell in [f"Cycle-{cycle}"] + [None] * len(block)])
        sheet.append([cell for _ in cycles for cell in block + [None]])
        for k in range(max((len(p) for p in parts), default=0)):
            sheet.append([cell for part in parts
                          for cell in (part[k] if k < len(part) else [None] * len(block)) + [None]])
    book.save(path)
