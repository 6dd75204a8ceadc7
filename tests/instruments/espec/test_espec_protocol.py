"""Exact bytes of every command the ESPEC driver sends and how it reads every reply."""
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymeasure.test import expected_protocol

from instruments.espec.driver import (Alarms, ChamberType, ConstantSetting, EspecChamber,
                                      HumidityStatus, Monitor, ProgramMonitor,
                                      TemperatureStatus, format_temperature,
                                      parse_temperature_status)
from instruments.espec.errors import EspecCommunicationError, EspecError, EspecRefused
from instruments.sim.clock import VirtualClock


def protocol(pairs, **kwargs):
    """The exact exchange; without retries unless asked (a retry is another exchange)."""
    kwargs.setdefault("clock", VirtualClock(start=0.0))
    kwargs.setdefault("retries", 0)
    return expected_protocol(EspecChamber, pairs, **kwargs)


# --- queries ------------------------------------------------------------------------------------
def test_rom_keeps_the_whole_version_string():
    with protocol([("ROM?", "P300 V1.20,DISP")]) as chamber:
        assert chamber.rom == "P300 V1.20,DISP"


def test_type_with_wet_bulb():
    with protocol([("TYPE?", "T,T,S2,160.0")]) as chamber:
        assert chamber.chamber_type == ChamberType("T", "T", "S2", 160.0)


def test_type_of_temperature_only_chamber_has_three_fields():
    with protocol([("TYPE?", "T,S2,150.0")]) as chamber:
        kind = chamber.chamber_type
    assert kind.wet_bulb is None and kind.max_temperature_c == 150.0


def test_monitor_temperature_only_has_empty_humidity():
    with protocol([("MON?", "-20.3,,CONSTANT,0")]) as chamber:
        assert chamber.monitor == Monitor(-20.3, None, "CONSTANT", 0)


def test_monitor_with_humidity():
    with protocol([("MON?", "24.1,55,STANDBY,1")]) as chamber:
        assert chamber.monitor == Monitor(24.1, 55.0, "STANDBY", 1)


def test_monitor_mode_with_spaces():
    with protocol([("MON?", "24.1,,RUN PAUSE,0")]) as chamber:
        assert chamber.monitor.mode == "RUN PAUSE"


def test_temperature_negative():
    with protocol([("TEMP?", "-10.2,-10.0,0.0,-20.0")]) as chamber:
        assert chamber.temperature == -10.2


def test_temperature_status():
    with protocol([("TEMP?", "-39.9,-40.0,-30.0,-45.5")]) as chamber:
        assert chamber.temperature_status == TemperatureStatus(-39.9, -40.0, -30.0, -45.5)


@pytest.mark.parametrize("prop, value", [("setpoint", -10.0), ("upper_limit", 0.0),
                                          ("lower_limit", -20.0)])
def test_limits_read_from_temp_query(prop, value):
    with protocol([("TEMP?", "-10.2,-10.0,0.0,-20.0")]) as chamber:
        assert getattr(chamber, prop) == value


def test_mode_query():
    with protocol([("MODE?", "CONSTANT")]) as chamber:
        assert chamber.mode == "CONSTANT"


@pytest.mark.parametrize("reply, alarms", [("0", Alarms(0, ())), ("1,2", Alarms(1, (2,))),
                                            ("2,3,9", Alarms(2, (3, 9)))])
def test_alarms(reply, alarms):
    with protocol([("ALARM?", reply)]) as chamber:
        assert chamber.alarms == alarms


# --- settings -----------------------------------------------------------------------------------
@pytest.mark.parametrize("value, sent", [(25, "TEMP, S25.0"), (-10, "TEMP, S-10.0"),
                                         (25.04, "TEMP, S25.0"), (-0.04, "TEMP, S0.0"),
                                         (150, "TEMP, S150.0"), (-40.0, "TEMP, S-40.0")])
def test_setpoint_one_decimal(value, sent):
    with protocol([(sent, "OK:" + sent)]) as chamber:
        chamber.setpoint = value


def test_upper_and_lower_limit():
    with protocol([("TEMP, H60.0", "OK:TEMP, H60.0"),
                   ("TEMP, L-35.5", "OK:TEMP, L-35.5")]) as chamber:
        chamber.upper_limit = 60
        chamber.lower_limit = -35.5


