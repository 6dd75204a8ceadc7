"""PNG figures of a run other than impedance (EIS has analysis/figures_eis.py): LSV, DC polarization,
cycling, dQ/dV, cold discharge, the symmetric cell and the chamber log.

Every function draws one figure from data already in memory and writes it to ``path`` (PNG); it returns
the path. Figures are ``matplotlib.figure.Figure`` objects printed by the Agg canvas, never pyplot
figures: nothing is registered with a GUI backend or a global figure manager, so nothing stays open
after the function returns and drawing is safe from any thread. Long records are thinned for drawing
(``MAX_LINE_POINTS`` per line); tables elsewhere always use every sample. A line never joins two
steps: records are broken at step boundaries (``broken_line``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.cycling import CHARGE, DISCHARGE, PreparedRecord
from analysis.dqdv import DqdvInputError, dqdv

MAX_LINE_POINTS = 2000
DPI = 110
FIGURE_SIZE_IN = (6.4, 4.2)
SECONDS_PER_HOUR = 3600.0

_CURRENT_UNITS = ((1.0, "A"), (1e-3, "mA"), (1e-6, "µA"), (1e-9, "nA"), (1e-12, "pA"))


class FigureDataError(ValueError):
    """The data handed to a figure cannot be drawn; the message names the figure and the input."""


def thin(n: int, max_points: int = MAX_LINE_POINTS) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spread samples of ``n``, first and last included."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def current_unit(max_abs_a: float) -> tuple[float, str]:
    """(scale in A, unit name) that shows currents up to ``max_abs_a`` (A) with 1-3 integer digits."""
    for scale, unit in _CURRENT_UNITS:
        if max_abs_a >= scale:
            return scale, unit
    return _CURRENT_UNITS[-1]


def _figure(size_in: tuple[float, float] = FIGURE_SIZE_IN, right: float = 0.96) -> Figure:
    # Fixed margins: constrained layout would measure every tick label and double the drawing time.
    figure = Figure(figsize=size_in)
    figure.subplots_adjust(left=0.12, right=right, bottom=0.13, top=0.91)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path) -> Path:
    path = Path(path)
    # Fast zlib level: the report favours rendering time over a few kB per figure.
    figure.savefig(path, dpi=DPI, format="png", pil_kwargs={"compress_level": 1})
    figure.clear()
    return path


def _column(frame: pd.DataFrame, name: str, figure_name: str) -> np.ndarray:
    if name not in frame.columns:
        raise FigureDataError(f"{figure_name}: the data have no column '{name}'; columns are "
                              f"{list(frame.columns)}")
    return frame[name].to_numpy(dtype=float)


# --------------------------------------------------------------------------- LSV


def lsv_figure(frame: pd.DataFrame, result: dict, area_cm2: float, path) -> Path:
    """Current density (µA/cm²) against working-electrode potential (V) of one sweep, with the fitted
    baseline, the threshold above it, and the threshold and tangent onsets of ``analyze_lsv``'s result.
    ``frame`` has ewe_v and i_a; ``area_cm2`` (> 0) is the working-electrode area."""
    if not area_cm2 or area_cm2 <= 0:
        raise FigureDataError(f"LSV figure: area_cm2 must be > 0, got {area_cm2!r}")
    voltage = _column(frame, "ewe_v", "LSV figure")
    density_ua = _column(frame, "i_a", "LSV figure") / area_cm2 * 1e6
    keep = thin(voltage.size)
    figure = _figure()
    axes = figure.add_subplot()
    axes.plot(voltage[keep], density_ua[keep], color="tab:blue", lw=1.0, label="measured")

    slope = result.get("baseline_slope_a_per_cm2_per_v")
    at_start = result.get("baseline_j_at_start_a_per_cm2")
    start_v = result.get("start_v")
    threshold = result.get("threshold_a_per_cm2")
    if None not in (slope, at_start, start_v) and voltage.size:
        line_v = np.array([voltage.min(), voltage.max()])
        baseline_ua = (at_start + slope * (line_v - start_v)) * 1e6
        axes.plot(line_v, baseline_ua, color="0.4", lw=0.8, ls=":", label="baseline")
        if threshold is not None:
            sign = -1.0 if result.get("direction") == "reduction" else 1.0
            axes.plot(line_v, baseline_ua + sign * threshold * 1e6, color="tab:orange", lw=0.8,
                      ls="--", label=f"threshold {threshold * 1e6:.3g} µA/cm²")
    for key, colour, name in (("onset_threshold_v", "tab:red", "threshold onset"),
                              ("onset_tangent_v", "tab:purple", "tangent onset")):
        onset = result.get(key)
        if onset is not None:
            axes.axvline(onset, color=colour, lw=1.0, ls="-.", label=f"{name} {onset:.3f} V")
    axes.set_xlabel("E (V vs Na9Sn4)")
    axes.set_ylabel("j (µA/cm²)")
    axes.set_title(f"LSV ({result.get('direction') or 'sweep'})")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return _save(figure, path)


# --------------------------------------------------------------------------- DC polarization


def segment_starts(labels: np.ndarray) -> np.ndarray:
    """Indices where a run of equal labels (a step) begins, 0 included."""
    labels = np.asarray(labels)
    if not labels.size:
        return np.array([], dtype=np.int64)
    return np.concatenate(([0], np.flatnonzero(labels[1:] != labels[:-1]) + 1))


def broken_line(x: np.ndarray, y: np.ndarray, labels: np.ndarray | None,
                keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``x[keep]``, ``y[keep]`` with a NaN between consecutive kept samples of different ``labels``
    (steps): a line drawn from them breaks at every step boundary instead of joining two steps."""
    keep = np.arange(len(x)) if keep is None else keep
    x, y = np.asarray(x, dtype=float)[keep], np.asarray(y, dtype=float)[keep]
    if labels is None or x.size < 2:
        return x, y
    kept_labels = np.asarray(labels)[keep]
    breaks = np.flatnonzero(kept_labels[1:] != kept_labels[:-1]) + 1
    return np.insert(x, breaks, np.nan), np.insert(y, breaks, np.nan)


