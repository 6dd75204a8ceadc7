"""The simulated chamber, driven through the real driver in process (SimulatorAdapter)."""
import math
import time

import pytest

from config.station import ChamberConfig
from instruments.espec.adapters import SimulatorAdapter, open_chamber, resource_name, \
    chamber_settings
from instruments.espec.driver import EspecChamber
from instruments.espec.errors import EspecCommunicationError, EspecError, EspecRefused
from instruments.espec.simulator import EspecSimulator
from instruments.espec.stability import ChamberNotStable, Reading, wait_until_stable
from instruments.sim.clock import VirtualClock
from instruments.sim.lab import SimLab
from instruments.sim.thermal import ThermalConstants, ThermalModel


@pytest.fixture
def lab():
    return SimLab(VirtualClock(start=1_000_000.0))


def connect(lab, **sim_kwargs):
    simulator = EspecSimulator(lab, **sim_kwargs)
    return simulator, open_chamber({}, clock=lab.clock, simulator=simulator)


# --- the simulator's own answers ------------------------------------------------------------------
def test_temperature_only_answers(lab):
    sim = EspecSimulator(lab)
    assert sim.handle("TYPE?") == "T,S2,150.0"
    assert sim.handle("MON?") == "23.0,,STANDBY,0"
    assert sim.handle("HUMI?") == "NA:CONT NOT READY-1"
    assert sim.handle("TEMP?") == "23.0,23.0,150.0,-40.0"
    assert sim.handle("ALARM?") == "0"
    assert sim.handle("TEMP, S-10.0 H0.0 L-20.0") == "OK:TEMP, S-10.0 H0.0 L-20.0"
    assert sim.handle("TEMP?") == "23.0,-10.0,0.0,-20.0"


@pytest.mark.parametrize("command, reply", [
    ("FOO?", "NA:CMD ERR"), ("POWER, MAYBE", "NA:PARA ERR"), ("HUMI, S50", "NA:CONT NOT READY-1"),
    ("KEYPROTECT, YES", "NA:PARA ERR"), ("PRGM MON?", "NA:CONT NOT READY-2"),
    ("TEMP, X25", "NA:PARA ERR"), ("TEMP, S25.0 S26.0", "NA:PARA ERR"), ("TEMP,", "NA:PARA ERR"),
    ("TEMP, Snan", "NA:PARA ERR"), ("MODE, FAST", "NA:PARA ERR"),
    ("MODE, RUN1", "NA:DATA NOT READY"),
    ("TEMP, S150.1", "NA:DATA OUT OF RANGE"), ("TEMP, S-40.5", "NA:DATA OUT OF RANGE"),
    ("TEMP, H20.0", "NA:DATA OUT OF RANGE"),   # below the set point (23.0)
    ("TEMP, S30.0 H25.0", "NA:DATA OUT OF RANGE"),
])
def test_refusals(lab, command, reply):
    sim = EspecSimulator(lab)
    assert sim.handle(command) == reply
    assert sim.handle("TEMP?") == "23.0,23.0,150.0,-40.0"  # nothing changed


def test_configurable_range_and_addressing(lab):
    sim = EspecSimulator(lab, min_temperature_c=-20, max_temperature_c=100, rs485_address=5,
                         echo_address=True)
    assert sim.handle("MON?") is None          # not addressed
    assert sim.handle("4,MON?") is None        # another chamber
    assert sim.handle("5,TYPE?") == "5,T,S2,100.0"
    assert sim.handle("5,TEMP, S-30.0") == "5,NA:DATA OUT OF RANGE"


def test_rs485_settings_are_answered_as_the_manual_shows(lab):
    sim = EspecSimulator(lab, rs485_address=2)
    assert sim.handle("2,MON?") == "23.0,,STANDBY,0"
    assert sim.handle("2,TEMP, S25.0") == "OK:2,TEMP, S25.0"
    chamber = open_chamber({"transport": "rs485", "rs485_address": 2}, clock=lab.clock,
                           simulator=sim)
    chamber.hold_temperature(-10.0)
    assert sim.mode == "CONSTANT" and sim.setpoint_c == -10.0


