"""Station and protocol files: shipped files are valid; bad files list every problem with its place."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from config.errors import ConfigError
from config.protocol import PROTOCOL_DIR, load_protocol
from config.station import load_station

BAD = """
[protocol]
name = "x"
[sample]
id = "p"
thickness_um = -5
diameter_mm = 10
colour = "red"
[[steps]]
kind = "temperature_eis_series"
temperatures_c = [20, 300]
soak_s = -1
[[steps]]
kind = "chamber"
setpoint_c = -100
[[steps]]
kind = "peis"
[steps.peis]
initial_frequency_hz = 2e7
"""


@pytest.fixture(scope="module")
def station():
    return load_station(simulate=True)


@pytest.mark.parametrize("path", sorted(PROTOCOL_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_protocols_are_valid(path, station):
    protocol = load_protocol(path, station)
    assert protocol.protocol.name == path.stem


def test_bad_protocol_lists_every_problem_with_location(tmp_path, station):
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as info:
        load_protocol(path, station)
    problems = info.value.problems
    assert any(p.startswith("sample.thickness_um:") for p in problems)
    assert "sample.colour: unknown key" in problems
    assert any(p.startswith("steps[0].soak_s:") for p in problems)
    assert any(p.startswith("steps[0].temperatures_c[1]: 300") for p in problems)
    assert any(p.startswith("steps[1].setpoint_c: -100") for p in problems)
    assert any(p.startswith("steps[2].peis.initial_frequency_hz:") for p in problems)
    assert len(problems) == 6
    assert str(path) in str(info.value)


def test_chamber_range_comes_from_the_station(tmp_path):
    station_file = tmp_path / "station.toml"
    station_file.write_text('[station]\nsimulate = true\n[chamber]\nmin_temperature_c = 0\n'
                            'max_temperature_c = 60\n')
    narrow = load_station(station_file)
    with pytest.raises(ConfigError) as info:
        load_protocol("onbh_conductivity", narrow)
    assert info.value.problems == [
        "steps[0].temperatures_c[0]: -10.0 °C is outside the chamber's range 0.0…60.0 °C"]


def test_real_station_needs_addresses(tmp_path):
    station_file = tmp_path / "station.toml"
    station_file.write_text('[station]\nsimulate = false\n')
    with pytest.raises(ConfigError) as info:
        load_station(station_file)
    assert any(p.startswith("potentiostat.dll_path") for p in info.value.problems)
    assert any(p.startswith("chamber.address") for p in info.value.problems)


def test_unreadable_files_are_clear_errors(tmp_path, station):
    with pytest.raises(ConfigError, match="file not found"):
        load_protocol(tmp_path / "missing.toml", station)
    broken = tmp_path / "broken.toml"
    broken.write_text("[protocol\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_protocol(broken, station)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=-300, max_value=300, allow_nan=False), min_size=1, max_size=8))
def test_temperature_range_check_is_exact(tmp_path_factory, temps):
    station = load_station(simulate=True)
    path = tmp_path_factory.mktemp("p") / "p.toml"
    path.write_text(f'[protocol]\nname = "p"\n[sample]\nid = "s"\nthickness_um = 1000\n'
                    f'diameter_mm = 10\n[[steps]]\nkind = "temperature_eis_series"\n'
                    f'temperatures_c = {[float(t) for t in temps]}\n')
    outside = [i for i, t in enumerate(temps) if not -40 <= t <= 150]
    if outside:
        with pytest.raises(ConfigError) as info:
            load_protocol(path, station)
        assert [p.split(":")[0] for p in info.value.problems] == \
            [f"steps[0].temperatures_c[{i}]" for i in outside]
    else:
        assert load_protocol(path, station).steps[0].temperatures_c == temps


def test_a_dwell_no_shorter_than_the_timeout_is_refused_and_plans_never_exceed_the_bound(tmp_path, station):
    """A chamber that must stay in tolerance longer than the step may wait can never settle; the
    plan used to count the whole dwell (hypothesis found a valid-looking file planned at 1.8
    years under the one-year limit that the worst case, bounded by the timeout, had passed)."""
    from procedures.steps import plan_steps
    head = '[protocol]\nname = "x"\n[sample]\nid = "p"\nthickness_um = 1000\ndiameter_mm = 10\n'
    bad = tmp_path / "dwell.toml"
    bad.write_text(head + '[[steps]]\nkind = "chamber"\nsetpoint_c = 30\n'
                   '[steps.stabilization]\ndwell_s = 3e7\ntimeout_s = 60\n')
    with pytest.raises(ConfigError) as info:
        load_protocol(bad, station)
    assert any("steps[0].stabilization" in p and "dwell_s (30000000.0 s) must be shorter than timeout_s"
               in p for p in info.value.problems), info.value.problems
    slow = tmp_path / "slow.toml"
    slow.write_text(head + '[[steps]]\nkind = "chamber"\nsetpoint_c = 150\nsoak_s = 0\n'
                    '[steps.stabilization]\ndwell_s = 100\ntimeout_s = 600\n')
    [planned] = plan_steps(load_protocol(slow, station), station)
    assert planned.estimate.duration_s == 600  # the ramp alone takes 63 min at 2 °C/min


def test_eis_frequencies_beyond_any_potentiostat_are_refused_not_a_traceback(tmp_path, station):
    """1e300 Hz to 1e-300 Hz once made the number of frequencies infinite (an OverflowError out of
    `plan`, found by hypothesis): both ends are bounded by what a BioLogic can do."""
    path = tmp_path / "wide.toml"
    path.write_text('[protocol]\nname = "x"\n[sample]\nid = "p"\nthickness_um = 1000\ndiameter_mm = 10\n'
                    '[[steps]]\nkind = "peis"\n[steps.peis]\ninitial_frequency_hz = 1e300\n'
                    'final_frequency_hz = 1e-300\n')
    with pytest.raises(ConfigError) as info:
        load_protocol(path, station)
    text = "\n".join(info.value.problems)
    assert "steps[0].peis.initial_frequency_hz" in text and "steps[0].peis.final_frequency_hz" in text
