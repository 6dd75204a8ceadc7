"""Exporting a run to files that other tools read, in one of ``EXPORT_FORMATS``:

* ``csv`` (the default): one CSV per stream plus run.json. CSV headers carry units: names already
  do by convention (``frequency_hz``), and a column whose unit is not its name's suffix gets it
  appended as ``name [unit]`` so no unit is lost. run.json holds the run's metadata (protocol,
  sample, station, steps, streams with units and dtypes) and its analysis results, exactly as
  :func:`storage.readers.get_run` returns them.
* ``cycles-csv``, ``cycles-xlsx``: the per-cycle summary of the run's cycling analysis, one row per
  cycle, as the cycle sheet of a cycler's own export (LANDdt): capacities in mAh, mAh/g and
  mAh/cm², CE, energies in mWh, energy efficiency, average voltages and the CV share of the charge.
  The numbers are the stored analysis result's (the ones the report shows), not recomputed.
* ``bdf``: each cycling stream as a Battery Data Format v1.0 time series (``*.bdf.csv``, see
  ``BDF_COLUMNS``); ``read_bdf`` reads one back into canonical column names.
* ``parquet``: every stream as ``<stream>.parquet``, each column's unit in its Arrow field metadata
  (``unit``), the stream's metadata and the run id in the file's metadata, plus run.json.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from storage.readers import Database, get_run, read_stream

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
EXPORT_FORMATS = ("csv", "cycles-csv", "cycles-xlsx", "bdf", "parquet")


class ExportError(ValueError):
    """The run holds nothing that the chosen format can carry; the message says what is missing."""


class UnknownFormat(ValueError):
    """An export format that is not one of EXPORT_FORMATS."""


def export(db: Database, run_id: int, out_dir: str | Path, fmt: str = "csv") -> list[Path]:
    """Export run ``run_id`` into ``out_dir`` (created) in format ``fmt`` (one of EXPORT_FORMATS);
    returns the written paths. Raises RunNotFound for an unknown run, ExportError for a format the
    run has no data for, UnknownFormat for a format not in EXPORT_FORMATS."""
    writers = {"csv": export_run, "cycles-csv": export_cycles_csv, "cycles-xlsx": export_cycles_xlsx,
               "bdf": export_bdf, "parquet": export_parquet}
    if fmt not in writers:
        raise UnknownFormat(f"unknown export format {fmt!r}; formats are {', '.join(EXPORT_FORMATS)}")
    return writers[fmt](db, run_id, out_dir)


def export_run(db: Database, run_id: int, out_dir: str | Path) -> list[Path]:
    """Write ``<stream>.csv`` for each stream and ``run.json`` into ``out_dir`` (created).

    Returns the written paths, CSVs in stream order, then run.json. Raises RunNotFound for a
    run that is not in the database.
    """
    def write_csv(frame, stream, path_stem, run):
        frame = frame.rename(columns={c: header_with_unit(c, u) for c, u in frame.attrs["units"].items()})
        path = Path(f"{path_stem}.csv")  # a stem may hold dots: no with_suffix
        frame.to_csv(path, index=True)
        return path
    return _export_streams(db, run_id, out_dir, write_csv)


def _export_streams(db: Database, run_id: int, out_dir: str | Path, write_stream) -> list[Path]:
    """Every stream through ``write_stream(frame, stream, path_stem, run) -> path`` (stems unique
    within ``out_dir``), then run.json; returns the paths in that order."""
    run = get_run(db, run_id)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    used: set[str] = set()
    for stream in run["streams"]:
        frame = read_stream(db, run_id, stream["name"])
        written.append(write_stream(frame, stream, out / _unique_stem(stream["name"], used), run))
    path = out / "run.json"
    path.write_text(json.dumps(run, indent=2, default=str) + "\n", encoding="utf-8")
    written.append(path)
    return written


def header_with_unit(name: str, unit: str) -> str:
    """``name`` if it already ends with ``unit`` (``frequency_hz`` / "Hz", ``sigma_s_per_cm`` /
    "S/cm") or the unit is empty, else ``"name [unit]"``."""
    if not unit:
        return name
    suffix = _unit_as_suffix(unit)
    lowered = name.lower()
    if lowered == suffix or lowered.endswith("_" + suffix):
        return name
    return f"{name} [{unit}]"


def _unit_as_suffix(unit: str) -> str:
    text = unit.strip().lower().replace("°", "").replace("/", "_per_")
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def _unique_stem(stream: str, used: set[str]) -> str:
    # Stream names are free text; two names may map to the same safe file name.
    stem = _UNSAFE_FILENAME.sub("_", stream).strip("._") or "stream"
    candidate, n = stem, 2
    while candidate.lower() in used:
        candidate, n = f"{stem}_{n}", n + 1
    used.add(candidate.lower())
    return candidate


# --------------------------------------------------------------------------- per-cycle summary

# (header, unit) of the per-cycle summary, in column order; units in the names as everywhere in
# cellbench, the content of a cycler's cycle sheet.
CYCLE_COLUMNS = (
    "cycle", "charge_mah", "discharge_mah", "charge_mah_per_g", "discharge_mah_per_g",
    "charge_mah_per_cm2", "discharge_mah_per_cm2", "ce_pct", "charge_energy_mwh",
    "discharge_energy_mwh", "energy_efficiency_pct", "avg_charge_voltage_v",
    "avg_discharge_voltage_v", "cv_charge_share_pct",
)
# Analysis results whose "cycles" are charge/discharge cycles (a symmetric cell's are overpotentials).
_CYCLING_RESULTS = ("cycling", "cold_discharge")


def cycle_summary(run: dict) -> pd.DataFrame:
    """The per-cycle summary (``CYCLE_COLUMNS``) of the newest cycling analysis stored with ``run``
    (``get_run``'s dict). Energies are average voltage × capacity (the analysis' average voltage is
    ∫V dQ / Q, so this is ∫V dQ); energy efficiency = discharge energy / charge energy × 100. An
    unknown value is empty (NaN). Raises ExportError when the run has no cycling result."""
    found = [a for a in run["analysis"] if a["name"] in _CYCLING_RESULTS
             and isinstance(a["result"], dict) and a["result"].get("cycles")]
    if not found:
        names = sorted({a["name"] for a in run["analysis"]}) or ["none"]
        raise ExportError(f"run {run['run_id']} has no cycling analysis with cycles (its analyses: "
                          f"{', '.join(names)}): no per-cycle summary to export")
    rows = []
    for position, entry in enumerate(found[-1]["result"]["cycles"]):
        row = {}
        for name in ("cycle", "charge_mah", "discharge_mah", "charge_mah_per_g", "discharge_mah_per_g",
                     "charge_mah_per_cm2", "discharge_mah_per_cm2", "ce_pct", "avg_charge_voltage_v",
                     "avg_discharge_voltage_v", "cv_charge_share_pct"):
            if name not in entry:
                raise ExportError(f"analysis '{found[-1]['name']}' cycles[{position}] has no field '{name}'")
            row[name] = np.nan if entry[name] is None else entry[name]
        for half in ("charge", "discharge"):
            row[f"{half}_energy_mwh"] = row[f"avg_{half}_voltage_v"] * row[f"{half}_mah"]
        row["energy_efficiency_pct"] = (row["discharge_energy_mwh"] / row["charge_energy_mwh"] * 100.0
                                        if row["charge_energy_mwh"] else np.nan)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(CYCLE_COLUMNS))
    return frame.astype({"cycle": np.int64})


def export_cycles_csv(db: Database, run_id: int, out_dir: str | Path) -> list[Path]:
    """``cycles.csv``: the per-cycle summary (``cycle_summary``), full float precision."""
    frame = cycle_summary(get_run(db, run_id))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "cycles.csv"
    frame.to_csv(path, index=False)
    return [path]


def export_cycles_xlsx(db: Database, run_id: int, out_dir: str | Path) -> list[Path]:
    """``cycles.xlsx``: the per-cycle summary in a sheet ``Cycle`` and the run's identity (protocol,
    sample, status, times) in a sheet ``Run``."""
    run = get_run(db, run_id)
    frame = cycle_summary(run)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "cycles.xlsx"
    identity = pd.DataFrame(
        [("run id", run["run_id"]), ("uid", run["uid"]), ("protocol", run["protocol_name"]),
         ("sample", (run["sample"] or {}).get("id")), ("status", run["status"]),
         ("started", run["started_at"]), ("ended", run["ended_at"]),
         ("simulated", run["simulated"])], columns=["quantity", "value"])
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        frame.to_excel(writer, sheet_name="Cycle", index=False)
        identity.to_excel(writer, sheet_name="Run", index=False)
    return [path]


# --------------------------------------------------------------------------- Battery Data Format

# Battery Data Format v1.0 (battery-data-alliance/battery-data-format): preferred label of each
# column written, from cellbench's canonical cycling columns. Required: test time, voltage, current;
# recommended: cycle and step counts. Current is positive on charge, as in cellbench's records. The
# other recommended columns, Unix Time / s and Ambient Temperature / degC, are left out: a cycler
# record carries only its program's test time, no clock shared with the run or the chamber log, so
# neither could be given exactly.
BDF_TIME, BDF_VOLTAGE, BDF_CURRENT = "Test Time / s", "Voltage / V", "Current / A"
BDF_CYCLE, BDF_STEP = "Cycle Count / 1", "Step Count / 1"
BDF_COLUMNS = (BDF_TIME, BDF_VOLTAGE, BDF_CURRENT, BDF_CYCLE, BDF_STEP)
BDF_SUFFIX = ".bdf.csv"
_BDF_REQUIRED = {BDF_TIME: "time_s", BDF_VOLTAGE: "voltage_v", BDF_CURRENT: "current_a"}
_BDF_RECOMMENDED = {BDF_CYCLE: "cycle", BDF_STEP: "step"}
# A BDF header is "Quantity / unit"; the units a reader may meet for the columns read here, as
# factors to the canonical unit (s, V, A).
_BDF_UNITS = {"time_s": {"s": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0},
              "voltage_v": {"V": 1.0, "mV": 1e-3},
              "current_a": {"A": 1.0, "mA": 1e-3, "uA": 1e-6, "µA": 1e-6}}


def bdf_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A cycling stream (test_time_s or time_s, voltage_v, current_a; cycle and step optional) as
    a BDF table. Step Count / 1 counts the steps as they follow one another (1, 2, ...), so it
    increases through the file even where a program's step numbers repeat; Cycle Count / 1 is the
    cycler's cycle number."""
    time_column = "test_time_s" if "test_time_s" in frame.columns else "time_s"
    missing = [c for c in (time_column, "voltage_v", "current_a") if c not in frame.columns]
    if missing:
        raise ExportError(f"a BDF time series needs {', '.join(missing)}; the stream has "
                          f"{', '.join(map(str, frame.columns))}")
    out = {BDF_TIME: frame[time_column].to_numpy(float), BDF_VOLTAGE: frame["voltage_v"].to_numpy(float),
           BDF_CURRENT: frame["current_a"].to_numpy(float)}
    if "cycle" in frame.columns:
        out[BDF_CYCLE] = frame["cycle"].to_numpy(np.int64)
    if "step" in frame.columns:
        step = frame["step"].to_numpy()
        out[BDF_STEP] = np.concatenate(([1], 1 + np.cumsum(step[1:] != step[:-1]))) if step.size else step
    return pd.DataFrame(out)


