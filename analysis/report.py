"""The run report: one Markdown file with the run's facts, its analysis results and PNG figures.

``render_report(run, frames, out_dir)`` writes ``out_dir/report.md`` and the figures next to it (linked
by relative paths, so the folder can be moved or zipped as a whole). ``run`` is ``storage.readers.get_run``'s
dict, ``frames`` the run's streams by name (``storage.readers.read_stream``). Streams are recognised by
their descriptor metadata "role" (eis_spectrum, cell_eis, chamber_log, lsv, dc_polarization, cycling) and
analysis results by name (eis, lsv, dcpol, cycling, symmetric, cold_discharge); other results are shown
as JSON. A cold-discharge run is summarised per discharge temperature: CE and retention compare only
cycles discharged at the same temperature.

The report never fails for missing data: an aborted run without spectra, a result without its stream
or a figure whose data cannot be drawn gives a sentence saying what is missing, repeated in a closing
"Missing" list. Unknown values (None) print as "—". A field that a stored analysis result lacks is
another matter: the result and the report disagree (a renamed field), and ``ReportFieldError`` names it
rather than printing "—" for a value that was computed. Text that comes from files or instruments
(descriptions, names, notes, warnings) is escaped, so it shows as written and never as Markdown or HTML.
Figures thin long records for drawing and never join two steps with a line; tables use every value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import figures, figures_eis
from analysis.cycling import DISCHARGE, PreparedRecord, prepare_record
from analysis.eis import fit_spectrum
from analysis.physics import disc_area_cm2
from config.documents import StreamRole

DASH = "—"
REPORT_NAME = "report.md"
CYCLE_TABLE_HEAD = 5
CYCLE_TABLE_TAIL = 5
VOLTAGE_PROFILE_CYCLES = (1, 2, 10)

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
# Unit suffixes of names (longest first), shown as units in the sample and step tables.
_UNIT_SUFFIXES = (
    ("_mah_per_cm2", "mAh/cm²"), ("_mg_per_cm2", "mg/cm²"), ("_a_per_cm2", "A/cm²"),
    ("_s_per_cm", "S/cm"), ("_v_per_s", "V/s"), ("_per_h", "1/h"), ("_mah", "mAh"), ("_pct", "%"),
    ("_ohm", "Ω"), ("_cm2", "cm²"), ("_hz", "Hz"), ("_um", "µm"), ("_mm", "mm"), ("_mg", "mg"),
    ("_ev", "eV"), ("_c", "°C"), ("_v", "V"), ("_a", "A"), ("_s", "s"), ("_h", "h"),
)
_INSTRUMENTS = ("chamber", "potentiostat", "cycler")


# --------------------------------------------------------------------------- result fields


class ReportFieldError(KeyError):
    """A stored analysis result lacks a field that the report shows; the message names the field and
    where it was expected (e.g. "analysis 'eis' spectra[2] has no field 'r_total_ohm'")."""

    def __str__(self) -> str:
        return str(self.args[0])


class Fields:
    """One stored result, or one entry of it, read by field name: a missing field raises
    ``ReportFieldError`` naming it; a field present with the value None is an unknown value."""

    def __init__(self, data, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ReportFieldError(f"{where} is not a mapping of fields but {type(data).__name__}")
        self.data = data
        self.where = where

    def __getitem__(self, key: str):
        try:
            return self.data[key]
        except KeyError:
            raise ReportFieldError(f"{self.where} has no field '{key}'") from None

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def require(self, *keys: str) -> None:
        """Fail on the first of ``keys`` that is missing: fields a figure reads from the result."""
        for key in keys:
            self[key]

    def optional(self, key: str, default=None):
        """A field that results may leave out by design (documented as optional where produced)."""
        return self.data.get(key, default)

    def entries(self, key: str, optional: bool = False) -> list[Fields]:
        """The list field ``key`` as Fields, one per entry; None or (when optional) absent: []."""
        values = self.optional(key) if optional else self[key]
        if values is None:
            return []
        if not isinstance(values, (list, tuple)):
            raise ReportFieldError(f"{self.where} field '{key}' is not a list but {type(values).__name__}")
        return [Fields(value, f"{self.where} {key}[{index}]") for index, value in enumerate(values)]

    def sub(self, key: str) -> Fields | None:
        """The mapping field ``key`` as Fields; None when its value is None."""
        value = self[key]
        return None if value is None else Fields(value, f"{self.where} {key}")


# --------------------------------------------------------------------------- formatting


def _finite(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _exponent(value: float) -> int:
    return int(math.floor(math.log10(abs(value))))


def _decimals(value: float, digits: int) -> int:
    return max(digits - 1 - _exponent(value), 0) if value else 0


def number(value, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits: fixed point for 1e-3 ≤ |value| < 1e5, else
    "m.mm × 10ⁿ"; "—" for None, NaN or a non-number."""
    v = _finite(value)
    if v is None:
        return DASH
    if v == 0:
        return "0"
    exponent = _exponent(v)
    if -3 <= exponent < 5:
        return f"{v:.{_decimals(v, digits)}f}"
    return f"{v / 10 ** exponent:.{digits - 1}f} × 10{str(exponent).translate(_SUPERSCRIPT)}"


def quantity(value, unit: str = "", digits: int = 3) -> str:
    """A number with its unit ("4.60 mS/cm"); "—" alone when the value is unknown."""
    text = number(value, digits)
    return f"{text} {unit}" if unit and text != DASH else text


def with_error(value, stderr, unit: str = "", digits: int = 3) -> str:
    """"value ± stderr unit", both to the decimal place of the uncertainty's second significant
    digit (at least ``digits`` significant digits of the value, at most 3 more); a common power of
    ten outside 1e-3…1e5: "(1.02 ± 0.03) × 10⁻⁸ S/cm". Without a usable stderr: ``quantity``."""
    v, s = _finite(value), _finite(stderr)
    if v is None:
        return DASH
    if s is None or s <= 0 or v == 0:
        return quantity(v, unit, digits)
    exponent = _exponent(v)
    power = 0 if -3 <= exponent < 5 else exponent
    v, s = v / 10 ** power, s / 10 ** power
    floor = _decimals(v, digits)
    finest = floor + 3
    if s < 0.5 * 10.0 ** -finest:  # noise-free data: say how small instead of printing ± 0.000
        body = f"{v:.{floor}f} ± <{10.0 ** -finest:.{finest}f}"
    else:
        places = min(max(1 - _exponent(s), floor), finest)
        body = f"{v:.{places}f} ± {s:.{places}f}"
    if power:
        body = f"({body}) × 10{str(power).translate(_SUPERSCRIPT)}"
    return f"{body} {unit}" if unit else body


