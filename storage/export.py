"""Exporting a run to files: one CSV per stream plus run.json.

CSV headers carry units: names already do by convention (``frequency_hz``), and a column whose
unit is not its name's suffix gets it appended as ``name [unit]`` so no unit is lost.
run.json holds the run's metadata (protocol, sample, station, steps, streams with units and
dtypes) and its analysis results, exactly as :func:`storage.readers.get_run` returns them.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from storage.readers import Database, get_run, read_stream

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def export_run(db: Database, run_id: int, out_dir: str | Path) -> list[Path]:
    """Write ``<stream>.csv`` for each stream and ``run.json`` into ``out_dir`` (created).

    Returns the written paths, CSVs in stream order, then run.json. Raises RunNotFound for a
    run that is not in the database.
    """
    run = get_run(db, run_id)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    used: set[str] = set()
    for stream in run["streams"]:
        frame = read_stream(db, run_id, stream["name"])
        frame = frame.rename(columns={c: header_with_unit(c, u)
                                      for c, u in frame.attrs["units"].items()})
        path = out / f"{_unique_stem(stream['name'], used)}.csv"
        frame.to_csv(path, index=True)
        written.append(path)
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
