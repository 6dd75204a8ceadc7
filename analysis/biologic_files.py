"""Read BioLogic EC-Lab / BT-Lab data files (.mpt text exports, .mpr binary files) into DataFrames.

``read_biologic(path)`` returns a :class:`BiologicFile`: the technique (short code: GCPL, MB, BCD,
PEIS, GEIS, CA, CP, OCV, CV, LSV, ...), the instrument's own columns under their EC-Lab names (e.g.
``time/s``, ``Ewe/V``, ``<I>/mA``, ``dq/mA.h``, ``cycle number``), and the metadata the file states.
``cycling_records`` turns a file into the canonical cycling record of ``analysis.cycling``;
``eis_spectra`` splits an impedance file into one spectrum per cycle/loop, in file order.

Formats
-------
* ``.mpt``: Latin-1 text (EC-Lab writes µ and ° as single bytes); line 1 ``EC-Lab ASCII FILE`` (or
  ``BT-Lab ASCII FILE``), line 2 ``Nb header lines : N``; lines 3 to N-1 are settings (technique
  name on line 4, software version, ``Cycle Definition``), line N the tab-separated column names;
  then tab-separated rows with a decimal point or, from a Windows locale that uses one, a decimal
  comma; LF or CRLF line ends. A file with ``Nb header lines : 3`` has no settings: its technique is
  inferred from its columns.
* ``.mpr``: EC-Lab's binary modules, read with galvani (GPL-3.0-or-later). Its technique is the
  settings module's first byte. GCPL files store no current column, only the charge counter ``dq``:
  the current is derived from it as the mean since the previous record (what ``<I>`` means).

Reader
------
galvani (echemdata/galvani, GPL-3.0-or-later, on PyPI, needs only numpy; works with numpy 2 and
pandas 3) reads the .mpr modules; the .mpt text is parsed here, because galvani's text reader
accepts only a few fixed column sets. yadg reads more .mpr column IDs but brings its own data model
(xarray, pint, ...); navani builds on galvani; the datalab-org fork of galvani is not on PyPI. A
column ID galvani does not know is refused with its message: export the file to .mpt from EC-Lab.

Conventions
-----------
EC-Lab's current is positive for an oxidation at the working electrode (``ox/red`` = 1), which is
charge: ``Q charge`` sums positive charge and ``Q discharge`` negative. That is the canonical
convention, so the sign is kept, after checking that ``ox/red`` agrees with it. EC-Lab's ``cycle
number`` counts from 0; under ``Cycle Definition : Charge/Discharge alternance`` it steps at each
charge that follows a discharge, so cellbench's cycle (k-th charge and the discharge after it, cycle 0
only for a discharge before the first charge) is EC-Lab's + 1 for a file that starts with a charge and
EC-Lab's own for one that starts with a discharge. Under another cycle definition, or without one, the
column is kept as an instrument column and cellbench numbers the cycles itself.
"""
from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

MPT_MAGICS = ("EC-Lab ASCII FILE", "BT-Lab ASCII FILE")
MPR_MAGIC = b"BIO-LOGIC MODULAR FILE"

TECHNIQUE_NAMES = {
    "galvanostatic cycling with potential limitation": "GCPL",
    "modulo bat": "MB",
    "battery capacity determination": "BCD",
    "potentio electrochemical impedance spectroscopy": "PEIS",
    "galvano electrochemical impedance spectroscopy": "GEIS",
    "chronoamperometry / chronocoulometry": "CA",
    "chronopotentiometry": "CP",
    "open circuit voltage": "OCV",
    "cyclic voltammetry": "CV",
    "cyclic voltammetry advanced": "CVA",
    "linear sweep voltammetry": "LSV",
    "constant current": "CC",
    "constant voltage": "CV-hold",
    "wait": "WAIT",
}
# First byte of an .mpr settings module (the technique's identifier in the file format).
MPR_TECHNIQUE_IDS = {0x04: "GCPL", 0x06: "CV", 0x0B: "OCV", 0x16: "MP", 0x18: "CA", 0x19: "CP",
                     0x1C: "WAIT", 0x1D: "PEIS", 0x1E: "GEIS", 0x30: "CV", 0x32: "ZIR", 0x33: "CVA",
                     0x6C: "LSV", 0x75: "CV-hold", 0x76: "CC", 0x77: "GCPL", 0x7F: "MB", 0x88: "BCD"}