def _percent(value, digits: int = 4) -> str:
    return quantity(value, "%", digits)


def fixed(value, decimals: int, unit: str = "") -> str:
    """``value`` with a fixed number of decimals and its unit ("-10.0 °C"); "—" when unknown."""
    v = _finite(value)
    if v is None:
        return DASH
    return f"{v:.{decimals}f}" + (f" {unit}" if unit else "")


def celsius(value) -> str:
    return fixed(value, 1, "°C")


def _yes_no(value) -> str:
    return DASH if value is None else ("yes" if value else "no")


def _time(iso: str | None) -> str:
    if not iso:
        return DASH
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return str(iso)
    suffix = " UTC" if moment.utcoffset() is not None and not moment.utcoffset() else ""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + suffix


def duration(seconds) -> str:
    """A duration in s, min, h or d, e.g. "3 h 05 min"; "—" when unknown or negative."""
    s = _finite(seconds)
    if s is None or s < 0:
        return DASH
    if s < 120:
        return f"{s:.3g} s"
    minutes = int(round(s / 60))
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def _between(start_iso: str | None, end_iso: str | None) -> str:
    try:
        return duration((datetime.fromisoformat(end_iso) - datetime.fromisoformat(start_iso))
                        .total_seconds())
    except (TypeError, ValueError):
        return DASH


def _split_unit(name: str) -> tuple[str, str]:
    """("thickness", "µm") for "thickness_um"; (name, "") when no unit suffix is known."""
    for suffix, unit in _UNIT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], unit
    return name, ""


def _named_value(name: str, value) -> tuple[str, str]:
    """(label, text) of a named value, the unit taken from the name."""
    label, unit = _split_unit(name)
    label = label.replace("_", " ")
    if isinstance(value, bool):
        return label, _yes_no(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return label, quantity(value, unit, 4)
    if value is None or value == "":
        return label, DASH
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
        return label, ", ".join(number(v, 4) for v in value) + (f" {unit}" if unit else "")
    return label, escape(value)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>|#~])")
_LOOSE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_LIST_OR_HEADING = re.compile(r"^(\s*)([-+=]|\d+[.)])(?=\s|$)", re.M)


def escape(text) -> str:
    """Text from a file or an instrument, shown as written: Markdown and HTML characters escaped
    (``&`` as an entity, so no entity or tag is ever formed), line breaks kept as spaces. An
    underscore inside a word (``eis_cell_25c``) is left alone: it cannot start emphasis."""
    text = str(text).replace("&", "&amp;")
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    text = _LOOSE_UNDERSCORE.sub(r"\\_", text)
    return _LIST_OR_HEADING.sub(r"\1\\\2", text).replace("\r", " ").replace("\n", " ")


def _cell(text) -> str:
    return re.sub(r"(?<!\\)\|", r"\\|", str(text)).replace("\n", " ")


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    """Lines of a Markdown table."""
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


# --------------------------------------------------------------------------- context


class _Report:
    """What the section writers share: the run, its frames by role, the output folder, the notes."""

    def __init__(self, run: dict, frames: dict[str, pd.DataFrame], out_dir: Path) -> None:
        self.run = run
        self.frames = frames
        self.out_dir = out_dir
        self.lines: list[str] = []
        self.missing: list[str] = []
        self._stems: set[str] = set()
        described = {s.get("name"): s for s in run.get("streams") or []}
        self.streams: dict[str, dict] = {}
        for name in list(described) + [n for n in frames if n not in described]:
            info = described.get(name, {})
            metadata = info.get("metadata") or (frames[name].attrs.get("metadata") or {}
                                                if name in frames else {})
            self.streams[name] = {"role": metadata.get("role"), "step_index": info.get("step_index"),
                                  "metadata": metadata, "n_points": info.get("n_points")}

    def frames_of(self, role: str, step_index: int | None = None) -> list[tuple[str, pd.DataFrame]]:
        """Non-empty valid frames of ``role`` (of ``step_index`` when one of them has it), in
        stream order."""
        found = [(name, self.frames[name]) for name, info in self.streams.items()
                 if info["role"] == role and name in self.frames and len(self.frames[name])
                 and info["metadata"].get("valid", True)]  # not one measured while suspended
        if step_index is not None:
            same_step = [(n, f) for n, f in found if self.streams[n]["step_index"] == step_index]
            return same_step or found
        return found

    def note_missing(self, text: str) -> None:
        """A sentence saying what is missing; it may quote names and messages, so it is escaped."""
        text = escape(text)
        self.missing.append(text)
        self.lines += [f"*Missing: {text}*", ""]

    def figure(self, stem: str, caption: str, draw: Callable[[Path], object]) -> None:
        """Draw one figure to ``stem``.png and link it; a drawing that refuses its data (ValueError)
        becomes a note instead."""
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)  # stream names may hold spaces or slashes
        name, counter = stem, 2
        while name in self._stems:
            name, counter = f"{stem}_{counter}", counter + 1
        self._stems.add(name)
        path = self.out_dir / f"{name}.png"
        try:
            outcome = draw(path)
        except ValueError as error:
            self.note_missing(f"figure '{caption}' not drawn: {error}")
            return
        self.lines += [f"![{escape(caption)}]({path.name})", ""]
        if isinstance(outcome, tuple):
            for note in outcome[1]:
                self.lines.append(f"- {escape(note)}")
            self.lines.append("")

    def sample_area_cm2(self) -> float | None:
        cell = (self.run.get("protocol") or {}).get("cell") or {}
        if _finite(cell.get("area_cm2")):
            return float(cell["area_cm2"])
        diameter = _finite((self.run.get("sample") or {}).get("diameter_mm"))
        return disc_area_cm2(diameter) if diameter else None


# --------------------------------------------------------------------------- run sections


