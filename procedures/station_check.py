"""``main.py station --check``: read-only queries that show what each instrument of a station is.

It is meant for the first connection to real instruments (docs/instruments.md): identity,
firmware and library versions, board type, channel state and ranges of the potentiostat; the
chamber's type, range, mode, set point, alarms and humidity capability; the cycler's state and
export file. Only queries are sent. Opening the potentiostat is the driver's ordinary connect,
which loads the kernel firmware into a channel that has none (as every run does; EC-Lab's
firmware is never replaced); the report says whether that happened.

Each instrument is checked on its own: one that cannot be reached is reported with the reason
and the others are still checked.
"""
from __future__ import annotations

import json
from pathlib import Path


def check_station(station) -> dict:
    """{"chamber": {...}, "potentiostat": {...}, "cycler": {...}, "problems": [...]} for a
    ``procedures.station.Station``; an instrument that failed has ``{"error": text}``."""
    report = {"station": station.config.station.name, "simulated": station.simulated, "problems": []}
    for name, check in (("chamber", _chamber), ("potentiostat", _potentiostat), ("cycler", _cycler)):
        try:
            report[name] = check(station)
        except Exception as exc:  # noqa: BLE001 - every failure is the answer of a check
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
            report["problems"].append(f"{name}: {exc}")
    return report


def _optional(query):
    """The value of a query a controller may not support (None when it answers NA)."""
    from instruments.espec.errors import EspecRefused
    try:
        return query()
    except EspecRefused:
        return None


def _chamber(station) -> dict:
    chamber = station.chamber
    kind = chamber.chamber_type
    monitor = chamber.monitor
    status = chamber.temperature_status
    alarms = chamber.alarms
    humidity = chamber.has_humidity()
    result = {
        "identity": chamber.rom,
        "sensors": {"dry_bulb": kind.dry_bulb, "wet_bulb": kind.wet_bulb, "controller": kind.controller},
        "max_temperature_c": kind.max_temperature_c,
        "station_limits_c": list(chamber.temperature_limits_c),
        "mode": monitor.mode,
        "mode_detail": _optional(lambda: chamber.mode_detail),
        "temperature_c": status.temperature_c,
        "setpoint_c": status.setpoint_c,
        "alarm_limits_c": [status.lower_limit_c, status.upper_limit_c],
        "alarms": list(alarms.codes),
        "humidity_capable": humidity,
    }
    if humidity:
        rh = chamber.humidity_status
        result["humidity_pct"] = rh.humidity_pct
        result["humidity_setpoint_pct"] = rh.setpoint_pct
    if kind.max_temperature_c < chamber.temperature_limits_c[1]:
        result["warning"] = (f"the station file allows up to {chamber.temperature_limits_c[1]:g} °C, the chamber "
                             f"reports {kind.max_temperature_c:g} °C (chamber.max_temperature_c)")
    return result


def _potentiostat(station) -> dict:
    pot = station.potentiostat
    device = pot.device
    info = pot.channel_info()
    values = pot.current_values()
    result = {
        "identity": {"model": device.model, "device_code": device.device_code,
                     "channels": device.n_channels},
        "firmware": {"instrument_version": device.firmware_version, "instrument_date": device.firmware_date,
                     "channel_code": info.firmware_code, "channel_version": info.firmware_version,
                     "loaded_at_connect": pot.firmware_loaded},
        "library_version": device.library_version,
        "board": info.board or pot.board,
        "channel": {"number": info.channel, "state": {0: "stop", 1: "run", 2: "pause"}.get(info.state, info.state),
                    "impedance_board": info.has_impedance_board, "min_i_range": info.min_i_range,
                    "max_i_range": info.max_i_range, "max_bandwidth": info.max_bandwidth,
                    "memory_filled_bytes": info.mem_filled_bytes,
                    "ewe_v": values["ewe_v"], "i_a": values["i_a"]},
        "max_eis_frequency_hz": pot.limits.max_eis_frequency_hz,
    }
    if pot.board != "essential" and pot.dll.has("BL_GetHardConf"):
        result["hardware_config"] = pot.hardware_config()
    return result


def _cycler(station) -> dict:
    cycler = station.cycler
    result = {"identity": cycler.name, "state": cycler.state().value,
              "remote_start": cycler.capabilities.remote_start, "live_data": cycler.capabilities.live_data}
    export = getattr(cycler, "export_path", None)
    if export is not None:
        from instruments.landt.follower import ExportFollower
        result["export_path"] = str(export)
        result["export_exists"] = Path(export).exists()
        result["export_has_records"] = ExportFollower(export).has_data()
    return result


def format_report(report: dict) -> str:
    """The report as the text ``station --check`` prints."""
    lines = [f"station {report['station']!r}: {'simulated' if report['simulated'] else 'real instruments'}"]
    for name in ("chamber", "potentiostat", "cycler"):
        lines.append(f"{name}:")
        lines.extend(_lines(report[name], "  "))
    lines.append("problems: " + ("; ".join(report["problems"]) if report["problems"] else "none"))
    return "\n".join(lines)


def _lines(value: dict, indent: str) -> list[str]:
    out = []
    for key, item in value.items():
        if isinstance(item, dict):
            out.append(f"{indent}{key}:")
            out.extend(_lines(item, indent + "  "))
        else:
            out.append(f"{indent}{key}: {item}")
    return out


def run_check(station_config, as_json: bool = False) -> int:
    """Open the station, check it, print the report; 0 if every instrument answered, else 1."""
    from procedures.station import Station

    with Station(station_config) as station:
        if station.simulated:
            # The simulated cycler opens only with a cell on its channel; a real one needs none.
            station.instruments.mount({}, {"kind": "full"})
        report = check_station(station)
    print(json.dumps(report, indent=2) if as_json else format_report(report))
    return 1 if report["problems"] else 0
