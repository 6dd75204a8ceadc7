"""The paper's conductivity protocol end to end on the simulated station (issue: Foundation)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from config.protocol import load_protocol
from config.station import load_station
from procedures.analyzers import analyzers_for
from procedures.documents import DocumentStream
from procedures.runner import Runner
from procedures.station import Station
from storage.readers import get_run, list_streams, read_stream
from storage.writer import StorageWriter


def run_protocol(name, db, station_cfg=None, setup=None):
    station_cfg = station_cfg or load_station(simulate=True)
    protocol = load_protocol(name, station_cfg)
    stream = DocumentStream()
    with Station(station_cfg) as station:
        writer = StorageWriter(db, clock=station.clock)
        stream.subscribe(writer, critical=True)
        if setup:
            setup(station)
        outcome = Runner(station, stream, analyzers_for(protocol)).run(protocol)
        writer.close()
        chamber_mode = station.chamber.mode if station._chamber is not None else None
    return outcome, writer.last_run_id, chamber_mode


@pytest.fixture(scope="module")
def conductivity_run(tmp_path_factory):
    db = f"sqlite:///{tmp_path_factory.mktemp('db') / 'run.sqlite'}"
    t0 = time.perf_counter()
    outcome, run_id, mode = run_protocol("onbh_conductivity", db)
    return outcome, run_id, db, time.perf_counter() - t0, mode


def test_conductivity_matches_the_paper(conductivity_run):
    outcome, _, _, _, _ = conductivity_run
    assert outcome.status == "completed", outcome.reason
    eis = outcome.analysis["eis"]
    by_t = {round(s["temperature_c"]): s for s in eis["spectra"]}
    assert sorted(by_t) == [-10, 0, 10, 20, 30, 40, 50]
    assert by_t[30]["sigma_total_s_per_cm"] * 1e3 == pytest.approx(4.6, abs=0.1)
    assert by_t[-10]["sigma_total_s_per_cm"] * 1e3 == pytest.approx(0.30, abs=0.01)
    assert eis["arrhenius"]["total"]["ea_ev"] == pytest.approx(0.49, abs=0.01)


def test_whole_protocol_is_fast_and_fully_stored(conductivity_run):
    outcome, run_id, db, wall_s, mode = conductivity_run
    assert wall_s < 20.0
    run = get_run(db, run_id)
    assert run["status"] == "completed"
    streams = list_streams(db, run_id)
    eis_streams = [s for s in streams["name"] if s != "chamber"]
    assert len(eis_streams) == 7
    for name in eis_streams:
        assert len(read_stream(db, run_id, name)) == 69
    chamber = read_stream(db, run_id, "chamber")
    # 7 set points x (settling + 1 h soak) logged every 10 s: thousands of readings, no gaps.
    assert len(chamber) > 7 * 360
    gaps = chamber["time_s"].diff().dropna()
    assert gaps.max() <= 10.0 + 1e-6
    assert mode == "STANDBY"


def test_ctrl_c_aborts_safely_and_keeps_data(tmp_path):
    db = f"sqlite:///{tmp_path / 'abort.sqlite'}"

    def press_ctrl_c_later(station):
        start = station.clock.now()
        pressed = []

        def maybe_interrupt(now):
            if now - start > 3 * 3600 and not pressed:
                pressed.append(now)
                os.kill(os.getpid(), signal.SIGINT)
        station.clock.every(60.0, maybe_interrupt)

    outcome, run_id, mode = run_protocol("onbh_conductivity", db, setup=press_ctrl_c_later)
    assert outcome.status == "aborted"
    assert mode == "STANDBY"
    run = get_run(db, run_id)
    assert run["status"] == "aborted"
    chamber = read_stream(db, run_id, "chamber")
    assert len(chamber) > 1000