def _step_labels(frame: pd.DataFrame) -> np.ndarray | None:
    """A label per sample that changes exactly at step boundaries: the step column, else the set
    voltage; None when the frame has neither."""
    for column in ("step", "setpoint_v"):
        if column in frame.columns:
            return frame[column].to_numpy()
    return None


def dcpol_current_figure(frame: pd.DataFrame, steps: Sequence[dict], path) -> Path:
    """|I| (log scale) against time since each step's start (h), one line per voltage step of
    ``analyze_dcpol``'s result, with the steady current of each step as a dotted line. A step's
    samples are those of ``frame`` (time_s, i_a; optionally step or setpoint_v) between its start_s
    and end_s that belong to its own step: the next step's first sample, logged at the same instant
    as this step's last, is not drawn as part of it. Without steps the whole record is drawn, broken
    at every step boundary."""
    time = _column(frame, "time_s", "DC polarization figure")
    current = _column(frame, "i_a", "DC polarization figure")
    labels = _step_labels(frame)
    if labels is None:
        # Without labels, a sample at a boundary instant goes to the step that starts there.
        starts = np.array([step["start_s"] for step in steps], dtype=float)
        labels = np.searchsorted(starts, time, side="right")
    pieces = []
    for step in steps:
        window = (time >= step["start_s"]) & (time <= step["end_s"])
        if not window.any():
            pieces.append((f"{step['voltage_v']:.3g} V", time[:0], current[:0], step["steady_current_a"]))
            continue
        # The step is the run of labels holding most of the window's samples.
        values, counts = np.unique(labels[window], return_counts=True)
        inside = window & (labels == values[np.argmax(counts)])
        pieces.append((f"{step['voltage_v']:.3g} V", time[inside] - step["start_s"], current[inside],
                       step["steady_current_a"]))
    if not steps:
        t, i = broken_line(time - (time[0] if time.size else 0.0), current, labels, thin(time.size))
        pieces.append(("record", t, i, None))
    largest = max((np.nanmax(np.abs(c)) for _, _, c, _ in pieces if c.size), default=1.0)
    scale, unit = current_unit(largest)
    figure = _figure()
    axes = figure.add_subplot()
    for label, t, i, steady in pieces:
        keep = np.arange(t.size) if not steps else thin(t.size)
        line, = axes.plot(t[keep] / SECONDS_PER_HOUR, np.abs(i[keep]) / scale, lw=1.0, label=label)
        if steady is not None and steady != 0 and t.size:
            axes.hlines(abs(steady) / scale, 0, np.nanmax(t) / SECONDS_PER_HOUR, colors=line.get_color(),
                        linestyles=":", lw=1.0)
    if any(np.any(i[np.isfinite(i)] != 0) for _, _, i, _ in pieces):
        axes.set_yscale("log")
    axes.set_xlabel("time in step (h)" if steps else "time since record start (h)")
    axes.set_ylabel(f"|I| ({unit})")
    axes.set_title("DC polarization: current decay (dotted: steady current)")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3, which="both")
    return _save(figure, path)