def test_set_temperature_in_one_command():
    sent = "TEMP, S-10.0 H0.0 L-20.0"
    with protocol([(sent, "OK:" + sent)]) as chamber:
        chamber.set_temperature(-10, upper_c=0, lower_c=-20)


def test_set_temperature_setpoint_only():
    with protocol([("TEMP, S30.0", "OK:TEMP, S30.0")]) as chamber:
        chamber.set_temperature(30)


@pytest.mark.parametrize("mode", ["CONSTANT", "STANDBY", "OFF"])
def test_mode_setting(mode):
    with protocol([(f"MODE, {mode}", f"OK:MODE, {mode}")]) as chamber:
        chamber.mode = mode


def test_echo_whitespace_may_differ():
    with protocol([("TEMP, S25.0", "OK:TEMP,S25.0")]) as chamber:
        chamber.setpoint = 25


# --- refusals and bad replies ---------------------------------------------------------------------
@pytest.mark.parametrize("reason", ["DATA OUT OF RANGE", "CMD ERR", "PROTECT ON", "PARA ERR"])
def test_na_reply_to_setting_raises_with_command_and_reply(reason):
    with protocol([("TEMP, S25.0", f"NA:{reason}")], name="chamber A") as chamber:
        with pytest.raises(EspecRefused) as info:
            chamber.setpoint = 25
    message = str(info.value)
    assert "chamber A" in message and "'TEMP, S25.0'" in message and f"NA:{reason}" in message
    assert info.value.reason == reason and info.value.command == "TEMP, S25.0"


def test_na_reply_to_mode_setting():
    with protocol([("MODE, CONSTANT", "NA:PROTECT ON")]) as chamber:
        with pytest.raises(EspecRefused, match="PROTECT ON"):
            chamber.mode = "CONSTANT"


def test_na_reply_to_set_temperature():
    sent = "TEMP, S-10.0 H0.0 L-20.0"
    with protocol([(sent, "NA:DATA OUT OF RANGE")]) as chamber:
        with pytest.raises(EspecRefused, match="DATA OUT OF RANGE"):
            chamber.set_temperature(-10, 0, -20)


@pytest.mark.parametrize("prop, command", [("monitor", "MON?"), ("temperature", "TEMP?"),
                                           ("alarms", "ALARM?"), ("rom", "ROM?")])
def test_na_reply_to_query_raises(prop, command):
    with protocol([(command, "NA:CMD ERR")]) as chamber:
        with pytest.raises(EspecRefused, match=r"CMD ERR") as info:
            getattr(chamber, prop)
    assert info.value.command == command


@pytest.mark.parametrize("reply, problem", [
    ("24.1,,CONSTANT,0", "expected 'OK:'"),            # a late query reply
    ("OK:MODE, CONSTANT", "another command"),          # a late acknowledgement
    ("", "expected 'OK:'"),
])
def test_unexpected_reply_to_setting_raises(reply, problem):
    with protocol([("TEMP, S25.0", reply)]) as chamber:
        with pytest.raises(EspecError, match=problem):
            chamber.setpoint = 25


@pytest.mark.parametrize("command, prop, reply", [
    ("MON?", "monitor", "24.1,,CONSTANT"),
    ("MON?", "monitor", "OK:TEMP, S25.0"),
    ("MON?", "monitor", "24.1,,constant,0"),
    ("TEMP?", "temperature", "24.1,25.0,150.0"),
    ("TEMP?", "temperature", "24.x,25.0,150.0,-40.0"),
    ("ALARM?", "alarms", "2,3"),
    ("MODE?", "mode", "24.1"),
    ("TYPE?", "chamber_type", "T,S2"),
    ("MON?", "monitor", "\x1524.1,,CONSTANT,0"),
])
def test_malformed_query_reply_raises(command, prop, reply):
    with protocol([(command, reply)]) as chamber:
        with pytest.raises(EspecError, match="unexpected reply|garbled|OK:") as info:
            getattr(chamber, prop)
    assert info.value.reply == reply and command in str(info.value)


def test_no_reply_is_a_communication_error():
    with protocol([("MON?", None)]) as chamber:
        chamber.adapter.read = lambda: (_ for _ in ()).throw(TimeoutError("timed out"))
        with pytest.raises(EspecCommunicationError, match="'MON\\?'.*no reply"):
            chamber.monitor