def export_bdf(db: Database, run_id: int, out_dir: str | Path) -> list[Path]:
    """One ``<sample>__<date>__run<id>_<stream>.bdf.csv`` per cycling stream (a cycler program: its
    own test time and cycle numbering), with a ``.bdf.metadata.json`` beside it naming the run,
    the sample, the stream and the sign convention."""
    run = get_run(db, run_id)
    cycling = [s for s in run["streams"] if (s["metadata"] or {}).get("role") == "cycling" and s["n_points"]]
    if not cycling:
        raise ExportError(f"run {run_id} has no cycling stream with data: nothing to export as BDF")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sample = (run["sample"] or {}).get("id") or "sample"
    day = (run["started_at"] or "")[:10].replace("-", "")
    written: list[Path] = []
    used: set[str] = set()
    for stream in cycling:
        table = bdf_frame(read_stream(db, run_id, stream["name"]))
        stem = _unique_stem(f"{sample}__{day}__run{run_id}_{stream['name']}", used)
        path = out / f"{stem}{BDF_SUFFIX}"
        table.to_csv(path, index=False)
        metadata = {"format": "Battery Data Format v1.0", "run_id": run_id, "run_uid": run["uid"],
                    "protocol": run["protocol_name"], "sample": run["sample"], "stream": stream["name"],
                    "stream_metadata": stream["metadata"], "current_sign": "positive on charge",
                    "started_at": run["started_at"]}
        meta_path = out / f"{stem}.bdf.metadata.json"
        meta_path.write_text(json.dumps(metadata, indent=2, default=str) + "\n", encoding="utf-8")
        written += [path, meta_path]
    return written