def dcpol_iv_figure(result: dict, path) -> Path:
    """Steady current against step voltage (filled: converged, open: not converged) with the line
    whose slope gives σe (``analyze_dcpol``'s result: steps, sigma_e_s_per_cm, offset_a, area_cm2,
    thickness_cm, method)."""
    steps = result.get("steps") or []
    if not steps:
        raise FigureDataError("DC polarization I-V figure: the result has no steps")
    volts = np.array([s["voltage_v"] for s in steps], dtype=float)
    amps = np.array([s["steady_current_a"] for s in steps], dtype=float)
    converged = np.array([bool(s.get("converged")) for s in steps])
    scale, unit = current_unit(float(np.abs(amps).max()) or 1.0)
    figure = _figure()
    axes = figure.add_subplot()
    axes.plot(volts[converged], amps[converged] / scale, "o", color="tab:blue", label="converged")
    axes.plot(volts[~converged], amps[~converged] / scale, "o", mfc="none", color="tab:blue",
              label="not converged")
    sigma, area, thickness = (result.get(k) for k in ("sigma_e_s_per_cm", "area_cm2", "thickness_cm"))
    if None not in (sigma, area, thickness):
        slope_a_per_v = sigma * area / thickness
        offset = result.get("offset_a") or 0.0  # the 'ratio' method has no offset: line through 0
        line_v = np.linspace(min(0.0, volts.min()), volts.max() * 1.05, 50)
        axes.plot(line_v, (offset + slope_a_per_v * line_v) / scale, color="tab:red", lw=1.0,
                  label=f"{result.get('method', 'fit')}: σe = {sigma:.3g} S/cm")
    axes.set_xlabel("V (V)")
    axes.set_ylabel(f"I steady ({unit})")
    axes.set_title("DC polarization: steady current vs voltage")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return _save(figure, path)


# --------------------------------------------------------------------------- cycling


