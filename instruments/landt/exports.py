"""Read the data files the Landt software (LANDdt, LANHE) exports into canonical records.

Columns are found by their header text, never by position, because the layout and the units
change with the software version and the unit scheme chosen at export time:

* LANHE xlsx: sheets ``Test information``, ``Ch1_Proc``, ``Log`` and a data sheet whose name
  contains ``DefaultGroup`` with ``Cycle, Step, Record, SysTime, TestTime, Voltage/V,
  Current/uA, Capacity/uAh, ...``; durations written ``D HH:MM:SS.mmm``.
* LANDdt xls/xlsx: one or more ``Record...`` sheets (``Test Time, Step Time, Current, Voltage,
  AuxVolt, SysTime, StepNo, StepStatus``; unsigned current with a state column), where only the
  first sheet may carry the header row (navani reads the others with it), plus ``Step`` and
  ``Cycle`` summary sheets that are skipped; a cycle-split sheet (two header rows: ``Cycle-n``
  labels above a block of columns per cycle, side by side); or a single sheet with ``Index,
  Current/mA, Voltage/V, Capacity/mAh, TestTime/h`` whose header sits below metadata rows.
* Text exports (tab- or comma-separated) with the software's own headers, e.g. the LANHE default
  text export ``TestTime, Voltage/V, Current/mA`` (navani issue #46) or a full one with the LANHE
  headers above in µA/µAh/µWh. Other readers rename columns on reading (Echem.Data's
  ``Data_Point, Test_Time, ...``); such names are recognised too, but they are not what the
  Landt software writes.

A header is ``name``, ``name/unit``, ``name(unit)`` or ``name [unit]``; names compare without
case, spaces or underscores. Units: A, mA, uA/µA/μA, nA; Ah, mAh, uAh; Wh, mWh, uWh; V, mV;
s, min, h. A header without a unit takes ``default_units`` (LANDdt's "mA unit scheme": mA, mAh,
mWh, seconds). A duration may be a number in the header's time unit or text ``D HH:MM:SS.mmm`` /
``D-HH:MM:SS`` / ``HH:MM:SS``.

Derived values when a column is missing (a whole file, or a followed file chunk by chunk with
``StreamState``): the sign of the current from the step state (discharge negative); step numbers
at every change of step state; cycles by the rule of config.cycling (a charge after a discharge
starts one); step time from the step's first record; capacity and energy by trapezoidal
integration of |I| and |V·I| within each step. Landt counters reset at each step, so capacity and
energy read from a file are taken as per-step magnitudes. Rows with a blank Cycle or Step cell
are not records and are dropped (``canonical_records``).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import math
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from instruments.cycler import records_frame

DEFAULT_UNITS = {"current": "mA", "capacity": "mAh", "energy": "mWh", "time": "s", "voltage": "V"}

_ROLE_BY_NAME = {}
for _role, _names in {
    "record": ("record", "index", "datapoint", "recordno", "recordindex", "point"),
    "cycle": ("cycle", "cycleno", "cycleindex", "cyclenumber"),
    "step": ("step", "stepno", "stepindex", "stepnumber"),
    "status": ("stepstatus", "status", "state", "mode", "workmode", "steptype", "stepname"),
    "test_time": ("testtime", "time", "totaltime"),
    "step_time": ("steptime",),
    "voltage": ("voltage", "volt"),
    "current": ("current",),
    "capacity": ("capacity", "cap"),
    "energy": ("energy",),
}.items():
    for _name in _names:
        _ROLE_BY_NAME[_name] = _role

_FACTORS = {
    "current": {"a": 1.0, "ma": 1e-3, "ua": 1e-6, "na": 1e-9},
    "capacity": {"ah": 1.0, "mah": 1e-3, "uah": 1e-6},
    "energy": {"wh": 1.0, "mwh": 1e-3, "uwh": 1e-6},
    "voltage": {"v": 1.0, "mv": 1e-3},
    "time": {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0, "hr": 3600.0},
}
_QUANTITY = {"current": "current", "capacity": "capacity", "energy": "energy", "voltage": "voltage",
             "test_time": "time", "step_time": "time"}
_HEADER = re.compile(r"^\s*([^/(\[]+?)\s*(?:[/(\[]\s*(.+?)\s*[)\]]?)?\s*$")
_DURATION = re.compile(r"^\s*(?:(\d+)\s*(?:d|days?)?[\s\-]+)?(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)\s*$",
                       re.IGNORECASE)
_REQUIRED = ("test_time", "voltage", "current")
HEADER_SCAN_ROWS = 60


class ExportFormatError(ValueError):
    """An export file cannot be read: the message names the file, the sheet and the column."""


def split_header(text) -> tuple[str, str | None]:
    """('current', 'ua') from 'Current/µA'; names lower-case without spaces or underscores."""
    match = _HEADER.match(str(text))
    if not match:
        return "", None
    name = re.sub(r"[\s_\-.]", "", match.group(1)).lower()
    unit = match.group(2)
    if unit is not None:
        unit = unit.replace("µ", "u").replace("μ", "u").replace(" ", "").lower()
    return name, unit


def header_roles(headers: Sequence) -> dict[str, tuple[int, str, str | None]]:
    """Role -> (column position, header text, unit) for the headers that name a known quantity;
    the first column of a role wins."""
    return _header_roles(tuple(None if h is None else str(h) for h in headers))


@functools.lru_cache(maxsize=64)
def _header_roles(headers: tuple) -> dict[str, tuple[int, str, str | None]]:
    roles: dict[str, tuple[int, str, str | None]] = {}
    for position, header in enumerate(headers):
        if header is None:
            continue
        name, unit = split_header(header)
        role = _ROLE_BY_NAME.get(name)
        if role is not None and role not in roles:
            roles[role] = (position, str(header).strip(), unit)
    return roles


def is_header_row(row: Sequence) -> bool:
    """A row is the data header when it names a test time, a voltage and a current column."""
    roles = header_roles(row)
    return all(r in roles for r in _REQUIRED)


def find_header(rows: Sequence[Sequence], max_rows: int = HEADER_SCAN_ROWS) -> int | None:
    for i, row in enumerate(rows[:max_rows]):
        if is_header_row(row):
            return i
    return None


# --- value conversion --------------------------------------------------------------------------
def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and np.isnan(value))


def _floats(values, where: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        pass
    parsed = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(float)
    bad = np.flatnonzero(np.isnan(parsed) & np.array([not _blank(v) for v in values]))
    if bad.size:
        raise ExportFormatError(f"{where}: {values[bad[0]]!r} (data row {bad[0] + 1}) is not a number")
    return parsed


def _duration_s(value) -> float:
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, _dt.time):
        return value.hour * 3600.0 + value.minute * 60.0 + value.second + value.microsecond * 1e-6
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(value)
    days, hours, minutes, seconds = match.groups()
    return (int(days or 0) * 86400.0 + int(hours) * 3600.0 + int(minutes) * 60.0 + float(seconds))


_DURATION_FIELDS = str.maketrans({":": " ", "-": " "})
_DURATION_SCALE = {3: np.array([3600.0, 60.0, 1.0]), 4: np.array([86400.0, 3600.0, 60.0, 1.0])}


def _text_durations_s(values) -> np.ndarray | None:
    """Seconds of a column of ``D HH:MM:SS.mmm`` (or ``HH:MM:SS``) texts in one numpy pass, or
    None when the texts are not all of one such form (the caller then parses them one by one)."""
    n = len(values)
    if not n or not all(isinstance(v, str) for v in values[:1]):
        return None
    try:
        text = "\n".join(values)
    except TypeError:
        return None
    colons = text.count(":")
    if colons != 2 * n:
        return None
    fields = text.translate(_DURATION_FIELDS).split()
    # k lines of 4 fields and n - k of 3 give 3n + k fields: a multiple of n only if all lines
    # have the same form.
    width = len(fields) // n
    if width not in _DURATION_SCALE or len(fields) != width * n or text.count("\n") != n - 1:
        return None
    try:
        parts = np.array(fields, dtype=float).reshape(n, width)
    except ValueError:
        return None
    return parts @ _DURATION_SCALE[width]


def _seconds(values, unit: str | None, where: str, default_unit: str) -> np.ndarray:
    factor = _unit_factor("time", unit or default_unit, where)
    if len(values) and isinstance(values[0], str) and ":" in values[0]:
        fast = _text_durations_s(values)  # durations text: skip numpy's failing float parse
        if fast is not None:
            return fast
    try:
        return np.asarray(values, dtype=float) * factor
    except (TypeError, ValueError):
        pass
    out = np.empty(len(values))
    for i, value in enumerate(values):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[i] = float(value) * factor
            continue
        try:
            out[i] = float(value) * factor
        except (TypeError, ValueError):
            try:
                out[i] = _duration_s(value)
            except ValueError:
                raise ExportFormatError(f"{where}: {value!r} (data row {i + 1}) is neither a number "
                                        "nor a duration like 'D HH:MM:SS.mmm'") from None
    return out


def _unit_factor(quantity: str, unit: str, where: str) -> float:
    unit_key = unit.replace("µ", "u").replace("μ", "u").lower()
    try:
        return _FACTORS[quantity][unit_key]
    except KeyError:
        raise ExportFormatError(f"{where}: unknown {quantity} unit {unit!r}; known: "
                                f"{', '.join(_FACTORS[quantity])}") from None


def _direction_of(status: str) -> tuple[str | None, int | None]:
    """(mode 'cc'|'cv'|'cccv'|None, direction +1|-1|0|None) of a step-state label."""
    squashed = re.sub(r"[\s_\-/]", "", str(status).lower())
    if not squashed or squashed == "nan":
        return None, None
    if "rest" in squashed or "ocv" in squashed or "pause" in squashed or "静置" in squashed:
        return None, 0
    mode = "cccv" if "cccv" in squashed else "cv" if squashed.startswith("cv") else \
        "cc" if squashed.startswith("cc") else None
    if "dchg" in squashed or "dischg" in squashed or "discharge" in squashed or "放电" in squashed:
        return mode, -1
    if "chg" in squashed or "charge" in squashed or "充电" in squashed:
        return mode, 1
    return mode, None


def _step_type(mode: str | None, sign: int) -> str:
    if sign == 0:
        return "rest"
    direction = "charge" if sign > 0 else "discharge"
    return f"{mode}_{direction}" if mode else direction


# --- canonical records -------------------------------------------------------------------------
@dataclasses.dataclass
class StreamState:
    """What the derivations carry from one chunk of a followed export to the next, so a file read
    in pieces gives the records a whole-file read gives (see ``canonical_records``)."""

    step_type: str | None = None     # of the last record
    step: int = 0                    # last step number (derived or read)
    step_start_s: float = 0.0        # test time at which the last record's step began
    time_s: float = math.nan         # last record's test time
    rate_a: float = 0.0              # last record's |I|
    power_w: float = 0.0             # last record's |V·I|
    capacity_ah: float = 0.0         # last record's step capacity
    energy_wh: float = 0.0           # last record's step energy
    cycle: int | None = None         # last record's cycle (None: no charge/discharge seen yet)
    active_sign: int = 0             # sign of the last charge/discharge record


def canonical_columns(columns: Sequence[Sequence], headers: Sequence, where: str, *,
                      default_units: dict | None = None, require: Iterable[str] = (),
                      record_start: int = 0, state: StreamState | None = None) -> tuple[dict, int]:
    """Canonical records from raw columns (``columns[k]`` under ``headers[k]``), as numpy columns
    by canonical name, and the number of rows dropped.

    ``require`` names roles that must be present (no derivation). ``record_start`` numbers rows
    without a record column from ``record_start + 1``. ``state`` carries the derivations across
    the chunks of a followed file (updated in place); without it the columns are a whole file.
    Rows whose Cycle or Step cell is blank are not records and are dropped, as other readers do
    (echemistpy's LANHE reader keeps only rows that start with integer Cycle, Step and Record);
    their number is returned.
    """
    units = {**DEFAULT_UNITS, **(default_units or {})}
    roles = dict(header_roles(headers))
    missing = [r for r in (*_REQUIRED, *require) if r not in roles]
    if missing:
        raise ExportFormatError(
            f"{where}: no column for {', '.join(missing)} (headers: {', '.join(map(str, headers))})")
    state = StreamState() if state is None else state
    columns, dropped = _without_blank_counters(columns, roles)

    def column(role):
        return columns[roles[role][0]]

    def label(role):
        return f"{where}, column {roles[role][1]!r}"

    def quantity(role):
        unit = roles[role][2] or units[_QUANTITY[role]]
        if _QUANTITY[role] == "time":
            return _seconds(column(role), roles[role][2], label(role), units["time"])
        return _floats(column(role), label(role)) * _unit_factor(_QUANTITY[role], unit, label(role))

    n = len(column("voltage"))
    voltage = quantity("voltage")
    current = quantity("current")
    test_time = quantity("test_time")
    sign = np.sign(np.round(current, 15)).astype(np.int64)
    mode = np.full(n, None, dtype=object)
    if "status" in roles:
        labels = np.asarray([str(v) for v in column("status")], dtype=object)
        uniques, inverse = np.unique(labels, return_inverse=True)
        parsed = [_direction_of(u) for u in uniques]
        mode = np.asarray([p[0] for p in parsed], dtype=object)[inverse]
        stated = np.asarray([np.nan if p[1] is None else p[1] for p in parsed])[inverse]
        known = ~np.isnan(stated)
        sign[known] = stated[known].astype(np.int64)
        current = np.where(sign < 0, -np.abs(current), np.where(sign > 0, np.abs(current), current))
    step_type = np.asarray([_step_type(m, s) for m, s in zip(mode, sign)], dtype=object) if n else \
        np.asarray([], dtype=object)

    if "step" in roles:
        step = _ints(column("step"), label("step"))
    else:
        changed = np.ones(n, dtype=bool)
        changed[1:] = step_type[1:] != step_type[:-1]
        if n and state.step_type is not None:
            changed[0] = step_type[0] != state.step_type
        step = state.step + np.cumsum(changed)
    step_start = np.ones(n, dtype=bool)
    step_start[1:] = step[1:] != step[:-1]
    if n and state.step_type is not None:
        step_start[0] = step[0] != state.step
    cycle = _ints(column("cycle"), label("cycle")) if "cycle" in roles else _derive_cycles(sign, state)
    first = np.maximum.accumulate(np.where(step_start, np.arange(n), 0)) if n else np.zeros(0, int)
    start_s = np.where(step_start, test_time, np.nan)[first] if n else np.zeros(0)
    if n and not step_start[0]:
        start_s[first == 0] = state.step_start_s
    step_time = quantity("step_time") if "step_time" in roles else test_time - start_s
    capacity = np.abs(quantity("capacity")) if "capacity" in roles else _integrate_per_step(
        np.abs(current) / 3600.0, test_time, step_start, state.rate_a / 3600.0, state.time_s,
        state.capacity_ah)
    energy = np.abs(quantity("energy")) if "energy" in roles else _integrate_per_step(
        np.abs(current * voltage) / 3600.0, test_time, step_start, state.power_w / 3600.0,
        state.time_s, state.energy_wh)
    record = _ints(column("record"), label("record")) if "record" in roles else \
        np.arange(record_start + 1, record_start + n + 1)
    if n:
        state.step_type, state.step, state.step_start_s = step_type[-1], int(step[-1]), float(start_s[-1])
        state.time_s, state.rate_a = float(test_time[-1]), float(abs(current[-1]))
        state.power_w = float(abs(current[-1] * voltage[-1]))
        state.capacity_ah, state.energy_wh = float(capacity[-1]), float(energy[-1])
        state.cycle = int(cycle[-1])
    return {"record": record, "cycle": cycle, "step": step, "step_type": step_type,
            "test_time_s": test_time, "step_time_s": step_time, "voltage_v": voltage,
            "current_a": current, "capacity_ah": capacity, "energy_wh": energy}, dropped


def canonical_records(columns: Sequence[Sequence], headers: Sequence, where: str, **options) -> pd.DataFrame:
    """``canonical_columns`` as a canonical DataFrame; ``frame.attrs["dropped_rows"]`` holds the
    number of rows dropped."""
    records, dropped = canonical_columns(columns, headers, where, **options)
    frame = records_frame(records)
    frame.attrs["dropped_rows"] = dropped
    return frame


def _without_blank_counters(columns: Sequence[Sequence], roles: dict) -> tuple[list, int]:
    """The columns without the rows whose Cycle or Step cell is blank, and how many those were."""
    counters = [roles[r][0] for r in ("cycle", "step") if r in roles]
    if not counters or not len(columns[counters[0]]):
        return list(columns), 0
    keep = np.ones(len(columns[counters[0]]), dtype=bool)
    for k in counters:
        try:  # a column that converts whole has no blank text cell; NaN marks an empty one
            keep &= ~np.isnan(np.asarray(columns[k], dtype=float))
        except (TypeError, ValueError):
            keep &= np.array([not _blank(v) for v in columns[k]], dtype=bool)
    if keep.all():
        return list(columns), 0
    return [[v for v, kept in zip(c, keep) if kept] for c in columns], int((~keep).sum())


def _ints(values, where: str) -> np.ndarray:
    return _floats(values, where).astype(np.int64)


def _derive_cycles(sign: np.ndarray, state: StreamState) -> np.ndarray:
    """Cycle numbers by config.cycling's rule: a charge after a discharge starts a cycle; a file
    that begins with a discharge counts it as cycle 0."""
    n = sign.size
    if not n:
        return np.zeros(0, np.int64)
    active = np.flatnonzero(sign != 0)
    if state.cycle is None:
        first = 1 if (active.size == 0 or sign[active[0]] > 0) else 0
    else:
        first = state.cycle
    previous = np.zeros(n, np.int64)
    if active.size:
        previous[active[0]] = state.active_sign
        previous[active[1:]] = sign[active[:-1]]
        state.active_sign = int(sign[active[-1]])
    starts = (sign > 0) & (previous < 0)
    return first + np.cumsum(starts)


def _integrate_per_step(rate: np.ndarray, time_s: np.ndarray, step_start: np.ndarray,
                        rate_before: float = 0.0, time_before_s: float = math.nan,
                        total_before: float = 0.0) -> np.ndarray:
    """Trapezoidal integral of ``rate`` over time, restarting at each step start; rows before the
    first step start continue the previous chunk's step from its last row (``*_before``)."""
    n = rate.size
    if not n:
        return np.zeros(0)
    pieces = np.zeros(n)
    pieces[1:] = 0.5 * (rate[1:] + rate[:-1]) * np.diff(time_s)
    if not step_start[0]:
        pieces[0] = 0.5 * (rate[0] + rate_before) * (time_s[0] - time_before_s)
    pieces[step_start] = 0.0
    total = np.cumsum(pieces)
    start = np.maximum.accumulate(np.where(step_start, np.arange(n), 0))
    value = total - total[start]
    if not step_start[0]:
        continued = start == 0
        value[continued] = total_before + total[continued]
    return value


# --- files -------------------------------------------------------------------------------------
def read_export(path, *, default_units: dict | None = None) -> pd.DataFrame:
    """Canonical records of a Landt export (.xlsx, .xls, .txt, .csv, .tsv).

    Every sheet with a data header (see module doc) is a data sheet; their rows are joined in
    workbook order, so LANDdt's ``Record``, ``Record1``, ... chunks form one table. A sheet
    without a header whose name continues the first data sheet's (``Record2`` after ``Record``)
    is a continuation written without the header row and is read with the first sheet's header,
    as navani does. A cycle-split sheet (a row of ``Cycle-n`` labels above a header repeated
    once per cycle, the cycles side by side) is read block by block, each block one cycle.
    """
    path = Path(path)
    if not path.exists():
        raise ExportFormatError(f"{path}: no such file")
    sheets = _read_sheets(path)
    data_sheets = []
    for name, rows in sheets:
        header_at = find_header(rows)
        if header_at is not None:
            headers = [str(h).strip() if h is not None else "" for h in rows[header_at]]
            headers, body = _unsplit_cycles(rows, header_at, headers, f"{path}, sheet {name!r}")
            data_sheets.append((name, headers, body))
        elif data_sheets and _continues(data_sheets[0][0], name):
            data_sheets.append((name, data_sheets[0][1], rows))
    if not data_sheets:
        raise ExportFormatError(
            f"{path}: no sheet has a data header with test time, voltage and current columns "
            f"(sheets: {', '.join(repr(n) for n, _ in sheets)})")
    first_name, headers, _ = data_sheets[0]
    all_rows = []
    for name, sheet_headers, rows in data_sheets:
        if sheet_headers != headers:
            raise ExportFormatError(f"{path}, sheet {name!r}: its header {sheet_headers} differs from "
                                    f"sheet {first_name!r} ({headers})")
        all_rows.extend(r for r in rows if not all(_blank(v) for v in r))
    width = len(headers)
    columns = [[row[k] if k < len(row) else None for row in all_rows] for k in range(width)]
    where = f"{path}, sheet {first_name!r}" if first_name else str(path)
    return canonical_records(columns, headers, where, default_units=default_units)


def _continues(first_sheet: str, name: str) -> bool:
    """``Record2`` continues ``Record`` or ``Record1``: the same name apart from trailing digits."""
    stem = first_sheet.rstrip("0123456789").strip().lower()
    return bool(stem) and name.rstrip("0123456789").strip().lower() == stem and name != first_sheet


_CYCLE_LABEL = re.compile(r"^\s*cycle\s*[-_ #]?\s*(\d+)\s*$", re.IGNORECASE)


def _unsplit_cycles(rows: list, header_at: int, headers: list[str], where: str):
    """(headers, rows) of a sheet; a cycle-split sheet becomes one table with a Cycle column."""
    positions = [k for k, h in enumerate(headers) if h and h == headers[_first_filled(headers)]]
    if len(positions) < 2:
        return headers, rows[header_at + 1:]
    labels = rows[header_at - 1] if header_at > 0 else []
    ends = positions[1:] + [len(headers)]
    block_headers = [h for h in headers[positions[0]:ends[0]]]
    while block_headers and not block_headers[-1]:
        block_headers.pop()
    width = len(block_headers)
    has_cycle = "cycle" in header_roles(block_headers)
    table = []
    for number, (start, end) in enumerate(zip(positions, ends), start=1):
        if headers[start:start + width] != block_headers:
            raise ExportFormatError(f"{where}: cycle block {number} (column {start + 1}) has the header "
                                    f"{headers[start:start + width]}, block 1 has {block_headers}")
        label = labels[start] if start < len(labels) else None
        match = _CYCLE_LABEL.match(str(label)) if label is not None else None
        cycle = int(match.group(1)) if match else number
        for row in rows[header_at + 1:]:
            cells = list(row[start:start + width]) + [None] * max(0, start + width - len(row))
            if all(_blank(v) for v in cells):
                continue  # this cycle has fewer records than the longest one
            table.append(cells if has_cycle else cells + [cycle])
    return (block_headers if has_cycle else block_headers + ["Cycle"]), table


def _first_filled(headers: list[str]) -> int:
    return next(k for k, h in enumerate(headers) if h)


def _read_sheets(path: Path) -> list[tuple[str, list[list]]]:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _read_xlsx(path)
    if suffix == ".xls":
        return _read_xls(path)
    if suffix in (".txt", ".csv", ".tsv", ".dat"):
        return [("", split_text_rows(decode_text(path.read_bytes()).splitlines()))]
    raise ExportFormatError(f"{path}: unknown export type {suffix!r} (xlsx, xls, txt, csv, tsv)")


def _read_xlsx(path: Path):
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise ExportFormatError(f"{path}: not a readable xlsx workbook ({exc})") from None
    try:
        return [(sheet.title, [list(r) for r in sheet.iter_rows(values_only=True)])
                for sheet in book.worksheets]
    finally:
        book.close()


def _read_xls(path: Path):
    try:
        import xlrd
    except ImportError:
        raise ExportFormatError(f"{path}: reading .xls exports needs the xlrd package "
                                "(pip install xlrd), or export as xlsx/txt") from None
    try:
        book = xlrd.open_workbook(str(path))
    except Exception as exc:  # xlrd raises its own XLRDError and struct errors
        raise ExportFormatError(f"{path}: not a readable xls workbook ({exc})") from None
    return [(sheet.name, [sheet.row_values(i) for i in range(sheet.nrows)]) for sheet in book.sheets()]


def decode_text(data: bytes) -> str:
    """Text of an export: UTF-8 (with or without BOM), else GB18030 (Chinese Windows)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def split_text_rows(lines: Sequence[str]) -> list[list[str]]:
    """Fields of text lines: tab-separated when the lines hold tabs, else comma-separated."""
    separator = "\t" if any("\t" in line for line in lines[:HEADER_SCAN_ROWS]) else ","
    return [line.split(separator) for line in lines]
