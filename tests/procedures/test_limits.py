"""Limits that hold (issue 9, scope 3): the issue's findings, each a file that must be refused
with every problem named, by the loader and therefore by both ``plan`` and ``run``."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.protocol import PROTOCOL_DIR, load_protocol
from config.station import load_station

FULL_CELL = (PROTOCOL_DIR / "full_cell_45mg.toml").read_text()
COLD = (PROTOCOL_DIR / "cold_discharge.toml").read_text()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def station():
    return load_station(simulate=True)


def problems_of(tmp_path, text, station, name="p.toml"):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_protocol(path, station)
    return info.value.problems


def pellet_protocol(steps: str) -> str:
    return ('[protocol]\nname = "x"\n[sample]\nid = "p"\nthickness_um = 1000\ndiameter_mm = 10\n'
            + steps)


@pytest.mark.parametrize("value", ["inf", "1e12", "nan", "-inf"])
@pytest.mark.parametrize("field", ["timeout_s", "soak_s", "duration_s"])
def test_durations_must_be_finite_and_bounded(tmp_path, station, field, value):
    steps = {
        "timeout_s": f'[[steps]]\nkind = "chamber"\nsetpoint_c = 30\n[steps.stabilization]\n'
                     f'timeout_s = {value}\n',
        "soak_s": f'[[steps]]\nkind = "chamber"\nsetpoint_c = 30\nsoak_s = {value}\n',
        "duration_s": f'[[steps]]\nkind = "hold"\nduration_s = {value}\n',
    }[field]
    problems = problems_of(tmp_path, pellet_protocol(steps), station)
    assert any(field in p for p in problems), problems


def test_a_year_is_the_default_maximum_and_the_station_sets_it(tmp_path, station):
    year_and_a_day = pellet_protocol('[[steps]]\nkind = "hold"\nduration_s = 31622400\n')
    problems = problems_of(tmp_path, year_and_a_day, station)
    assert any(p.startswith("steps[0].duration_s:") and "limits.max_protocol_duration_s" in p
               for p in problems)
    two_years = station.model_copy(deep=True)
    two_years.limits.max_protocol_duration_s = 2 * 31536000.0
    path = tmp_path / "ok.toml"
    path.write_text(year_and_a_day)
    assert load_protocol(path, two_years).steps[0].duration_s == 31622400


def test_the_total_worst_case_is_bounded_not_only_each_step(tmp_path, station):
    half_year = 'kind = "hold"\nduration_s = 20000000\n'
    problems = problems_of(tmp_path, pellet_protocol(f"[[steps]]\n{half_year}[[steps]]\n{half_year}"),
                           station)
    assert any(p.startswith("protocol: it may run 4e+07 s") for p in problems), problems


def test_a_40_a_20_v_program_is_refused(tmp_path, station):
    text = (FULL_CELL.replace("voltage_max_v = 3.6", "voltage_max_v = 20.0")
            .replace("current_max_a = 0.005", "current_max_a = 40.0")
            .replace("upper_cutoff_v = 3.4", "upper_cutoff_v = 3.4")
            .replace('kind = "cccv"\ntag = "cycle"\nrate_c = 0.1\nvoltage_v = 3.4',
                     'kind = "cccv"\ntag = "cycle"\ncurrent_a = 40.0\nvoltage_v = 20.0'))
    problems = problems_of(tmp_path, text, station)
    assert any("safety.voltage_max_v: 20.0 V is beyond the cycler's limit ±10.0 V" in p for p in problems)
    assert any("safety.current_max_a: 40.0 A is above the cycler's limit 10.0 A" in p for p in problems)
    assert any("steps[0].voltage_v: 20.0 V is beyond" in p for p in problems)
    assert any("40 A is above the cycler's limit" in p for p in problems)


@pytest.mark.parametrize("window", [("nan", "-1.0"), ("-inf", "3.6")])
def test_non_finite_safety_windows_are_refused(tmp_path, station, window):
    lo, hi = window
    text = FULL_CELL.replace("voltage_min_v = 1.0", f"voltage_min_v = {lo}").replace(
        "voltage_max_v = 3.6", f"voltage_max_v = {hi}")
    problems = problems_of(tmp_path, text, station)
    assert any("safety.voltage_min_v" in p and "finite" in p for p in problems), problems


def test_the_safety_window_must_contain_the_cells_cut_offs(tmp_path, station):
    text = FULL_CELL.replace("voltage_max_v = 3.6", "voltage_max_v = 3.5")
    path = tmp_path / "ok.toml"
    path.write_text(text.replace("upper_cutoff_v = 3.4", "upper_cutoff_v = 3.45"))
    load_protocol(path, station)  # 3.45 V inside 1.0…3.5 V
    problems = problems_of(tmp_path, text.replace("upper_cutoff_v = 3.4", "upper_cutoff_v = 3.55"),
                           station)
    assert problems == ["steps[0].program.safety: the cell's upper_cutoff_v 3.55 V is outside the "
                        "safety window 1.0…3.5 V"]


@pytest.mark.parametrize("vs_ocv", ["true", "false"])
def test_a_9_5_v_eis_bias_on_a_3_4_v_cell_is_refused(tmp_path, station, vs_ocv):
    text = COLD.replace("amplitude_v = 0.01", f"amplitude_v = 0.01\ndc_voltage_v = 9.5\n"
                                              f"dc_vs_ocv = {vs_ocv}")
    problems = problems_of(tmp_path, text, station)
    assert any(p.startswith("steps[1].peis.dc_voltage_v:") and "cell's window 1.5…3.4 V" in p
               for p in problems), problems


def test_an_absolute_eis_bias_inside_the_cells_window_is_accepted(tmp_path, station):
    path = tmp_path / "ok.toml"
    path.write_text(COLD.replace("amplitude_v = 0.01",
                                 "amplitude_v = 0.01\ndc_voltage_v = 3.0\ndc_vs_ocv = false"))
    assert load_protocol(path, station).steps[1].peis.dc_voltage_v == 3.0


def test_potentiostat_potentials_beyond_its_limit_are_refused(tmp_path, station):
    station = station.model_copy(deep=True)
    station.potentiostat.max_voltage_v = 5.0
    text = pellet_protocol('[[steps]]\nkind = "dc_polarization"\nvoltages_v = [0.1]\n'
                           '[[steps]]\nkind = "lsv"\nend_voltage_v = 6.0\n'
                           '[[steps]]\nkind = "peis"\n[steps.peis]\ndc_voltage_v = -5.0\n')
    problems = problems_of(tmp_path, text, station)
    assert problems == [
        "steps[1].end_voltage_v: 6.0 V is beyond the potentiostat's limit ±5.0 V "
        "(station file: potentiostat.max_voltage_v)",
        "steps[2].peis.dc_voltage_v: -5.01 V is beyond the potentiostat's limit ±5.0 V "
        "(station file: potentiostat.max_voltage_v)"]


def test_sampling_beyond_the_maximum_of_points_is_refused(tmp_path, station):
    text = pellet_protocol('[[steps]]\nkind = "dc_polarization"\nvoltages_v = [0.1]\n'
                           'record_every_dt_s = 1e-6\n')
    problems = problems_of(tmp_path, text, station)
    assert any("points, more than the station's maximum 20000000" in p for p in problems), problems


def test_a_huge_loop_count_is_bounded_without_walking_it(tmp_path, station):
    problems = problems_of(tmp_path, FULL_CELL.replace("count = 100", "count = 1000000000000"),
                           station)
    assert any(p.startswith("protocol: it may run") for p in problems)


def test_station_temperatures_beyond_any_chamber_are_refused(tmp_path):
    path = tmp_path / "station.toml"
    path.write_text("[station]\nsimulate = true\n[chamber]\nmax_temperature_c = 500.0\n")
    with pytest.raises(ConfigError) as info:
        load_station(path)
    assert any(p.startswith("chamber.max_temperature_c:") for p in info.value.problems)


def test_every_problem_at_once(tmp_path, station):
    text = (COLD.replace("soak_s = 3600.0\neis = true", "soak_s = 3600.0\neis = true")
            .replace("amplitude_v = 0.01", "amplitude_v = 0.01\ndc_voltage_v = 9.5")
            .replace("current_max_a = 0.005", "current_max_a = 40.0")
            .replace("temperature_c = 25.0\nsoak_s = 3600.0", "temperature_c = 25.0\nsoak_s = 1e12"))
    problems = problems_of(tmp_path, text, station)
    assert any(p.startswith("steps[0].soak_s: 1e+12 s") for p in problems)
    assert any(p.startswith("steps[0].program.safety.current_max_a: 40.0 A") for p in problems)
    assert any(p.startswith("steps[1].peis.dc_voltage_v:") for p in problems)


def test_plan_reports_the_problems_run_reports(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(FULL_CELL.replace("current_max_a = 0.005", "current_max_a = 40.0")
                    .replace("temperature_c = 25.0\nsoak_s = 3600.0", "temperature_c = 25.0\nsoak_s = inf"))
    plan = cli("plan", str(path), "--json")
    assert plan.returncode == 2
    planned = json.loads(plan.stdout)[0]["errors"]
    run = cli("run", str(path), "--simulate", "--db", f"sqlite:///{tmp_path}/r.db")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(planned) == 2
    for problem in planned:
        assert problem in run.stderr
    assert not (tmp_path / "r.db").exists()


def cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("path", sorted(PROTOCOL_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_protocols_fit_the_shipped_station(path):
    load_protocol(path, load_station())


def test_the_cycler_limits_are_checked_again_before_the_program_starts(tmp_path, shortened_protocol,
                                                                       run_protocol_object):
    protocol = shortened_protocol("full_cell_45mg", 1)   # validated against the shipped station
    strict = load_station(simulate=True)
    strict.cycler.max_current_a = 0.004
    outcome, run_id, _ = run_protocol_object(protocol, f"sqlite:///{tmp_path / 'l.sqlite'}",
                                             station_cfg=strict)
    assert outcome.status == "failed"
    assert "cycler start refused" in outcome.reason
    assert "safety.current_max_a: 0.005 A is above the cycler's limit 0.004 A" in outcome.reason


def test_non_finite_numbers_in_free_form_tables_are_refused(tmp_path, station):
    problems = problems_of(tmp_path, FULL_CELL.replace("contact_ohm_cm2 = 93.5", "contact_ohm_cm2 = nan"),
                           station)
    assert any(p.startswith("cell.sim:") and "contact_ohm_cm2: nan is not a finite number" in p
               for p in problems), problems
    path = tmp_path / "station.toml"
    path.write_text("[station]\nsimulate = true\n[sim.faults.chamber]\ngarble_every = inf\n")
    with pytest.raises(ConfigError) as info:
        load_station(path)
    assert any("chamber.garble_every: inf is not a finite number" in p for p in info.value.problems)


def test_an_invalid_step_does_not_hide_its_limits(tmp_path, station):
    text = (COLD.replace("current_max_a = 0.005", "current_max_a = 40.0")
            .replace("voltage_max_v = 3.6", "voltage_max_v = 20.0")
            .replace("voltage_min_v = 1.0", "voltage_min_v = -inf")
            .replace("temperature_c = 25.0\nsoak_s = 3600.0", "temperature_c = 25.0\nsoak_s = 1e12"))
    problems = problems_of(tmp_path, text, station)
    assert problems[0] == "steps[0].program.safety.voltage_min_v: Input should be a finite number (got -inf)"
    assert "steps[0].program.safety.voltage_max_v: 20.0 V is beyond the cycler's limit ±10.0 V" in problems
    assert any(p.startswith("steps[0].program.safety.current_max_a: 40.0 A is above") for p in problems)
    assert any(p.startswith("steps[0].soak_s: 1e+12 s is longer") for p in problems)
    assert not any("{'kind'" in p for p in problems)   # no whole step copied into a message