def capacity_figure(cycles: Sequence[dict], path) -> Path:
    """Charge and discharge capacity per cycle (mAh/cm² when every cycle has it, else mAh) and the
    coulombic efficiency (%, right axis) of ``summarize_cycles``'s cycle entries."""
    numbered = [c for c in cycles if c["cycle"] >= 1]
    if not numbered:
        raise FigureDataError("capacity figure: no cycle numbered 1 or above")
    areal = any(c.get(f"{half}_mah_per_cm2") is not None
                for c in numbered for half in ("charge", "discharge"))
    suffix, unit = ("_mah_per_cm2", "mAh/cm²") if areal else ("_mah", "mAh")
    number = np.array([c["cycle"] for c in numbered])

    def values(key):
        return np.array([np.nan if c.get(key) is None else c[key] for c in numbered], dtype=float)

    figure = _figure(right=0.88)  # room for the CE axis
    axes = figure.add_subplot()
    marker = "o" if number.size <= 150 else None
    axes.plot(number, values("charge" + suffix), marker=marker, ms=3, lw=1.0, color="tab:red",
              label="charge")
    axes.plot(number, values("discharge" + suffix), marker=marker, ms=3, lw=1.0, color="tab:blue",
              label="discharge")
    axes.set_xlabel("cycle")
    axes.set_ylabel(f"capacity ({unit})")
    axes.set_ylim(bottom=0)
    efficiency = axes.twinx()
    efficiency.plot(number, values("ce_pct"), marker="s" if marker else None, ms=2.5, lw=0.8,
                    color="tab:green", label="CE")
    efficiency.set_ylabel("coulombic efficiency (%)", color="tab:green")
    handles = axes.get_legend_handles_labels()
    more = efficiency.get_legend_handles_labels()
    axes.legend(handles[0] + more[0], handles[1] + more[1], fontsize="small", loc="lower left")
    axes.grid(alpha=0.3)
    axes.set_title("Capacity and coulombic efficiency")
    return _save(figure, path)


def half_cycle_curve(record: PreparedRecord, cycle: int, state: int) -> tuple[np.ndarray, np.ndarray]:
    """(capacity passed since the half cycle began in Ah, ≥ 0; voltage in V) of one half cycle
    (``state`` CHARGE or DISCHARGE) of a prepared record; empty arrays when it is absent."""
    selected = (record.cycle == cycle) & (record.state == state)
    return np.cumsum(np.abs(record.charge_ah[selected])), record.voltage_v[selected]


def voltage_curves_figure(record: PreparedRecord, cycles: Sequence[int], area_cm2: float | None,
                          path) -> Path:
    """Voltage against capacity (mAh/cm² with ``area_cm2``, else mAh) of the charge (solid) and
    discharge (dashed) of each cycle in ``cycles``, one colour per cycle."""
    scale, unit = (1000.0 / area_cm2, "mAh/cm²") if area_cm2 else (1000.0, "mAh")
    figure = _figure()
    axes = figure.add_subplot()
    for colour, cycle in zip(_colours(len(cycles)), cycles):
        label = f"cycle {cycle}"
        for state, style in ((CHARGE, "-"), (DISCHARGE, "--")):
            capacity, voltage = half_cycle_curve(record, cycle, state)
            if not capacity.size:
                continue
            keep = thin(capacity.size)
            axes.plot(capacity[keep] * scale, voltage[keep], ls=style, lw=1.0, color=colour, label=label)
            label = None  # one legend entry per cycle
    axes.set_xlabel(f"capacity ({unit})")
    axes.set_ylabel("cell voltage (V)")
    axes.set_title("Voltage profiles (solid: charge, dashed: discharge)")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def dqdv_figure(record: PreparedRecord, cycles: Sequence[int], path) -> tuple[Path, list[str]]:
    """dQ/dV (mAh/V) of the constant-current charge and discharge of each cycle in ``cycles``
    (``analysis.dqdv.dqdv`` on the CC samples; CV and rests excluded). Returns the path and a note
    for each half cycle that gave no curve."""
    figure = _figure()
    axes = figure.add_subplot()
    notes: list[str] = []
    for colour, cycle in zip(_colours(len(cycles)), cycles):
        for half, state, style in (("charge", CHARGE, "-"), ("discharge", DISCHARGE, "--")):
            selected = (record.cycle == cycle) & (record.state == state) & ~record.is_cv
            try:
                curve = dqdv(record.voltage_v[selected], np.cumsum(record.charge_ah[selected]),
                             direction=half)
            except DqdvInputError as error:
                notes.append(f"cycle {cycle} {half}: no dQ/dV ({error})")
                continue
            axes.plot(curve["voltage_v"], curve["dqdv_ah_per_v"] * 1000.0, ls=style, lw=1.0,
                      color=colour, label=f"cycle {cycle} {half}")
    axes.axhline(0.0, color="0.5", lw=0.5)
    axes.set_xlabel("cell voltage (V)")
    axes.set_ylabel("dQ/dV (mAh/V)")
    axes.set_title("Differential capacity (CC segments)")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return _save(figure, path), notes


