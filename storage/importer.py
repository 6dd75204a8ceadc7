"""Import instrument files into storage: each file becomes a completed run with its streams.

``import_files(db, paths)`` reads BioLogic EC-Lab/BT-Lab files (.mpt, .mpr; see
analysis/biologic_files.py) and writes each one through :class:`storage.writer.StorageWriter` as the
document stream of procedures/documents.py would carry it: ``start`` (protocol ``imported``, the
technique and the file's metadata), one ``descriptor`` + ``event_page`` per stream, an ``analysis``
for a cycling file, ``stop``. Streams:

* ``records`` (cycling techniques): the canonical cycling record — ``time_s``, ``voltage_v``,
  ``current_a`` (A, positive on charge, mean since the previous record), ``dq_ah`` (the
  instrument's counter), ``step``, ``cycle`` (cellbench's numbering) where the file gives them;
* ``eis`` (impedance techniques): ``time_s``, ``frequency_hz``, ``z_real_ohm``, ``z_imag_ohm``,
  ``spectrum`` (1, 2, ... one per loop, in file order);
* ``instrument_1``, ``instrument_2``, ...: every column of the file under its own name and unit,
  at most 16 per stream (storage's limit), so nothing the instrument recorded is lost.

A file that cannot be read raises ImportFileError naming it; files before it stay imported.
"""
from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.biologic_files import (CYCLING_TECHNIQUES, IMPEDANCE_TECHNIQUES, BiologicFile,
                                     BiologicFileError, cycling_records, eis_spectra, read_biologic)
from analysis.cycling import CyclingDataError, summarize_cycles
from storage.schema import N_VALUE_SLOTS
from storage.writer import StorageWriter

# Units EC-Lab writes after a '/' in its column names ("Q charge/discharge/mA.h" is in mA.h,
# "control/V/mA" in V or mA).
_UNITS = {"s", "V", "mA", "A", "µA", "mA.h", "A.h", "C", "W", "W.h", "Ohm", "Ohm-1", "Hz", "deg",
          "µF", "µF-2", "nF", "F", "%", "°C", "mS", "cm", "Ohm.cm", "mS/cm"}
_CANONICAL_UNITS = {"time_s": "s", "voltage_v": "V", "current_a": "A", "dq_ah": "Ah",
                    "frequency_hz": "Hz", "z_real_ohm": "Ohm", "z_imag_ohm": "Ohm"}


class ImportFileError(ValueError):
    """A file cannot be imported; the message names it and says why."""


def import_files(db, paths: Iterable[str | os.PathLike]) -> list[int]:
    """Import each file as one run; returns the new run ids in the order of ``paths``."""
    run_ids = []
    for path in paths:
        try:
            bf = read_biologic(path)
            documents = _documents(bf)
        except (OSError, BiologicFileError, CyclingDataError) as error:
            text = str(error)
            raise ImportFileError(text if str(path) in text else f"{path}: {text}") from error
        writer = StorageWriter(db)
        for name, doc in documents:
            writer(name, doc)
        writer.close()
        run_ids.append(writer.last_run_id)
    return run_ids


def column_unit(name: str) -> str:
    """The unit of an EC-Lab column name: the longest '/'-separated tail made only of units."""
    parts = name.split("/")
    unit = ""
    for start in range(len(parts) - 1, 0, -1):
        if parts[start].strip() not in _UNITS:
            break
        unit = "/".join(parts[start:])
    return unit


def _documents(bf: BiologicFile) -> list[tuple[str, dict]]:
    run_uid = uuid.uuid4().hex
    now = time.time()
    source = str(Path(bf.path).resolve())
    docs = [("start", {
        "run_uid": run_uid, "time": now, "protocol_name": f"imported {bf.technique}",
        "protocol": {"imported_from": source, "technique": bf.technique, "metadata": bf.metadata},
        "sample": {}, "station": {"instrument": "BioLogic", "software": bf.metadata.get("software")},
        "simulated": False})]
    analysis = None
    if bf.technique in IMPEDANCE_TECHNIQUES:
        docs += _stream(run_uid, "eis", _eis_frame(bf), {"role": "eis", "source": source})
    elif bf.technique in CYCLING_TECHNIQUES or bf.technique == "unknown":
        records = cycling_records(bf)
        docs += _stream(run_uid, "records", records, {"role": "cycling", "source": source})
        analysis = summarize_cycles(records)
    data = bf.data
    chunks = [list(data.columns[i:i + N_VALUE_SLOTS]) for i in range(0, data.shape[1], N_VALUE_SLOTS)]
    for number, names in enumerate(chunks, start=1):
        docs += _stream(run_uid, f"instrument_{number}", data[names],
                        {"role": "instrument", "source": source, "vendor": "BioLogic"},
                        units={name: column_unit(name) for name in names})
    if analysis is not None:
        docs.append(("analysis", {"run_uid": run_uid, "name": "cycling", "step_index": None,
                                  "result": analysis}))
    docs.append(("stop", {"run_uid": run_uid, "time": time.time(), "status": "completed",
                          "reason": f"imported from {source}", "traceback": None}))
    return docs


def _eis_frame(bf: BiologicFile) -> pd.DataFrame:
    frames = []
    for number, spectrum in enumerate(eis_spectra(bf), start=1):
        frames.append(pd.DataFrame({key: spectrum[key] for key in
                                    ("frequency_hz", "z_real_ohm", "z_imag_ohm")}).assign(spectrum=number))
    return pd.concat(frames, ignore_index=True)


def _stream(run_uid: str, name: str, frame: pd.DataFrame, metadata: dict,
            units: dict | None = None) -> list[tuple[str, dict]]:
    units = units or _CANONICAL_UNITS
    columns = {}
    for column in frame.columns:
        integral = column in ("cycle", "step", "spectrum")
        columns[column] = {"unit": units.get(column, ""), "dtype": "int" if integral else "float"}
    descriptor_uid = uuid.uuid4().hex
    data = {column: frame[column].to_numpy(np.int64 if columns[column]["dtype"] == "int" else float)
            for column in frame.columns}
    return [("descriptor", {"run_uid": run_uid, "descriptor_uid": descriptor_uid, "stream": name,
                            "step_index": None, "columns": columns, "metadata": metadata}),
            ("event_page", {"descriptor_uid": descriptor_uid, "seq_start": 0, "data": data})]
