"""EC-Lab Development Package techniques as declarative parameter specs, validated before sending.

A ``TechniqueSpec`` lists every parameter label (case-sensitive, as the DLL expects), its type
(int32, boolean or single), its range and, for per-step parameters, the maximum number of steps.
A ``Technique`` is a spec with values; ``validate`` reports every problem at once, before any
call reaches the instrument. The constructors (``ocv``, ``ca``, ``cp``, ``vscan``, ``lsv``,
``peis``, ``calimit``, ``cplimit``) take unit-named arguments and fill the labels.

Technique IDs, time bases and file stems follow the package manual; the file name carries the
board family: essential (VMP3 family) ``peis.ecc``, premium (VMP-300 family) ``peis4.ecc``.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from instruments.biologic import api

BOARDS = ("essential", "premium", "digicore")
# Technique-file suffix per board family (manual §7.1: name.ecc, name4.ecc; DIGICORE name5.ecc).
ECC_SUFFIX = {"essential": "", "premium": "4", "digicore": "5"}


# I range enum: full scale in A; 0 (100 pA) and the gain ranges 13/14 exist on premium boards only.
I_RANGE_CODES = {"100pA": 0, "1nA": 1, "10nA": 2, "100nA": 3, "1uA": 4, "10uA": 5, "100uA": 6,
                 "1mA": 7, "10mA": 8, "100mA": 9, "1A": 10, "booster": 11, "auto": 12, "keep": -1,
                 "10pA": 13, "1pA": 14}
I_RANGE_AUTO = 12
I_RANGE_FULL_SCALE_A = {0: 1e-10, 1: 1e-9, 2: 1e-8, 3: 1e-7, 4: 1e-6, 5: 1e-5, 6: 1e-4, 7: 1e-3,
                        8: 1e-2, 9: 0.1, 10: 1.0, 13: 1e-11, 14: 1e-12}
PREMIUM_ONLY_I_RANGES = frozenset({0, 13, 14})
E_RANGE_CODES = {"2.5V": 0, "5V": 1, "10V": 2, "auto": 3}
E_RANGE_FULL_SCALE_V = {0: 2.5, 1: 5.0, 2: 10.0}
PREMIUM_ONLY_BANDWIDTHS = frozenset({8, 9})
HARDWARE_LABELS = frozenset({"I_Range", "E_Range", "Bandwidth", "tb"})

MAX_VOLTAGE_V = 10.0
MAX_CURRENT_A = 10.0
MIN_EIS_FREQUENCY_HZ = 1e-5
MAX_EIS_FREQUENCY_HZ = 7e6  # the fastest family; a model's own limit is checked on top


class TechniqueError(ValueError):
    """Technique parameters that must not be sent; lists every problem."""

    def __init__(self, technique: str, problems: Sequence[str]) -> None:
        self.technique = technique
        self.problems = list(problems)
        super().__init__(f"{technique}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class Param:
    """One parameter label: kind 'int' | 'bool' | 'single'; ``steps`` > 0 for per-step arrays."""

    label: str
    kind: str
    minimum: float | None = None
    maximum: float | None = None
    steps: int = 0
    choices: frozenset | None = None
    required: bool = True
    unit: str = ""

    @property
    def param_type(self) -> int:
        return {"int": api.PARAM_INT, "bool": api.PARAM_BOOL, "single": api.PARAM_SINGLE}[self.kind]


@dataclass(frozen=True)
class Limits:
    """What the connected channel accepts beyond the family-wide ranges."""

    board: str = "premium"
    max_eis_frequency_hz: float = MAX_EIS_FREQUENCY_HZ


@dataclass(frozen=True)
class TechniqueSpec:
    name: str
    stem: str
    technique_id: int
    timebase_s: dict
    params: tuple
    check: Callable[[dict, Limits], list] | None = None

    def ecc_file(self, board: str) -> str:
        if board not in BOARDS:
            raise ValueError(f"board must be one of {BOARDS}, not {board!r}")
        return f"{self.stem}{ECC_SUFFIX[board]}.ecc"

    def param(self, label: str) -> Param | None:
        return self._by_label().get(label)

    def _by_label(self) -> dict:
        return {p.label: p for p in self.params}


def _hardware() -> tuple:
    return (
        Param("I_Range", "int", choices=frozenset(I_RANGE_CODES.values()), required=False),
        Param("E_Range", "int", choices=frozenset(E_RANGE_CODES.values()), required=False),
        Param("Bandwidth", "int", 1, 9, required=False),
    )


def _volt(label, steps=0):
    return Param(label, "single", -MAX_VOLTAGE_V, MAX_VOLTAGE_V, steps, unit="V")


def _current(label, steps=0):
    return Param(label, "single", -MAX_CURRENT_A, MAX_CURRENT_A, steps, unit="A")


def _nonneg(label, unit, steps=0, maximum=None):
    return Param(label, "single", 0.0, maximum, steps, unit=unit)


def _step_lists(labels: Sequence[str]):
    def check(values: dict, limits: Limits) -> list:
        n = values["Step_number"] + 1
        return [f"{label} has {len(values[label])} entries but Step_number {values['Step_number']} "
                f"needs {n}" for label in labels if len(values[label]) != n]
    return check


def _no_auto_range(values: dict, limits: Limits) -> list:
    code = values.get("I_Range")
    if code is None or code in (I_RANGE_AUTO, -1, 11):
        return ["I_Range must be a fixed range (not auto/keep) for a current-controlled technique"]
    full = I_RANGE_FULL_SCALE_A[code]
    too_big = [c for c in values["Current_step"] if abs(c) > full]
    return [f"Current_step {too_big} exceeds the I range full scale {full:g} A"] if too_big else []


def _combine(*checks):
    def check(values: dict, limits: Limits) -> list:
        return [p for c in checks for p in c(values, limits)]
    return check


def _vscan_check(values: dict, limits: Limits) -> list:
    n = values["Scan_number"] + 2
    problems = [f"{label} has {len(values[label])} entries but Scan_number {values['Scan_number']} "
                f"needs {n} vertices" for label in ("Voltage_step", "vs_initial", "Scan_Rate")
                if len(values[label]) != n]
    if not problems and any(r <= 0 for r in values["Scan_Rate"][1:]):
        problems.append(f"Scan_Rate after the first vertex must be > 0 V/s, got {values['Scan_Rate'][1:]}")
    if values["Record_every_dE"] <= 0:
        problems.append("Record_every_dE must be > 0 V")
    return problems


def _peis_check(values: dict, limits: Limits) -> list:
    problems = []
    for label in ("Initial_frequency", "Final_frequency"):
        f = values[label]
        if f > limits.max_eis_frequency_hz:
            problems.append(f"{label} {f:g} Hz is above this instrument's maximum "
                            f"{limits.max_eis_frequency_hz:g} Hz")
    if values["Amplitude_Voltage"] <= 0:
        problems.append("Amplitude_Voltage must be > 0 V")
    return problems


def _record_check(values: dict, limits: Limits) -> list:
    rates = [values.get(k, 0.0) for k in ("Record_every_dT", "Record_every_dI", "Record_every_dE")]
    return [] if any(r > 0 for r in rates) else ["at least one Record_every_* criterion must be > 0"]


def _limit_tests(n: int) -> tuple:
    tests = []
    for k in (1, 2, 3):
        tests.append(Param(f"Test{k}_Config", "int", 0, 2 ** 31 - 1, n))
        tests.append(Param(f"Test{k}_Value", "single", -MAX_CURRENT_A * 10, MAX_CURRENT_A * 10, n))
    tests.append(Param("Exit_Cond", "int", 0, 2, n))
    return tuple(tests)


OCV = TechniqueSpec("OCV", "ocv", 100, {"essential": 20e-6, "premium": 20e-6}, (
    _nonneg("Rest_time_T", "s"), _nonneg("Record_every_dE", "V"), _nonneg("Record_every_dT", "s"),
    Param("E_Range", "int", choices=frozenset(E_RANGE_CODES.values()), required=False),
), _record_check)

CA = TechniqueSpec("CA", "ca", 101, {"essential": 24e-6, "premium": 21e-6}, (
    _volt("Voltage_step", 100), Param("vs_initial", "bool", steps=100), _nonneg("Duration_step", "s", 100),
    Param("Step_number", "int", 0, 98), _nonneg("Record_every_dT", "s"), _nonneg("Record_every_dI", "A"),
    Param("N_Cycles", "int", 0, 2 ** 31 - 1),
) + _hardware(), _combine(_step_lists(("Voltage_step", "vs_initial", "Duration_step")), _record_check))

CP = TechniqueSpec("CP", "cp", 102, {"essential": 21e-6, "premium": 21e-6}, (
    _current("Current_step", 100), Param("vs_initial", "bool", steps=100), _nonneg("Duration_step", "s", 100),
    Param("Step_number", "int", 0, 98), _nonneg("Record_every_dT", "s"), _nonneg("Record_every_dE", "V"),
    Param("N_Cycles", "int", 0, 2 ** 31 - 1),
) + _hardware(), _combine(_step_lists(("Current_step", "vs_initial", "Duration_step")), _no_auto_range,
                           _record_check))

VSCAN = TechniqueSpec("VSCAN", "vscan", 124, {"essential": 40e-6, "premium": 50e-6}, (
    _volt("Voltage_step", 100), Param("vs_initial", "bool", steps=100),
    Param("Scan_Rate", "single", 0.0, 100.0, 100, unit="V/s"), Param("Scan_number", "int", 0, 98),
    # No Average_over_dE: the manual lists that label for CV, CVA, LP, GC, CPP and PDP only, its
    # VSCAN example omits it, and an unlisted label makes BL_LoadTechnique fail (§7.1).
    _nonneg("Record_every_dE", "V"), Param("N_Cycles", "int", 0, 2 ** 31 - 1),
    Param("Begin_measuring_I", "single", 0.0, 1.0), Param("End_measuring_I", "single", 0.0, 1.0),
) + _hardware(), _vscan_check)

PEIS = TechniqueSpec("PEIS", "peis", 104, {"essential": 24e-6, "premium": 24e-6}, (
    Param("vs_initial", "bool"), Param("vs_final", "bool"),
    _volt("Initial_Voltage_step"), _volt("Final_Voltage_step"), _nonneg("Duration_step", "s"),
    Param("Step_number", "int", 0, 0), _nonneg("Record_every_dT", "s"), _nonneg("Record_every_dI", "A"),
    Param("Initial_frequency", "single", MIN_EIS_FREQUENCY_HZ, MAX_EIS_FREQUENCY_HZ, unit="Hz"),
    Param("Final_frequency", "single", MIN_EIS_FREQUENCY_HZ, MAX_EIS_FREQUENCY_HZ, unit="Hz"),
    Param("sweep", "bool"), Param("Amplitude_Voltage", "single", 0.0, 2.5, unit="V"),
    Param("Frequency_number", "int", 1, 10000), Param("Average_N_times", "int", 1, 1000),
    Param("Correction", "bool"), Param("Wait_for_steady", "single", 0.0, 1000.0),
) + _hardware(), _peis_check)

CALIMIT = TechniqueSpec("CALIMIT", "calimit", 157, {"essential": 50e-6, "premium": 34e-6}, (
    _volt("Voltage_step", 20), Param("vs_initial", "bool", steps=20), _nonneg("Duration_step", "s", 20),
    Param("Step_number", "int", 0, 19), _nonneg("Record_every_dT", "s"), _nonneg("Record_every_dI", "A"),
    Param("N_Cycles", "int", 0, 2 ** 31 - 1),
) + _limit_tests(20) + _hardware(), _combine(
    _step_lists(("Voltage_step", "vs_initial", "Duration_step", "Test1_Config", "Test1_Value",
                 "Test2_Config", "Test2_Value", "Test3_Config", "Test3_Value", "Exit_Cond")), _record_check))

CPLIMIT = TechniqueSpec("CPLIMIT", "cplimit", 155, {"essential": 50e-6, "premium": 34e-6}, (
    _current("Current_step", 20), Param("vs_initial", "bool", steps=20), _nonneg("Duration_step", "s", 20),
    Param("Step_number", "int", 0, 19), _nonneg("Record_every_dT", "s"), _nonneg("Record_every_dE", "V"),
    Param("N_Cycles", "int", 0, 2 ** 31 - 1),
) + _limit_tests(20) + _hardware(), _combine(
    _step_lists(("Current_step", "vs_initial", "Duration_step", "Test1_Config", "Test1_Value",
                 "Test2_Config", "Test2_Value", "Test3_Config", "Test3_Value", "Exit_Cond")),
    _no_auto_range, _record_check))

SPECS = {spec.name: spec for spec in (OCV, CA, CP, VSCAN, PEIS, CALIMIT, CPLIMIT)}
SPECS_BY_STEM = {spec.stem: spec for spec in SPECS.values()}
SPECS_BY_ID = {spec.technique_id: spec for spec in SPECS.values()}


@dataclass(frozen=True)
class EccValue:
    """One TEccParam to send: label, kind, Python value, step index."""

    label: str
    kind: str
    value: object
    index: int = 0

    def raw_word(self) -> int:
        """The signed 32-bit ParamVal: int as is, bool 0/1, single as its IEEE-754 bit pattern."""
        if self.kind == "single":
            return struct.unpack("<i", struct.pack("<f", float(self.value)))[0]
        return int(bool(self.value)) if self.kind == "bool" else int(self.value)

    def to_struct(self) -> api.TEccParam:
        param = api.TEccParam()
        param.ParamStr = self.label.encode("ascii")
        param.ParamType = {"int": api.PARAM_INT, "bool": api.PARAM_BOOL, "single": api.PARAM_SINGLE}[self.kind]
        param.ParamVal = self.raw_word()
        param.ParamIndex = self.index
        return param


@dataclass
class Technique:
    """A spec with values keyed by label (per-step parameters as sequences)."""

    spec: TechniqueSpec
    values: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def ecc_file(self, board: str) -> str:
        return self.spec.ecc_file(board)

    def validate(self, limits: Limits | None = None) -> None:
        """Raise TechniqueError listing every label, type and range problem for ``limits``."""
        limits = limits or Limits()
        problems = []
        known = self.spec._by_label()
        for label in self.values:
            if label not in known:
                problems.append(f"unknown parameter {label!r} (labels are case-sensitive; "
                                f"known: {sorted(known)})")
        for label, param in known.items():
            if label not in self.values:
                if param.required:
                    problems.append(f"{label} is required")
                continue
            problems.extend(_check_value(param, self.values[label], limits))
        if not problems and self.spec.check is not None:
            problems.extend(self.spec.check(self.values, limits))
        if problems:
            raise TechniqueError(self.spec.name, problems)

    def ecc_values(self) -> list[EccValue]:
        """Every TEccParam to send, arrays expanded with their step index."""
        out = []
        for label, value in self.values.items():
            param = self.spec.param(label)
            if param.steps:
                out.extend(EccValue(label, param.kind, v, i) for i, v in enumerate(value))
            else:
                out.append(EccValue(label, param.kind, value))
        return out


def _check_value(param: Param, value, limits: Limits) -> list:
    if param.steps:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            return [f"{param.label} must be a sequence of at most {param.steps} values"]
        if not 1 <= len(value) <= param.steps:
            return [f"{param.label} has {len(value)} entries; allowed 1..{param.steps}"]
        problems = []
        for i, v in enumerate(value):
            problems.extend(f"{param.label}[{i}]: {p}" for p in _check_scalar(param, v, limits))
        return problems
    return [f"{param.label}: {p}" for p in _check_scalar(param, value, limits)]


def _check_scalar(param: Param, value, limits: Limits) -> list:
    if param.kind == "bool":
        return [] if isinstance(value, bool) else [f"must be True/False, not {value!r}"]
    if param.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"must be an integer, not {value!r}"]
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return [f"must be a finite number, not {value!r}"]
    if param.choices is not None and value not in param.choices:
        return [f"{value!r} is not one of {sorted(param.choices)}"]
    if param.minimum is not None and value < param.minimum or param.maximum is not None and value > param.maximum:
        lo = "-inf" if param.minimum is None else f"{param.minimum:g}"
        hi = "inf" if param.maximum is None else f"{param.maximum:g}"
        return [f"{value!r} {param.unit} is outside {lo}..{hi} {param.unit}".replace("  ", " ")]
    if limits.board == "essential" and (
            (param.label == "I_Range" and value in PREMIUM_ONLY_I_RANGES)
            or (param.label == "Bandwidth" and value in PREMIUM_ONLY_BANDWIDTHS)):
        return [f"{value} is not available on essential (VMP3 family) boards"]
    return []


# --- constructors with unit-named arguments -----------------------------------------------------

def _code(table: dict, value, what: str) -> int:
    if isinstance(value, str):
        if value not in table:
            raise ValueError(f"{what} {value!r} is not one of {sorted(table)}")
        return table[value]
    return value


def _hw(values: dict, i_range, e_range, bandwidth) -> dict:
    if i_range is not None:
        values["I_Range"] = _code(I_RANGE_CODES, i_range, "I range")
    if e_range is not None:
        values["E_Range"] = _code(E_RANGE_CODES, e_range, "E range")
    if bandwidth is not None:
        values["Bandwidth"] = bandwidth
    return values


def _per_step(value, n: int) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value] * n


def ocv(duration_s: float, record_every_dt_s: float = 1.0, record_every_de_v: float = 0.0,
        e_range=None) -> Technique:
    """Open-circuit rest for ``duration_s`` s, recording every dt s (and every dE V change)."""
    values = {"Rest_time_T": float(duration_s), "Record_every_dE": float(record_every_de_v),
              "Record_every_dT": float(record_every_dt_s)}
    if e_range is not None:
        values["E_Range"] = _code(E_RANGE_CODES, e_range, "E range")
    return Technique(OCV, values)


def ca(voltages_v: Sequence[float], durations_s: Sequence[float], vs_initial=False,
       record_every_dt_s: float = 1.0, record_every_di_a: float = 0.0, n_cycles: int = 0,
       i_range="auto", e_range=None, bandwidth=None) -> Technique:
    """Chronoamperometry: hold each potential (V) for its duration (s); vs_initial per step or for all."""
    n = len(voltages_v)
    return Technique(CA, _hw({
        "Voltage_step": [float(v) for v in voltages_v], "vs_initial": _per_step(vs_initial, n),
        "Duration_step": [float(d) for d in durations_s], "Step_number": n - 1,
        "Record_every_dT": float(record_every_dt_s), "Record_every_dI": float(record_every_di_a),
        "N_Cycles": int(n_cycles)}, i_range, e_range, bandwidth))


def cp(currents_a: Sequence[float], durations_s: Sequence[float], i_range, vs_initial=False,
       record_every_dt_s: float = 1.0, record_every_de_v: float = 0.0, n_cycles: int = 0,
       e_range=None, bandwidth=None) -> Technique:
    """Chronopotentiometry: hold each current (A) for its duration (s) on a fixed I range."""
    n = len(currents_a)
    return Technique(CP, _hw({
        "Current_step": [float(c) for c in currents_a], "vs_initial": _per_step(vs_initial, n),
        "Duration_step": [float(d) for d in durations_s], "Step_number": n - 1,
        "Record_every_dT": float(record_every_dt_s), "Record_every_dE": float(record_every_de_v),
        "N_Cycles": int(n_cycles)}, i_range, e_range, bandwidth))


def vscan(vertices_v: Sequence[float], scan_rates_v_per_s: Sequence[float], record_every_de_v: float,
          vs_initial=False, n_cycles: int = 0,
          begin_measuring_i: float = 0.5, end_measuring_i: float = 1.0,
          i_range="auto", e_range=None, bandwidth=None) -> Technique:
    """Linear sweeps through ``vertices_v``; ``scan_rates_v_per_s[k]`` (V/s) reaches vertex k
    (the first rate is ignored by the instrument)."""
    n = len(vertices_v)
    return Technique(VSCAN, _hw({
        "Voltage_step": [float(v) for v in vertices_v], "vs_initial": _per_step(vs_initial, n),
        "Scan_Rate": [float(r) for r in scan_rates_v_per_s], "Scan_number": n - 2,
        "Record_every_dE": float(record_every_de_v),
        "N_Cycles": int(n_cycles), "Begin_measuring_I": float(begin_measuring_i),
        "End_measuring_I": float(end_measuring_i)}, i_range, e_range, bandwidth))


def lsv(start_v: float, end_v: float, scan_rate_v_per_s: float, record_every_de_v: float = 1e-3,
        vs_initial=False, **hardware) -> Technique:
    """Linear sweep voltammetry: one VSCAN sweep from ``start_v`` to ``end_v`` at V/s."""
    return vscan([start_v, end_v], [scan_rate_v_per_s, scan_rate_v_per_s], record_every_de_v,
                 vs_initial=vs_initial, **hardware)


def frequency_count(initial_frequency_hz: float, final_frequency_hz: float, points_per_decade: float) -> int:
    """Number of log-spaced frequencies, both ends included (7 MHz→1 Hz at 10/decade gives 69)."""
    if initial_frequency_hz <= 0 or final_frequency_hz <= 0 or points_per_decade <= 0:
        raise ValueError("frequencies and points per decade must be positive")
    decades = abs(math.log10(initial_frequency_hz / final_frequency_hz))
    return int(round(decades * points_per_decade)) + 1


def peis(initial_frequency_hz: float, final_frequency_hz: float, amplitude_v: float, *,
         frequency_number: int | None = None, points_per_decade: float | None = None,
         dc_voltage_v: float = 0.0, vs_initial: bool = True, duration_step_s: float = 0.0,
         record_every_dt_s: float = 0.0, record_every_di_a: float = 0.0, average_n_times: int = 1,
         wait_for_steady: float = 0.0, correction: bool = False, linear_sweep: bool = False,
         i_range="auto", e_range=None, bandwidth=None) -> Technique:
    """Potentiostatic EIS from ``initial_frequency_hz`` to ``final_frequency_hz`` with a sine of
    ``amplitude_v`` V around ``dc_voltage_v`` (vs the rest potential when ``vs_initial``)."""
    if (frequency_number is None) == (points_per_decade is None):
        raise ValueError("give exactly one of frequency_number and points_per_decade")
    if frequency_number is None:
        frequency_number = frequency_count(initial_frequency_hz, final_frequency_hz, points_per_decade)
    return Technique(PEIS, _hw({
        "vs_initial": bool(vs_initial), "vs_final": bool(vs_initial),
        "Initial_Voltage_step": float(dc_voltage_v), "Final_Voltage_step": float(dc_voltage_v),
        "Duration_step": float(duration_step_s), "Step_number": 0,
        "Record_every_dT": float(record_every_dt_s), "Record_every_dI": float(record_every_di_a),
        "Initial_frequency": float(initial_frequency_hz), "Final_frequency": float(final_frequency_hz),
        "sweep": bool(linear_sweep), "Amplitude_Voltage": float(amplitude_v),
        "Frequency_number": int(frequency_number), "Average_N_times": int(average_n_times),
        "Correction": bool(correction), "Wait_for_steady": float(wait_for_steady)},
        i_range, e_range, bandwidth))


def peis_frequencies(values: dict) -> np.ndarray:
    """The frequencies a PEIS measures, in order: ``Frequency_number`` of them from
    ``Initial_frequency`` to ``Final_frequency``, log-spaced (linear when ``sweep``)."""
    f_i, f_f, n = values["Initial_frequency"], values["Final_frequency"], values["Frequency_number"]
    return np.linspace(f_i, f_f, n) if values["sweep"] else np.logspace(math.log10(f_i), math.log10(f_f), n)


LIMIT_VARIABLES = {"E": 0, "AUX1": 1, "AUX2": 2, "I": 3}


@dataclass(frozen=True)
class LimitTest:
    """'stop the step when <variable> <op> <value>': variable 'E' (V) or 'I' (A), op '<' or '>'.

    Encoded as variable << 5 | sign << 2 | logic << 1 | active, as read from the manual's table
    (bit 2: 0 '<', 1 '>'; bit 1: 0 OR, 1 AND with the previous test) — to be confirmed on hardware.
    """

    variable: str
    op: str
    value: float
    logic: str = "or"

    def config_word(self) -> int:
        if self.variable not in LIMIT_VARIABLES or self.op not in ("<", ">") or self.logic not in ("or", "and"):
            raise ValueError(f"limit test {self}: variable must be one of {sorted(LIMIT_VARIABLES)}, "
                             f"op '<' or '>', logic 'or' or 'and'")
        return (LIMIT_VARIABLES[self.variable] << 5) | ((self.op == ">") << 2) | ((self.logic == "and") << 1) | 1


def decode_limit_test(config_word: int, value: float) -> LimitTest | None:
    """Inverse of LimitTest.config_word; None when the test is inactive."""
    if not config_word & 1:
        return None
    names = {v: k for k, v in LIMIT_VARIABLES.items()}
    return LimitTest(names.get(config_word >> 5, "?"), ">" if config_word & 4 else "<", value,
                     "and" if config_word & 2 else "or")


EXIT_CONDITIONS = {"next_step": 0, "next_technique": 1, "stop": 2}


def _limit_values(n: int, tests: Sequence[Sequence[LimitTest]] | None, exit_on_limit) -> dict:
    tests = list(tests) if tests is not None else [[] for _ in range(n)]
    if len(tests) != n:
        raise ValueError(f"limit tests: {len(tests)} step lists given for {n} steps")
    values = {}
    for k in (1, 2, 3):
        values[f"Test{k}_Config"] = [t[k - 1].config_word() if len(t) >= k else 0 for t in tests]
        values[f"Test{k}_Value"] = [float(t[k - 1].value) if len(t) >= k else 0.0 for t in tests]
    if any(len(t) > 3 for t in tests):
        raise ValueError("at most 3 limit tests per step")
    values["Exit_Cond"] = [_code(EXIT_CONDITIONS, e, "exit condition") for e in _per_step(exit_on_limit, n)]
    return values


def calimit(voltages_v: Sequence[float], durations_s: Sequence[float],
            tests: Sequence[Sequence[LimitTest]] | None = None, exit_on_limit="next_step",
            vs_initial=False, record_every_dt_s: float = 1.0, record_every_di_a: float = 0.0,
            n_cycles: int = 0, i_range="auto", e_range=None, bandwidth=None) -> Technique:
    """CA with up to 3 limit tests per step (e.g. [LimitTest('I', '<', 1e-6)]) ending the step."""
    n = len(voltages_v)
    values = {"Voltage_step": [float(v) for v in voltages_v], "vs_initial": _per_step(vs_initial, n),
              "Duration_step": [float(d) for d in durations_s], "Step_number": n - 1,
              "Record_every_dT": float(record_every_dt_s), "Record_every_dI": float(record_every_di_a),
              "N_Cycles": int(n_cycles)}
    values.update(_limit_values(n, tests, exit_on_limit))
    return Technique(CALIMIT, _hw(values, i_range, e_range, bandwidth))


def cplimit(currents_a: Sequence[float], durations_s: Sequence[float], i_range,
            tests: Sequence[Sequence[LimitTest]] | None = None, exit_on_limit="next_step",
            vs_initial=False, record_every_dt_s: float = 1.0, record_every_de_v: float = 0.0,
            n_cycles: int = 0, e_range=None, bandwidth=None) -> Technique:
    """CP with up to 3 limit tests per step (e.g. [LimitTest('E', '>', 4.2)]) ending the step."""
    n = len(currents_a)
    values = {"Current_step": [float(c) for c in currents_a], "vs_initial": _per_step(vs_initial, n),
              "Duration_step": [float(d) for d in durations_s], "Step_number": n - 1,
              "Record_every_dT": float(record_every_dt_s), "Record_every_dE": float(record_every_de_v),
              "N_Cycles": int(n_cycles)}
    values.update(_limit_values(n, tests, exit_on_limit))
    return Technique(CPLIMIT, _hw(values, i_range, e_range, bandwidth))