def test_control_power_off_refuses_constant_until_power_on(lab):
    sim = EspecSimulator(lab, powered=False)
    assert sim.handle("MODE?") == "OFF"
    assert sim.handle("MODE, CONSTANT") == "NA:CHB NOT READY"
    assert sim.handle("KEYPROTECT, ON") == "NA:CONT NOT READY-4"
    assert sim.handle("POWER, ON") == "OK:POWER, ON"
    assert sim.handle("MODE?") == "STANDBY"
    assert sim.handle("MODE, CONSTANT") == "OK:MODE, CONSTANT"
    assert lab.thermal.controlled
    assert sim.handle("POWER, OFF") == "OK:POWER, OFF"
    assert sim.handle("MODE?, DETAIL") == "OFF" and not lab.thermal.controlled


def test_driver_powers_a_chamber_found_off(lab):
    sim, chamber = connect(lab, powered=False)
    with pytest.raises(EspecRefused, match="CHB NOT READY"):
        chamber.mode = "CONSTANT"
    chamber.hold_temperature(-10.0)
    assert sim.mode == "CONSTANT" and lab.thermal.controlled and sim.setpoint_c == -10.0


def test_humidity_chamber_answers(lab):
    sim = EspecSimulator(lab, humidity=True, humidity_setpoint_pct=60)
    assert sim.handle("TYPE?") == "T,T,S2,150.0"
    assert sim.handle("HUMI?") == "45,60,100,0"
    assert sim.handle("MODE, CONSTANT") == "OK:MODE, CONSTANT"
    assert sim.handle("MON?") == "23.0,60,CONSTANT,0"      # the old RH set point is controlled
    assert sim.handle("CONSTANT SET?, HUMI") == "60,ON"
    assert sim.handle("HUMI, SOFF") == "OK:HUMI, SOFF"
    assert sim.handle("MON?") == "23.0,45,CONSTANT,0"
    assert sim.handle("HUMI?") == "45,OFF,100,0"
    assert sim.handle("HUMI, S101") == "NA:DATA OUT OF RANGE"


def test_driver_holds_temperature_only_on_a_humidity_chamber(lab):
    sim, chamber = connect(lab, humidity=True)
    assert chamber.has_humidity()
    chamber.hold_temperature(-15.0)
    assert sim.humidity_setpoint_pct is None and sim.mode == "CONSTANT"
    assert chamber.monitor.humidity_pct == 45.0
    assert chamber.constant_temperature.setpoint == -15.0


def test_session_frames_lines_in_any_chunking(lab):
    session = EspecSimulator(lab).session()
    assert session.feed("MO") == ""
    assert session.feed("DE?\r\nALA") == "STANDBY\r\n"
    assert session.feed("RM?\r\nMODE?\r\n") == "0\r\nSTANDBY\r\n"
    assert session.feed("MODE?\n") == ""       # a bare LF does not end a line


def test_clock_must_be_the_labs(lab):
    assert EspecSimulator(lab, lab.clock).clock is lab.clock
    with pytest.raises(ValueError, match="clock"):
        EspecSimulator(lab, VirtualClock(start=0.0))


def test_unknown_fault_is_refused(lab):
    with pytest.raises(ValueError, match="drop_every"):
        EspecSimulator(lab, faults={"drop_every": 2})
    with pytest.raises(ValueError, match="garble_every"):
        EspecSimulator(lab, faults={"garble_every": 0})


# --- behaviour through the driver ---------------------------------------------------------------------
def test_identify(lab):
    _, chamber = connect(lab)
    assert "simulator" in chamber.rom
    assert chamber.chamber_type.wet_bulb is None


