"""The BioLogic driver against the simulated DLL: real ctypes marshalling, virtual time."""
import ctypes
import time

import numpy as np
import pytest

from instruments.biologic import api
from instruments.biologic import techniques as tq
from instruments.biologic.api import BiologicError
from instruments.biologic.driver import (BiologicConfigError, BiologicPotentiostat, ChannelOptionError,
                                         build_ecc_params, open_potentiostat)
from instruments.biologic.fake_dll import FakeEClib
from instruments.sim.clock import VirtualClock
from instruments.sim.lab import SimLab

START = 1.7e9


class Resistor:
    """E = e0 + i·R in both directions (a load the CP simulation can drive)."""

    def __init__(self, r_ohm, e0_v=0.0):
        self.r, self.e0 = r_ohm, e0_v

    def rest_potential_v(self, temperature_c):
        return self.e0

    def current_response(self, t_s, e_v, temperature_c):
        return (np.asarray(e_v) - self.e0) / self.r

    def potential_response(self, t_s, i_a):
        return self.e0 + np.asarray(i_a) * self.r


class SeriesRC:
    """R in series with C; the applied potential holds from one sample to the next."""

    def __init__(self, r_ohm, c_f, e0_v=0.0):
        self.r, self.c, self.e0 = r_ohm, c_f, e0_v
        self.t_last, self.e_last, self.vc = None, None, e0_v

    def rest_potential_v(self, temperature_c):
        return self.e0

    def current_response(self, t_s, e_v, temperature_c):
        out = np.empty(len(t_s))
        for k, (t, e) in enumerate(zip(t_s, e_v)):
            if self.t_last is not None:
                self.vc = self.e_last + (self.vc - self.e_last) * np.exp(-(t - self.t_last) / (self.r * self.c))
            out[k] = (e - self.vc) / self.r
            self.t_last, self.e_last = t, e
        return out


class ParallelRC:
    """R parallel to C: i = (E − e0)/R + C·dE/dt (dE/dt from successive samples)."""

    def __init__(self, r_ohm, c_f, e0_v=0.0):
        self.r, self.c, self.e0 = r_ohm, c_f, e0_v
        self.prev = None

    def rest_potential_v(self, temperature_c):
        return self.e0

    def current_response(self, t_s, e_v, temperature_c):
        t, e = np.asarray(t_s, float), np.asarray(e_v, float)
        if self.prev is None:
            rate = np.gradient(e, t) if len(t) > 1 else np.zeros_like(e)
        else:
            rate = np.diff(np.r_[self.prev[1], e]) / np.diff(np.r_[self.prev[0], t])
        self.prev = (t[-1], e[-1])
        return (e - self.e0) / self.r + self.c * rate


@pytest.fixture
def lab():
    return SimLab(VirtualClock(start=START), {"seed": 7})


def connected(lab, board="premium", poll_s=1.0, max_f=7e6, **fake_options):
    fake = FakeEClib(lab, board=board, **fake_options)
    pstat = BiologicPotentiostat(fake, lab.clock, board=board, poll_interval_s=poll_s, max_eis_frequency_hz=max_f)
    pstat.connect()
    return pstat, fake


# --- connection and firmware ----------------------------------------------------------------

def test_connect_identifies_device_and_channel(lab):
    pstat, fake = connected(lab, model="VSP-300", firmware="kernel")
    assert pstat.device.model == "VSP-300" and pstat.device.device_code == 20
    info = pstat.channel_info()
    assert info.firmware_code == api.FIRMWARE_KERNEL and info.board == "premium" and info.has_impedance_board
    assert "BL_LoadFirmware" not in fake.calls
    pstat.disconnect()
    assert fake.connection_id is None


def test_missing_firmware_is_loaded(lab):
    pstat, fake = connected(lab, firmware="none")
    assert "BL_LoadFirmware" in fake.calls
    assert pstat.channel_info().firmware_code == api.FIRMWARE_KERNEL


