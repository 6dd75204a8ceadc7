"""The paper's conductivity protocol end to end on the simulated station (issue: Foundation)."""
from __future__ import annotations

import os
import signal

import pytest

from storage.readers import get_run, list_streams, read_stream


@pytest.fixture(scope="module")
def conductivity_run(tmp_path_factory):
    from config.protocol import load_protocol
    from config.station import load_station
    from procedures.service import RunService
    import time
    db = f"sqlite:///{tmp_path_factory.mktemp('db') / 'run.sqlite'}"
    cfg = load_station(simulate=True)
    stations = []
    t0 = time.perf_counter()
    service = RunService(cfg, db, report_dir=False, on_runner=lambda r: stations.append(r.station))
    result = service.run(load_protocol("onbh_conductivity", cfg))
    return result, result.run_id, db, time.perf_counter() - t0, stations[0]


def test_conductivity_matches_the_paper(conductivity_run):
    outcome = conductivity_run[0]
    assert outcome.status == "completed", outcome.reason
    eis = outcome.analysis["eis"]
    by_t = {round(s["temperature_c"]): s for s in eis["spectra"]}
    assert sorted(by_t) == [-10, 0, 10, 20, 30, 40, 50]
    assert by_t[30]["sigma_total_s_per_cm"] * 1e3 == pytest.approx(4.6, abs=0.1)
    assert by_t[-10]["sigma_total_s_per_cm"] * 1e3 == pytest.approx(0.30, abs=0.01)
    assert eis["arrhenius"]["total"]["ea_ev"] == pytest.approx(0.49, abs=0.01)


def test_whole_protocol_is_fast_and_fully_stored(conductivity_run):
    outcome, run_id, db, wall_s, station = conductivity_run
    assert wall_s < 20.0
    assert get_run(db, run_id)["status"] == "completed"
    streams = list_streams(db, run_id)
    eis_streams = [s for s in streams["name"] if s != "chamber"]
    assert len(eis_streams) == 7
    for name in eis_streams:
        assert len(read_stream(db, run_id, name)) == 69
    chamber = read_stream(db, run_id, "chamber")
    # 7 set points x (settling + 1 h soak) logged every 10 s: thousands of readings, no gaps.
    assert len(chamber) > 7 * 360
    assert chamber["time_s"].diff().dropna().max() <= 10.0 + 1e-6
    # After the run the simulated chamber is in STANDBY: no longer controlling the air.
    assert station.instruments.lab.thermal.controlled is False


def test_ctrl_c_aborts_safely_and_keeps_data(tmp_path, run_simulated):
    db = f"sqlite:///{tmp_path / 'abort.sqlite'}"
    stations = []

    def press_ctrl_c_after_3_hours(runner):
        clock = runner.station.clock
        start, pressed = clock.now(), []
        stations.append(runner.station)

        def maybe_interrupt(now):
            if now - start > 3 * 3600 and not pressed:
                pressed.append(now)
                os.kill(os.getpid(), signal.SIGINT)
        clock.every(60.0, maybe_interrupt)

    outcome, run_id, _, _ = run_simulated("onbh_conductivity", db, on_runner=press_ctrl_c_after_3_hours)
    assert outcome.status == "aborted"
    assert outcome.reason == "interrupted by Ctrl+C (SIGINT)"
    assert stations[0].instruments.lab.thermal.controlled is False
    run = get_run(db, run_id)
    assert run["status"] == "aborted"
    assert len(read_stream(db, run_id, "chamber")) > 1000
    assert any(s["status"] == "aborted" for s in run["steps"])


def test_simulated_chamber_reached_over_loopback_tcp(tmp_path, shortened_protocol, run_protocol_object):
    """The same protocol with the chamber simulator served on 127.0.0.1 and the driver on pyvisa-py:
    the LAN transport of a real chamber, end to end."""
    from config.protocol import Protocol
    from config.station import load_station
    cfg = load_station(simulate=True)
    cfg.sim.chamber_over_tcp = True
    protocol = shortened_protocol("onbh_conductivity", 1)
    data = protocol.model_dump()
    data["steps"][0]["temperatures_c"] = [30.0]
    data["steps"][0]["soak_s"] = 600.0
    outcome, run_id, _ = run_protocol_object(Protocol.model_validate(data),
                                             f"sqlite:///{tmp_path / 'tcp.sqlite'}", station_cfg=cfg)
    assert outcome.status == "completed", outcome.reason
    spectrum = outcome.analysis["eis"]["spectra"][0]
    assert spectrum["temperature_c"] == pytest.approx(30.0, abs=0.1)
    assert spectrum["sigma_total_s_per_cm"] * 1e3 == pytest.approx(4.6, abs=0.1)