CYCLING_TECHNIQUES = ("GCPL", "MB", "BCD", "CP", "CA", "CC")
IMPEDANCE_TECHNIQUES = ("PEIS", "GEIS")

_VOLTAGE_COLUMNS = ("Ecell/V", "Ewe/V", "<Ewe>/V")
_CURRENT_COLUMNS = ("<I>/mA", "I/mA")
# Per-record charge counters, with their factor to Ah.
_COUNTER_COLUMNS = (("dq/mA.h", 1e-3), ("dQ/mA.h", 1e-3), ("dQ/C", 1 / 3600.0))
_CUMULATIVE_COUNTERS = (("(Q-Qo)/mA.h", 1e-3), ("(Q-Qo)/C", 1 / 3600.0))
# ox/red may disagree with the sign of the current on the record that opens a step (its mean current
# still belongs to the previous step); more disagreement than this is another convention.
_OX_RED_TOLERATED_FRACTION = 0.02


class BiologicFileError(ValueError):
    """A file is not a readable BioLogic file, or cannot give what was asked of it."""


@dataclass(frozen=True)
class BiologicFile:
    """One BioLogic data file: technique, the instrument's columns (EC-Lab names), metadata."""

    path: str
    technique: str
    data: pd.DataFrame
    metadata: dict = field(default_factory=dict)


def is_biologic_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts like an EC-Lab/BT-Lab text export or an EC-Lab binary file."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    first_line = head.split(b"\n", 1)[0].decode("latin-1").strip()
    return head.startswith(MPR_MAGIC) or first_line in MPT_MAGICS