def test_eclab_firmware_is_not_replaced_unless_forced(lab):
    fake = FakeEClib(lab, firmware="eclab")
    pstat = BiologicPotentiostat(fake, lab.clock)
    with pytest.raises(BiologicError) as info:
        pstat.connect()
    assert info.value.code == -9 and info.value.name == "ERR_GEN_ECLAB_LOADED"
    assert "force_firmware" in str(info.value)
    assert fake.connection_id is None  # connect cleans up after itself
    pstat.connect(force_firmware=True)
    assert pstat.channel_info().firmware_code == api.FIRMWARE_KERNEL


def test_channel_info_before_firmware_is_minus_308_and_read_again_after_loading(lab):
    fake = FakeEClib(lab, firmware="none")
    conn, info = ctypes.c_int32(), api.TDeviceInfos()
    assert fake.BL_Connect(b"USB0", 5, ctypes.byref(conn), ctypes.byref(info)) == 0
    channel = api.TChannelInfos()
    # As BioLogic's example says: -308, and part of the information is still valid.
    assert fake.BL_GetChannelInfos(conn.value, 0, ctypes.byref(channel)) == -308
    assert channel.FirmwareCode == api.FIRMWARE_NONE and channel.BoardSerialNumber == 1000
    fake.BL_Disconnect(conn.value)
    pstat = BiologicPotentiostat(fake, lab.clock)
    pstat.connect()
    calls = fake.calls
    first_load = calls.index("BL_LoadFirmware")
    assert "BL_GetChannelInfos" in calls[first_load:]            # re-read after loading
    assert pstat.channel_info().firmware_code == api.FIRMWARE_KERNEL


def test_channel_info_without_firmware_raises_outside_connect(lab):
    pstat, fake = connected(lab)
    fake.channels[0].firmware_code = api.FIRMWARE_NONE
    with pytest.raises(BiologicError, match="-308"):
        pstat.channel_info()


def test_firmware_of_another_package_version_is_replaced(lab):
    pstat, fake = connected(lab, firmware="stale")
    assert "BL_LoadFirmware" in fake.calls and not fake.channels[0].stale_firmware
    assert pstat.channel_info().firmware_code == api.FIRMWARE_KERNEL


def test_digicore_board_type_3_loads_kernel5_without_fpga_file(lab, tmp_path):
    fake = FakeEClib(lab, board="digicore", firmware="none")
    pstat = BiologicPotentiostat(fake, lab.clock, board="digicore", firmware_dir=str(tmp_path))
    pstat.connect()
    assert pstat.channel_info().board == "digicore"
    lab.load = Resistor(1e3, 0.1)
    rows = pstat.collect(tq.ocv(5.0, record_every_dt_s=1.0))[(0, 0)]
    assert rows["ewe_v"] == pytest.approx(np.full(len(rows["ewe_v"]), 0.1), abs=1e-3)
    assert fake.loaded_files[-1].endswith("ocv5.ecc")


def test_digicore_refuses_an_fpga_file():
    fake = FakeEClib(SimLab(VirtualClock(start=START)), board="digicore", firmware="none")
    conn, info = ctypes.c_int32(), api.TDeviceInfos()
    fake.BL_Connect(b"USB0", 5, ctypes.byref(conn), ctypes.byref(info))
    chans, results = (ctypes.c_uint8 * 16)(1), (ctypes.c_int32 * 16)()
    fake.BL_LoadFirmware(conn.value, chans, results, 16, False, False, b"kernel5.bin", b"x.xlx")
    assert results[0] == -306
    fake.BL_LoadFirmware(conn.value, chans, results, 16, False, False, b"kernel5.bin", None)
    assert results[0] == 0


def test_messages_are_drained(lab):
    pstat, fake = connected(lab, firmware="none")
    assert any("kernel firmware" in m for m in pstat.messages)
    lab.load = Resistor(1e3)
    pstat.collect(tq.ocv(3.0, record_every_dt_s=1.0))
    assert any("started OCV" in m for m in pstat.messages)
    assert not fake.channels[0].messages


def test_current_beyond_its_range_is_flagged_as_overflow(lab):
    lab.load = Resistor(100.0)
    pstat, _ = connected(lab, poll_s=5.0)
    chunks = list(pstat.run(tq.ca([0.5], [20.0], i_range="1mA", record_every_dt_s=5.0)))
    assert chunks and all(c.i_overflow for c in chunks)        # 5 mA on a 1 mA range
    assert pstat.overflow_chunks == len(chunks)
    assert max(abs(c.columns["i_a"]).max() for c in chunks) <= 1e-3 * 1.01
    chunks = list(pstat.run(tq.ca([0.05], [20.0], i_range="1mA", record_every_dt_s=5.0)))
    assert not any(c.i_overflow or c.saturated for c in chunks)


