"""Shared helper: run a protocol on the simulated station through the run service, as the CLI does."""
from __future__ import annotations

import time

import pytest

from config.protocol import load_protocol
from config.station import load_station
from procedures.service import RunService


@pytest.fixture
def run_simulated():
    def run(name, db, station_cfg=None, subscribers=(), on_runner=None):
        station_cfg = station_cfg or load_station(simulate=True)
        protocol = load_protocol(name, station_cfg)
        t0 = time.perf_counter()
        result = RunService(station_cfg, db, subscribers=subscribers, report_dir=False,
                            on_runner=on_runner).run(protocol)
        return result, result.run_id, time.perf_counter() - t0, station_cfg
    return run


@pytest.fixture
def shortened_protocol():
    """A shipped protocol with every loop of its cycling programs cut to ``count`` passes."""
    from config.protocol import Protocol, resolve_protocol_path
    from config.station import read_toml

    def make(name: str, count: int):
        data = read_toml(resolve_protocol_path(name))
        for step in data["steps"]:
            for pstep in step.get("program", {}).get("steps", []):
                if pstep.get("kind") == "loop":
                    pstep["count"] = count
        return Protocol.model_validate(data)
    return make


@pytest.fixture
def run_protocol_object():
    def run(protocol, db, station_cfg=None, on_runner=None):
        station_cfg = station_cfg or load_station(simulate=True)
        t0 = time.perf_counter()
        result = RunService(station_cfg, db, report_dir=False, on_runner=on_runner).run(protocol)
        return result, result.run_id, time.perf_counter() - t0
    return run