def _header(report: _Report) -> None:
    run = report.run
    protocol = run.get("protocol") or {}
    description = (protocol.get("protocol") or {}).get("description")
    report.lines += [f"# {escape(run.get('protocol_name') or 'Run')}: run {run.get('run_id', DASH)}", ""]
    if description:
        report.lines += [escape(description), ""]
    report.lines += table(["run", ""], [
        ["run id", run.get("run_id", DASH)],
        ["uid", escape(run.get("uid") or DASH)],
        ["status", f"**{escape(run.get('status') or DASH)}**"],
        ["reason", escape(run.get("reason") or DASH)],
        ["started", _time(run.get("started_at"))],
        ["ended", _time(run.get("ended_at"))],
        ["duration", _between(run.get("started_at"), run.get("ended_at"))],
    ])
    if run.get("traceback"):
        fence = _fence(run["traceback"])
        report.lines += ["<details><summary>traceback</summary>", "", fence,
                         run["traceback"].rstrip(), fence, "", "</details>", ""]


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text``, so the text cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _key_value_section(report: _Report, title: str, values: dict, extra: Sequence = ()) -> None:
    rows = [list(_named_value(k, v)) for k, v in values.items()] + [list(e) for e in extra]
    report.lines += [f"## {title}", ""] + table(["quantity", "value"], rows)


def _sample(report: _Report) -> None:
    sample = report.run.get("sample")
    if not sample:
        report.lines += ["## Sample", ""]
        report.note_missing("no sample description stored with the run")
        return
    area = report.sample_area_cm2()
    extra = [("electrode area (π d²/4)", quantity(area, "cm²", 4))] if sample.get("diameter_mm") else []
    _key_value_section(report, "Sample", sample, extra)
    cell = (report.run.get("protocol") or {}).get("cell")
    if isinstance(cell, dict) and cell:
        _key_value_section(report, "Cell", {k: v for k, v in cell.items() if not isinstance(v, dict)})


def _station(report: _Report) -> None:
    run = report.run
    snapshot = run.get("station") or {}
    config = snapshot.get("config") or {}
    identities = snapshot.get("identities") or {}
    simulated = run.get("simulated", snapshot.get("simulated"))
    rows = [["mode", DASH if simulated is None else
             ("simulated instruments (virtual time)" if simulated else "real instruments")],
            ["station", escape((config.get("station") or {}).get("name") or DASH)]]
    for instrument in _INSTRUMENTS:
        settings = config.get(instrument)
        if not isinstance(settings, dict):
            continue
        parts = [settings.get("driver"), settings.get("model")]
        if settings.get("board"):
            parts.append(f"{settings['board']} board")
        if settings.get("channel") is not None:
            parts.append(f"channel {settings['channel']}")
        if settings.get("transport"):
            parts.append(settings["transport"])
        if settings.get("address"):
            parts.append(str(settings["address"]))
        if identities.get(instrument):
            parts.append(f"identifies as '{identities[instrument]}'")
        rows.append([instrument, escape(", ".join(str(p) for p in parts if p) or DASH)])
    report.lines += ["## Station", ""] + table(["", "details"], rows)
    if not config:
        report.note_missing("no station snapshot stored with the run")


def _summary_text(summary) -> str:
    if not isinstance(summary, dict):
        return DASH
    items = [_named_value(k, v) for k, v in summary.items()
             if isinstance(v, (int, float, str, bool)) or v is None]
    return "; ".join(f"{label} {text}" for label, text in items) or DASH


def _steps(report: _Report) -> None:
    steps = report.run.get("steps") or []
    report.lines += ["## Steps", ""]
    if not steps:
        report.note_missing("no step was started")
        return
    report.lines += table(
        ["#", "kind", "name", "status", "started", "ended", "duration", "summary"],
        [[s.get("step_index", DASH), escape(s.get("kind") or DASH), escape(s.get("name") or DASH),
          escape(s.get("status") or DASH), _time(s.get("started_at")), _time(s.get("ended_at")),
          _between(s.get("started_at"), s.get("ended_at")), _summary_text(s.get("summary"))]
         for s in steps])


def _suspensions(report: _Report) -> None:
    """The run's suspensions (a watched chamber condition lost), if any."""
    suspensions = report.run.get("suspensions") or []
    if not suspensions:
        return
    report.lines += ["## Suspensions", ""] + table(
        ["step", "set point", "from", "to", "state", "reason", "what the step did"],
        [[x.get("step_index", DASH), _named_value("setpoint_c", x.get("setpoint_c"))[1],
          _time(x.get("started_at")), _time(x.get("ended_at")), escape(x.get("state") or DASH),
          escape(x.get("reason") or DASH), escape(x.get("action") or DASH)] for x in suspensions])


def _gaps(report: _Report) -> None:
    """Points an instrument's finite buffer lost while no controller read it, if any."""
    gaps = report.run.get("gaps") or []
    if not gaps:
        return
    report.lines += ["## Gaps", ""] + table(
        ["step", "stream", "technique", "from (s)", "to (s)", "points lost", "by the sampling"],
        [[g.get("step_index", DASH), escape(g["stream"]), escape(g.get("technique") or DASH),
          f"{g['from_s']:.1f}", f"{g['to_s']:.1f}", g["points_lost"],
          DASH if g.get("points_expected") is None else g["points_expected"]] for g in gaps])


def _streams(report: _Report) -> None:
    if not report.streams:
        return
    rows = []
    for name, info in report.streams.items():
        frame = report.frames.get(name)
        points = len(frame) if frame is not None else info["n_points"]
        columns = escape(", ".join(map(str, frame.columns))) if frame is not None else DASH
        rows.append([escape(name), escape(info["role"] or DASH),
                     DASH if info["step_index"] is None else info["step_index"],
                     DASH if points is None else points, columns])
    report.lines += ["## Data streams", ""] + table(["stream", "role", "step", "points", "columns"], rows)


# --------------------------------------------------------------------------- EIS