def test_potential_beyond_the_range_is_flagged_as_saturation(lab):
    lab.load = Resistor(20e3)
    pstat, _ = connected(lab, poll_s=5.0)
    chunks = list(pstat.run(tq.cp([1e-3], [20.0], i_range="1mA", record_every_dt_s=5.0)))
    assert chunks and all(c.saturated for c in chunks)         # 20 V asked of a ±10 V channel
    assert max(abs(c.columns["ewe_v"]).max() for c in chunks) <= 10.0 + 1e-3


def test_option_error_stops_the_run(lab):
    lab.load = Resistor(1e3)
    pstat, fake = connected(lab, option_error=101)
    with pytest.raises(ChannelOptionError, match="101 .4 A amplifier"):
        list(pstat.run(tq.ocv(10.0)))
    assert not fake.channels[0].running


def test_hardware_configuration_on_sp300_series_only(lab):
    pstat, _ = connected(lab)
    assert pstat.hardware_config() == {"connection": 0, "floating": False}
    pstat.set_hardware_config(connection=0, floating=True)
    assert pstat.hardware_config()["floating"] is True
    with pytest.raises(ValueError):
        pstat.set_hardware_config(connection=7)
    essential, _ = connected(SimLab(VirtualClock(start=START)), board="essential")
    with pytest.raises(BiologicConfigError, match="SP-300-series"):
        essential.hardware_config()


def test_floats_are_converted_with_the_board_aware_function(lab):
    _, fake = connected(lab)
    assert "BL_ConvertChannelNumericIntoSingle" in fake.calls
    assert "BL_ConvertNumericIntoSingle" not in fake.calls


def test_board_family_mismatch_is_a_config_error(lab):
    fake = FakeEClib(lab, board="essential")
    with pytest.raises(BiologicConfigError, match="reports a 'essential' board"):
        BiologicPotentiostat(fake, lab.clock, board="premium").connect()


def test_wrong_address_fails_with_named_error(lab):
    fake = FakeEClib(lab, addresses=("192.168.0.5",))
    with pytest.raises(BiologicError, match="ERR_COMM_CONNECTIONFAILED"):
        BiologicPotentiostat(fake, lab.clock, address="USB0").connect()


# --- PEIS -----------------------------------------------------------------------------------