def test_ramp_at_two_degrees_per_minute(lab):
    _, chamber = connect(lab)
    chamber.set_temperature(-10.0)
    chamber.mode = "CONSTANT"
    started = lab.clock.now()
    lab.clock.sleep(300.0)
    reading = chamber.temperature
    elapsed_min = (lab.clock.now() - started) / 60.0
    assert reading == pytest.approx(23.0 - 2.0 * elapsed_min, abs=0.06)
    assert reading == pytest.approx(13.0, abs=0.1)
    assert chamber.monitor.mode == "CONSTANT"


def test_air_does_not_move_toward_set_point_in_standby(lab):
    _, chamber = connect(lab)
    chamber.setpoint = -10
    lab.clock.sleep(600.0)
    assert chamber.temperature == 23.0


def test_settles_and_wait_until_stable_returns_readings(lab):
    _, chamber = connect(lab)
    chamber.set_temperature(-10.0)
    chamber.mode = "CONSTANT"
    start = lab.clock.now()
    logged = []
    readings = wait_until_stable(chamber, -10.0, tolerance_c=0.5, dwell_s=60.0,
                                 timeout_s=3600.0, clock=lab.clock, poll_s=10.0,
                                 on_reading=logged.append)
    assert readings == logged and all(isinstance(r, Reading) for r in readings)
    in_band = [r for r in readings if abs(r.temperature_c + 10.0) <= 0.5]
    # Air reaches -9.5 °C after 32.5 °C / 2 °C/min = 975 s; stable 60 s later.
    assert in_band[0].time_s - start == pytest.approx(975.0, abs=11.0)
    assert readings[-1].time_s - in_band[0].time_s == pytest.approx(60.0, abs=10.0)
    assert readings[-1].temperature_c == -10.0
    # Polls are scheduled every 10 s from the start.
    assert readings[1].time_s - readings[0].time_s == pytest.approx(10.0)


def test_not_stable_in_time_names_set_point_and_last_reading(lab):
    _, chamber = connect(lab)
    chamber.set_temperature(-10.0)
    chamber.mode = "CONSTANT"
    with pytest.raises(ChamberNotStable) as info:
        wait_until_stable(chamber, -10.0, 0.5, 60.0, timeout_s=120.0, clock=lab.clock)
    assert isinstance(info.value, TimeoutError)
    assert "-10.0" in str(info.value) and "19.0" in str(info.value)
    assert info.value.last_reading.temperature_c == pytest.approx(19.0, abs=0.1)


def test_wait_until_stable_rejects_bad_arguments(lab):
    _, chamber = connect(lab)
    with pytest.raises(ValueError, match="tolerance_c"):
        wait_until_stable(chamber, 20.0, 0.0, 60.0, 600.0, lab.clock)
    with pytest.raises(ValueError, match="dwell_s"):
        wait_until_stable(chamber, 20.0, 0.5, -1.0, 600.0, lab.clock)


def test_upper_alarm_while_air_above_limit_then_clears(lab):
    _, chamber = connect(lab)
    chamber.set_temperature(-10.0, upper_c=0.0, lower_c=-20.0)
    assert chamber.alarms.count == 0            # STANDBY: no temperature alarm
    chamber.mode = "CONSTANT"
    assert chamber.alarms.codes == (2,)
    assert chamber.monitor.alarm_count == 1
    lab.clock.sleep(12 * 60.0)                  # 23 - 24 = -1 °C
    assert chamber.alarms.count == 0


def test_lower_alarm_when_warming_from_cold(lab):
    _, chamber = connect(lab)
    chamber.set_temperature(-10.0)
    chamber.mode = "CONSTANT"
    lab.clock.sleep(3600.0)
    chamber.set_temperature(40.0, upper_c=50.0, lower_c=30.0)
    assert chamber.alarms.codes == (3,)