# --- validation before sending ----------------------------------------------------------------------
@pytest.mark.parametrize("prop", ["setpoint", "upper_limit", "lower_limit"])
@pytest.mark.parametrize("value", [150.1, -40.1, float("nan"), "warm", None])
def test_out_of_limit_values_are_refused_before_sending(prop, value):
    with protocol([]) as chamber:
        with pytest.raises(ValueError, match="temperature"):
            setattr(chamber, prop, value)


def test_limits_come_from_the_constructor():
    with protocol([("TEMP, S60.0", "OK:TEMP, S60.0")], min_temperature_c=-20,
                  max_temperature_c=60) as chamber:
        chamber.setpoint = 60
        with pytest.raises(ValueError, match="-20…60"):
            chamber.setpoint = -25
        with pytest.raises(ValueError):
            chamber.set_temperature(20, upper_c=70)


@pytest.mark.parametrize("args", [(20, 10, None), (20, None, 30), (-41, None, None)])
def test_set_temperature_checks_the_alarm_bracket_before_sending(args):
    with protocol([]) as chamber:
        with pytest.raises(ValueError):
            chamber.set_temperature(*args)


def test_unknown_mode_refused_before_sending():
    with protocol([]) as chamber:
        with pytest.raises(ValueError):
            chamber.mode = "RUN1"


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="min_temperature_c"):
        with protocol([], min_temperature_c=50, max_temperature_c=10):
            pass
    with pytest.raises(ValueError, match="rs485_address"):
        with protocol([], rs485_address=17):
            pass


# --- RS-485 address prefix ------------------------------------------------------------------------
def test_rs485_prefix_on_queries_and_settings():
    with protocol([("3,MON?", "24.1,,CONSTANT,0"),
                   ("3,TEMP, S-10.0", "OK:TEMP, S-10.0")], rs485_address=3) as chamber:
        assert chamber.monitor.temperature_c == 24.1
        chamber.setpoint = -10


def test_rs485_setting_reply_in_the_manuals_form():
    # EHS-211M/411M manual: a setting over RS-485 answers "OK:<address>,<setting command>".
    with protocol([("1,TEMP, S25.0", "OK:1,TEMP, S25.0"),
                   ("1,MODE, CONSTANT", "OK:1,MODE, CONSTANT")], rs485_address=1) as chamber:
        chamber.setpoint = 25
        chamber.mode = "CONSTANT"


def test_rs485_ok_with_another_address_or_command_is_not_taken():
    with protocol([("1,TEMP, S25.0", "OK:2,TEMP, S25.0"),
                   ("1,TEMP, S25.0", "OK:1,MODE, CONSTANT")], rs485_address=1) as chamber:
        for _ in range(2):
            with pytest.raises(EspecError, match="another command"):
                chamber.setpoint = 25


def test_rs485_echoed_address_is_stripped():
    with protocol([("1,MON?", "1,-5.0,,CONSTANT,0"),
                   ("1,TEMP, S25.0", "1,OK:TEMP, S25.0"),
                   ("1,MODE?", "1,STANDBY"),
                   ("1,ALARM?", "1,1,1")], rs485_address=1) as chamber:
        assert chamber.monitor.temperature_c == -5.0
        chamber.setpoint = 25
        assert chamber.mode == "STANDBY"
        assert chamber.alarms == Alarms(1, (1,))


def test_rs485_alarm_reply_ambiguity_resolved_by_learned_echo():
    # "2,1,5" is either count 2 (codes 1, 5) or address 2 + count 1 (code 5).
    with protocol([("2,ALARM?", "2,1,5"), ("2,MODE?", "2,CONSTANT"),
                   ("2,ALARM?", "2,1,5")], rs485_address=2) as chamber:
        assert chamber.alarms == Alarms(2, (1, 5))  # manual's form: no echo
        assert chamber.mode == "CONSTANT"           # this controller echoes
        assert chamber.alarms == Alarms(1, (5,))


def test_rs485_alarm_count_resolves_echo_before_learning():
    # As count 1 the reply would list 3 codes; as address 1 + count 2 it lists 2.
    with protocol([("1,ALARM?", "1,2,3,9")], rs485_address=1) as chamber:
        assert chamber.alarms == Alarms(2, (3, 9))