def _eis(report: _Report, result: Fields, step_index) -> None:
    spectra = result.entries("spectra")
    rows = [[escape(s["file"] or DASH), celsius(s["temperature_c"]), escape(s["model"] or DASH),
             with_error(s["r_total_ohm"], s["r_total_stderr_ohm"], "Ω"),
             with_error(_scaled(s["sigma_total_s_per_cm"], 1e3),
                        _scaled(s["sigma_total_stderr_s_per_cm"], 1e3), "mS/cm"),
             with_error(s["r_bulk_ohm"], s["r_bulk_stderr_ohm"], "Ω"),
             with_error(_scaled(s["sigma_bulk_s_per_cm"], 1e3),
                        _scaled(s["sigma_bulk_stderr_s_per_cm"], 1e3), "mS/cm"),
             quantity(s["kk_residual_pct"], "%", 2)]
            for s in spectra]
    report.lines += ["### Conductivity per spectrum", ""]
    if rows:
        report.lines += table(["spectrum", "T", "model", "R total", "σ total", "R bulk", "σ bulk",
                               "KK residual"], rows)
        warned = [(s["file"] or f"spectrum {i}", w) for i, s in enumerate(spectra) for w in s["warnings"] or []]
        report.lines += [f"- {escape(label)}: {escape(warning)}" for label, warning in warned]
        report.lines += [""] if warned else []
        report.lines += ["σ = L/(R·A); uncertainties are fit standard errors (geometry not included).", ""]
    else:
        report.note_missing("the EIS result holds no spectra")

    arrhenius = result.sub("arrhenius")
    report.lines += ["### Arrhenius fit (σT = A·exp(−Ea/kT))", ""]
    fits = [(key, label, arrhenius.sub(key)) for key, label in (("total", "σ total"), ("bulk", "σ bulk"))
            if arrhenius is not None and arrhenius.optional(key) is not None]
    if fits:
        report.lines += table(
            ["conductivity", "Ea", "R²", "points", "T range", "prefactor A"],
            [[label, with_error(fit["ea_ev"], fit["ea_stderr_ev"], "eV"), number(fit["r2"], 4),
              fit["n_points"], f"{fixed(fit['t_min_c'], 1)} … {celsius(fit['t_max_c'])}",
              quantity(fit["prefactor_s_k_per_cm"], "S·K/cm")] for _, label, fit in fits])
    else:
        report.note_missing("no Arrhenius fit (it needs σ at 2 or more distinct temperatures)")
    _eis_figures(report, spectra, step_index)
    for key, _, fit in fits:
        report.figure(f"eis_arrhenius_{key}", f"Arrhenius plot of σ {key}",
                      lambda path, key=key, fit=fit: figures_eis.arrhenius_plot(
                          [s.data for s in spectra], fit.data, path, key))


def _scaled(value, factor: float):
    v = _finite(value)
    return None if v is None else v * factor


def _eis_figures(report: _Report, spectra: list[Fields], step_index) -> None:
    """The Nyquist figure of the run's pellet spectra, each marked with its reported R_total and
    R_bulk (``spectra``: the EIS result's entries, [] when the data have no analysis)."""
    frames = report.frames_of(StreamRole.EIS_SPECTRUM, step_index)
    if not frames:
        report.note_missing("no impedance spectra stored: no Nyquist plot")
        return
    reported = {s["file"]: s for s in spectra}
    items = []
    for name, frame in frames:
        metadata = report.streams[name]["metadata"]
        entry = reported.get(name)
        temperature = entry["temperature_c"] if entry is not None else None
        if temperature is None:
            temperature = _finite(metadata.get("temperature_c", metadata.get("setpoint_c")))
        items.append({"label": name, "temperature_c": temperature,
                      "r_total_ohm": None if entry is None else entry["r_total_ohm"],
                      "r_bulk_ohm": None if entry is None else entry["r_bulk_ohm"],
                      **{column: frame[column].to_numpy(dtype=float)
                         for column in ("frequency_hz", "z_real_ohm", "z_imag_ohm") if column in frame}})
    incomplete = [item["label"] for item in items if "z_imag_ohm" not in item or "z_real_ohm" not in item]
    if incomplete:
        report.note_missing(f"spectra without z_real_ohm/z_imag_ohm columns: {', '.join(incomplete)}")
    drawable = [_with_fit(item) for item in items if item["label"] not in incomplete]
    if drawable:
        report.figure("eis_nyquist", "Nyquist plots coloured by temperature (lines: circuit fits); "
                                     "below, each spectrum zoomed to where R_total is read",
                      lambda path: figures_eis.nyquist_overlay(drawable, path))


def _with_fit(item: dict) -> dict:
    """The spectrum with its circuit fit for drawing (the stored result keeps numbers, not the fitted
    circuit; the fit is deterministic and takes tens of ms). A spectrum that cannot be fitted is drawn
    as points only."""
    try:
        fit = fit_spectrum(item["frequency_hz"], item["z_real_ohm"], item["z_imag_ohm"])
    except (KeyError, ValueError):
        return item
    return {**item, "fit": fit}


# --------------------------------------------------------------------------- LSV


def _lsv(report: _Report, result: Fields, step_index) -> None:
    """One sweep's result, or {"sweeps": [...]} with a "stream" per sweep."""
    if "sweeps" in result:
        for sweep in result.entries("sweeps"):
            report.lines += [f"### Sweep {escape(sweep['stream'])}", ""]
            _lsv_sweep(report, sweep, step_index, sweep["stream"])
        return
    _lsv_sweep(report, result, step_index, result.optional("stream"))


def _lsv_sweep(report: _Report, result: Fields, step_index, stream: str | None) -> None:
    threshold = _scaled(result["threshold_a_per_cm2"], 1e6)
    low, high = (result["stable_range_v"] or [None, None])[:2]
    base_low, base_high = (result["baseline_window_v"] or [None, None])[:2]
    report.lines += table(["quantity", "value"], [
        ["direction", result["direction"] or DASH],
        ["onset (threshold)", quantity(result["onset_threshold_v"], "V vs Na9Sn4", 4)],
        ["onset (tangent)", quantity(result["onset_tangent_v"], "V vs Na9Sn4", 4)],
        ["threshold above baseline", quantity(threshold, "µA/cm²")],
        ["stable range", f"{number(low)} … {number(high)} V"],
        ["sweep", f"{number(result['start_v'])} → {number(result['end_v'])} V"],
        ["scan rate", quantity(_scaled(result["scan_rate_v_per_s"], 1e6), "µV/s")],
        ["baseline window", f"{number(base_low)} … {number(base_high)} V"],
        ["baseline at sweep start", quantity(_scaled(result["baseline_j_at_start_a_per_cm2"], 1e6),
                                             "µA/cm²")],
        ["smoothing / persistence", f"{quantity(result['smoothing_v'], 'V')} / "
                                    f"{quantity(result['persistence_v'], 'V')}"],
    ])
    if result["onset_threshold_v"] is None:
        report.lines += ["No persistent current above the threshold: the electrolyte is stable over "
                         "the whole sweep.", ""]
    result.require("baseline_slope_a_per_cm2_per_v")  # the figure's baseline
    sweeps = report.frames_of(StreamRole.LSV, step_index)
    if stream is not None:
        sweeps = [(name, frame) for name, frame in sweeps if name == stream]
    area = report.sample_area_cm2()
    if not sweeps:
        report.note_missing("no LSV data stored: no current-density plot")
    elif area is None:
        report.note_missing("the sample has no diameter_mm: no current density to plot")
    for name, frame in sweeps if area else []:
        report.figure(f"lsv_{name}", f"LSV {name}: current density vs potential",
                      lambda path, frame=frame: figures.lsv_figure(frame, result.data, area, path))