def test_a_station_range_beyond_the_chambers_own_is_refused_at_connect(lab):
    with pytest.raises(EspecError, match=r"up to 150 °C .* reports a maximum of 100 °C"):
        connect(lab, max_temperature_c=100.0)
    chamber = open_chamber({"max_temperature_c": 100.0}, clock=lab.clock,
                           simulator=EspecSimulator(lab, max_temperature_c=100.0))
    assert chamber.check_range().max_temperature_c == 100.0


def test_na_replies_through_the_driver(lab):
    sim = EspecSimulator(lab, max_temperature_c=100.0)
    chamber = EspecChamber(SimulatorAdapter(sim), clock=lab.clock)   # no range check at connect
    with pytest.raises(EspecRefused, match="DATA OUT OF RANGE"):
        chamber.setpoint = 120.0                # within the driver's limits, not the chamber's
    chamber.set_temperature(20.0, upper_c=30.0, lower_c=10.0)
    with pytest.raises(EspecRefused, match=r"'TEMP, S35.0'.*DATA OUT OF RANGE"):
        chamber.setpoint = 35.0
    assert chamber.setpoint == 20.0
    with pytest.raises(EspecRefused, match="CONT NOT READY-1"):
        chamber.ask("HUMI?")
    with pytest.raises(EspecRefused, match="CMD ERR"):
        chamber.send_setting("FAN, ON")


def test_shutdown_on_exit_puts_chamber_in_standby(lab):
    sim = EspecSimulator(lab)
    with open_chamber({}, clock=lab.clock, simulator=sim) as chamber:
        chamber.mode = "CONSTANT"
    assert sim.mode == "STANDBY" and not lab.thermal.controlled


def test_shutdown_holds_safe_temperature_from_station_file(lab):
    sim = EspecSimulator(lab)
    config = ChamberConfig(safe_temperature_c=25.0).model_dump()
    with open_chamber(config, clock=lab.clock, simulator=sim) as chamber:
        chamber.set_temperature(-10.0)
    assert sim.mode == "CONSTANT" and sim.setpoint_c == 25.0


# --- faults ---------------------------------------------------------------------------------------
def test_dropped_reply_is_a_clear_communication_error(lab):
    sim = EspecSimulator(lab, faults={"drop_reply_every": 3})
    chamber = EspecChamber(SimulatorAdapter(sim), clock=lab.clock, retries=0)
    chamber.monitor
    chamber.monitor
    with pytest.raises(EspecCommunicationError, match=r"ESPEC chamber.*'TEMP\?'.*no reply"):
        chamber.temperature
    assert chamber.temperature == 23.0          # the next exchange is in step again


def test_dropped_reply_is_retried_after_a_pause(lab):
    _, chamber = connect(lab, faults={"drop_reply_every": 3})   # TYPE? at connect is the 1st
    chamber.monitor
    start = lab.clock.now()
    assert chamber.temperature == 23.0
    assert chamber.retried_commands == 1
    assert lab.clock.now() - start >= 1.0       # the backoff, in clock time


def test_garbled_reply_is_detected(lab):
    sim = EspecSimulator(lab, faults={"garble_every": 2})
    chamber = EspecChamber(SimulatorAdapter(sim), clock=lab.clock, retries=0)
    chamber.mode
    with pytest.raises(EspecError, match="garbled"):
        chamber.mode = "CONSTANT"


def test_a_garbled_setting_reply_is_retried_by_sending_the_setting_again(lab):
    _, chamber = connect(lab, faults={"garble_every": 3})       # TYPE? at connect is the 1st
    chamber.mode
    chamber.mode = "CONSTANT"
    assert chamber.retried_commands == 1 and chamber.mode == "CONSTANT"


def test_a_persistent_fault_is_raised_after_the_retries(lab):
    _, chamber = connect(lab, faults={"drop_reply_every": 1000})
    sim = chamber.adapter.simulator
    sim.faults["drop_reply_every"] = 1
    with pytest.raises(EspecCommunicationError, match="no reply"):
        chamber.temperature
    assert chamber.retried_commands == 3