def read_bdf(path: str | Path) -> pd.DataFrame:
    """A BDF CSV time series as cellbench's canonical columns: time_s (s), voltage_v (V),
    current_a (A) and, when present, cycle and step (from Cycle Count / 1, Step Count / 1). Headers
    are "Quantity / unit"; a required quantity in another known unit (ms, h; mV; mA, µA) is
    converted. Raises ExportError naming the file and the column that is missing or unreadable."""
    path = Path(path)
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise ExportError(f"{path}: not a readable BDF CSV: {error}") from None
    by_quantity = {}
    for header in raw.columns:
        quantity, _, unit = str(header).partition(" / ")
        by_quantity[quantity.strip().lower()] = (header, unit.strip())
    frame = {}
    for label, canonical in _BDF_REQUIRED.items():
        quantity = label.partition(" / ")[0].lower()
        if quantity not in by_quantity:
            raise ExportError(f"{path}: no '{label}' column (BDF requires {', '.join(_BDF_REQUIRED)}); "
                              f"columns are {list(raw.columns)}")
        header, unit = by_quantity[quantity]
        factor = _BDF_UNITS[canonical].get(unit)
        if factor is None:
            raise ExportError(f"{path}: column '{header}' has unit '{unit}'; known units are "
                              f"{', '.join(_BDF_UNITS[canonical])}")
        values = pd.to_numeric(raw[header], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ExportError(f"{path}: column '{header}' is not a number at data row {bad[0] + 1}")
        frame[canonical] = values * factor
    for label, canonical in _BDF_RECOMMENDED.items():
        if label in raw.columns:
            frame[canonical] = raw[label].to_numpy(np.int64)
    return pd.DataFrame(frame)


# --------------------------------------------------------------------------- Parquet


def export_parquet(db: Database, run_id: int, out_dir: str | Path) -> list[Path]:
    """``<stream>.parquet`` for every stream (column names as stored, each field's unit in its
    metadata under b"unit", the stream's name, metadata and run id in the file's metadata under
    b"cellbench"), then run.json as in the CSV export."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write_parquet(frame, stream, path_stem, run):
        units = frame.attrs["units"]
        table = pa.Table.from_pandas(frame, preserve_index=True)
        fields = [field.with_metadata({b"unit": units[field.name].encode()}) if field.name in units else field
                  for field in table.schema]
        described = {"run_id": run_id, "run_uid": run["uid"], "stream": stream["name"],
                     "step_index": stream["step_index"], "metadata": stream["metadata"], "units": units}
        schema = pa.schema(fields, metadata={**(table.schema.metadata or {}),
                                             b"cellbench": json.dumps(described, default=str).encode()})
        path = Path(f"{path_stem}.parquet")
        pq.write_table(table.cast(schema), path)
        return path
    return _export_streams(db, run_id, out_dir, write_parquet)


def read_parquet_stream(path: str | Path) -> pd.DataFrame:
    """A stream written by ``export_parquet``, with ``attrs["units"]`` and ``attrs["metadata"]``
    as ``storage.readers.read_stream`` gives them."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    frame = table.to_pandas()
    described = json.loads((table.schema.metadata or {}).get(b"cellbench", b"{}"))
    frame.attrs["units"] = {field.name: field.metadata[b"unit"].decode() for field in table.schema
                            if field.metadata and b"unit" in field.metadata}
    frame.attrs["metadata"] = described.get("metadata")
    return frame
