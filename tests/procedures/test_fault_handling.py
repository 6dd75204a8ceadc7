"""Faults survived or ended safely (issue 9, scope 4), on the simulated station through the run
service: transient chamber faults retried, a start race that outlasts its timeout and a failed
stop of the potentiostat channel stored as what they are."""
from __future__ import annotations

import pytest

from config.station import load_station
from instruments.station import Instruments
from procedures.station import InstrumentUnreachable
from storage.readers import get_run, list_runs


def station_with_faults(**faults):
    cfg = load_station(simulate=True)
    cfg.sim.faults = faults
    return cfg


@pytest.fixture
def closed_instruments(monkeypatch):
    """The instruments each run had open when its station closed them, by role."""
    seen = []
    close = Instruments.close

    def recording_close(self):
        seen.append(self.opened())
        close(self)
    monkeypatch.setattr(Instruments, "close", recording_close)
    return seen


def test_dropped_and_garbled_chamber_replies_are_retried_and_the_run_completes(
        tmp_path, run_simulated, closed_instruments):
    db = f"sqlite:///{tmp_path / 'c.sqlite'}"
    cfg = station_with_faults(chamber={"garble_every": 41, "drop_reply_every": 97})
    outcome, run_id, _, _ = run_simulated("cold_discharge", db, station_cfg=cfg)
    assert outcome.status == "completed", outcome.reason
    assert get_run(db, run_id)["status"] == "completed"
    assert closed_instruments[-1]["chamber"].retried_commands > 10


def test_a_chamber_that_never_answers_is_named_and_no_run_is_stored(tmp_path, run_simulated):
    db = f"sqlite:///{tmp_path / 'd.sqlite'}"
    cfg = station_with_faults(chamber={"drop_reply_every": 1})
    with pytest.raises(InstrumentUnreachable) as caught:
        run_simulated("onbh_conductivity", db, station_cfg=cfg)
    assert "no reply" in str(caught.value) and "ESPEC chamber" in str(caught.value)
    assert list_runs(db).empty


def test_a_chamber_that_stops_answering_mid_run_fails_the_run_with_the_command_named(
        tmp_path, run_simulated, monkeypatch):
    db = f"sqlite:///{tmp_path / 'm.sqlite'}"
    from instruments.espec.simulator import EspecSimulator
    handle = EspecSimulator.handle
    # Silent after its first 50 commands (connected and identified, then the cable drops).
    monkeypatch.setattr(EspecSimulator, "handle",
                        lambda self, line: handle(self, line) if self.commands_handled < 50 else None)
    outcome, run_id, _, _ = run_simulated("onbh_conductivity", db, station_cfg=load_station(simulate=True))
    assert outcome.status in ("failed", "unsafe")
    assert "no reply" in outcome.reason and "ESPEC chamber" in outcome.reason
    assert get_run(db, run_id)["status"] == outcome.status


def test_a_start_race_beyond_its_timeout_fails_the_run_and_stops_the_channel(
        tmp_path, run_simulated, closed_instruments):
    db = f"sqlite:///{tmp_path / 's.sqlite'}"
    cfg = station_with_faults(potentiostat={"start_race_polls": 100})
    outcome, run_id, _, _ = run_simulated("lsv_oxidation", db, station_cfg=cfg)
    assert outcome.status == "failed"
    assert "did not start within" in outcome.reason
    assert "StartTimeout" in get_run(db, run_id)["traceback"]
    dll = closed_instruments[-1]["potentiostat"].dll
    assert not dll.channels[0].running and dll.calls.count("BL_StopChannel") >= 1


def test_a_refused_channel_stop_makes_the_run_unsafe(tmp_path, run_simulated):
    db = f"sqlite:///{tmp_path / 'u.sqlite'}"
    cfg = station_with_faults(potentiostat={"fail_on": {"BL_StopChannel": -1}})
    outcome, run_id, _, _ = run_simulated("lsv_oxidation", db, station_cfg=cfg)
    assert outcome.status == "unsafe"
    assert "potentiostat not made safe" in outcome.reason and "BL_StopChannel" in outcome.reason
    assert get_run(db, run_id)["status"] == "unsafe"