def test_rs485_na_reply():
    with protocol([("4,TEMP, S25.0", "4,NA:PROTECT ON")], rs485_address=4) as chamber:
        with pytest.raises(EspecRefused, match="PROTECT ON"):
            chamber.setpoint = 25


# --- safe state, shutdown, pacing ---------------------------------------------------------------------
def test_safe_state_standby():
    with protocol([("MODE?", "CONSTANT"), ("MODE, STANDBY", "OK:MODE, STANDBY")]) as chamber:
        chamber.safe_state()


def test_safe_state_leaves_a_chamber_that_is_off_alone():
    # In OFF the chamber refuses STANDBY (CHB NOT READY); off is already safe.
    with protocol([("MODE?", "OFF")]) as chamber:
        chamber.safe_state()


def test_safe_state_can_switch_control_power_off():
    with protocol([("MODE?", "CONSTANT"), ("MODE, STANDBY", "OK:MODE, STANDBY"),
                   ("POWER, OFF", "OK:POWER, OFF")], power_off_when_safe=True) as chamber:
        chamber.safe_state()


HOLD_TEMPERATURE_ONLY = [("MODE?", "STANDBY"), ("TYPE?", "T,S2,150.0")]


def test_safe_state_at_temperature():
    with protocol([*HOLD_TEMPERATURE_ONLY, ("TEMP, S25.0", "OK:TEMP, S25.0"),
                   ("MODE, CONSTANT", "OK:MODE, CONSTANT")]) as chamber:
        chamber.safe_state(25)


def test_shutdown_uses_the_configured_safe_temperature_once():
    with protocol([*HOLD_TEMPERATURE_ONLY, ("TEMP, S20.0", "OK:TEMP, S20.0"),
                   ("MODE, CONSTANT", "OK:MODE, CONSTANT")],
                  safe_temperature_c=20) as chamber:
        chamber.shutdown()
        chamber.shutdown()
        assert chamber.isShutdown


# --- control power, humidity, the other queries -------------------------------------------------
def test_hold_temperature_switches_power_on_first_when_off():
    with protocol([("MODE?", "OFF"), ("POWER, ON", "OK:POWER, ON"), ("TYPE?", "T,S2,150.0"),
                   ("TEMP, S-10.0 H150.0 L-40.0", "OK:TEMP, S-10.0 H150.0 L-40.0"),
                   ("MODE, CONSTANT", "OK:MODE, CONSTANT")]) as chamber:
        chamber.hold_temperature(-10, upper_c=150, lower_c=-40)


def test_hold_temperature_switches_humidity_control_off_on_a_humidity_chamber():
    with protocol([("MODE?", "STANDBY"), ("TYPE?", "T,T,S2,150.0"), ("HUMI?", "45,60,100,0"),
                   ("HUMI?", "45,60,100,0"), ("HUMI, SOFF", "OK:HUMI, SOFF"),
                   ("TEMP, S0.0", "OK:TEMP, S0.0"),
                   ("MODE, CONSTANT", "OK:MODE, CONSTANT"),
                   # the probe is remembered; humidity already off is left alone
                   ("MODE?", "CONSTANT"), ("HUMI?", "45,OFF,100,0"),
                   ("TEMP, S-5.0", "OK:TEMP, S-5.0"),
                   ("MODE, CONSTANT", "OK:MODE, CONSTANT")]) as chamber:
        chamber.hold_temperature(0)
        chamber.hold_temperature(-5)


def test_humidity_probe_of_a_chamber_that_refuses_humi():
    with protocol([("TYPE?", "T,T,S2,150.0"), ("HUMI?", "NA:CONT NOT READY-1")]) as chamber:
        assert chamber.has_humidity() is False
        assert chamber.has_humidity() is False


def test_humidity_probe_of_a_temperature_only_chamber_asks_type_only():
    with protocol([("TYPE?", "T,S2,150.0")]) as chamber:
        assert chamber.has_humidity() is False


@pytest.mark.parametrize("value", ["ON", "OFF"])
def test_power_setting(value):
    with protocol([(f"POWER, {value}", f"OK:POWER, {value}")]) as chamber:
        chamber.power = value


def test_power_refused_value_is_not_sent():
    with protocol([]) as chamber:
        with pytest.raises(ValueError):
            chamber.power = "STANDBY"