# --------------------------------------------------------------------------- DC polarization


def _dcpol(report: _Report, result: Fields, step_index) -> None:
    steps = result.entries("steps")
    offset = _finite(result["offset_a"])
    scale, unit = figures.current_unit(max([abs(s["steady_current_a"] or 0.0) for s in steps]
                                           + [abs(offset or 0.0)]) or 1.0)
    report.lines += table(["quantity", "value"], [
        ["electronic conductivity σe", with_error(result["sigma_e_s_per_cm"],
                                                  result["sigma_e_stderr_s_per_cm"], "S/cm")],
        ["electronic transference number t_e", number(result["t_e"])],
        ["method", result["method"] or DASH],
        ["steps used", f"{result['n_steps_used']} of {len(steps)}"],
        ["current offset (intercept)", quantity(_scaled(offset, 1 / scale), unit)],
        ["convergence criterion",
         f"drift < {_percent(_scaled(result['drift_criterion_per_h'], 100), 3)}/h "
         f"over the last {duration(result['window_s'])}"],
    ])
    if steps:
        report.lines += ["### Steps", ""] + table(
            ["V", "steady I", "converged", "drift", "duration", "σe (I/V)"],
            [[quantity(s["voltage_v"], "V"),
              quantity(_scaled(s["steady_current_a"], 1 / scale), unit, 4),
              _yes_no(s["converged"]),
              DASH if s["drift_per_h"] is None else f"{number(s['drift_per_h'] * 100)} %/h",
              duration(s["duration_s"]), quantity(s["sigma_e_s_per_cm"], "S/cm")] for s in steps])
    ignored = result.entries("ignored_segments")
    if ignored:
        report.lines += ["Ignored segments: " + "; ".join(
            f"{number(g['start_s'])}–{number(g['end_s'])} s at {quantity(g['voltage_v'], 'V')} "
            f"({escape(g['reason'])})" for g in ignored), ""]
    records = report.frames_of(StreamRole.DC_POLARIZATION, step_index)
    if not records:
        report.note_missing("no DC polarization data stored: no current-decay plot")
    step_dicts = [s.data for s in steps]
    for name, frame in records:
        report.figure(f"dcpol_current_{name}", "Current decay per voltage step",
                      lambda path, frame=frame: figures.dcpol_current_figure(frame, step_dicts, path))
    if steps:
        result.require("area_cm2", "thickness_cm")  # the I-V figure's σe line
        report.figure("dcpol_iv", "Steady current vs voltage with the σe fit",
                      lambda path: figures.dcpol_iv_figure(result.data, path))


# --------------------------------------------------------------------------- cycling


def _area_from_entries(entries: Sequence[Fields], mah_key: str, areal_key: str) -> float | None:
    """Electrode area (cm²) implied by an analysis result's mAh and mAh/cm² of the same entry."""
    for entry in entries:
        mah, areal = _finite(entry[mah_key]), _finite(entry[areal_key])
        if mah and areal:
            return mah / areal
    return None


def _capacity_kinds(numbered: Sequence[Fields]) -> tuple[bool, bool]:
    """(areal, specific): whether any cycle has mAh/cm², mAh/g."""
    areal = any(c[f"{half}_mah_per_cm2"] is not None for c in numbered for half in ("charge", "discharge"))
    specific = any(c[f"{half}_mah_per_g"] is not None for c in numbered for half in ("charge", "discharge"))
    return areal, specific


def _cycling(report: _Report, result: Fields, step_index) -> None:
    cycles = result.entries("cycles")
    numbered = [c for c in cycles if c["cycle"] >= 1]
    areal, specific = _capacity_kinds(numbered)

    def capacity(entry: Fields | None, half: str) -> str:
        if entry is None:
            return DASH
        parts = [quantity(entry[f"{half}_mah_per_cm2"], "mAh/cm²", 4)] if areal else []
        parts.append(quantity(entry[f"{half}_mah"], "mAh", 4))
        if specific:
            parts.append(quantity(entry[f"{half}_mah_per_g"], "mAh/g", 4))
        return " = ".join(p for p in parts if p != DASH) or DASH

    first = numbered[0] if numbered else None
    complete = [c for c in numbered if c["ce_pct"] is not None]
    last = complete[-1] if complete else None
    report.lines += table(["quantity", "value"], [
        ["cycles", f"{len(numbered)} (complete: {len(complete)})"],
        ["first charge" + (f" (cycle {first['cycle']})" if first else ""), capacity(first, "charge")],
        ["first discharge" + (f" (cycle {first['cycle']})" if first else ""), capacity(first, "discharge")],
        ["initial coulombic efficiency (ICE)", _percent(result["ice_pct"])],
        ["mean CE (cycles ≥ 2)", _percent(result["mean_ce_pct"])],
        ["last complete discharge" + (f" (cycle {last['cycle']})" if last else ""),
         capacity(last, "discharge")],
        [f"capacity retention (vs cycle {result['reference_cycle']})", _percent(result["retention_pct"])],
    ])
    if not cycles:
        report.note_missing("the cycling result holds no cycles")
        return
    _cycle_table(report, cycles, areal, specific)
    cycle_dicts = [c.data for c in cycles]
    report.figure("cycling_capacity", "Capacity and coulombic efficiency per cycle",
                  lambda path: figures.capacity_figure(cycle_dicts, path))
    record = _cycling_record(report, step_index)
    if record is None:
        return
    present = set(np.unique(record.cycle[record.state != 0]).tolist())
    last_number = max((c["cycle"] for c in numbered if c["cycle"] in present), default=None)
    if last_number is None:
        report.note_missing("the cycling data hold no cycle numbered 1 or above")
        return
    chosen = sorted({c for c in (*VOLTAGE_PROFILE_CYCLES, last_number) if c in present})
    area = _area_from_entries(numbered, "charge_mah", "charge_mah_per_cm2") or \
        _area_from_entries(numbered, "discharge_mah", "discharge_mah_per_cm2")
    report.figure("cycling_voltage", f"Voltage vs capacity, cycles {', '.join(map(str, chosen))}",
                  lambda path: figures.voltage_curves_figure(record, chosen, area, path))
    dqdv_cycles = sorted({c for c in (1, last_number) if c in present})
    report.figure("cycling_dqdv", f"dQ/dV, cycles {' and '.join(map(str, dqdv_cycles))}",
                  lambda path: figures.dqdv_figure(record, dqdv_cycles, path))


