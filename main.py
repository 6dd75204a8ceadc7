"""cellbench command line: run protocols, list and show runs, export, analyse files, demo.

Expected failures (a bad protocol file, an unknown run, an unreadable CSV) print one clear
message and exit with status 2; with --json, stdout carries only the JSON document and every
message goes to stderr.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent
EXIT_OK, EXIT_RUN_NOT_COMPLETED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # the shells' convention for a command ended by SIGINT


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
    print(f"ICE {_fmt(result['ice_pct'], '.2f')} %, mean CE (cycles 2–{cycles[-1]['cycle'] if cycles else 2}) "
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
    for warning in result.get("warnings") or []:
        print(f"warning: {warning}", file=out)


def print_symmetric(result: dict, out=sys.stdout) -> None:
    cycles = result["cycles"]
    first, last = cycles[0], cycles[-1]
    print(f"symmetric cell, {len(cycles)} cycles: overpotential {first['overpotential_mean_v'] * 1e3:.2f} mV "
          f"(cycle {first['cycle']}) → {last['overpotential_mean_v'] * 1e3:.2f} mV (cycle {last['cycle']})",
          file=out)


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


# --- commands -----------------------------------------------------------------------------------
def _station(args, simulate: bool | None = None):
    from config.errors import ConfigError
    from config.station import load_station
    try:
        return load_station(args.station, simulate=simulate)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def run_protocols(args, names, station_cfg) -> int:
    """Run ``names`` in one process through the run service; SIGINT, SIGTERM and SIGHUP abort the
    run in progress (instruments safe, data kept) and skip the rest."""
    from config.errors import ConfigError
    from procedures.operator import ConsoleOperator
    from procedures.progress import ProgressPrinter
    from procedures.service import RunService
    from procedures.signals import stop_on_signals
    from procedures.station import InstrumentUnreachable
    service = RunService(station_cfg, args.db, operator=ConsoleOperator(),
                         subscribers=[ProgressPrinter()], report_dir=args.report_dir)
    results = []
    with stop_on_signals(service.abort):
        try:
            for protocol, source in service.load_all(names):
                if service.stop_requested:
                    break
                if not args.json and len(names) > 1:
                    print(f"\n=== {protocol.protocol.name}: {protocol.protocol.description}")
                result = service.run(protocol, source, report_later=len(names) > 1)
                results.append(result)
                if not args.json:
                    print_run_result(result.to_json())
        except (ConfigError, InstrumentUnreachable) as exc:
            # An unreachable instrument is the station's problem, found before anything ran or
            # was stored: exit 2 like a station file that cannot be used, not 1 (no run failed).
            raise UserError(str(exc)) from None
        finally:
            service.finish_reports(results)
    for result in results:
        if result.report:
            print(f"report of run {result.run_id}: {result.report}", file=sys.stderr)
    skipped = len(names) - len(results)
    if skipped and service.stop_requested:
        print(f"{skipped} protocol(s) not run: {service.stop_requested}", file=sys.stderr)
    if args.json:
        out = [r.to_json() for r in results]
        _print_json(out if len(names) > 1 else out[0])
    return EXIT_OK if len(results) == len(names) and all(r.completed for r in results) \
        else EXIT_RUN_NOT_COMPLETED


def cmd_run(args) -> int:
    return run_protocols(args, args.protocols, _station(args, True if args.simulate else None))


def cmd_resume(args) -> int:
    """Continue an interrupted run where it stopped (procedures/resume.py), on the station it was
    started with; a completed run is printed as it is."""
    from config.documents import RunStatus
    from config.errors import ConfigError
    from procedures.operator import ConsoleOperator
    from procedures.progress import ProgressPrinter
    from procedures.resume import ResumeError, check_resumable, stored_station
    from procedures.service import RunResult, RunService
    from storage.claims import RunHeld, claim_run
    from storage.readers import RunNotFound, get_run
    from storage.schema import SchemaError
    try:
        run = get_run(args.db, args.run_id)
        status = check_resumable(run)
        if status == RunStatus.COMPLETED.value:
            result = RunResult(run_id=run["run_id"], status=RunStatus.COMPLETED,
                               protocol_name=run["protocol_name"], reason=run["reason"] or "",
                               analysis={a["name"]: a["result"] for a in run["analysis"]})
            print(f"run {args.run_id} is completed: nothing to resume", file=sys.stderr)
        else:
            # Claimed before anything is said or opened: a second resume of the run ends here
            # with one line naming the process that holds it (the service claims it again: a
            # no-op for this process).
            claim_run(args.db, run["run_id"])
            service = RunService(stored_station(run), args.db, operator=ConsoleOperator(),
                                 subscribers=[ProgressPrinter()], report_dir=args.report_dir)
            print(f"resuming run {args.run_id} ({run['protocol_name']}, {status})", file=sys.stderr)
            result = service.resume_run(run)
            if result.report:
                print(f"report of run {result.run_id}: {result.report}", file=sys.stderr)
    except (RunNotFound, SchemaError, ResumeError, RunHeld) as exc:
        raise UserError(str(exc)) from None
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        _print_json(result.to_json())
    else:
        print_run_result(result.to_json())
    return EXIT_OK if result.completed else EXIT_RUN_NOT_COMPLETED


def cmd_plan(args) -> int:
    from config.errors import ConfigError
    from config.protocol import load_protocol, resolve_protocol_path
    from procedures.progress import hms
    from procedures.steps import plan_steps
    station_cfg = _station(args)
    entries = []
    for name in args.files:
        path = resolve_protocol_path(name)
        entry = {"file": str(path), "valid": False, "errors": [], "steps": [], "expected_duration_s": None}
        try:
            protocol = load_protocol(path, station_cfg)
        except ConfigError as exc:
            entry["errors"] = list(exc.problems)
        else:
            planned = plan_steps(protocol, station_cfg)
            entry.update(valid=True, steps=[
                {"name": p.name, "kind": p.kind, "expected_duration_s": p.estimate.duration_s,
                 "estimate": p.estimate.kind, "basis": p.estimate.basis} for p in planned],
                expected_duration_s=sum(p.estimate.duration_s for p in planned))
        entries.append(entry)
    if args.json:
        _print_json(entries)
    else:
        for entry in entries:
            print(f"{entry['file']}: {'valid' if entry['valid'] else 'INVALID'}")
            for problem in entry["errors"]:
                print(f"  - {problem}")
            for i, st in enumerate(entry["steps"]):
                print(f"  {i:3d} {st['name'][:40]:<40} {st['kind']:<16} {hms(st['expected_duration_s']):>14}"
                      f"  ({st['estimate']}: {st['basis']})")
            if entry["valid"]:
                print(f"  total {hms(entry['expected_duration_s'])}")
    return EXIT_OK if all(e["valid"] for e in entries) else EXIT_USAGE


def cmd_campaign(args) -> int:
    """Plan or run a campaign: its protocols side by side on the positions of one station."""
    from config.campaign import load_campaign
    from config.errors import ConfigError
    from procedures.campaign import CampaignRunner, CampaignProgressPrinter
    from procedures.operator import ConsoleOperator
    from procedures.signals import stop_on_signals
    try:
        campaign = load_campaign(args.file, args.station, simulate=True if args.simulate else None)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    if args.plan:
        from procedures.campaign_plan import plan_campaign
        plan = plan_campaign(campaign)
        if args.json:
            _print_json(plan)
        else:
            print_campaign_plan(plan)
        return EXIT_OK
    runner = CampaignRunner(campaign, args.db, report_dir=args.report_dir,
                            subscribers=[CampaignProgressPrinter()], operator=ConsoleOperator())
    with stop_on_signals(runner.abort):
        result = runner.run()
    if args.json:
        _print_json(result.to_json())
    else:
        print_campaign_result(result.to_json())
    return EXIT_OK if result.completed else EXIT_RUN_NOT_COMPLETED


def _campaign_rows(runs, out) -> None:
    print(f"{'protocol':<20} {'channels':<28} {'chamber':<10} {'start h':>9} {'end h':>9} "
          f"{'instr. h':>9} {'waited h':>9}", file=out)
    for r in runs:
        print(f"{r['protocol']:<20} {', '.join(r['channels']):<28} {r['chamber'] or 'bench':<10} "
              f"{_fmt(r['start_h'], '9.1f')} {_fmt(r['end_h'], '9.1f')} {_fmt(r['instrument_h'], '9.1f')} "
              f"{_fmt(r['waited_h'], '9.1f')}" + (f"  {r['status']}" if "status" in r else ""), file=out)
        for w in r["waits"]:
            print(f"    waits {w['from_h']:.1f}-{w['to_h']:.1f} h: {w['reason']}", file=out)


def print_campaign_plan(plan: dict, out=None) -> None:
    out = out or sys.stdout
    print(f"campaign {plan['campaign']}: makespan {plan['makespan_h']:.1f} h, serial "
          f"{plan['serial_h']:.1f} h (plan estimates; instrument hours from the campaign's start)",
          file=out)
    _campaign_rows(plan["runs"], out)


def print_campaign_result(result: dict, out=None) -> None:
    out = out or sys.stdout
    print(f"campaign {result['campaign']}: {result['status']}, makespan {result['makespan_h']:.1f} h, "
          f"serial {result['serial_h']:.1f} h, chamber band {'ok' if result['band_ok'] else 'NOT ok'}, "
          f"wall {result['wall_s']:.1f} s", file=out)
    _campaign_rows(result["runs"], out)
    for problem in result.get("problems", []):
        print(f"problem: {problem}", file=out)
    if result.get("summary"):
        print(f"summary: {result['summary']}", file=out)


def cmd_runs(args) -> int:
    from storage.readers import list_runs
    from storage.schema import SchemaError
    try:
        df = list_runs(args.db)
    except SchemaError as exc:
        raise UserError(str(exc)) from None
    rows = [{"run_id": int(r.run_id), "protocol": r.protocol,
             "status": r.status,
             "started_at": r.started_at, "reason": r.reason, "n_points": int(r.n_points)}
            for r in df.itertuples()]
    if args.json:
        _print_json(rows)
    elif not rows:
        print("no runs")
    else:
        print(f"{'run':>5}  {'protocol':<24} {'status':<12} {'points':>10}  started (UTC)")
        for r in rows:
            print(f"{r['run_id']:>5}  {r['protocol']:<24} {r['status']:<12} {r['n_points']:>10}  "
                  f"{r['started_at']}")
    return EXIT_OK


def cmd_show(args) -> int:
    if args.follow:
        return follow_run(args)
    from config.documents import gap_text
    from procedures.service import single_or_keyed
    from storage.readers import RunNotFound, get_run
    from storage.schema import SchemaError
    try:
        run = get_run(args.db, args.run_id)
    except (RunNotFound, SchemaError) as exc:
        raise UserError(str(exc)) from None
    analyses = {}
    for a in run.get("analysis", []):
        analyses[a["name"]] = a["result"]
    result = {"run_id": args.run_id, "status": run["status"],
              "reason": run["reason"], "n_points": run["n_points"],
              "streams": [{"name": s["name"], "step_index": s["step_index"],
                           "n_points": s["n_points"]} for s in run["streams"]],
              "suspensions": run["suspensions"], "gaps": run["gaps"],
              "analysis": single_or_keyed(analyses)}
    if args.json:
        _print_json(result)
    else:
        print(f"run {args.run_id}: {run['protocol_name']} — {result['status']}"
              + (f" ({run['reason']})" if run.get("reason") else ""))
        print(f"started {run['started_at']}, ended {run.get('ended_at')}")
        for s in run.get("streams", []):
            invalid = "" if (s["metadata"] or {}).get("valid", True) else " (invalid: measured while suspended)"
            print(f"  stream {s['name']}: {s['n_points']} points{invalid}")
        for x in run["suspensions"]:
            print(f"  suspended {x['started_at']} → {x['ended_at'] or '…'} ({x['state']}): {x['reason']}"
                  + (f"; {x['action']}" if x.get("action") else ""))
        for gap in run["gaps"]:
            print(f"  gap: {gap_text(gap)}")
        print_run_result({**result, "reason": None})  # the reason is in the first line
    return EXIT_OK


def follow_run(args) -> int:
    """``show RUN --follow``: every point of the run, then new ones as they are committed, until
    the run ends; exit 0 if it completed, 1 otherwise. Text: a header per stream, then one
    tab-separated line per point (stream, seq, values). ``--json``: one object per line, of type
    ``stream`` (name, step_index, columns with units and dtypes, metadata), ``points`` (stream,
    ``seq`` and ``data`` as lists by column: what one poll found) and, last, ``end``."""
    from procedures.jsonout import dumps
    from storage.follow import POLL_INTERVAL_S, RunFollower
    from storage.readers import RunNotFound
    from storage.schema import SchemaError
    interval = POLL_INTERVAL_S if args.interval is None else args.interval
    if not interval > 0:
        raise UserError(f"--interval {args.interval}: must be a number of seconds > 0")
    try:
        follower = RunFollower(args.db, args.run_id)
    except (RunNotFound, SchemaError) as exc:
        raise UserError(str(exc)) from None
    out = sys.stdout
    update = None
    try:
        for update in follower.follow(interval):
            for info in update.new_streams:
                if args.json:
                    out.write(dumps({"type": "stream", "stream": info.name,
                                     "step_index": info.step_index, "columns": info.columns,
                                     "metadata": info.metadata}, indent=None) + "\n")
                else:
                    out.write(f"# stream {info.name}: seq\t" + "\t".join(
                        f"{c} [{spec['unit']}]" if spec["unit"] else c
                        for c, spec in info.columns.items()) + "\n")
            for name, frame in update.points.items():
                if args.json:
                    out.write(dumps({"type": "points", "stream": name,
                                     "seq": frame.index.tolist(),
                                     "data": {c: frame[c].tolist() for c in frame.columns}},
                                    indent=None) + "\n")
                else:
                    rows = frame.reset_index()
                    rows.insert(0, "stream", name)
                    rows.to_csv(out, sep="\t", header=False, index=False, float_format="%.10g")
            out.flush()
    except KeyboardInterrupt:
        return 130
    n_points = follower.n_points_seen
    if args.json:
        out.write(dumps({"type": "end", "run_id": args.run_id, "status": update.status,
                         "reason": update.reason, "n_points": n_points}, indent=None) + "\n")
    else:
        print(f"# run {args.run_id}: {update.status}"
              + (f" ({update.reason})" if update.reason else "") + f", {n_points} points")
    return EXIT_OK if update.status == "completed" else EXIT_RUN_NOT_COMPLETED


def cmd_export(args) -> int:
    from storage.export import ExportError, UnknownFormat, export
    from storage.readers import RunNotFound
    from storage.schema import SchemaError
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out}: exists and is not a directory (exports are written "
                        f"into a directory)")
    try:
        paths = export(args.db, args.run_id, args.out, args.format)
    except (RunNotFound, ExportError, UnknownFormat, SchemaError) as exc:
        raise UserError(str(exc)) from None
    for p in paths:
        print(p)
    return EXIT_OK


def cmd_db_upgrade(args) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError
    from storage.engine import resolve_db_url, upgrade_database
    from storage.schema import SchemaError
    where = make_url(resolve_db_url(args.db)).render_as_string(hide_password=True)
    try:
        before, after = upgrade_database(args.db)
    except (SchemaError, SQLAlchemyError, ImportError) as exc:  # ImportError: no DB driver
        raise UserError(f"db upgrade of {where}: {exc}") from None
    if args.json:
        _print_json({"database": where, "revision_before": before, "revision": after})
    elif before == after:
        print(f"{where}: schema already at revision {after}")
    else:
        print(f"{where}: schema upgraded from revision {before or '(none)'} to {after}")
    return EXIT_OK


def cmd_analyze_eis(args) -> int:
    from analysis.biologic_files import BiologicFileError, eis_spectra, is_biologic_path, read_biologic
    from analysis.eis import EisInputError, analyze_eis_series, read_eis_csv
    spectra = []
    for path in args.files:
        try:
            if is_biologic_path(path):
                spectra += eis_spectra(read_biologic(path))
                continue
            df = read_eis_csv(path)
        except (OSError, EisInputError, BiologicFileError) as exc:
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
    """Records from a CSV ``time_s,voltage_v,current_a[,cycle]``, a BioLogic .mpt/.mpr or a Landt
    export."""
    from analysis.biologic_files import cycling_records, is_biologic_path, read_biologic
    from analysis.records import read_records_csv
    from instruments.landt.exports import read_export
    path = Path(path)
    if is_biologic_path(path):
        return cycling_records(read_biologic(path))
    with open(path, "rb") as fh:
        head = fh.read(4096).decode("utf-8", "replace").splitlines()[:1]
    if path.suffix.lower() == ".csv" and head and "time_s" in head[0].split(","):
        return read_records_csv(path)
    df = read_export(path)
    return df.rename(columns={"test_time_s": "time_s"})


def cmd_analyze_cycling(args) -> int:
    from analysis.biologic_files import BiologicFileError
    from analysis.cycling import CyclingDataError, summarize_cycles
    from analysis.records import RecordsFormatError
    from instruments.landt.exports import ExportFormatError
    try:
        df = read_cycling_file(args.file)
        result = summarize_cycles(df, mass_mg=args.mass_mg, area_cm2=args.area_cm2,
                                  reference_cycle=args.reference_cycle)
    except (OSError, RecordsFormatError, ExportFormatError, CyclingDataError, BiologicFileError) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        _print_json(result)
    else:
        print_cycling(result)
    return EXIT_OK


def cmd_import(args) -> int:
    from storage.importer import ImportFileError, import_files
    try:
        run_ids = import_files(args.db, args.files)
    except ImportFileError as exc:
        raise UserError(str(exc)) from None
    rows = [{"file": str(path), "run_id": run_id} for path, run_id in zip(args.files, run_ids)]
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            print(f"{row['file']}: run {row['run_id']}")
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
    if args.check:
        from procedures.station_check import run_check
        return run_check(cfg, as_json=args.json)
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
    args.json, args.report_dir = False, None
    return run_protocols(args, DEMO_PROTOCOLS, _station(args, True))


DEMO_PROTOCOLS = ["onbh_conductivity", "lsv_oxidation", "lsv_reduction", "dc_polarization",
                  "full_cell_45mg", "cold_discharge"]


def cmd_gui(args) -> int:
    from gui.app import ScriptedOptions, main as gui_main
    options = ScriptedOptions(runs=args.run, quit_when_done=args.quit_when_done,
                              screenshot=args.screenshot, state_json=args.state_json)
    return gui_main(station=args.station, db=args.db, simulate=args.simulate, options=options)


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

    sp = sub.add_parser("run", help="run protocol files (or names of shipped protocols), one after another")
    sp.add_argument("protocols", nargs="+", metavar="PROTOCOL")
    sp.add_argument("--simulate", action="store_true", help="use the simulated station")
    sp.add_argument("--station", default=None, help="station file (default: config/station.toml)")
    sp.add_argument("--report-dir", default=None,
                    help="reports go to DIR/run_<id>/ (default: reports/run_<id>/)")
    db_arg(sp); json_arg(sp)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("resume", help="continue an interrupted run where it stopped (same run "
                        "id and streams, on the station it was started with)")
    sp.add_argument("run_id", type=int, metavar="RUN_ID")
    sp.add_argument("--report-dir", default=None,
                    help="the report goes to DIR/run_<id>/ (default: reports/run_<id>/)")
    db_arg(sp); json_arg(sp)
    sp.set_defaults(func=cmd_resume)

    sp = sub.add_parser("plan", help="validate protocol files and estimate each step's duration "
                        "(touches no instrument)")
    sp.add_argument("files", nargs="+", metavar="FILE")
    sp.add_argument("--station", default=None, help="station file (default: config/station.toml)")
    json_arg(sp)
    sp.set_defaults(func=cmd_plan)

    sp = sub.add_parser("campaign", help="run a campaign: its protocols side by side on the cell "
                        "positions of one station, on one clock, sharing chambers")
    sp.add_argument("file", metavar="FILE")
    sp.add_argument("--plan", action="store_true",
                    help="print the schedule from the plan estimates; touches no instrument")
    sp.add_argument("--simulate", action="store_true", help="use the simulated station")
    sp.add_argument("--station", default=None,
                    help="station file with [positions] (default: the campaign's)")
    sp.add_argument("--report-dir", default=None,
                    help="reports go to DIR/run_<id>/, the summary to DIR/campaign_<name>.md "
                         "(default: reports/)")
    db_arg(sp); json_arg(sp)
    sp.set_defaults(func=cmd_campaign)

    sp = sub.add_parser("runs", help="list stored runs")
    db_arg(sp); json_arg(sp)
    sp.set_defaults(func=cmd_runs)

    sp = sub.add_parser("show", help="show a stored run and its analysis")
    sp.add_argument("run_id", type=int)
    sp.add_argument("--follow", action="store_true",
                    help="print the run's points, then new ones as they are committed, until "
                         "the run ends (exit 0 if it completed); with --json, one object a line")
    sp.add_argument("--interval", type=float, default=None, metavar="S",
                    help="with --follow: seconds between polls (default 0.25)")
    db_arg(sp); json_arg(sp)
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser("export", help="export a run: one CSV per stream, units in column names")
    sp.add_argument("run_id", type=int)
    sp.add_argument("--out", required=True)
    sp.add_argument("--format", default="csv",
                    help="csv: every stream and run.json (default); cycles-csv, cycles-xlsx: the "
                         "per-cycle summary; bdf: cycling streams in the Battery Data Format; "
                         "parquet: every stream with its units")
    db_arg(sp)
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("import", help="store instrument files (BioLogic .mpt/.mpr) as runs")
    sp.add_argument("files", nargs="+")
    db_arg(sp); json_arg(sp)
    sp.set_defaults(func=cmd_import)

    sp = sub.add_parser("db", help="database administration")
    dsub = sp.add_subparsers(dest="db_command", required=True)
    dp = dsub.add_parser("upgrade", help="create or migrate the database schema to the newest "
                                         "revision (SQLite databases are also upgraded on open)")
    db_arg(dp); json_arg(dp)
    dp.set_defaults(func=cmd_db_upgrade)

    sp = sub.add_parser("analyze", help="analyse measurement files")
    asub = sp.add_subparsers(dest="kind", required=True)
    ap = asub.add_parser("eis", help="blocking-electrode EIS: σ per spectrum (CSV, or every loop of a "
                         "BioLogic .mpt/.mpr), Arrhenius")
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

    ap = asub.add_parser("cycling", help="capacities, CE, retention from a CSV, a BioLogic .mpt/.mpr "
                         "or a Landt export")
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
    sp.add_argument("--check", action="store_true",
                    help="connect and run read-only queries: identity, firmware, ranges, chamber mode")
    json_arg(sp)
    sp.set_defaults(func=cmd_station)

    sp = sub.add_parser("demo", help="run the paper's protocols on the simulated station")
    sp.add_argument("--station", default=None)
    db_arg(sp)
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("gui", help="open the desktop GUI")
    sp.add_argument("--station", default=None)
    sp.add_argument("--simulate", action="store_true", help="use the simulated station")
    sp.add_argument("--run", action="append", default=[], metavar="PROTOCOL",
                    help="queue and start this protocol (repeatable)")
    sp.add_argument("--quit-when-done", action="store_true",
                    help="close when the queue is done; exit 0 when every run completed")
    sp.add_argument("--screenshot", metavar="FILE.png", help="save the main window at the end")
    sp.add_argument("--state-json", metavar="FILE.json", help="write the state of every plot at the end")
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
    except KeyboardInterrupt:
        # Ctrl+C where the command has no stop of its own (while Python loads its modules, say):
        # nothing of a run to stop or store; a run that has started stops itself and reports.
        print("interrupted (Ctrl+C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader left (`runs | head`): say nothing more, and keep the interpreter's final
        # flush of stdout from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_USAGE
    except Exception as exc:
        message = _environment_error(exc, getattr(args, "db", None))
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE


def _environment_error(exc: Exception, db) -> str | None:
    """A message for what is wrong around the command rather than in it: a database that cannot
    be reached or opened, its driver module missing, a file the system will not give us."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
    where = f"--db {db}" if db else "the database"
    if isinstance(exc, (OperationalError, DBAPIError)):
        return f"{where} cannot be reached or opened: {getattr(exc, 'orig', None) or exc}"
    if isinstance(exc, (ArgumentError, NoSuchModuleError)):
        return f"{where} is not a database URL or path SQLAlchemy understands: {exc}"
    if isinstance(exc, ModuleNotFoundError) and db:
        return f"{where} needs the Python module {exc.name!r}, which is not installed"
    if isinstance(exc, (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)):
        return f"{exc.filename or 'a file'}: {exc.strerror or exc}"
    return None


def _exit(code: int) -> None:
    # Exit without the interpreter's final garbage collections over every object the scientific
    # imports made (0.35 s of every command's wall time). Everything is stored and closed by now;
    # what reference cycles still hold is left to the system, which frees the memory anyway.
    import gc
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    _exit(main())
