"""PNG figures for EIS runs: Nyquist overlay coloured by temperature and the Arrhenius plot.

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


def nyquist_overlay(spectra_with_fits: Iterable[Mapping], path) -> Path:
    """Nyquist plot (−Z'' against Z', ohm) of several spectra, coloured by temperature.

    Each item holds "frequency_hz", "z_real_ohm", "z_imag_ohm" and optionally "temperature_c",
    "label" and "fit" (an analysis.eis.SpectrumFit, drawn as a line). When fits are given, the axes
    show the region up to twice the largest R_total so that arcs stay visible next to the spikes.
    Returns the PNG path.
    """
    items = list(spectra_with_fits)
    temperatures = [item.get("temperature_c") for item in items]
    known = [t for t in temperatures if t is not None]
    norm = Normalize(min(known), max(known) if max(known) > min(known) else min(known) + 1) if known else None
    cmap = colormaps["coolwarm"]

    figure = Figure(figsize=(6.4, 5.2))
    axes = figure.add_subplot()
    r_totals = []
    for index, (item, temperature) in enumerate(zip(items, temperatures)):
        colour = cmap(norm(temperature)) if temperature is not None else f"C{index % 10}"
        label = item.get("label") or (f"{temperature:g} °C" if temperature is not None else f"spectrum {index}")
        z_real = np.asarray(item["z_real_ohm"], dtype=float)
        z_imag = np.asarray(item["z_imag_ohm"], dtype=float)
        axes.plot(z_real, -z_imag, "o", ms=3, color=colour, label=label)
        fit = item.get("fit")
        if fit is not None:
            f = np.asarray(item["frequency_hz"], dtype=float)
            dense = np.geomspace(f.max(), f.min(), 400)
            z_fit = fit.predict(dense)
            axes.plot(z_fit.real, -z_fit.imag, "-", lw=1, color=colour)
            r_totals.append(fit.r_total_ohm)
    if r_totals:
        span = 2 * max(r_totals)
        axes.set_xlim(-0.05 * span, span)
        axes.set_ylim(-0.05 * span, span)
    axes.set_aspect("equal", adjustable="box")
    axes.set_xlabel("Z' / Ω")
    axes.set_ylabel("−Z'' / Ω")
    if norm is not None:
        figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, label="temperature / °C")
    elif items:
        axes.legend(fontsize="small")
    return _save(figure, path)


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