def _abbreviated(report: _Report, title: str, headers: list[str], entries: Sequence, row) -> None:
    """A per-cycle table under ``title``: every entry, or the first and last few of a long run."""
    if len(entries) > CYCLE_TABLE_HEAD + CYCLE_TABLE_TAIL:
        omitted = len(entries) - CYCLE_TABLE_HEAD - CYCLE_TABLE_TAIL
        gap = [f"… {omitted} cycles …"] + [""] * (len(headers) - 1)
        rows = ([row(c) for c in entries[:CYCLE_TABLE_HEAD]] + [gap]
                + [row(c) for c in entries[-CYCLE_TABLE_TAIL:]])
        title += f" (first {CYCLE_TABLE_HEAD} and last {CYCLE_TABLE_TAIL} of {len(entries)})"
    else:
        rows = [row(c) for c in entries]
    report.lines += [title, ""] + table(headers, rows)


def _cycle_table(report: _Report, cycles: list[Fields], areal: bool, specific: bool) -> None:
    suffix, unit = ("_mah_per_cm2", "mAh/cm²") if areal else ("_mah", "mAh")
    headers = ["cycle", f"charge ({unit})", f"discharge ({unit})"]
    headers += ["discharge (mAh/g)"] if specific else []
    headers += ["CE (%)", "CV share of charge (%)", "avg charge V (V)", "avg discharge V (V)"]

    def row(c: Fields) -> list:
        cells = [c["cycle"], number(c["charge" + suffix], 4), number(c["discharge" + suffix], 4)]
        cells += [number(c["discharge_mah_per_g"], 4)] if specific else []
        return cells + [number(c["ce_pct"], 4), number(c["cv_charge_share_pct"]),
                        number(c["avg_charge_voltage_v"], 4), number(c["avg_discharge_voltage_v"], 4)]

    _abbreviated(report, "### Per cycle", headers, cycles, row)


def _cycling_record(report: _Report, step_index) -> PreparedRecord | None:
    """The prepared cycling record behind a cycling result, or None (noted) when there is none."""
    name, frame = _largest_cycling_frame(report, step_index, "voltage and dQ/dV plots") or (None, None)
    if frame is None:
        return None
    try:
        return prepare_record(frame)
    except ValueError as error:
        report.note_missing(f"cycling stream '{name}' cannot be read: {error}")
        return None


def _largest_cycling_frame(report: _Report, step_index, what: str):
    """(name, frame) of the largest cycling stream of the step, or None (noted) when there is none."""
    candidates = report.frames_of(StreamRole.CYCLING, step_index)
    if not candidates:
        report.note_missing(f"no cycling data stored: no {what}")
        return None
    name, frame = max(candidates, key=lambda item: len(item[1]))
    if len(candidates) > 1:
        report.lines += [f"The {what} use stream '{escape(name)}', the largest of "
                         f"{len(candidates)} cycling streams.", ""]
    return name, frame


# --------------------------------------------------------------------------- symmetric cell


def _symmetric(report: _Report, result: Fields, step_index) -> None:
    cycles = result.entries("cycles")
    means = [(c["cycle"], c["overpotential_mean_v"]) for c in cycles if c["overpotential_mean_v"] is not None]
    largest = max(((c["cycle"], v) for c in cycles
                   for v in (c["overpotential_charge_v"], c["overpotential_discharge_v"]) if v is not None),
                  key=lambda item: item[1], default=None)
    report.lines += table(["quantity", "value"], [
        ["method", escape(result["method"] or DASH)],
        ["cycles", len(cycles)],
        ["first mean overpotential" + (f" (cycle {means[0][0]})" if means else ""),
         quantity(_scaled(means[0][1], 1e3) if means else None, "mV", 4)],
        ["last mean overpotential" + (f" (cycle {means[-1][0]})" if means else ""),
         quantity(_scaled(means[-1][1], 1e3) if means else None, "mV", 4)],
        ["largest half-cycle overpotential" + (f" (cycle {largest[0]})" if largest else ""),
         quantity(_scaled(largest[1], 1e3) if largest else None, "mV", 4)],
    ])
    if not cycles:
        report.note_missing("the symmetric-cell result holds no cycles")
        return

    def row(c: Fields) -> list:
        return [c["cycle"]] + [number(_scaled(c[key], 1e3), 4) for key in
                               ("overpotential_charge_v", "overpotential_discharge_v", "overpotential_mean_v")]

    _abbreviated(report, "### Overpotential per cycle",
                 ["cycle", "positive current (mV)", "negative current (mV)", "mean (mV)"], cycles, row)
    cycle_dicts = [c.data for c in cycles]
    report.figure("symmetric_overpotential", "Overpotential per cycle",
                  lambda path: figures.overpotential_figure(cycle_dicts, path))
    found = _largest_cycling_frame(report, step_index, "voltage-time plot")
    if found is not None:
        numbers = [c["cycle"] for c in cycles]
        shown = sorted(set(numbers[:2] + numbers[-2:]))
        report.figure("symmetric_voltage", f"Cell voltage vs time, cycles {', '.join(map(str, shown))}",
                      lambda path: figures.voltage_time_figure(found[1], shown, path))


# --------------------------------------------------------------------------- cold discharge