@pytest.mark.parametrize("board, rows_per_call", [("premium", 1000 // 14), ("essential", 1000 // 15)])
def test_peis_on_pellet_matches_its_impedance(lab, board, rows_per_call):
    pellet = lab.mount_pellet(thickness_um=1000, diameter_mm=10)
    # a poll interval longer than the sweep: every row waits in the instrument for one drain
    pstat, fake = connected(lab, board=board, poll_s=100.0, start_race_polls=0)
    chunks = list(pstat.run(tq.peis(7e6, 1.0, 0.01, points_per_decade=10)))
    eis = [c for c in chunks if c.process == 1]
    assert all(len(c) <= rows_per_call for c in chunks)
    cols = {k: np.concatenate([c.columns[k] for c in eis]) for k in eis[0].columns}
    assert len(cols["frequency_hz"]) == 69
    assert cols["frequency_hz"][0] == pytest.approx(7e6, rel=1e-6)
    assert cols["frequency_hz"][-1] == pytest.approx(1.0, rel=1e-6)
    assert np.all(np.diff(cols["time_s"]) > 0)
    truth = pellet.impedance(cols["frequency_hz"], lab.sample_temperature_c())
    measured = cols["z_real_ohm"] + 1j * cols["z_imag_ohm"]
    rel = np.abs(measured - truth) / np.abs(truth)
    assert np.median(rel) < 0.006 and rel.max() < 0.02  # 0.3 % noise per component
    assert cols["z_mod_ohm"] == pytest.approx(np.abs(truth), rel=0.02)
    assert np.all(cols["z_imag_ohm"][(cols["frequency_hz"] < 1e5) & (cols["frequency_hz"] > 10)] < 0)
    assert np.all(np.abs(cols["phase_rad"]) <= np.pi / 2 + 0.05)
    assert cols["ewe_mod_v"] == pytest.approx(np.full(69, 0.01))
    assert len(eis) == (2 if board == "essential" else 1)  # 69 rows: 66 + 3 with 15 columns
    assert fake.loaded_files == [tq.PEIS.ecc_file(board)]


def test_peis_timing_follows_periods(lab):
    lab.mount_pellet(500, 10)
    pstat, _ = connected(lab, poll_s=1.0)
    t0 = lab.clock.now()
    data = pstat.collect(tq.peis(1e3, 1e-3, 0.01, frequency_number=3, average_n_times=2, wait_for_steady=1.0))
    freq = data[(0, 1)]
    assert freq["frequency_hz"] == pytest.approx([1e3, 1.0, 1e-3], rel=1e-6)
    expected = np.cumsum([max(0.1, 3.0 / f + 0.05) for f in (1e3, 1.0, 1e-3)])
    assert freq["time_s"] == pytest.approx(expected, rel=1e-5)
    assert lab.clock.now() - t0 >= expected[-1]


def test_frequency_above_model_max_refused_before_sending(lab):
    lab.mount_pellet(1000, 10)
    pstat, fake = connected(lab, max_f=1e6)
    with pytest.raises(tq.TechniqueError, match="above this instrument's maximum"):
        pstat.run(tq.peis(7e6, 1.0, 0.01, points_per_decade=10))
    assert "BL_LoadTechnique" not in fake.calls and "BL_StartChannel" not in fake.calls


def test_simulated_model_refuses_frequency_above_its_limit(lab):
    lab.mount_pellet(1000, 10)
    pstat, fake = connected(lab, max_f=7e6, max_eis_frequency_hz=1e6)
    with pytest.raises(BiologicError) as info:
        pstat.run(tq.peis(7e6, 1.0, 0.01, points_per_decade=10))
    assert info.value.function == "BL_LoadTechnique" and info.value.name == "ERR_GEN_INVALIDPARAMETERS"


# --- polling behaviour ---------------------------------------------------------------------

def test_start_race_does_not_end_the_run(lab):
    lab.load = Resistor(1e3, 0.25)
    pstat, fake = connected(lab, poll_s=1.0, start_race_polls=3)
    rows = pstat.collect(tq.ocv(3.0, record_every_dt_s=1.0))[(0, 0)]
    assert rows["time_s"] == pytest.approx([0.0, 1.0, 2.0])
    assert rows["ewe_v"] == pytest.approx([0.25] * 3, abs=1e-4)
    assert rows["i_a"].tolist() == [0.0] * 3
    assert fake.calls.count("BL_GetData") >= 5


def test_rows_beyond_one_buffer_and_after_stop_are_all_delivered(lab):
    lab.load = Resistor(1e3, 0.1)
    pstat, fake = connected(lab, poll_s=5000.0, start_race_polls=1)
    chunks = list(pstat.run(tq.ocv(1000.0, record_every_dt_s=0.1)))
    assert max(len(c) for c in chunks) == 1000 // 3 and len(chunks) == 31
    t = np.concatenate([c.columns["time_s"] for c in chunks])
    assert len(t) == 10000
    assert np.diff(t) == pytest.approx(np.full(9999, 0.1), abs=1e-4)


def test_instrument_reports_stop_while_rows_remain(lab):
    lab.load = Resistor(1e3, 0.1)
    pstat, fake = connected(lab, start_race_polls=1)
    records = pstat.run(tq.ocv(100.0, record_every_dt_s=0.1))
    lab.clock.sleep(500.0)
    buf, infos, cv = api.TDataBuffer(), api.TDataInfos(), api.TCurrentValues()
    args = (pstat._id, 0, ctypes.byref(buf), ctypes.byref(infos), ctypes.byref(cv))
    assert fake.BL_GetData(*args) == 0 and infos.NbRows == 0 and cv.State == api.STATE_STOP  # start race
    assert fake.BL_GetData(*args) == 0 and infos.NbRows == 333 and cv.State == api.STATE_STOP
    assert cv.MemFilled == 4 * 3 * (1000 - 333)
    rest = list(records)
    assert sum(len(c) for c in rest) == 1000 - 333


def test_closing_the_iterator_stops_the_channel(lab):
    lab.load = Resistor(1e3)
    pstat, fake = connected(lab, poll_s=10.0)
    for chunk in pstat.run(tq.ca([0.1], [3600.0], record_every_dt_s=1.0)):
        break
    assert "BL_StopChannel" in fake.calls
    assert not fake.channels[0].running


def test_error_code_becomes_biologic_error_and_channel_is_stopped(lab):
    lab.load = Resistor(1e3)
    pstat, fake = connected(lab, fail_on={"BL_GetData": -201})
    with pytest.raises(BiologicError) as info:
        list(pstat.run(tq.ca([0.1], [60.0], record_every_dt_s=1.0)))
    err = info.value
    assert (err.function, err.code, err.name) == ("BL_GetData", -201, "ERR_COMM_CONNECTIONFAILED")
    assert "SP-200" in str(err) and "cannot establish" in str(err)
    assert fake.calls[-1] == "BL_StopChannel"


# --- DC techniques against known loads ------------------------------------------------------

def test_long_vscan_on_parallel_rc_in_virtual_time(lab):
    r, c, e0, rate = 1e6, 1e-3, 0.1, 50e-6
    lab.load = ParallelRC(r, c, e0)
    pstat, fake = connected(lab, poll_s=30.0)
    cpu = time.process_time()  # CPU, not wall time: robust to a busy test machine
    rows = pstat.collect(tq.lsv(0.0, 3.6, rate, record_every_de_v=1e-3))[(0, 0)]
    assert time.process_time() - cpu < 3.0
    assert fake.calls.count("BL_GetData") < 2 * 72000 / 30 + 10  # one poll per interval, plus drains
    assert len(rows["time_s"]) == 3601
    assert rows["time_s"][-1] == pytest.approx(3.6 / rate, rel=1e-6)  # 20 h
    assert rows["ewe_v"][[0, -1]] == pytest.approx([0.0, 3.6], abs=1e-4)
    expected = (rate * rows["time_s"] - e0) / r + c * rate
    noise = 5e-4 * 1e-5  # 0.05 % of the 10 µA range full scale
    assert np.abs(rows["i_a"][1:] - expected[1:]).max() < 6 * noise + 1e-10
    assert np.all(rows["cycle"] == 0)


def test_six_hour_ca_step_on_series_rc(lab):
    r, c = 1e4, 0.1  # τ = 1000 s
    lab.load = SeriesRC(r, c, e0_v=0.0)
    pstat, _ = connected(lab, poll_s=30.0)
    cpu = time.process_time()
    rows = pstat.collect(tq.ca([0.1], [6 * 3600.0], record_every_dt_s=10.0))[(0, 0)]
    assert time.process_time() - cpu < 3.0
    assert len(rows["time_s"]) == 2160
    expected = 0.1 / r * np.exp(-rows["time_s"] / (r * c))
    full_scale = 10.0 ** np.ceil(np.log10(expected))  # the range auto-ranging picks
    assert np.all(np.abs(rows["i_a"] - expected) < 6 * 5e-4 * full_scale + 20e-12 + 1e-12)
    assert rows["i_a"][-1] == pytest.approx(20e-12, abs=1e-12)  # e^-21.6 of 10 µA: the 20 pA offset
    assert rows["ewe_v"] == pytest.approx(np.full(2160, 0.1), abs=1e-4)


def test_ca_vs_initial_adds_rest_potential_and_auto_range_adds_offset(lab):
    lab.load = Resistor(1e9, e0_v=0.3)
    pstat, fake = connected(lab, poll_s=10.0, current_offset_a=20e-12)
    rows = pstat.collect(tq.ca([0.05], [100.0], vs_initial=True, record_every_dt_s=1.0))[(0, 0)]
    assert rows["ewe_v"] == pytest.approx(np.full(100, 0.35), abs=1e-4)
    # 50 pA true + 20 pA offset, on the 100 pA range (noise 0.05 pA)
    assert rows["i_a"].mean() == pytest.approx(70e-12, rel=0.01)


def test_cp_on_resistor(lab):
    lab.load = Resistor(500.0, 0.2)
    pstat, _ = connected(lab, poll_s=10.0)
    rows = pstat.collect(tq.cp([1e-3, -1e-3], [60.0, 60.0], i_range="10mA", record_every_dt_s=5.0))[(0, 0)]
    assert len(rows["time_s"]) == 24
    assert rows["ewe_v"][:12] == pytest.approx(np.full(12, 0.7), abs=1e-4)
    assert rows["ewe_v"][12:] == pytest.approx(np.full(12, -0.3), abs=1e-4)
    assert rows["i_a"][:12] == pytest.approx(np.full(12, 1e-3), abs=1e-5)


def test_cp_needs_a_load_with_potential_response(lab):
    lab.mount_pellet(1000, 10)
    pstat, _ = connected(lab)
    with pytest.raises(RuntimeError, match="potential_response"):
        list(pstat.run(tq.cp([1e-6], [10.0], i_range="10uA")))


def test_calimit_ends_step_on_current_test(lab):
    r, c = 1e4, 0.1
    lab.load = SeriesRC(r, c)
    pstat, _ = connected(lab, poll_s=60.0)
    i_cut = 0.1 / r * np.exp(-2.0)  # reached at t = 2τ = 2000 s
    technique = tq.calimit([0.1, 0.0], [3600.0, 100.0], tests=[[LimitTestI(i_cut)], []],
                           record_every_dt_s=10.0)
    rows = pstat.collect(technique)[(0, 0)]
    step0 = rows["ewe_v"] > 0.05
    assert rows["time_s"][step0][-1] == pytest.approx(2000.0, abs=10.0)
    assert rows["time_s"][~step0][0] == pytest.approx(rows["time_s"][step0][-1], abs=1e-6)
    assert rows["time_s"][-1] == pytest.approx(rows["time_s"][step0][-1] + 90.0, abs=1e-3)


def LimitTestI(value):
    return tq.LimitTest("I", "<", value)


def test_chain_runs_techniques_in_order(lab):
    lab.load = Resistor(1e3, 0.2)
    pstat, _ = connected(lab, poll_s=10.0)
    data = pstat.collect([tq.ocv(30.0, record_every_dt_s=10.0), tq.ca([0.5], [30.0], record_every_dt_s=10.0)])
    assert data[(0, 0)]["time_s"] == pytest.approx([0.0, 10.0, 20.0])
    assert data[(1, 0)]["time_s"] == pytest.approx([30.0, 40.0, 50.0], abs=1e-4)
    assert data[(1, 0)]["i_a"] == pytest.approx(np.full(3, 0.3e-3), abs=6 * 5e-4 * 1e-3)


# --- parameters -----------------------------------------------------------------------------

def test_update_parameters_ends_a_step_early(lab):
    lab.load = Resistor(1e4)
    pstat, fake = connected(lab, poll_s=10.0)
    seen, updated_at = [], None
    for chunk in pstat.run(tq.ca([0.1, 0.2], [3600.0, 3600.0], record_every_dt_s=10.0)):
        seen.append(chunk.columns)
        if updated_at is None and chunk.columns["time_s"][-1] >= 300.0:
            pstat.end_step(0, 0)
            updated_at = lab.clock.now() - pstat.started_at
    t = np.concatenate([c["time_s"] for c in seen])
    e = np.concatenate([c["ewe_v"] for c in seen])
    first_step2 = t[e > 0.15][0]
    assert first_step2 == pytest.approx(updated_at, abs=10.0)
    assert t[-1] == pytest.approx(updated_at + 3600.0 - 10.0, abs=10.0)
    assert "BL_UpdateParameters" in fake.calls


def test_update_parameters_refused_before_sending(lab):
    lab.load = Resistor(1e4)
    pstat, fake = connected(lab, poll_s=10.0)
    records = pstat.run(tq.ca([0.1] * 12, [60.0] * 12, record_every_dt_s=10.0))
    next(records)
    with pytest.raises(tq.TechniqueError, match="at most 10"):
        pstat.update_parameters(0, {"Duration_step": [1.0] * 12})
    with pytest.raises(tq.TechniqueError, match="cannot change while a technique runs"):
        pstat.update_parameters(0, {"I_Range": 5})
    with pytest.raises(tq.TechniqueError, match="outside"):
        pstat.update_parameters(0, {"Voltage_step": {3: 50.0}})
    assert "BL_UpdateParameters" not in fake.calls
    records.close()


def test_fake_refuses_hardware_update_while_running(lab):
    lab.load = Resistor(1e4)
    pstat, fake = connected(lab, poll_s=10.0)
    records = pstat.run(tq.ca([0.1], [600.0], record_every_dt_s=10.0))
    next(records)
    array, params = build_ecc_params([tq.EccValue("I_Range", "int", 5)])
    assert fake.BL_UpdateParameters(pstat._id, 0, 0, params, b"ca4.ecc") == -15
    records.close()


def test_dll_and_python_parameter_encoding_give_the_same_bytes(lab):
    fake = FakeEClib(lab)
    values = tq.peis(7e6, 0.1, 0.0125, points_per_decade=7).ecc_values() + \
        tq.ca([0.1, -2.5, 1e-10], [1.0, 2.0, 3.0]).ecc_values()
    a, pa = build_ecc_params(values, fake)
    b, pb = build_ecc_params(values, None)
    assert pa.len == pb.len == len(values)
    assert all(bytes(a[k]) == bytes(b[k]) for k in range(len(values)))


def test_fake_checks_labels_files_and_firmware(lab):
    lab.load = Resistor(1e3)
    fake = FakeEClib(lab, firmware="kernel")
    conn, info = ctypes.c_int32(), api.TDeviceInfos()
    assert fake.BL_Connect(b"USB0", 5, ctypes.byref(conn), ctypes.byref(info)) == 0
    good = tq.ocv(10.0).ecc_values()
    _, params = build_ecc_params(good)
    assert fake.BL_LoadTechnique(conn.value, 0, b"ocv.ecc", params, True, True, False) == -401
    assert fake.BL_LoadTechnique(conn.value, 0, b"nosuch4.ecc", params, True, True, False) == -400
    _, bad = build_ecc_params(good + [tq.EccValue("rest_time_t", "single", 1.0)])
    assert fake.BL_LoadTechnique(conn.value, 0, b"ocv4.ecc", bad, True, True, False) == -4
    _, typed = build_ecc_params([tq.EccValue("Rest_time_T", "int", 10)] + good[1:])
    assert fake.BL_LoadTechnique(conn.value, 0, b"ocv4.ecc", typed, True, True, False) == -4
    # A label the manual lists for CV but not for VSCAN is refused like any unknown label.
    sweep = tq.lsv(0.0, 1.0, 1e-3).ecc_values()
    _, plain = build_ecc_params(sweep)
    _, averaged = build_ecc_params(sweep + [tq.EccValue("Average_over_dE", "bool", False)])
    assert fake.BL_LoadTechnique(conn.value, 0, b"vscan4.ecc", averaged, True, True, False) == -4
    assert fake.BL_LoadTechnique(conn.value, 0, b"vscan4.ecc", plain, True, True, False) == 0
    assert fake.BL_LoadTechnique(conn.value, 0, b"C:\\ecc\\ocv4.ecc", params, True, True, False) == 0
    assert fake.BL_LoadTechnique(conn.value, 5, b"ocv4.ecc", params, True, True, False) == -3
    fake.channels[1].firmware_code = api.FIRMWARE_NONE
    assert fake.BL_LoadTechnique(conn.value, 1, b"ocv4.ecc", params, True, True, False) == -308
    fake.channels[1].firmware_code = api.FIRMWARE_INTERPRETER
    assert fake.BL_StartChannel(conn.value, 1) == -9
    out = ctypes.c_float()
    assert fake.BL_ConvertNumericIntoSingle(0x40490FDB, ctypes.byref(out)) == 0
    assert out.value == pytest.approx(3.14159265, rel=1e-7)
    buf, size = ctypes.create_string_buffer(128), ctypes.c_uint32(128)
    assert fake.BL_GetErrorMsg(-401, buf, ctypes.byref(size)) == 0
    assert b"not compatible" in buf.value and size.value == len(buf.value)


# --- construction from the station file ----------------------------------------------------

def test_open_potentiostat_with_lab_uses_the_fake(lab):
    lab.faults["potentiostat"] = {"start_race_polls": 2}
    lab.mount_pellet(1000, 10)
    config = {"driver": "biologic", "address": "USB0", "channel": 2, "dll_path": "", "firmware_dir": "",
              "board": "essential", "model": "VSP", "max_eis_frequency_hz": 1e6, "connect_timeout_s": 5,
              "poll_interval_s": 2.0}
    with open_potentiostat(config, lab.clock, lab) as pstat:
        assert isinstance(pstat.dll, FakeEClib) and pstat.dll.start_race_polls == 2
        assert pstat.device.model == "VSP" and pstat.channel == 2
        data = pstat.collect(tq.peis(1e6, 1e3, 0.01, frequency_number=4))
        assert len(data[(0, 1)]["frequency_hz"]) == 4
        assert pstat.dll.loaded_files == ["peis.ecc"]
    assert pstat.dll.connection_id is None


def test_open_potentiostat_rejects_unknown_settings(lab):
    with pytest.raises(BiologicConfigError, match="unknown setting"):
        open_potentiostat({"adress": "USB0"}, lab.clock, lab)
    lab.faults["potentiostat"] = {"fail_onn": {}}
    with pytest.raises(BiologicConfigError, match="unknown option"):
        open_potentiostat({}, lab.clock, lab)


def test_open_potentiostat_without_lab_needs_the_real_dll(lab):
    with pytest.raises(api.LibraryNotAvailable):
        open_potentiostat({"dll_path": "/nonexistent/EClib64.dll"}, lab.clock)


# --- the channel's finite memory, and re-attaching after the controller died --------------------

def test_a_full_channel_memory_loses_its_oldest_rows_and_counts_them_in_irqskipped(lab):
    lab.load = Resistor(1e3, 0.1)
    pstat, fake = connected(lab, memory_bytes=2000, start_race_polls=0)  # 166 OCV rows of 3 words
    records = pstat.run(tq.ocv(1000.0, record_every_dt_s=1.0))
    lab.clock.sleep(500.0)  # nobody reads: 501 rows measured meanwhile
    chunks = list(records)
    assert max(ch.mem_filled_bytes() for ch in fake.channels) == 0
    skipped = [c.irq_skipped for c in chunks]
    assert skipped[0] == 501 - 2000 // 12 and not any(skipped[1:])
    assert pstat.points_lost == skipped[0]
    t = np.concatenate([c.columns["time_s"] for c in chunks])
    assert t[0] == pytest.approx(501 - 2000 // 12, abs=1e-3)  # the newest rows were kept
    assert len(t) + skipped[0] == 1000 and np.allclose(np.diff(t), 1.0, atol=1e-3)


def test_memory_smaller_than_a_row_is_refused(lab):
    with pytest.raises(ValueError, match="memory_bytes"):
        FakeEClib(lab, memory_bytes=16)


def test_reattach_reads_a_running_channel_without_loading_firmware_or_a_technique(lab):
    lab.load = Resistor(1e3, 0.1)
    first, fake = connected(lab, poll_s=10.0)
    records = first.run(tq.ca([0.1], [3600.0], record_every_dt_s=1.0))
    read = [next(records) for _ in range(3)]
    t_read = np.concatenate([c.columns["time_s"] for c in read])
    started = first.started_at
    lab.clock.sleep(100.0)  # the controller is gone; the channel runs on
    again = BiologicPotentiostat(fake, lab.clock, poll_interval_s=10.0)
    again.connect()
    fake.calls.clear()
    chunks = list(again.reattach())
    assert not {"BL_LoadFirmware", "BL_LoadTechnique", "BL_StartChannel", "BL_StopChannel"} & set(fake.calls)
    assert again.current_values()["state"] == api.STATE_RUN  # it goes on with its technique
    assert again.started_at == pytest.approx(started, abs=0.01)
    assert {c.technique for c in chunks} == {"CA"} and not any(c.irq_skipped for c in chunks)
    t = np.concatenate([c.columns["time_s"] for c in chunks])
    assert t[0] == pytest.approx(t_read[-1] + 1.0, abs=1e-3) and len(t) >= 100
    del records