def test_na_fault_on_temperature_commands_only(lab):
    lab = SimLab(lab.clock, sim={"faults": {"chamber": {"na_on": "TEMP"}}})
    sim, chamber = connect(lab)
    with pytest.raises(EspecRefused, match="PROTECT ON"):
        chamber.setpoint = 30.0
    with pytest.raises(EspecRefused, match="PROTECT ON"):
        chamber.temperature
    chamber.mode = "CONSTANT"
    assert sim.mode == "CONSTANT"


# --- factory ----------------------------------------------------------------------------------------
def test_open_chamber_rs485_from_station_section(lab):
    sim = EspecSimulator(lab, rs485_address=7, echo_address=True)
    config = ChamberConfig(transport="rs485", rs485_address=7, command_interval_s=0.5).model_dump()
    chamber = open_chamber(config, clock=lab.clock, simulator=sim)
    start = lab.clock.now()
    assert chamber.monitor.temperature_c == 23.0
    chamber.setpoint = -5.0
    assert chamber.setpoint == -5.0
    assert lab.clock.now() - start == pytest.approx(1.0 + 0.5)   # TYPE? at connect paces MON?


def test_open_chamber_passes_limits(lab):
    chamber = open_chamber({"min_temperature_c": 0.0, "max_temperature_c": 80.0},
                           clock=lab.clock, simulator=EspecSimulator(lab))
    with pytest.raises(ValueError, match="0…80"):
        chamber.setpoint = -10.0


@pytest.mark.parametrize("fields, message", [
    ({"port": 3}, "unknown setting"), ({"driver": "watlow"}, "driver"),
    ({"transport": "gpib"}, "transport"), ({"transport": "rs485"}, "rs485_address"),
])
def test_bad_chamber_section(fields, message):
    with pytest.raises(ValueError, match=message):
        chamber_settings(fields)


@pytest.mark.parametrize("transport, address, resource", [
    ("tcp", "192.168.0.20", "TCPIP0::192.168.0.20::57732::SOCKET"),
    ("tcp", "chamber.lab:10001", "TCPIP0::chamber.lab::10001::SOCKET"),
    ("tcp", "TCPIP0::10.0.0.5::57732::SOCKET", "TCPIP0::10.0.0.5::57732::SOCKET"),
    ("serial", "ASRL/dev/ttyUSB0::INSTR", "ASRL/dev/ttyUSB0::INSTR"),
    ("serial", "COM3", "COM3"),
])
def test_resource_names(transport, address, resource):
    assert resource_name(chamber_settings(transport=transport, address=address)) == resource


@pytest.mark.parametrize("transport, address", [
    ("tcp", "ASRL1::INSTR"), ("tcp", "TCPIP0::10.0.0.5::INSTR"),
    ("serial", "TCPIP0::10.0.0.5::57732::SOCKET"), ("serial", ""),
])
def test_bad_addresses(transport, address):
    with pytest.raises(ValueError, match="chamber.address"):
        resource_name(chamber_settings(transport=transport, address=address))


def test_simulator_from_a_bare_thermal_model():
    clock = VirtualClock(start=0.0)
    thermal = ThermalModel(clock, ThermalConstants(ambient_c=20.0, ramp_rate_c_per_min=5.0))
    sim = EspecSimulator(thermal)
    chamber = open_chamber({}, clock=clock, simulator=sim)
    chamber.set_temperature(30.0)
    chamber.mode = "CONSTANT"
    clock.sleep(60.0)
    assert chamber.temperature == pytest.approx(25.0, abs=0.1)


def test_adapter_without_reply_raises_timeout(lab):
    adapter = SimulatorAdapter(EspecSimulator(lab))
    with pytest.raises(TimeoutError):
        adapter.read()