def is_biologic_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` is to be read as a BioLogic file: named .mpt/.mpr (read_biologic then
    refuses one whose content is something else) or starting like one."""
    return Path(path).suffix.lower() in (".mpt", ".mpr") or is_biologic_file(path)


def read_biologic(path: str | os.PathLike) -> BiologicFile:
    """Read a .mpt or .mpr file, recognised by its content (its first bytes), not its name.

    Raises BiologicFileError naming the file for anything else or for a malformed file.
    """
    path = Path(path)
    if not is_biologic_file(path):
        with open(path, "rb") as handle:
            first_line = handle.read(64).split(b"\n", 1)[0].decode("latin-1").strip()
        raise BiologicFileError(
            f"{path}: not a BioLogic file: it starts with {first_line[:40]!r}, not "
            f"{' or '.join(repr(m) for m in MPT_MAGICS)} (text export) or {MPR_MAGIC.decode()!r} (.mpr)")
    with open(path, "rb") as handle:
        is_mpr = handle.read(len(MPR_MAGIC)) == MPR_MAGIC
    return _read_mpr(path) if is_mpr else _read_mpt(path)


# --- .mpt -------------------------------------------------------------------------------------------
def _read_mpt(path: Path) -> BiologicFile:
    text = path.read_bytes().decode("latin-1")
    lines = text.splitlines()
    match = re.match(r"Nb header lines\s*:\s*(\d+)", lines[1] if len(lines) > 1 else "")
    if not match:
        raise BiologicFileError(f"{path}, line 2: expected 'Nb header lines : N', got {lines[1:2]!r}")
    n_header = int(match.group(1))
    if not 3 <= n_header <= len(lines):
        raise BiologicFileError(f"{path}, line 2: {n_header} header lines, but the file has {len(lines)}")
    names = lines[n_header - 1].rstrip("\t").split("\t")
    if "time/s" not in names:
        raise BiologicFileError(f"{path}, line {n_header}: the column names have no 'time/s': {names[:8]}")
    body = [line.rstrip("\t") for line in lines[n_header:] if line.strip()]
    decimal = _decimal_mark(body, path, n_header)
    try:
        data = pd.read_csv(io.StringIO("\n".join(body)), sep="\t", header=None, names=names,
                           decimal=decimal, index_col=False, dtype=float)
    except (ValueError, pd.errors.ParserError) as error:
        raise BiologicFileError(f"{path}: data rows (from line {n_header + 1}) are not tab-separated "
                                f"numbers under the {len(names)} column names: {error}") from None
    settings = lines[2:n_header - 1]
    metadata = {"format": "mpt", "header_lines": n_header, "decimal_mark": decimal,
                "line_ends": "CRLF" if "\r\n" in text[:4096] else "LF", **_settings_metadata(settings)}
    technique = TECHNIQUE_NAMES.get(settings[1].strip().lower()) if len(settings) > 1 else None
    metadata["technique_name"] = settings[1].strip() if len(settings) > 1 else None
    return BiologicFile(str(path), technique or _technique_from_columns(data), data, metadata)


def _decimal_mark(body: list[str], path: Path, n_header: int) -> str:
    if not body:
        raise BiologicFileError(f"{path}: no data rows after the {n_header} header lines")
    sample = body[0].split("\t")
    if any("," in cell for cell in sample):
        return ","
    return "."


def _settings_metadata(settings: list[str]) -> dict:
    found = {}
    for line in settings:
        key, _, value = line.partition(" : ")
        key = key.strip()
        if re.search(r"(EC|BT)-lab for windows", line, re.IGNORECASE):
            found["software"] = line.strip()
        elif key in ("Cycle Definition", "Acquisition started on", "Device", "Run on channel",
                     "Electrode surface area", "Characteristic mass", "Mass of active material"):
            found[key.lower().replace(" ", "_")] = value.strip()
    return found


def _technique_from_columns(data: pd.DataFrame) -> str:
    if "freq/Hz" in data.columns and (data["freq/Hz"] > 0).all():
        return "PEIS"
    return "unknown"


# --- .mpr -------------------------------------------------------------------------------------------
def _read_mpr(path: Path) -> BiologicFile:
    from galvani.BioLogic import MPRfile
    try:
        mpr = MPRfile(str(path))
    except (ValueError, NotImplementedError, AssertionError, KeyError) as error:
        raise BiologicFileError(f"{path}: unreadable .mpr file ({type(error).__name__}: {error}); "
                                "EC-Lab's text export (.mpt) of it can be read") from None
    columns = {}
    for name in mpr.data.dtype.names:
        if name == "flags":
            for flag in mpr.flags_dict:
                columns[flag] = mpr.get_flag(flag).astype(float)
        else:
            columns[name] = np.asarray(mpr.data[name], dtype=float)
    data = pd.DataFrame(columns)
    settings = next(m for m in mpr.modules if m["shortname"].strip() == b"VMP Set")
    technique = MPR_TECHNIQUE_IDS.get(settings["data"][0]) or _technique_from_columns(data)
    metadata = {"format": "mpr", "data_module_version": mpr.version,
                "start_date": str(mpr.startdate), "technique_id": int(settings["data"][0])}
    return BiologicFile(str(path), technique, data, metadata)


# --- cycling ----------------------------------------------------------------------------------------
def _first_present(data: pd.DataFrame, names) -> str | None:
    return next((name for name in names if name in data.columns), None)


def _counter_ah(data: pd.DataFrame) -> np.ndarray | None:
    for name, factor in _COUNTER_COLUMNS:
        if name in data.columns:
            return data[name].to_numpy(float) * factor
    for name, factor in _CUMULATIVE_COUNTERS:
        if name in data.columns:
            total = data[name].to_numpy(float) * factor
            return np.concatenate(([0.0], np.diff(total)))
    return None


def cycling_records(bf: BiologicFile) -> pd.DataFrame:
    """The canonical cycling record of a galvanostatic file: ``time_s``, ``voltage_v``, ``current_a``
    (A, positive on charge, mean since the previous record), ``dq_ah`` (the instrument's charge
    counter, Ah) when the file has one, ``step`` (EC-Lab's Ns, else its half cycle) and ``cycle``
    (EC-Lab's cycle number mapped to cellbench's numbering, see the module docstring).

    Raises BiologicFileError for an impedance file, a file with neither current nor charge counter,
    or one whose ``ox/red`` contradicts the sign of its current.
    """
    data, where = bf.data, bf.path
    if bf.technique in IMPEDANCE_TECHNIQUES:
        raise BiologicFileError(f"{where}: a {bf.technique} impedance file has no cycling record")
    voltage_name = _first_present(data, _VOLTAGE_COLUMNS)
    if voltage_name is None:
        raise BiologicFileError(f"{where}: no voltage column (one of {', '.join(_VOLTAGE_COLUMNS)})")
    time_s = data["time/s"].to_numpy(float)
    counter = _counter_ah(data)
    current_name = _first_present(data, _CURRENT_COLUMNS)
    if current_name is not None:
        current_a = data[current_name].to_numpy(float) * 1e-3
    elif counter is not None:
        dt = np.diff(time_s, prepend=time_s[0])
        current_a = np.divide(counter * 3600.0, dt, out=np.zeros(dt.size), where=dt > 0)
    else:
        raise BiologicFileError(f"{where}: neither a current column ({', '.join(_CURRENT_COLUMNS)}) "
                                "nor a charge counter (dq, dQ, (Q-Qo))")
    _check_ox_red(data, current_a, where)

    frame = pd.DataFrame({"time_s": time_s, "voltage_v": data[voltage_name].to_numpy(float),
                          "current_a": current_a})
    if counter is not None:
        frame["dq_ah"] = counter
    step_name = _first_present(data, ("Ns", "half cycle"))
    if step_name is not None:
        frame["step"] = data[step_name].to_numpy(float).astype(np.int64)
    cycle = _mapped_cycle(bf, current_a)
    if cycle is not None:
        frame["cycle"] = cycle
    return frame


def _active(current_a: np.ndarray) -> np.ndarray:
    largest = float(np.max(np.abs(current_a))) if current_a.size else 0.0
    return np.abs(current_a) > 1e-3 * largest


def _check_ox_red(data: pd.DataFrame, current_a: np.ndarray, where: str) -> None:
    if "ox/red" not in data.columns:
        return
    active = _active(current_a)
    if not active.any():
        return
    oxidation = data["ox/red"].to_numpy(float)[active] > 0.5
    disagree = float(np.mean(oxidation != (current_a[active] > 0)))
    if disagree > _OX_RED_TOLERATED_FRACTION:
        raise BiologicFileError(
            f"{where}: 'ox/red' says oxidation where the current is negative (or the reverse) on "
            f"{disagree:.0%} of the records: the file does not follow EC-Lab's sign convention, and "
            "charge and discharge cannot be told apart")


def _mapped_cycle(bf: BiologicFile, current_a: np.ndarray) -> np.ndarray | None:
    if "cycle number" not in bf.data.columns:
        return None
    if bf.metadata.get("cycle_definition", "").lower() != "charge/discharge alternance":
        return None
    active = np.flatnonzero(_active(current_a))
    if not active.size:
        return None
    offset = 1 if current_a[active[0]] > 0 else 0
    return bf.data["cycle number"].to_numpy(float).astype(np.int64) + offset


# --- impedance --------------------------------------------------------------------------------------
def eis_spectra(bf: BiologicFile) -> list[dict]:
    """One spectrum per cycle/loop of an impedance file, in file order: dicts with ``label``
    (``path#n``, n from 1), ``frequency_hz``, ``z_real_ohm``, ``z_imag_ohm`` (Im Z, negative for a
    capacitive response) and ``temperature_c`` (None: EC-Lab files do not record it).

    Spectra are told apart by EC-Lab's ``cycle number`` (``z cycle`` in Modulo Bat files); where the
    file has neither, a new spectrum starts wherever the frequency jumps back to the sweep's start.
    """
    data = bf.data
    needed = ("freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm")
    missing = [name for name in needed if name not in data.columns]
    if missing:
        raise BiologicFileError(f"{bf.path}: not an impedance file ({bf.technique}): no column "
                                f"{', '.join(missing)}")
    rows = data[data["freq/Hz"] > 0]
    if rows.empty:
        raise BiologicFileError(f"{bf.path}: no impedance point (every freq/Hz is 0)")
    loop_name = _first_present(rows, ("z cycle", "cycle number"))
    if loop_name is not None:
        loop = rows[loop_name].to_numpy(float)
        starts = np.concatenate(([True], loop[1:] != loop[:-1]))
    else:
        frequency = rows["freq/Hz"].to_numpy(float)
        falling = frequency[0] >= frequency[-1] if frequency.size > 1 else True
        jump = frequency[1:] > frequency[:-1] if falling else frequency[1:] < frequency[:-1]
        starts = np.concatenate(([True], jump))
    spectra = []
    for number, part in enumerate(np.split(np.arange(len(rows)), np.flatnonzero(starts)[1:]), start=1):
        chunk = rows.iloc[part]
        spectra.append({"label": f"{bf.path}#{number}",
                        "frequency_hz": chunk["freq/Hz"].to_numpy(float),
                        "z_real_ohm": chunk["Re(Z)/Ohm"].to_numpy(float),
                        "z_imag_ohm": -chunk["-Im(Z)/Ohm"].to_numpy(float),
                        "temperature_c": None})
    return spectra
