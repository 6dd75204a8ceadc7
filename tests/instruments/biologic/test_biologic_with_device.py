"""Device tier: the driver on a real BioLogic channel with a dummy cell (Windows, EC-Lab
Development Package installed). Skipped unless pytest gets --device-address, e.g.

    pytest tests/instruments/biologic/test_biologic_with_device.py --device-address USB0 \
        --biologic-dll "C:/EC-Lab Development Package/lib/EClib64.dll" \
        --biologic-firmware-dir "C:/EC-Lab Development Package/lib" --biologic-board premium
"""
import numpy as np
import pytest

from instruments.biologic import techniques as tq
from instruments.biologic.driver import open_potentiostat
from instruments.clock import WallClock


@pytest.fixture
def pstat(request):
    address = request.config.getoption("--device-address")
    if not address:
        pytest.skip("no --device-address given: device tests need a connected BioLogic")
    config = {"address": address, "dll_path": request.config.getoption("--biologic-dll"),
              "firmware_dir": request.config.getoption("--biologic-firmware-dir"),
              "board": request.config.getoption("--biologic-board"),
              "channel": request.config.getoption("--biologic-channel"), "poll_interval_s": 0.5}
    with open_potentiostat(config, WallClock()) as driver:
        yield driver


def test_identifies_instrument_and_channel(pstat):
    assert pstat.device.n_channels >= pstat.channel
    info = pstat.channel_info()
    assert info.firmware_code == 5 and info.board == pstat.board


def test_short_ocv_gives_rows(pstat):
    rows = pstat.collect(tq.ocv(3.0, record_every_dt_s=0.5))[(0, 0)]
    assert len(rows["time_s"]) >= 5 and np.all(np.diff(rows["time_s"]) > 0)
    assert np.all(np.abs(rows["ewe_v"]) < 10.0)


def test_short_peis_on_dummy_cell(pstat):
    data = pstat.collect(tq.peis(1e5, 1e2, 0.01, points_per_decade=2))
    freq = data[(0, 1)]
    assert len(freq["frequency_hz"]) == tq.frequency_count(1e5, 1e2, 2)
    assert np.all(np.isfinite(freq["z_real_ohm"])) and np.all(freq["z_mod_ohm"] > 0)


def test_ca_step_can_be_ended_early(pstat):
    seen, ended = [], False
    for chunk in pstat.run(tq.ca([0.0, 0.0], [60.0, 2.0], record_every_dt_s=0.2)):
        seen.append(chunk.columns["time_s"])
        if not ended and chunk.columns["time_s"][-1] > 2.0:
            pstat.end_step(0, 0, duration_s=1.0)
            ended = True
    assert np.concatenate(seen)[-1] < 30.0