# Fields of a cold-discharge result that average over cycles discharged at different temperatures:
# the per-temperature table replaces them.
_MIXED_TEMPERATURE_FIELDS = ("mean_ce_pct", "retention_pct", "reference_cycle")
CELL_EIS_TOLERANCE_C = 0.5


def _cold_discharge(report: _Report, result: Fields, step_index) -> None:
    rows = result.entries("cold_discharge")
    cell_eis = result.entries("cell_eis", optional=True)

    def eis_at(temperature) -> Fields | None:
        return next((e for e in cell_eis if temperature is not None and e["temperature_c"] is not None
                     and abs(e["temperature_c"] - temperature) <= CELL_EIS_TOLERANCE_C), None)

    def resistance(temperature, key: str) -> str:
        entry = eis_at(temperature)
        return DASH if entry is None else quantity(entry[key], "Ω")

    report.lines += ["### Per temperature", ""]
    if rows:
        report.lines += table(
            ["temperature", "discharge capacity", "discharge", "relative to reference", "CE of the cycle",
             "avg discharge V", "cycle", "R_ohmic", "R_pol"],
            [[celsius(r["temperature_c"]), quantity(r["discharge_mah_per_cm2"], "mAh/cm²"),
              quantity(r["discharge_mah"], "mAh"), fixed(r["ratio_to_reference_pct"], 1, "%"),
              fixed(r.optional("ce_pct"), 1, "%"), quantity(r.optional("avg_discharge_voltage_v"), "V", 4),
              r.optional("cycle", DASH), resistance(r["temperature_c"], "r_ohmic_ohm"),
              resistance(r["temperature_c"], "r_polarization_ohm")] for r in rows])
        report.lines += ["Every discharge follows a recharge at the charge temperature, so each row is "
                         "an independent discharge; the CE of its cycle is that discharge over the "
                         "recharge before it.", ""]
    else:
        report.note_missing("the cold-discharge result holds no discharges")
    groups = result.entries("per_temperature", optional=True)
    if groups:
        report.lines += ["### Cycles at the same temperature", ""] + table(
            ["discharge temperature", "cycles", "mean CE (cycles ≥ 2)", "retention (last vs first)"],
            [[celsius(g["temperature_c"]), ", ".join(map(str, g["cycles"])), fixed(g["mean_ce_pct"], 2, "%"),
              fixed(g["retention_pct"], 1, "%")] for g in groups])
    for warning in result.optional("warnings") or []:
        report.lines += [f"- {escape(warning)}"]
    report.lines += [""] if result.optional("warnings") else []
    others = {k: v for k, v in result.data.items()
              if k not in ("cold_discharge", "ice_pct", *_MIXED_TEMPERATURE_FIELDS)
              and (isinstance(v, (int, float, str, bool)) or v is None)}
    extra = [["initial coulombic efficiency (ICE, formation)", _percent(result["ice_pct"])]] \
        if "ice_pct" in result else []
    if others or extra:
        report.lines += table(["quantity", "value"],
                              extra + [list(_named_value(k, v)) for k, v in others.items()])
    cycles = result.entries("cycles", optional=True)
    if cycles:
        _cycle_table(report, cycles, *_capacity_kinds([c for c in cycles if c["cycle"] >= 1]))
    if rows:
        row_dicts = [r.data for r in rows]
        report.figure("cold_discharge_capacity", "Discharge capacity vs temperature",
                      lambda path: figures.cold_discharge_figure(row_dicts, path))
        curves, unit = _cold_discharge_curves(report, rows)
        if curves:
            report.figure("cold_discharge_curves", "Discharge curves at each temperature",
                          lambda path: figures.discharge_curves_figure(curves, unit, path))
    _cell_eis_figure(report, cell_eis)


def _cell_eis_figure(report: _Report, cell_eis: list[Fields]) -> None:
    """Nyquist plots of the cell at each temperature with R_ohmic and R_pol marked."""
    if not cell_eis:
        return
    items = []
    for entry in cell_eis:
        frame = report.frames.get(entry["stream"])
        if frame is None or not {"z_real_ohm", "z_imag_ohm"} <= set(frame.columns):
            report.note_missing(f"cell EIS stream '{entry['stream']}' not stored: no Nyquist plot of it")
            continue
        items.append({"label": entry["stream"], "temperature_c": entry["temperature_c"],
                      "z_real_ohm": frame["z_real_ohm"].to_numpy(dtype=float),
                      "z_imag_ohm": frame["z_imag_ohm"].to_numpy(dtype=float),
                      "r_ohmic_ohm": entry["r_ohmic_ohm"], "r_polarization_ohm": entry["r_polarization_ohm"]})
    if items:
        report.figure("cell_eis_nyquist", "Cell impedance at each temperature (R_ohmic and R_pol marked)",
                      lambda path: figures_eis.cell_nyquist_figure(items, path))


def _discharges(frame: pd.DataFrame) -> list[tuple[int, PreparedRecord]]:
    """(cycle, record) of every discharge half of a cycling frame, in time order."""
    record = prepare_record(frame)
    discharging = record.state == DISCHARGE
    return [(int(c), record) for c in pd.unique(record.cycle[discharging])]


def _cold_discharge_curves(report: _Report, rows: list[Fields]):
    """(temperature_c, capacity, voltage) per table row. A row names its discharge by 'stream' and
    'stream_cycle' (the cycle number within that stream); rows of older results without them are
    matched by 'cycle' when the run has one cycling stream, else by order: the last len(rows)
    discharges of the cycling data."""
    frames = report.frames_of(StreamRole.CYCLING)
    if not frames:
        report.note_missing("no cycling data stored: no discharge curves")
        return [], ""
    area = _area_from_entries(rows, "discharge_mah", "discharge_mah_per_cm2")
    scale, unit = (1000.0 / area, "mAh/cm²") if area else (1000.0, "mAh")
    try:
        by_stream = {name: _discharges(frame) for name, frame in frames}
    except ValueError as error:
        report.note_missing(f"cycling data cannot be read for discharge curves: {error}")
        return [], ""
    in_order = [half for halves in by_stream.values() for half in halves]
    by_order = in_order[-len(rows):] if len(in_order) >= len(rows) else []
    curves, ordered = [], False
    for position, row in enumerate(rows):
        half = None
        if "stream" in row and "stream_cycle" in row:
            half = next((h for h in by_stream.get(row["stream"], []) if h[0] == row["stream_cycle"]), None)
        elif "cycle" in row and len(by_stream) == 1:
            half = next((h for h in in_order if h[0] == row["cycle"]), None)
        elif by_order:
            half, ordered = by_order[position], True
        temperature = _finite(row["temperature_c"])
        if half is None or temperature is None:
            continue
        capacity, voltage = figures.half_cycle_curve(half[1], half[0], DISCHARGE)
        curves.append((temperature, capacity * scale, voltage))
    if ordered:
        report.lines += [f"Discharge curves are matched to the table rows by order (the last "
                         f"{len(rows)} discharges of the cycling data).", ""]
    if len(curves) < len(rows):
        report.note_missing(f"discharge curves found for {len(curves)} of {len(rows)} temperatures")
    return curves, unit