def _colours(n: int) -> list:
    from matplotlib import colormaps

    return [colormaps["viridis"](x) for x in np.linspace(0.0, 0.85, max(n, 1))]


def temperature_colours(temperatures_c: Sequence[float]) -> list:
    """Blue (coldest) to red (warmest) colours, as in the EIS figures."""
    from matplotlib import colormaps

    low, high = min(temperatures_c, default=0.0), max(temperatures_c, default=0.0)
    span = high - low or 1.0
    return [colormaps["coolwarm"]((t - low) / span) for t in temperatures_c]


# --------------------------------------------------------------------------- cold discharge


def cold_discharge_figure(rows: Sequence[dict], path) -> Path:
    """Discharge capacity at each temperature as bars in measured order (mAh/cm² when every row has
    it, else mAh), labelled with the ratio to the reference discharge (%) when known."""
    if not rows:
        raise FigureDataError("cold-discharge figure: the table has no rows")
    areal = all(r.get("discharge_mah_per_cm2") is not None for r in rows)
    key, unit = ("discharge_mah_per_cm2", "mAh/cm²") if areal else ("discharge_mah", "mAh")
    heights = [np.nan if r.get(key) is None else r[key] for r in rows]
    labels = [f"{r['temperature_c']:.1f} °C" for r in rows]
    figure = _figure()
    axes = figure.add_subplot()
    colours = temperature_colours([r["temperature_c"] for r in rows])
    bars = axes.bar(range(len(rows)), heights, color=colours, edgecolor="0.2")
    axes.set_xticks(range(len(rows)), labels)
    for bar, row in zip(bars, rows):
        ratio = row.get("ratio_to_reference_pct")
        if ratio is not None:
            axes.annotate(f"{ratio:.0f} %", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                          ha="center", va="bottom", fontsize="small")
    axes.set_xlabel("discharge temperature (chamber)")
    axes.set_ylabel(f"discharge capacity ({unit})")
    axes.set_title("Cold discharge")
    axes.grid(alpha=0.3, axis="y")
    return _save(figure, path)


def discharge_curves_figure(curves: Sequence[tuple[float, np.ndarray, np.ndarray]], unit: str,
                            path) -> Path:
    """Voltage (V) against discharged capacity of curves ``(temperature_c, capacity, voltage)``,
    capacity already in ``unit``, coloured by temperature."""
    if not curves:
        raise FigureDataError("discharge-curve figure: no curves")
    figure = _figure()
    axes = figure.add_subplot()
    for colour, (temperature, capacity, voltage) in zip(temperature_colours([c[0] for c in curves]), curves):
        keep = thin(len(capacity))
        axes.plot(np.asarray(capacity)[keep], np.asarray(voltage)[keep], lw=1.2, color=colour,
                  label=f"{temperature:.1f} °C")
    axes.set_xlabel(f"discharged capacity ({unit})")
    axes.set_ylabel("cell voltage (V)")
    axes.set_title("Discharge curves")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return _save(figure, path)


# --------------------------------------------------------------------------- symmetric cell


