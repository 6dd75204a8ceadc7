"""Read measurement records (time_s, voltage_v, current_a) from CSV files.

A records file is a comma-separated table with one header line. The columns ``time_s`` (s),
``voltage_v`` (V) and ``current_a`` (A) are required and must hold finite numbers on every row;
any further columns are kept (as numbers when every value parses as one, as text otherwise).
``current_a`` of a row is the mean current since the previous row, as cyclers log it (EC-Lab's
``<I>``): the charge of the interval that ends at row k is ``current_a[k] · (time_s[k] − time_s[k−1])``
(see analysis/cycling.py), positive on charge. A file logged with instantaneous currents gives
capacities good to the change of current within one logging interval.
Blank lines are skipped. Every problem is reported as a :class:`RecordsFormatError` that names
the file, the line number (1 = the first line of the file) and the column.

Files are read by pandas' C parser; a file it cannot read cleanly (a bad value, an empty cell, a
ragged row) is read again row by row with the csv module, which finds the line to report.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("time_s", "voltage_v", "current_a")


class RecordsFormatError(ValueError):
    """A records file is missing a column, has a malformed row or a value that is not a number."""


def read_records_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Return the records of ``path`` as a DataFrame, required columns first, as float64.

    Raises RecordsFormatError for an empty file, a missing or duplicated column, a row with the
    wrong number of fields, or a required value that is empty, not a number, or not finite.
    """
    path = Path(path)
    try:
        header, _ = _read_header(path)
        frame = _read_clean(path, header)
        return frame if frame is not None else _read_checked(path)
    except UnicodeDecodeError as error:
        raise RecordsFormatError(f"{path}: not UTF-8 text ({error})") from error


def _read_header(path: Path) -> tuple[list[str], int]:
    # utf-8-sig: spreadsheet exports often start with a byte-order mark that would otherwise
    # become part of the first column's name.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        for fields in reader:
            if "".join(fields).strip():
                header = [field.strip() for field in fields]
                _check_header(path, header, reader.line_num)
                return header, reader.line_num
    raise RecordsFormatError(f"{path}: file is empty, expected a header line with "
                             f"columns {', '.join(REQUIRED_COLUMNS)}")


def _read_clean(path: Path, header: list[str]) -> pd.DataFrame | None:
    """The records, or None when the file has anything that needs a diagnosis."""
    types = {name: ("float64" if name in REQUIRED_COLUMNS else str) for name in header}
    try:
        raw = pd.read_csv(path, header=0, names=header, dtype=types, encoding="utf-8-sig",
                          keep_default_na=False, skip_blank_lines=True)
    except (ValueError, pd.errors.ParserError):
        return None
    required = raw[list(REQUIRED_COLUMNS)].to_numpy()
    if raw.empty or not np.isfinite(required).all():
        return None
    data: dict[str, pd.Series] = {name: raw[name] for name in REQUIRED_COLUMNS}
    for name in header:
        if name not in data:
            texts = raw[name].to_numpy(object)
            # An empty cell may be a short row, which pandas pads silently: the row reader decides.
            if (texts == "").any():
                return None
            data[name] = _optional_values(texts)
    return pd.DataFrame(data)


def _read_checked(path: Path) -> pd.DataFrame:
    header, rows, line_numbers = _read_rows(path)
    columns = dict(zip(header, zip(*rows))) if rows else {name: () for name in header}
    data: dict[str, pd.Series] = {}
    for name in REQUIRED_COLUMNS:
        data[name] = pd.Series(
            _required_numbers(path, name, columns[name], line_numbers), dtype="float64"
        )
    for name in header:
        if name not in data:
            data[name] = _optional_values(columns[name])
    return pd.DataFrame(data)


def _read_rows(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    header, header_line = _read_header(path)
    width = len(header)
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        for fields in reader:
            if reader.line_num <= header_line:
                continue
            if len(fields) != width:
                if not "".join(fields).strip():
                    continue
                raise RecordsFormatError(
                    f"{path}: line {reader.line_num} has {len(fields)} fields, "
                    f"the header (line {header_line}) has {width}"
                )
            rows.append(fields)
            line_numbers.append(reader.line_num)
    return header, rows, line_numbers


def _check_header(path: Path, header: list[str], line: int) -> None:
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name:
            raise RecordsFormatError(f"{path}: line {line}, column {position} has no name")
        if name in seen:
            raise RecordsFormatError(f"{path}: line {line}, column '{name}' appears twice")
        seen.add(name)
    missing = [name for name in REQUIRED_COLUMNS if name not in seen]
    if missing:
        raise RecordsFormatError(
            f"{path}: line {line}: missing column(s) {', '.join(repr(m) for m in missing)}; "
            f"found {', '.join(repr(h) for h in header)}"
        )


def _required_numbers(
    path: Path, name: str, texts: tuple[str, ...], line_numbers: list[int]
) -> np.ndarray:
    values = pd.to_numeric(pd.Series(texts, dtype="object"), errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        row = int(bad[0])
        text = texts[row].strip()
        problem = "is empty" if text == "" else f"'{text}' is not a finite number"
        raise RecordsFormatError(
            f"{path}: line {line_numbers[row]}, column '{name}': {problem}"
            + (f" ({bad.size} bad values in this column)" if bad.size > 1 else "")
        )
    return values


def _optional_values(texts: Sequence[str] | np.ndarray) -> pd.Series:
    series = pd.Series(texts, dtype="object").str.strip()
    numbers = pd.to_numeric(series, errors="coerce")
    if len(series) and numbers.notna().all():
        return numbers.astype("float64")
    return series