# --- speed --------------------------------------------------------------------------------------------
def test_one_simulated_query_costs_well_under_a_millisecond(lab):
    _, chamber = connect(lab)
    chamber.mode = "CONSTANT"
    n = 2000
    wall = time.perf_counter()
    for _ in range(n):
        chamber.temperature
    per_query_s = (time.perf_counter() - wall) / n
    assert per_query_s < 1e-3


def test_station_file_can_ask_for_control_power_off_in_the_safe_state(lab):
    sim = EspecSimulator(lab)
    config = ChamberConfig(power_off_when_safe=True).model_dump()
    with open_chamber(config, clock=lab.clock, simulator=sim) as chamber:
        chamber.hold_temperature(30.0)
    assert sim.mode == "OFF" and not lab.thermal.controlled


# --- timed faults: power loss and alarm -----------------------------------------------------------
def test_power_loss_stops_regulation_silences_the_chamber_and_returns_it_in_standby(lab):
    sim = EspecSimulator(lab, faults={"power_loss_at_h": 1.0, "power_loss_duration_h": 0.5})
    assert sim.handle("TEMP, S40.0") == "OK:TEMP, S40.0"  # the fault clock starts here
    assert sim.handle("MODE, CONSTANT") == "OK:MODE, CONSTANT"
    lab.clock.sleep(3600.0 - 1.0)
    assert sim.handle("TEMP?") == "40.0,40.0,150.0,-40.0"
    lab.clock.sleep(2.0)
    assert sim.handle("TEMP?") is None and sim.handle("MODE, CONSTANT") is None  # dark
    lab.clock.sleep(1800.0 - 1.0)
    # half an hour without regulation: the air relaxed toward the 23 °C room (tau 30 min)
    expected = 23.0 + 17.0 * math.exp(-1800.0 / 1800.0)
    assert sim.handle("MODE?") == "STANDBY"  # back, in standby: CONSTANT must be sent again
    pv, sp = sim.handle("TEMP?").split(",")[:2]
    assert float(pv) == pytest.approx(expected, abs=0.1) and float(sp) == 40.0
    assert lab.thermal.controlled is False
    assert sim.handle("MODE, CONSTANT") == "OK:MODE, CONSTANT" and lab.thermal.controlled


def test_power_loss_happens_on_time_even_if_the_chamber_is_not_asked_meanwhile(lab):
    sim = EspecSimulator(lab, faults={"power_loss_at_h": 1.0, "power_loss_duration_h": 0.5})
    sim.handle("TEMP, S40.0")
    sim.handle("MODE, CONSTANT")
    lab.clock.sleep(3 * 3600.0)
    lab.sample_temperature_c()  # the potentiostat reads the sample: the model is advanced
    assert lab.thermal.air_c() < 24.0  # regulation stopped at 1 h, not at the next command


def test_alarm_fault_is_reported_in_its_window(lab):
    sim = EspecSimulator(lab, faults={"alarm_at_h": 0.5, "alarm_duration_h": 0.25, "alarm_code": 0})
    assert sim.handle("ALARM?") == "0"
    lab.clock.sleep(1800.0)
    assert sim.handle("ALARM?") == "1,0" and sim.handle("MON?").endswith(",1")
    lab.clock.sleep(900.0)
    assert sim.handle("ALARM?") == "0"


@pytest.mark.parametrize("faults, message", [
    ({"power_loss_at_h": 1.0}, "go together"),
    ({"alarm_at_h": 1.0, "alarm_duration_h": 0.0}, "alarm_duration_h > 0"),
    ({"power_loss_at_h": -1.0, "power_loss_duration_h": 1.0}, "power_loss_at_h must be >= 0"),
    ({"alarm_at_h": 0.0, "alarm_duration_h": 1.0, "alarm_code": 100}, "alarm_code"),
])
def test_timed_faults_are_checked(lab, faults, message):
    with pytest.raises(ValueError, match=message):
        EspecSimulator(lab, faults=faults)
