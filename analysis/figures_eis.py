"""PNG figures for EIS runs: the pellet's Nyquist plots (an overview and a zoom on the region where
R_total is read), the cell's Nyquist plots with R_ohmic and R_pol marked, and the Arrhenius plot.

Figures are built on matplotlib's Agg canvas directly (no pyplot), so drawing a report never
touches the process-wide backend that a Qt GUI in the same process may be using.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from analysis.arrhenius import arrhenius_sigma_s_per_cm

_DPI = 150


MAX_ZOOM_PANELS = 12
ZOOM_COLUMNS = 4
# A zoom panel spans the data from the highest frequency to R_total (at least ZOOM_MIN_WIDTH × R_total
# wide), a margin of ZOOM_MARGIN of that width before it and ZOOM_BEYOND after it: the arc and the
# foot of the electrode spike, where the intercept is read.
ZOOM_MIN_WIDTH = 0.15
ZOOM_MARGIN = 0.15
ZOOM_BEYOND = 0.6
# The overview spans Z' up to this multiple of the largest R_total: every arc, not the whole spike.
OVERVIEW_SPAN = 2.5


def nyquist_overlay(spectra_with_fits: Iterable[Mapping], path) -> Path:
    """Nyquist plot (−Z'' against Z', ohm) of several spectra, coloured by temperature: an overview
    of every spectrum (Z' up to 2.5 × the largest R_total), then one panel per spectrum zoomed to
    the high-frequency region where its R_total is read, with R_total (and R_bulk) marked.

    Each item holds "frequency_hz", "z_real_ohm", "z_imag_ohm" and optionally "temperature_c",
    "label", "fit" (an analysis.eis.SpectrumFit, drawn as a line), "r_total_ohm" and "r_bulk_ohm"
    (the reported values, marked; without r_total_ohm the fit's, else the panel spans the
    high-frequency half of the spectrum). At most 12 zoom panels (evenly chosen spectra).
    Returns the PNG path.
    """
    items = [dict(item) for item in spectra_with_fits]
    colours, norm = _temperature_colours(items)
    zoomed = _evenly(len(items), MAX_ZOOM_PANELS)
    rows = -(-len(zoomed) // ZOOM_COLUMNS)
    columns = min(len(zoomed), ZOOM_COLUMNS) or 1
    figure = Figure(figsize=(2.6 * max(columns, 2.5), 4.6 + 2.6 * rows))
    grid = figure.add_gridspec(1 + rows, columns, height_ratios=[1.8] + [1.0] * rows)
    overview = figure.add_subplot(grid[0, :])
    for index, (item, colour) in enumerate(zip(items, colours)):
        _draw_spectrum(overview, item, colour, label=_label(item, index))
    r_totals = [r for r in (_r_total(item) for item in items) if r is not None and r > 0]
    if r_totals:
        span = OVERVIEW_SPAN * max(r_totals)
        overview.set_xlim(-0.05 * span, span)
        overview.set_ylim(-0.05 * span, 0.5 * span)
        overview.set_aspect("equal", adjustable="box")
    else:
        overview.set_aspect("equal", adjustable="datalim")
    overview.set_xlabel("Z' / Ω")
    overview.set_ylabel("−Z'' / Ω")
    overview.set_title("All spectra (points: measured, lines: circuit fits)", fontsize="medium")
    if norm is not None:
        figure.colorbar(ScalarMappable(norm=norm, cmap=colormaps["coolwarm"]), ax=overview,
                        label="temperature / °C")
    elif items:
        overview.legend(fontsize="small")
    for position, index in enumerate(zoomed):
        item = items[index]
        axes = figure.add_subplot(grid[1 + position // columns, position % columns])
        _draw_spectrum(axes, item, colours[index])
        r_total = _r_total(item)
        marks = [("R_total", r_total, "k")] if r_total is not None else []
        if item.get("r_bulk_ohm") is not None:
            marks.append(("R_bulk", item["r_bulk_ohm"], "0.45"))
        _mark_resistances(axes, marks)
        _zoom(axes, item, r_total)
        axes.set_title(_label(item, index), fontsize="small")
        axes.tick_params(labelsize="x-small")
    return _save(figure, path)


def cell_nyquist_figure(spectra: Iterable[Mapping], path) -> Path:
    """Nyquist plots of a cell's impedance at each temperature, one panel per spectrum, with the
    ohmic resistance and the polarization resistance (R_ohmic + R_pol = R_total) marked.

    Each item holds "z_real_ohm", "z_imag_ohm", "temperature_c" and the analysis' "r_ohmic_ohm" and
    "r_polarization_ohm" (None when unknown: not marked). Returns the PNG path.
    """
    items = [dict(item) for item in spectra]
    if not items:
        raise ValueError("cell Nyquist figure: no spectra")
    colours, _ = _temperature_colours(items)
    columns = min(len(items), 3)
    rows = -(-len(items) // columns)
    figure = Figure(figsize=(3.6 * columns, 3.0 * rows))
    for index, (item, colour) in enumerate(zip(items, colours)):
        axes = figure.add_subplot(rows, columns, index + 1)
        _draw_spectrum(axes, item, colour)
        ohmic, polarization = item.get("r_ohmic_ohm"), item.get("r_polarization_ohm")
        marks = [("R_ohmic", ohmic, "k")] if ohmic is not None else []
        if ohmic is not None and polarization is not None:
            marks.append(("R_ohmic+R_pol", ohmic + polarization, "tab:purple"))
            axes.annotate("", xy=(ohmic + polarization, 0), xytext=(ohmic, 0),
                          arrowprops={"arrowstyle": "<->", "color": "tab:purple", "lw": 1.0})
            axes.text(ohmic + polarization / 2, 0, f"R_pol {polarization:.4g} Ω", ha="center",
                      va="bottom", fontsize="x-small", color="tab:purple")
        _mark_resistances(axes, marks)
        z_real = np.asarray(item["z_real_ohm"], dtype=float)
        high = max(float(np.nanmax(z_real)), ohmic + polarization if None not in (ohmic, polarization) else 0)
        low = min(0.0, float(np.nanmin(z_real)))
        span = 1.1 * (high - low) or 1.0
        axes.set_xlim(low, low + span)
        axes.set_ylim(-0.2 * span, 0.6 * span)
        axes.set_aspect("equal", adjustable="box")
        axes.set_title(_label(item, index), fontsize="small")
        axes.set_xlabel("Z' / Ω", fontsize="small")
        axes.set_ylabel("−Z'' / Ω", fontsize="small")
        axes.tick_params(labelsize="x-small")
    return _save(figure, path)


def _temperature_colours(items: list[dict]):
    temperatures = [item.get("temperature_c") for item in items]
    known = [t for t in temperatures if t is not None]
    if not known:
        return [f"C{i % 10}" for i in range(len(items))], None
    norm = Normalize(min(known), max(known) if max(known) > min(known) else min(known) + 1)
    cmap = colormaps["coolwarm"]
    return [cmap(norm(t)) if t is not None else f"C{i % 10}" for i, t in enumerate(temperatures)], norm


def _label(item: Mapping, index: int) -> str:
    temperature = item.get("temperature_c")
    parts = [item.get("label")] if item.get("label") else []
    if temperature is not None:
        parts.append(f"{temperature:g} °C")
    return ", ".join(parts) or f"spectrum {index}"


def _draw_spectrum(axes, item: Mapping, colour, label: str | None = None) -> None:
    z_real = np.asarray(item["z_real_ohm"], dtype=float)
    z_imag = np.asarray(item["z_imag_ohm"], dtype=float)
    axes.plot(z_real, -z_imag, "o", ms=2.5, color=colour, label=label)
    fit = item.get("fit")
    if fit is not None:
        f = np.asarray(item["frequency_hz"], dtype=float)
        dense = np.geomspace(f.max(), f.min(), 400)
        z_fit = fit.predict(dense)
        axes.plot(z_fit.real, -z_fit.imag, "-", lw=1, color=colour)
    axes.axhline(0.0, color="0.6", lw=0.5)
    axes.grid(alpha=0.3)


def _r_total(item: Mapping) -> float | None:
    if item.get("r_total_ohm") is not None:
        return float(item["r_total_ohm"])
    fit = item.get("fit")
    return None if fit is None else float(fit.r_total_ohm)


def _mark_resistances(axes, marks) -> None:
    """Dashed vertical lines at the given resistances (name, ohm, colour), labelled below the axis;
    the first label to the right of its line, later ones to the left, so neighbours do not collide."""
    for position, (name, value, colour) in enumerate(marks):
        axes.axvline(value, color=colour, lw=0.8, ls="--")
        axes.plot([value], [0.0], marker="|", ms=12, mew=1.5, color=colour)
        right = position == 0
        axes.annotate(f"{name}\n{value:.4g} Ω", (value, 0.0), xytext=(3 if right else -3, -4),
                      textcoords="offset points", fontsize="x-small", color=colour, va="top",
                      ha="left" if right else "right")


def _zoom(axes, item: Mapping, r_total: float | None) -> None:
    """Limit ``axes`` to the region where R_total is read: from the high-frequency end of the data
    (at least 15 % of R_total below R_total) to a little past R_total, where the electrode spike
    begins; square, so arcs look like arcs. Without R_total: the high-frequency half of the data."""
    z_real = np.asarray(item["z_real_ohm"], dtype=float)
    if r_total is not None and r_total > 0:
        width = max(r_total - float(np.nanmin(z_real)), ZOOM_MIN_WIDTH * r_total)
        low, high = r_total - (1 + ZOOM_MARGIN) * width, r_total + ZOOM_BEYOND * width
    else:
        frequency = np.asarray(item.get("frequency_hz", np.arange(z_real.size)[::-1]), dtype=float)
        high_half = frequency >= np.sqrt(frequency.max() * frequency.min())
        low, high = float(np.nanmin(z_real)), float(np.nanmax(z_real[high_half]))
    span = (high - low) or 1.0
    axes.set_xlim(low, low + span)
    axes.set_ylim(-0.25 * span, 0.75 * span)
    axes.set_aspect("equal", adjustable="box")


def _evenly(n: int, at_most: int) -> list[int]:
    if n <= at_most:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, at_most).round().astype(int).tolist()))


def arrhenius_plot(points: Iterable[Mapping], fit: Mapping | None, path, which: str = "total") -> Path:
    """σ (S/cm, log scale) against 1000/T (K⁻¹) with the σT-form fit line.

    points: dicts with "temperature_c" and "sigma_<which>_s_per_cm" (optionally
    "sigma_<which>_stderr_s_per_cm" for error bars), e.g. analyze_eis_series()["spectra"]; points
    with a missing value are skipped. fit: a fit_arrhenius dict or None. Returns the PNG path.
    """
    key = f"sigma_{which}_s_per_cm"
    usable = [p for p in points if p.get("temperature_c") is not None and p.get(key) is not None]
    t_k = np.array([p["temperature_c"] for p in usable], dtype=float) + 273.15
    sigma = np.array([p[key] for p in usable], dtype=float)
    stderr = np.array([p.get(f"sigma_{which}_stderr_s_per_cm") or 0.0 for p in usable], dtype=float)

    figure = Figure(figsize=(6.0, 4.5))
    axes = figure.add_subplot()
    axes.errorbar(1000 / t_k, sigma, yerr=stderr if stderr.any() else None, fmt="o", label=f"σ_{which}")
    if fit is not None:
        t_line_c = np.linspace(fit["t_min_c"], fit["t_max_c"], 50)
        sigma_line = arrhenius_sigma_s_per_cm(t_line_c, fit["ea_ev"], fit["prefactor_s_k_per_cm"])
        error = f" ± {fit['ea_stderr_ev']:.3f}" if fit.get("ea_stderr_ev") is not None else ""
        axes.plot(1000 / (t_line_c + 273.15), sigma_line, "-",
                  label=f"σT fit: Ea = {fit['ea_ev']:.3f}{error} eV")
    axes.set_yscale("log")
    axes.set_xlabel("1000 / T / K⁻¹")
    axes.set_ylabel("σ / S cm⁻¹")
    if usable:
        axes.legend(fontsize="small")
        top = axes.secondary_xaxis("top", functions=(_inverse_kilo_to_celsius, _celsius_to_inverse_kilo))
        top.set_xlabel("T / °C")
    return _save(figure, path)


def _inverse_kilo_to_celsius(x):
    with np.errstate(divide="ignore"):
        return 1000 / np.asarray(x, dtype=float) - 273.15


def _celsius_to_inverse_kilo(t_c):
    with np.errstate(divide="ignore"):
        return 1000 / (np.asarray(t_c, dtype=float) + 273.15)


def _save(figure: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    FigureCanvasAgg(figure).print_png(str(path))
    return path