def overpotential_figure(cycles: Sequence[dict], path) -> Path:
    """Overpotential (mV) of a symmetric cell per cycle: each half cycle (positive and negative
    current) and their mean, from ``analysis.symmetric.symmetric_overpotential``'s cycle entries
    (cycle, overpotential_charge_v, overpotential_discharge_v, overpotential_mean_v; None: absent)."""
    if not cycles:
        raise FigureDataError("overpotential figure: the result has no cycles")
    number = np.array([c["cycle"] for c in cycles])

    def millivolts(key):
        return np.array([np.nan if c[key] is None else c[key] * 1000.0 for c in cycles], dtype=float)

    marker = "o" if number.size <= 150 else None
    figure = _figure()
    axes = figure.add_subplot()
    axes.plot(number, millivolts("overpotential_charge_v"), marker=marker, ms=2.5, lw=0.8,
              color="tab:red", label="positive current")
    axes.plot(number, millivolts("overpotential_discharge_v"), marker=marker, ms=2.5, lw=0.8,
              color="tab:blue", label="negative current")
    axes.plot(number, millivolts("overpotential_mean_v"), lw=1.4, color="k", label="mean")
    axes.set_xlabel("cycle")
    axes.set_ylabel("overpotential |V| (mV)")
    axes.set_ylim(bottom=0)
    axes.set_title("Symmetric cell: overpotential per cycle")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def voltage_time_figure(frame: pd.DataFrame, cycles: Sequence[int], path) -> Path:
    """Cell voltage (mV when every |V| < 1 V, else V) against time (h) of the given cycles of a
    cycling record (test_time_s or time_s, voltage_v, cycle; step optional), one panel per run of
    consecutive cycles, each line broken at every step boundary and between cycles."""
    time_column = "test_time_s" if "test_time_s" in frame.columns else "time_s"
    time = _column(frame, time_column, "voltage-time figure")
    voltage = _column(frame, "voltage_v", "voltage-time figure")
    cycle = _column(frame, "cycle", "voltage-time figure")
    step = frame["step"].to_numpy() if "step" in frame.columns else cycle
    groups = np.split(np.asarray(sorted(cycles)), np.flatnonzero(np.diff(sorted(cycles)) > 1) + 1)
    groups = [g for g in groups if g.size and np.isin(cycle, g).any()]
    if not groups:
        raise FigureDataError(f"voltage-time figure: the record has none of the cycles {list(cycles)}")
    # A symmetric cell's overpotential is tens of mV: read in mV, not in hundredths of a volt.
    scale, unit = (1000.0, "mV") if np.nanmax(np.abs(voltage), initial=0.0) < 1.0 else (1.0, "V")
    figure = _figure((6.4, 3.6))
    figure.subplots_adjust(left=0.15, wspace=0.35)  # room for each panel's voltage ticks
    for position, group in enumerate(groups):
        axes = figure.add_subplot(1, len(groups), position + 1)
        selected = np.flatnonzero(np.isin(cycle, group))
        labels = np.char.add(np.char.add(cycle[selected].astype(int).astype(str), ":"),
                             np.asarray(step)[selected].astype(str))
        t, v = broken_line(time[selected] / SECONDS_PER_HOUR, voltage[selected] * scale, labels,
                           thin(selected.size))
        axes.plot(t, v, lw=0.9, color="tab:blue")
        axes.axhline(0.0, color="0.5", lw=0.5)
        axes.set_title(f"cycle {group[0]}" + (f"–{group[-1]}" if group.size > 1 else ""), fontsize="small")
        axes.set_xlabel("time (h)")
        axes.grid(alpha=0.3)
        if position == 0:
            axes.set_ylabel(f"cell voltage ({unit})")
    return _save(figure, path)


# --------------------------------------------------------------------------- chamber


def chamber_figure(frame: pd.DataFrame, path) -> Path:
    """Chamber temperature and set point (°C) against time since the run began (h); ``frame`` has
    time_s, temperature_c and optionally setpoint_c. Failed readings (NaN) leave gaps."""
    time_h = _column(frame, "time_s", "chamber figure") / SECONDS_PER_HOUR
    temperature = _column(frame, "temperature_c", "chamber figure")
    keep = thin(time_h.size)
    figure = _figure((6.4, 3.4))
    axes = figure.add_subplot()
    axes.plot(time_h[keep], temperature[keep], lw=1.0, color="tab:red", label="chamber")
    if "setpoint_c" in frame.columns:
        setpoint = frame["setpoint_c"].to_numpy(dtype=float)
        axes.step(time_h[keep], setpoint[keep], where="post", lw=0.8, ls="--", color="0.3",
                  label="set point")
    axes.set_xlabel("time since run start (h)")
    axes.set_ylabel("temperature (°C)")
    axes.set_title("Chamber log")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return _save(figure, path)
