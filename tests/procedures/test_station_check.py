"""`main.py station --check`: read-only queries against the (simulated) station's instruments."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from config.station import load_station
from instruments.biologic import api
from procedures.station import Station
from procedures.station_check import check_station, format_report

ROOT = Path(__file__).resolve().parent.parent.parent
# EClib functions that only read (BL_GetMessage drains a queue, so the check does not call it).
READ_ONLY_DLL = {"BL_GetChannelInfos", "BL_GetChannelBoardType", "BL_GetCurrentValues", "BL_GetHardConf"}


def chamber_state(sim) -> dict:
    return {"mode": sim.mode, "setpoint_c": sim.setpoint_c, "limits": (sim.lower_limit_c, sim.upper_limit_c),
            "humidity_setpoint_pct": sim.humidity_setpoint_pct, "key_protect": sim.key_protect,
            "controlled": sim.thermal.controlled, "thermal_setpoint_c": sim.thermal.setpoint_c}


def potentiostat_state(fake) -> list:
    return [copy.deepcopy((c.firmware_code, c.stale_firmware, len(c.chain), c.run is None, c.hard_conf,
                           list(c.messages))) for c in fake.channels]


@pytest.fixture
def station():
    with Station(load_station(simulate=True)) as station:
        station.instruments.mount({}, {"kind": "full"})
        yield station


def test_check_reports_every_instrument_and_changes_none(station):
    chamber_sim = station.chamber.adapter.simulator
    fake = station.potentiostat.dll
    cycler = station.cycler
    commands = []
    handle = chamber_sim.handle
    chamber_sim.handle = lambda line: (commands.append(line), handle(line))[1]
    before = (chamber_state(chamber_sim), potentiostat_state(fake), cycler.state())
    calls_before = len(fake.calls)
    report = check_station(station)
    assert report["problems"] == []
    assert (chamber_state(chamber_sim), potentiostat_state(fake), cycler.state()) == before
    assert commands and all(c.split(",", 1)[0].strip().endswith("?") for c in commands), commands
    assert set(fake.calls[calls_before:]) <= READ_ONLY_DLL
    chamber, pot = report["chamber"], report["potentiostat"]
    assert chamber["identity"].startswith("SH-SIM") and chamber["mode"] == "OFF"
    assert chamber["humidity_capable"] is True and chamber["humidity_setpoint_pct"] == 60.0
    assert chamber["max_temperature_c"] == 150.0 and chamber["station_limits_c"] == [-40.0, 150.0]
    assert pot["identity"]["model"] == "SP-200" and pot["board"] == "premium"
    assert pot["firmware"]["channel_code"] == api.FIRMWARE_KERNEL and pot["firmware"]["loaded_at_connect"]
    assert pot["library_version"].startswith("6.04")
    assert pot["channel"]["state"] == "stop" and pot["channel"]["impedance_board"] is True
    assert report["cycler"]["state"] == "idle"
    text = format_report(report)
    for words in ("identity: SH-SIM", "mode: OFF", "humidity_capable: True", "library_version: 6.04",
                  "board: premium", "problems: none"):
        assert words in text


def test_an_instrument_that_fails_is_reported_and_the_others_still_checked(station, monkeypatch):
    monkeypatch.setattr(type(station), "chamber", property(lambda self: 1 / 0))
    report = check_station(station)
    assert "ZeroDivisionError" in report["chamber"]["error"]
    assert report["problems"] == ["chamber: division by zero"]
    assert report["potentiostat"]["board"] == "premium"


def test_cli_station_check_json():
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "station", "--check", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["chamber"]["mode"] == "OFF" and report["potentiostat"]["board"] == "premium"


def test_the_simulated_stations_chamber_is_powered_and_held_temperature_only(station):
    sim = station.chamber.adapter.simulator
    assert sim.mode == "OFF" and sim.humidity_setpoint_pct == 60.0    # as found
    station.set_chamber(-10.0)
    assert sim.mode == "CONSTANT" and sim.setpoint_c == -10.0
    assert sim.humidity_setpoint_pct is None                          # HUMI, SOFF was sent