# --------------------------------------------------------------------------- chamber and assembly


def _chamber(report: _Report) -> None:
    logs = report.frames_of(StreamRole.CHAMBER_LOG)
    report.lines += ["## Chamber temperature", ""]
    if not logs:
        report.note_missing("no chamber log stored")
        return
    for name, frame in logs:
        temperature = (frame["temperature_c"].to_numpy(dtype=float) if "temperature_c" in frame
                       else np.array([]))
        valid = temperature[np.isfinite(temperature)]
        report.lines += table(["quantity", "value"], [
            ["readings", f"{len(frame)} ({temperature.size - valid.size} failed)"],
            ["range", f"{fixed(valid.min() if valid.size else None, 1)} … "
                      f"{celsius(valid.max() if valid.size else None)}"],
        ])
        report.figure(f"chamber_{name}", "Chamber temperature and set point",
                      lambda path, frame=frame: figures.chamber_figure(frame, path))


_ANALYSIS_SECTIONS = {
    "eis": ("Ionic conductivity (EIS)", _eis),
    "lsv": ("Electrochemical stability window (LSV)", _lsv),
    "dcpol": ("Electronic conductivity (DC polarization)", _dcpol),
    "cycling": ("Cycling", _cycling),
    "cold_discharge": ("Cold discharge", _cold_discharge),
    "symmetric": ("Symmetric cell", _symmetric),
}


def _latest_analyses(run: dict) -> list[dict]:
    """The stored analysis results, a newer result replacing an older one of the same name and step."""
    latest: dict[tuple, dict] = {}
    for entry in run.get("analysis") or []:
        latest[(entry.get("name"), entry.get("step_index"))] = entry
    return list(latest.values())


def _analyses(report: _Report) -> None:
    analyses = _latest_analyses(report.run)
    if not analyses:
        report.lines += ["## Analysis", ""]
        status = report.run.get("status")
        report.note_missing(f"no analysis result stored (run {status or 'status unknown'}"
                            + (f": {report.run['reason']}" if report.run.get("reason") else "") + ")")
    for entry in analyses:
        name, step_index = entry.get("name"), entry.get("step_index")
        title, write = _ANALYSIS_SECTIONS.get(name, (f"Analysis '{escape(name)}'", None))
        report.lines += [f"## {title}" + ("" if step_index is None else f" (step {step_index})"), ""]
        result = entry.get("result")
        if not isinstance(result, dict):
            report.note_missing(f"analysis '{name}' stored no result")
        elif write is None:
            text = json.dumps(result, indent=1, default=str)
            report.lines += [_fence(text) + "json", text, _fence(text), ""]
        else:
            where = f"analysis '{name}'" + ("" if step_index is None else f" of step {step_index}")
            write(report, Fields(result, where), step_index)
    _unanalysed_data(report, {_ANALYSED_ROLE.get(a.get("name")) for a in analyses})


_ANALYSED_ROLE = {"eis": StreamRole.EIS_SPECTRUM, "lsv": StreamRole.LSV, "dcpol": StreamRole.DC_POLARIZATION,
                  "cycling": StreamRole.CYCLING, "cold_discharge": StreamRole.CYCLING,
                  "symmetric": StreamRole.CYCLING}


def _unanalysed_data(report: _Report, covered: set) -> None:
    """Raw plots of measured data that no analysis result covers (typically an aborted run)."""
    roles = [role for role in (StreamRole.EIS_SPECTRUM, StreamRole.LSV, StreamRole.DC_POLARIZATION,
                               StreamRole.CYCLING) if role not in covered]
    uncovered = {role: report.frames_of(role) for role in roles if report.frames_of(role)}
    if not uncovered:
        return
    report.lines += ["## Data without analysis", ""]
    for role, found in uncovered.items():
        report.note_missing(f"{role} data ({', '.join(name for name, _ in found)}) have no analysis result")
    if StreamRole.EIS_SPECTRUM in uncovered:
        _eis_figures(report, [], None)
    area = report.sample_area_cm2()
    if StreamRole.LSV in uncovered and area is None:
        report.note_missing("the sample has no diameter_mm: no current density to plot")
    for name, frame in uncovered.get(StreamRole.LSV, []) if area else []:
        report.figure(f"lsv_{name}", f"LSV {name} (not analysed)",
                      lambda path, frame=frame: figures.lsv_figure(frame, {}, area, path))
    for name, frame in uncovered.get(StreamRole.DC_POLARIZATION, []):
        report.figure(f"dcpol_current_{name}", f"DC polarization {name} (not analysed)",
                      lambda path, frame=frame: figures.dcpol_current_figure(frame, [], path))


def render_report(run: dict, frames: dict[str, pd.DataFrame], out_dir) -> Path:
    """Write ``out_dir``/report.md and its PNG figures for one run; returns the report's path.

    run: ``storage.readers.get_run``'s dict (protocol_name, run_id, status, reason, sample, station,
    steps, streams, analysis, ...); missing keys are tolerated. frames: the run's streams by name
    (``read_stream``), recognised by the "role" in their metadata. ``out_dir`` is created if needed.
    Raises ReportFieldError when a stored analysis result lacks a field the report shows.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = _Report(run, frames, out_dir)
    _header(report)
    _sample(report)
    _station(report)
    _steps(report)
    _suspensions(report)
    _gaps(report)
    _analyses(report)
    _chamber(report)
    _streams(report)
    if report.missing:
        report.lines += ["## Missing", ""] + [f"- {text}" for text in report.missing] + [""]
    path = out_dir / REPORT_NAME
    path.write_text("\n".join(report.lines), encoding="utf-8")
    return path