def test_humidity_status_with_control_off():
    with protocol([("HUMI?", "45,OFF,100,0"), ("HUMI?", "58,60,95,5")]) as chamber:
        assert chamber.humidity_status == HumidityStatus(45.0, None, 100.0, 0.0)
        assert chamber.humidity_status == HumidityStatus(58.0, 60.0, 95.0, 5.0)


def test_mode_detail():
    with protocol([("MODE?, DETAIL", "RMT RUN END HOLD")]) as chamber:
        assert chamber.mode_detail == "RMT RUN END HOLD"


def test_constant_set_temperature():
    with protocol([("CONSTANT SET?, TEMP", "-10.0,ON")]) as chamber:
        assert chamber.constant_temperature == ConstantSetting(-10.0, True)


def test_program_monitor():
    with protocol([("PRGM MON?", "3,-5.0,,01:30,0,2")]) as chamber:
        assert chamber.program_monitor == ProgramMonitor(3, -5.0, None, 5400.0, 0, 2)


def test_program_monitor_without_a_program_is_refused():
    with protocol([("PRGM MON?", "NA:CONT NOT READY-2")]) as chamber:
        with pytest.raises(EspecRefused, match="CONT NOT READY-2"):
            chamber.program_monitor


@pytest.mark.parametrize("value", ["ON", "OFF"])
def test_key_protect(value):
    with protocol([(f"KEYPROTECT, {value}", f"OK:KEYPROTECT, {value}")]) as chamber:
        chamber.key_protect = value


@pytest.mark.parametrize("command, prop, reply", [
    ("HUMI?", "humidity_status", "45,60,100"), ("HUMI?", "humidity_status", "45,ON,100,0"),
    ("CONSTANT SET?, TEMP", "constant_temperature", "-10.0,MAYBE"),
    ("PRGM MON?", "program_monitor", "3,-5.0,,90,0,2")])
def test_malformed_replies_of_the_new_queries_raise(command, prop, reply):
    with protocol([(command, reply)]) as chamber:
        with pytest.raises(EspecError, match="unexpected reply"):
            getattr(chamber, prop)


def test_close_does_not_touch_the_chamber():
    with protocol([]) as chamber:
        chamber.close()
        chamber.shutdown()


def test_commands_are_paced_through_the_clock():
    clock = VirtualClock(start=1000.0)
    with protocol([("MON?", "1.0,,STANDBY,0")] * 3, clock=clock,
                  command_interval_s=0.25) as chamber:
        for _ in range(3):
            chamber.monitor
    assert clock.now() == pytest.approx(1000.5)


def test_periodic_task_never_splits_a_command_from_its_reply():
    clock = VirtualClock(start=0.0)
    seen = []
    with protocol([("MON?", "1.0,,STANDBY,0"), ("TEMP?", "2.0,2.0,150.0,-40.0"),
                   ("MON?", "3.0,,STANDBY,0")], clock=clock) as chamber:
        clock.every(10.0, lambda now: seen.append(chamber.temperature), first_at=0.1)
        assert chamber.monitor.temperature_c == 1.0
        assert chamber.monitor.temperature_c == 3.0
    assert seen == [2.0]
    assert clock.now() == pytest.approx(0.6)


# --- formatting and parsing agree for every temperature -------------------------------------------
@given(st.floats(min_value=-40.0, max_value=150.0))
def test_any_setpoint_round_trips_through_the_wire_format(value_c):
    sent = format_temperature(value_c)
    assert re.fullmatch(r"-?\d+\.\d", sent) and sent != "-0.0"
    assert float(sent) == pytest.approx(value_c, abs=0.05 + 1e-9)
    reply = f"{sent},{sent},150.0,-40.0"
    assert parse_temperature_status(reply.split(",")) == (float(sent), float(sent), 150.0, -40.0)


def test_reserved_names_of_dynamic_properties_stay_unreadable():
    with protocol([]) as chamber:
        with pytest.raises(AttributeError, match="reserved"):
            chamber.setpoint_values
        with pytest.raises(AttributeError, match="has no attribute 'setpoint_value'"):
            chamber.setpoint_value                  # a misspelt name is not called reserved
        assert not hasattr(chamber, "upper_limit_get_process")
        chamber.setpoint_values = (-20.0, 60.0)     # settable, as pymeasure intends
        with pytest.raises(ValueError, match="outside"):
            chamber.setpoint = 70.0
