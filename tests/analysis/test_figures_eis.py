"""EIS figures from fitted spectra (kept apart from test_eis.py: drawing costs seconds, and the
mutation run of analysis/eis.py repeats that file's tests for every mutant)."""

from analysis.eis import analyze_eis_series, fit_spectrum
from analysis.figures_eis import arrhenius_plot, nyquist_overlay
from tests.analysis.test_eis import _series


def test_figures_are_written(tmp_path):
    spectra = _series([-10, 20, 50])
    fits = [dict(s, fit=fit_spectrum(s["frequency_hz"], s["z_real_ohm"], s["z_imag_ohm"])) for s in spectra]
    nyquist = nyquist_overlay(fits, tmp_path / "nyquist.png")
    series = analyze_eis_series(spectra, 1000, 10)
    arrhenius = arrhenius_plot(series["spectra"], series["arrhenius"]["total"], tmp_path / "arrhenius.png")
    for path in (nyquist, arrhenius):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
