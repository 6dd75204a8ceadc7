"""Record layouts of BL_GetData buffers and their decoding into unit-named numpy columns.

A buffer holds NbRows × NbCols uint32 words, row-major. Which word is what depends on the
technique, the board family (essential = VMP3 family, premium = VMP-300 family) and, for EIS,
the process (0: DC points, 1: one row per frequency), as tabulated in the package manual.

Word kinds:
  t_high, t_low  the two halves of a tick counter: t = StartTime + TimeBase·((t_high << 32) + t_low)
  float          a single-precision value; on current boards the word is the IEEE-754 bit
                 pattern (TChannelInfos.FloatFormat = 1), reinterpreted with a numpy view. The
                 driver checks this against BL_ConvertNumericIntoSingle at connect and passes a
                 DLL-based converter instead when a board uses the older TI-DSP float format.
  int            a signed 32-bit integer (cycle counters)
  ftime          a float holding seconds since the technique start (EIS process 1)
  skip           an unused word

Where the references disagree, the manual (v6.04) decides:
  * PEIS process-1 time: the manual gives word 13 as ``t`` in s, a float counted like the tick
    times from the technique's start, and defines a record's time as ``StartTime`` plus that
    (§5.1 TDataInfos: StartTime is the technique's start within the chain). So StartTime is
    added here as for t_high/t_low; readers that drop it put every linked technique's spectrum
    at 0 s. StartTime can be NaN on a first technique: read as 0.
  * Phase: radians (§3.5 units), as helao and the EIS examples read it (battery-tester converts
    it from degrees, which shrinks every phase by 180/π).
  * DIGICORE (board type 3): read with the premium layouts (``record_family``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


class LayoutError(ValueError):
    """A data buffer that does not match the layout expected for its technique/board/process."""


@dataclass(frozen=True)
class Layout:
    technique_id: int
    board: str
    process: int
    words: tuple  # ((column name, kind), ...)
    derive: Callable[[dict], None] | None = None

    @property
    def n_cols(self) -> int:
        return len(self.words)


def ieee_words_to_float(words: np.ndarray) -> np.ndarray:
    """Reinterpret uint32 words as IEEE-754 single precision (returned as float64)."""
    return np.ascontiguousarray(words, dtype=np.uint32).view(np.float32).astype(np.float64)


def _add_zero_current(columns: dict) -> None:
    # Open circuit: no current flows by construction; keeping i_a makes every DC table alike.
    columns["i_a"] = np.zeros_like(columns["ewe_v"])


def _add_impedance(columns: dict) -> None:
    """|Z| = |Ewe|/|I|; Re Z = |Z| cos φ, Im Z = |Z| sin φ (negative for capacitive)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z_mod = columns["ewe_mod_v"] / columns["i_mod_a"]
    columns["z_mod_ohm"] = z_mod
    columns["z_real_ohm"] = z_mod * np.cos(columns["phase_rad"])
    columns["z_imag_ohm"] = z_mod * np.sin(columns["phase_rad"])


T = (("t_high", "t_high"), ("t_low", "t_low"))
_STEP = T + (("ewe_v", "float"), ("i_a", "float"), ("cycle", "int"))
_EIS_DC = T + (("ewe_v", "float"), ("i_a", "float"))
_EIS_FREQ = (("frequency_hz", "float"), ("ewe_mod_v", "float"), ("i_mod_a", "float"),
             ("phase_rad", "float"), ("ewe_v", "float"), ("i_a", "float"), ("unused_6", "skip"),
             ("ece_mod_v", "float"), ("ice_mod_a", "float"), ("phase_zce_rad", "float"),
             ("ece_v", "float"), ("unused_11", "skip"), ("unused_12", "skip"), ("time_s", "ftime"))

OCV_ID, CA_ID, CP_ID, PEIS_ID, VSCAN_ID, CPLIMIT_ID, CALIMIT_ID = 100, 101, 102, 104, 124, 155, 157

LAYOUTS: dict[tuple[int, str, int], Layout] = {}


def _register(technique_id: int, board: str, process: int, words: tuple, derive=None) -> None:
    LAYOUTS[(technique_id, board, process)] = Layout(technique_id, board, process, words, derive)


for _board in ("essential", "premium"):
    for _tid in (CA_ID, CP_ID, CALIMIT_ID, CPLIMIT_ID):
        _register(_tid, _board, 0, _STEP)
    _register(PEIS_ID, _board, 0, _EIS_DC)
_register(OCV_ID, "essential", 0, T + (("ewe_v", "float"), ("ece_v", "float")), _add_zero_current)
_register(OCV_ID, "premium", 0, T + (("ewe_v", "float"),), _add_zero_current)
_register(VSCAN_ID, "essential", 0, T + (("ec_v", "float"), ("i_a", "float"), ("ewe_v", "float"),
                                         ("cycle", "int")))
_register(VSCAN_ID, "premium", 0, T + (("i_a", "float"), ("ewe_v", "float"), ("cycle", "int")))
_register(PEIS_ID, "essential", 1, _EIS_FREQ + (("i_range", "float"),), _add_impedance)
_register(PEIS_ID, "premium", 1, _EIS_FREQ, _add_impedance)


def record_family(board: str) -> str:
    """The board family whose time bases and record layouts a board uses. The v6.04 manual
    documents VMP3 (essential) and SP-300 (premium) layouts only; DIGICORE boards (VMP-300-P)
    follow the SP-300-series generation, so they are read with the premium layouts
    (unverified: check one record of each technique on first connection, docs/instruments.md)."""
    return "essential" if board == "essential" else "premium"


def layout_for(technique_id: int, board: str, process: int) -> Layout:
    try:
        return LAYOUTS[(technique_id, record_family(board), process)]
    except KeyError:
        raise LayoutError(f"no record layout for technique ID {technique_id}, {board} board, "
                          f"process {process}") from None


def decode(words, n_rows: int, n_cols: int, layout: Layout, start_time_s: float, timebase_s: float,
           to_float: Callable[[np.ndarray], np.ndarray] = ieee_words_to_float) -> dict[str, np.ndarray]:
    """Decode ``n_rows`` rows of a data buffer into named columns (time_s in s since the channel
    started, floats as float64, ints as int64), then add the layout's derived columns."""
    if n_cols != layout.n_cols:
        raise LayoutError(f"technique ID {layout.technique_id} ({layout.board}, process {layout.process}): "
                          f"buffer has {n_cols} columns, layout expects {layout.n_cols}")
    flat = np.asarray(words, dtype=np.uint32).ravel()
    if n_rows < 0 or n_rows * n_cols > flat.size:
        raise LayoutError(f"{n_rows} rows × {n_cols} columns do not fit a {flat.size}-word buffer")
    table = flat[: n_rows * n_cols].reshape(n_rows, n_cols)
    start = 0.0 if start_time_s is None or np.isnan(start_time_s) else float(start_time_s)
    columns: dict[str, np.ndarray] = {}
    kinds = {name: (i, kind) for i, (name, kind) in enumerate(layout.words)}
    if "t_high" in kinds:
        ticks = (table[:, kinds["t_high"][0]].astype(np.uint64) << np.uint64(32)) | table[:, kinds["t_low"][0]]
        columns["time_s"] = start + float(timebase_s) * ticks.astype(np.float64)
    for name, (i, kind) in kinds.items():
        if kind == "float":
            columns[name] = to_float(table[:, i])
        elif kind == "int":
            columns[name] = table[:, i].view(np.int32).astype(np.int64)
        elif kind == "ftime":
            columns[name] = start + to_float(table[:, i])
    if layout.derive is not None:
        layout.derive(columns)
    return columns
