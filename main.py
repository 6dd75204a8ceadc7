"""cellbench command line: run protocols, list and show runs, export, analyse files, demo.

Expected failures (a bad protocol file, an unknown run, an unreadable CSV) print one clear
message and exit with status 2; with --json, stdout carries only the JSON document and every
message goes to stderr.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent
EXIT_OK, EXIT_RUN_NOT_COMPLETED, EXIT_USAGE = 0, 1, 2


class UserError(Exception):
    """An expected failure: shown as a message, never as a traceback."""


# --- output -------------------------------------------------------------------------------------
def _print_json(value) -> None:
    from procedures.jsonout import dumps
    sys.stdout.write(dumps(value) + "\n")


def _fmt(value, spec: str) -> str:
    """Format a number, or a dash of the same width for an unknown value."""
    if value is None:
        width = "".join(ch for ch in spec.split(".")[0] if ch.isdigit())
        return "—".rjust(int(width)) if width else "—"
    return format(value, spec)


def print_eis_table(analysis: dict, out=sys.stdout) -> None:
    rows = analysis.get("spectra") or []
    print(f"{'spectrum':<28} {'T/°C':>7} {'model':<22} {'R_total/Ω':>11} {'σ_total/(mS/cm)':>16} "
          f"{'σ_bulk/(mS/cm)':>15} {'KK/%':>6}", file=out)
    for r in rows:
        s_tot = None if r["sigma_total_s_per_cm"] is None else r["sigma_total_s_per_cm"] * 1e3
        s_b = None if r["sigma_bulk_s_per_cm"] is None else r["sigma_bulk_s_per_cm"] * 1e3
        print(f"{str(r['file'])[:28]:<28} {_fmt(r['temperature_c'], '7.2f')} {str(r['model'])[:22]:<22} "
              f"{_fmt(r['r_total_ohm'], '11.2f')} {_fmt(s_tot, '16.4f')} {_fmt(s_b, '15.4f')} "
              f"{_fmt(r['kk_residual_pct'], '6.2f')}", file=out)
    for row in analysis.get("stability") or []:
        print(f"σ_total at {row['temperature_c']:g} °C: {row['sigma_first_s_per_cm'] * 1e3:.4f} → "
              f"{row['sigma_last_s_per_cm'] * 1e3:.4f} mS/cm ({row['change_pct']:+.2f} %)", file=out)
    for r in rows:
        for warning in r.get("warnings") or []:
            print(f"{r['file']}: {warning}", file=out)
    arrhenius = analysis.get("arrhenius") or {}
    for which in ("total", "bulk"):
        fit = arrhenius.get(which)
        if fit:
            err = "" if fit.get("ea_stderr_ev") is None else f" ± {fit['ea_stderr_ev']:.4f}"
            print(f"Arrhenius (σT form), {which}: Ea = {fit['ea_ev']:.4f}{err} eV, "
                  f"R² = {_fmt(fit.get('r2'), '.6f')}, {fit['n_points']} points", file=out)


def print_lsv(result: dict, out=sys.stdout) -> None:
    print(f"LSV ({result['direction']}): onset {_fmt(result['onset_threshold_v'], '.3f')} V by the "
          f"{result['threshold_a_per_cm2'] * 1e6:g} µA/cm² threshold, "
          f"{_fmt(result['onset_tangent_v'], '.3f')} V by tangents"
          + ("" if result["onset_threshold_v"] is not None else
             f" (no onset between {result.get('start_v', float('nan')):.3f} and "
             f"{result.get('end_v', float('nan')):.3f} V)"), file=out)


def print_dcpol(result: dict, out=sys.stdout) -> None:
    for st in result["steps"]:
        print(f"  {st['voltage_v']:5.2f} V: I_ss = {_fmt(st['steady_current_a'], '.4e')} A, "
              f"drift {_fmt(st.get('drift_per_h'), '.4f')}/h, converged: {st['converged']}", file=out)
    print(f"σe = {_fmt(result['sigma_e_s_per_cm'], '.4e')} ± {_fmt(result['sigma_e_stderr_s_per_cm'], '.1e')}"
          f" S/cm ({result['method']}); t_e = {_fmt(result.get('t_e'), '.2e')}", file=out)


def print_cycling(result: dict, out=sys.stdout) -> None:
    cycles = result["cycles"]
    shown = cycles if len(cycles) <= 8 else cycles[:4] + [None] + cycles[-3:]
    print(f"{'cycle':>5} {'charge/(mAh/cm²)':>17} {'discharge/(mAh/cm²)':>20} {'CE/%':>8}", file=out)
    for c in shown:
        if c is None:
            print(f"{'…':>5}", file=out)
            continue
        print(f"{c['cycle']:>5} {_fmt(c['charge_mah_per_cm2'], '17.3f')} "
              f"{_fmt(c['discharge_mah_per_cm2'], '20.3f')} {_fmt(c['ce_pct'], '8.3f')}", file=out)
    print(f"ICE {_fmt(result['ice_pct'], '.2f')} %, mean CE (cycles 2–{len(cycles)}) "
          f"{_fmt(result['mean_ce_pct'], '.3f')} %, retention {_fmt(result['retention_pct'], '.1f')} % "
          f"(vs cycle {result['reference_cycle']})", file=out)
    if result.get("cold_discharge"):
        print("cold discharge:", file=out)
        for row in result["cold_discharge"]:
            print(f"  {row['temperature_c']:6.1f} °C: {_fmt(row['discharge_mah_per_cm2'], '.2f')} mAh/cm² "
                  f"({_fmt(row.get('ratio_to_reference_pct'), '.1f')} % of 25 °C)", file=out)
    for e in result.get("cell_eis") or []:
        print(f"  EIS at {e['temperature_c']:6.1f} °C: R_ohmic {e['r_ohmic_ohm']:.1f} Ω, "
              f"R_polarization {e['r_polarization_ohm']:.1f} Ω", file=out)


def print_symmetric(result: dict, out=sys.stdout) -> None:
    cycles = result["cycles"]
    first, last = cycles[0], cycles[-1]
    print(f"symmetric cell, {len(cycles)} cycles: overpotential {first['overpotential_mean_v'] * 1e3:.2f} mV "
          f"(cycle {first['cycle']}) → {last['overpotential_mean_v'] * 1e3:.2f} mV (cycle {last['cycle']})",
          file=out)


# --- commands -----------------------------------------------------------------------------------
def cmd_run(args) -> int:
    from config.errors import ConfigError
    from config.protocol import load_protocol, resolve_protocol_path
    from config.station import load_station
    try:
        station_cfg = load_station(args.station, simulate=True if args.simulate else None)
        protocol_path = resolve_protocol_path(args.protocol)
        protocol = load_protocol(protocol_path, station_cfg)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    result = execute_run(protocol, station_cfg, args.db, str(protocol_path),
                         quiet=args.json, report_dir=args.report_dir)
    if args.json:
        _print_json(result)
    else:
        print_run_result(result)
    return EXIT_OK if result["status"] == "completed" else EXIT_RUN_NOT_COMPLETED


def record_run(protocol, station_cfg, db, source: str = "", subscribers=(), on_runner=None):
    """Run one protocol on a fresh station with storage attached; returns (outcome, run_id).

    Storage flushes by wall time (``clock=None``): its interval bounds what a crash can lose, which
    is wall time whether the station is real or simulated. ``on_runner(runner)`` lets a GUI keep
    the runner to abort it.
    """
    from procedures.analyzers import analyzers_for
    from procedures.documents import DocumentStream
    from procedures.runner import Runner
    from procedures.station import Station
    from storage.writer import StorageWriter

    stream = DocumentStream()
    writer = StorageWriter(db)
    stream.subscribe(writer, critical=True)
    for subscriber in subscribers:
        stream.subscribe(subscriber)
    with Station(station_cfg) as station:
        runner = Runner(station, stream, analyzers_for(protocol))
        if on_runner is not None:
            on_runner(runner)
        outcome = runner.run(protocol, protocol_source=source)
    writer.close()
    return outcome, writer.last_run_id


def execute_run(protocol, station_cfg, db, source: str, quiet: bool = False,
                report_dir: str | None = None) -> dict:
    """Run one protocol with storage, progress and a report; returns the CLI's run document."""
    from procedures.progress import ProgressPrinter
    outcome, run_id = record_run(protocol, station_cfg, db, source, subscribers=[ProgressPrinter()])
    result = {"run_id": run_id, "status": outcome.status,
              "analysis": _analysis_for_output(outcome.analysis)}
    if outcome.reason:
        result["reason"] = outcome.reason
    if report_dir is not False:
        try:
            path = write_report(db, run_id, report_dir)
            result["report"] = str(path)
            print(f"report: {path}", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - a report failure must not hide the run's result
            print(f"report not written: {exc}", file=sys.stderr)
    return result


def write_report(db, run_id: int, out_dir=None) -> Path:
    """The run's report (Markdown + figures) from what storage holds, under reports/run_<id>/."""
    from analysis.report import render_report
    from storage.readers import get_run, read_stream
    run = get_run(db, run_id)
    frames = {s["name"]: read_stream(db, run_id, s["name"]) for s in run.get("streams", [])}
    out = Path(out_dir) if out_dir else PROJECT_ROOT / "reports" / f"run_{run_id}"
    return render_report(run, frames, out)


def _analysis_for_output(analysis: dict):
    """A run with one analysis shows that object; several are keyed by name."""
    if not analysis:
        return None
    if len(analysis) == 1:
        return next(iter(analysis.values()))
    return analysis


def print_run_result(result: dict) -> None:
    print(f"run {result['run_id']}: {result['status']}" +
          (f" ({result['reason']})" if result.get("reason") else ""))
    analysis = result.get("analysis")
    if not analysis:
        return
    if "spectra" in analysis:
        print_eis_table(analysis)
    elif "onset_threshold_v" in analysis:
        print_lsv(analysis)
    elif "sigma_e_s_per_cm" in analysis:
        print_dcpol(analysis)
    elif "ice_pct" in analysis:
        print_cycling(analysis)
    elif analysis.get("method") and "cycles" in analysis:
        print_symmetric(analysis)
    else:
        from procedures.jsonout import dumps
        print(dumps(analysis))


STALE_AFTER_S = 15 * 60


def effective_status(status: str, updated_at: str | None) -> str:
    """A run still marked "running" whose writer has not written for STALE_AFTER_S (wall time)
    died without a stop document: it is shown as "interrupted"; its data are kept."""
    from datetime import datetime, timezone
    if status != "running" or not updated_at:
        return status
    age = (datetime.now(timezone.utc) - datetime.fromisoformat(updated_at)).total_seconds()
    return "interrupted" if age > STALE_AFTER_S else status


def cmd_runs(args) -> int:
    from storage.readers import list_runs
    df = list_runs(args.db)
    rows = [{"run_id": int(r.run_id), "protocol": r.protocol,
             "status": effective_status(r.status, r.updated_at),
             "started_at": r.started_at} for r in df.itertuples()]
    if args.json:
        _print_json(rows)
    elif not rows:
        print("no runs")
    else:
        print(f"{'run':>5}  {'protocol':<24} {'status':<12} started (UTC)")
        for r in rows:
            print(f"{r['run_id']:>5}  {r['protocol']:<24} {r['status']:<12} {r['started_at']}")
    return EXIT_OK


def cmd_show(args) -> int:
    from storage.readers import RunNotFound, get_run
    try:
        run = get_run(args.db, args.run_id)
    except RunNotFound as exc:
        raise UserError(str(exc)) from None
    analyses = {}
    for a in run.get("analysis", []):
        analyses[a["name"]] = a["result"]
    result = {"run_id": args.run_id, "status": effective_status(run["status"], run.get("updated_at")),
              "analysis": _analysis_for_output(analyses)}
    if args.json:
        _print_json(result)
    else:
        print(f"run {args.run_id}: {run['protocol_name']} — {result['status']}"
              + (f" ({run['reason']})" if run.get("reason") else ""))
        print(f"started {run['started_at']}, ended {run.get('ended_at')}")
        for s in run.get("streams", []):
            print(f"  stream {s['name']}: {s.get('points', '?')} points")
        print_run_result({**result, "run_id": args.run_id})
    return EXIT_OK


def cmd_export(args) -> int:
    from storage.export import export_run
    from storage.readers import RunNotFound
    try:
        paths = export_run(args.db, args.run_id, args.out)
    except RunNotFound as exc:
        raise UserError(str(exc)) from None
    for p in paths:
        print(p)
    return EXIT_OK


def cmd_analyze_eis(args) -> int:
    from analysis.eis import EisInputError, analyze_eis_series, read_eis_csv
    spectra = []
    for path in args.files:
        try:
            df = read_eis_csv(path)
        except (OSError, EisInputError) as exc:
            raise UserError(str(exc)) from None
        temperature = None
        if "temperature_c" in df.columns:
            temperature = float(df["temperature_c"].iloc[0])
        spectra.append({"label": str(path), "frequency_hz": df["frequency_hz"].to_numpy(),
                        "z_real_ohm": df["z_real_ohm"].to_numpy(),
                        "z_imag_ohm": df["z_imag_ohm"].to_numpy(), "temperature_c": temperature})
    try:
        result = analyze_eis_series(spectra, args.thickness_um, args.diameter_mm)
    except EisInputError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        _print_json(result)
    else:
        print_eis_table(result)
    return EXIT_OK


def cmd_analyze_lsv(args) -> int:
    from analysis.lsv import LsvInputError, analyze_lsv
    from analysis.records import RecordsFormatError, read_records_csv
    try:
        df = read_records_csv(args.file)
        result = analyze_lsv(df["voltage_v"].to_numpy(), df["current_a"].to_numpy(), args.area_cm2,
                             threshold_a_per_cm2=args.threshold_ua_per_cm2 * 1e-6,
                             time_s=df["time_s"].to_numpy())
    except (OSError, RecordsFormatError, LsvInputError) as exc:
        raise UserError(str(exc)) from None
    keys = ("onset_threshold_v", "onset_tangent_v", "threshold_a_per_cm2", "direction")
    out = {k: result.get(k) for k in keys} | {k: v for k, v in result.items() if k not in keys}
    if args.json:
        _print_json(out)
    else:
        print_lsv(out)
    return EXIT_OK


def cmd_analyze_dcpol(args) -> int:
    from analysis.dcpol import DcpolInputError, analyze_dcpol
    from analysis.records import RecordsFormatError, read_records_csv
    try:
        df = read_records_csv(args.file)
        step = df["step"].to_numpy() if "step" in df.columns else None
        result = analyze_dcpol(df["time_s"].to_numpy(), df["voltage_v"].to_numpy(),
                               df["current_a"].to_numpy(), args.thickness_um, args.diameter_mm,
                               sigma_ion_s_per_cm=args.sigma_ion_s_per_cm, step=step)
    except (OSError, RecordsFormatError, DcpolInputError) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        _print_json(result)
    else:
        print_dcpol(result)
    return EXIT_OK


def read_cycling_file(path):
    """Records from a CSV ``time_s,voltage_v,current_a[,cycle]`` or from a Landt export."""
    from analysis.records import read_records_csv
    from instruments.landt.exports import read_export
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(4096).decode("utf-8", "replace").splitlines()[:1]
    if path.suffix.lower() == ".csv" and head and "time_s" in head[0].split(","):
        return read_records_csv(path)
    df = read_export(path)
    return df.rename(columns={"test_time_s": "time_s"})


def cmd_analyze_cycling(args) -> int:
    from analysis.cycling import CyclingDataError, summarize_cycles
    from analysis.records import RecordsFormatError
    from instruments.landt.exports import ExportFormatError
    try:
        df = read_cycling_file(args.file)
        result = summarize_cycles(df, mass_mg=args.mass_mg, area_cm2=args.area_cm2,
                                  reference_cycle=args.reference_cycle)
    except (OSError, RecordsFormatError, ExportFormatError, CyclingDataError) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        _print_json(result)
    else:
        print_cycling(result)
    return EXIT_OK


def cmd_analyze_cell_capacity(args) -> int:
    from analysis.cell_capacity import CellCapacityInputError, cell_capacity_curve
    try:
        curve = cell_capacity_curve(args.loading_mg_per_cm2)
    except CellCapacityInputError as exc:
        raise UserError(str(exc)) from None
    rows = curve.to_dict(orient="records")
    if args.json:
        _print_json(rows)
    else:
        print(f"{'loading/(mg/cm²)':>16} {'anode':<12} {'layers':>7} {'cell/(mAh/g)':>13}")
        for r in rows:
            print(f"{r['loading_mg_per_cm2']:16.1f} {r['anode']:<12} {r['layers']:7.2f} {r['cell_mah_per_g']:13.2f}")
    return EXIT_OK


def cmd_station(args) -> int:
    from config.errors import ConfigError
    from config.station import load_station
    try:
        cfg = load_station(args.station)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        _print_json(cfg.model_dump(mode="json"))
    else:
        print(f"station {cfg.station.name!r}: {'simulated' if cfg.simulate else 'real instruments'}")
        print(f"  chamber:      {cfg.chamber.driver} via {cfg.chamber.transport} {cfg.chamber.address or '(simulated)'}"
              f", {cfg.chamber.min_temperature_c:g}…{cfg.chamber.max_temperature_c:g} °C")
        print(f"  potentiostat: {cfg.potentiostat.driver} {cfg.potentiostat.model} ({cfg.potentiostat.board})"
              f" at {cfg.potentiostat.address}, channel {cfg.potentiostat.channel}")
        print(f"  cycler:       {cfg.cycler.driver}, channel {cfg.cycler.channel}")
    return EXIT_OK


def cmd_demo(args) -> int:
    from config.protocol import load_protocol, resolve_protocol_path
    from config.station import load_station
    station_cfg = load_station(args.station, simulate=True)
    status = EXIT_OK
    for name in DEMO_PROTOCOLS:
        path = resolve_protocol_path(name)
        protocol = load_protocol(path, station_cfg)
        print(f"\n=== {name}: {protocol.protocol.description}")
        result = execute_run(protocol, station_cfg, args.db, str(path))
        print_run_result(result)
        if result["status"] != "completed":
            status = EXIT_RUN_NOT_COMPLETED
    return status


DEMO_PROTOCOLS = ["onbh_conductivity", "lsv_oxidation", "lsv_reduction", "dc_polarization",
                  "full_cell_45mg", "cold_discharge"]


def cmd_gui(args) -> int:
    from gui.app import main as gui_main
    return gui_main(station=args.station, db=args.db)


# --- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cellbench", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    sub = p.add_subparsers(dest="command", required=True)

    def db_arg(sp):
        sp.add_argument("--db", default=None,
                        help="SQLAlchemy URL or SQLite path (default: $CELLBENCH_DB or data/cellbench.sqlite)")

    def json_arg(sp):
        sp.add_argument("--json", action="store_true", help="print only a JSON document on stdout")

    sp = sub.add_parser("run", help="run a protocol file (or the name of a shipped protocol)")
    sp.add_argument("protocol")
    sp.add_argument("--simulate", action="store_true", help="use the simulated station")
    sp.add_argument("--station", default=None, help="station file (default: config/station.toml)")
    sp.add_argument("--report-dir", default=None, help="where to write the report (default: reports/run_<id>)")
    db_arg(sp); json_arg(sp)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("runs", help="list stored runs")
    db_arg(sp); json_arg(sp)
    sp.set_defaults(func=cmd_runs)

    sp = sub.add_parser("show", help="show a stored run and its analysis")
    sp.add_argument("run_id", type=int)
    db_arg(sp); json_arg(sp)
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser("export", help="export a run: one CSV per stream, units in column names")
    sp.add_argument("run_id", type=int)
    sp.add_argument("--out", required=True)
    db_arg(sp)
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("analyze", help="analyse measurement files")
    asub = sp.add_subparsers(dest="kind", required=True)
    ap = asub.add_parser("eis", help="blocking-electrode EIS: σ per spectrum, Arrhenius")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--thickness-um", type=float, required=True)
    ap.add_argument("--diameter-mm", type=float, required=True)
    json_arg(ap)
    ap.set_defaults(func=cmd_analyze_eis)

    ap = asub.add_parser("lsv", help="LSV onset (threshold and tangent) from time_s,voltage_v,current_a CSV")
    ap.add_argument("file")
    ap.add_argument("--area-cm2", type=float, required=True)
    ap.add_argument("--threshold-ua-per-cm2", type=float, default=10.0)
    json_arg(ap)
    ap.set_defaults(func=cmd_analyze_lsv)

    ap = asub.add_parser("dcpol", help="electronic conductivity from a DC-polarization CSV")
    ap.add_argument("file")
    ap.add_argument("--thickness-um", type=float, required=True)
    ap.add_argument("--diameter-mm", type=float, required=True)
    ap.add_argument("--sigma-ion-s-per-cm", type=float, default=None,
                    help="ionic conductivity, for the electronic transference number")
    json_arg(ap)
    ap.set_defaults(func=cmd_analyze_dcpol)

    ap = asub.add_parser("cycling", help="capacities, CE, retention from a CSV or a Landt export")
    ap.add_argument("file")
    ap.add_argument("--mass-mg", type=float, required=True, help="active cathode mass, mg")
    ap.add_argument("--area-cm2", type=float, required=True)
    ap.add_argument("--reference-cycle", type=int, default=1)
    json_arg(ap)
    ap.set_defaults(func=cmd_analyze_cycling)

    ap = asub.add_parser("cell-capacity", help="effective cell-level capacity vs cathode loading "
                         "(PAPER.md protocol 8, Fig. 5A)")
    ap.add_argument("--loading-mg-per-cm2", type=float, nargs="+", default=[15.0, 30.0, 45.0])
    json_arg(ap)
    ap.set_defaults(func=cmd_analyze_cell_capacity)

    sp = sub.add_parser("station", help="validate and show a station file")
    sp.add_argument("--station", default=None)
    json_arg(sp)
    sp.set_defaults(func=cmd_station)

    sp = sub.add_parser("demo", help="run the paper's protocols on the simulated station")
    sp.add_argument("--station", default=None)
    db_arg(sp)
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("gui", help="open the desktop GUI")
    sp.add_argument("--station", default=None)
    db_arg(sp)
    sp.set_defaults(func=cmd_gui)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
