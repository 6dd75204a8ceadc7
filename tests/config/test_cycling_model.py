"""Cycling program models: validation with locations, C-rates, expansion of loops, inserted rests."""
from __future__ import annotations

import itertools
import math
import types

import pytest
from pydantic import ValidationError

from config.cycling import (CCCV, CellSection, ConstantCurrent, CyclingProgram, Rest, expand, load_program,
                            with_rests)
from config.errors import ConfigError

SAFETY = {"voltage_min_v": 1.0, "voltage_max_v": 3.6, "current_max_a": 0.01}


def cell(**kw) -> CellSection:
    base = dict(kind="full", anode="Sn", cathode_loading_mg_per_cm2=45.0, diameter_mm=10.0,
                lower_cutoff_v=1.5, upper_cutoff_v=3.4)
    return CellSection(**{**base, **kw})


def cccv_program(cycles: int, rate_c: float = 0.1) -> dict:
    return {"steps": [
        {"kind": "rest", "duration_s": 3600},
        {"kind": "cccv", "tag": "c", "rate_c": rate_c, "voltage_v": 3.4, "until_rate_c": 0.1},
        {"kind": "cc", "direction": "discharge", "rate_c": rate_c, "until_voltage_v": 1.5},
        {"kind": "loop", "to_tag": "c", "count": cycles},
    ], "safety": SAFETY}


def test_cell_capacity_and_rate_currents():
    c = cell()
    assert c.area_cm2 == pytest.approx(math.pi * 0.25)
    assert c.active_mass_mg == pytest.approx(45.0 * math.pi * 0.25)
    # 45 mg/cm2 × 0.785 cm2 × 120 mAh/g = 4.24 mAh
    assert c.capacity_ah == pytest.approx(45.0 * math.pi * 0.25 * 120e-6)
    assert c.current_for_rate(0.1) == pytest.approx(0.1 * c.capacity_ah)
    assert cell(active_mass_mg=10.0).capacity_ah == pytest.approx(1.2e-3)


def test_cell_section_problems():
    with pytest.raises(ValidationError, match="area_cm2 or diameter_mm"):
        CellSection(kind="full", cathode_loading_mg_per_cm2=15, lower_cutoff_v=1.5, upper_cutoff_v=3.4)
    with pytest.raises(ValidationError, match="disagrees"):
        cell(area_cm2=2.0)
    with pytest.raises(ValidationError, match="below"):
        cell(lower_cutoff_v=3.5)
    symmetric = CellSection(kind="symmetric", anode="Na9Sn4", area_cm2=0.785, cathode_loading_mg_per_cm2=None,
                            lower_cutoff_v=-1.0, upper_cutoff_v=1.0)
    assert not symmetric.has_capacity
    with pytest.raises(ValueError, match="no nominal capacity"):
        symmetric.capacity_ah


def test_every_problem_is_reported_with_its_location():
    data = {"steps": [
        {"kind": "cc", "direction": "charge", "until_voltage_v": 3.4},                  # no rate/current
        {"kind": "cc", "direction": "charge", "rate_c": 0.1, "until_voltage_v": 4.5},   # above safety
        {"kind": "cv", "voltage_v": 3.4},                                               # no end condition
        {"kind": "rest", "duration_s": 10, "tag": "a"},
        {"kind": "loop", "to_tag": "nowhere", "count": 2},
        {"kind": "loop", "to_tag": "later", "count": 2},
        {"kind": "rest", "duration_s": 10, "tag": "later"},
        {"kind": "bogus"},
        {"kind": "rest", "duration_s": -1, "extra": 1},
    ], "safety": SAFETY}
    with pytest.raises(ConfigError) as info:
        load_program(data, "protocols/x.toml")
    text = "\n".join(info.value.problems)
    assert info.value.source == "protocols/x.toml"
    assert "steps[0].cc" in text and "rate_c or current_a" in text
    assert "steps[1].until_voltage_v: 4.5 V is outside the safety window" in text
    assert "steps[2].cv" in text and "end condition" in text
    assert "steps[4].to_tag: no step is tagged 'nowhere'" in text
    assert "steps[5].to_tag: the step tagged 'later' (steps[6]) must come before the loop" in text
    assert "steps[7]" in text
    assert "steps[8].rest.duration_s" in text and "steps[8].rest.extra: unknown key" in text


def test_direct_construction_checks_across_steps():
    with pytest.raises(ValidationError, match="duplicate tag"):
        CyclingProgram(steps=[Rest(duration_s=1, tag="x"), Rest(duration_s=1, tag="x")], safety=SAFETY)
    with pytest.raises(ValidationError, match="current_a"):
        CyclingProgram(steps=[ConstantCurrent(current_a=0.5, direction="charge", until_time_s=10)],
                       safety=SAFETY)


def test_rates_above_the_safety_current_are_refused_for_the_cell():
    program = load_program(cccv_program(3, rate_c=5.0))   # 5 C of 4.24 mAh = 21 mA > 10 mA
    with pytest.raises(ConfigError, match=r"steps\[1\].rate_c"):
        expand(program, cell())


def test_expand_unrolls_cccv_loops_with_cycles_and_currents():
    c = cell()
    steps = list(expand(load_program(cccv_program(3)), c))
    assert [s.kind for s in steps] == ["rest"] + ["cccv", "cc"] * 3
    assert [s.cycle for s in steps] == [1, 1, 1, 2, 2, 3, 3]
    assert [s.number for s in steps] == list(range(1, 8))
    charge, discharge = steps[1], steps[2]
    assert charge.current_a == pytest.approx(0.1 * c.capacity_ah)
    assert charge.until_current_a == pytest.approx(0.1 * c.capacity_ah)
    assert charge.voltage_v == 3.4
    assert discharge.current_a == pytest.approx(-0.1 * c.capacity_ah)
    assert discharge.until_voltage_v == 1.5


def test_a_discharge_first_is_cycle_zero_and_nested_loops_reset():
    data = {"steps": [
        {"kind": "cc", "direction": "discharge", "current_a": 1e-3, "until_voltage_v": 1.5},
        {"kind": "cc", "tag": "outer", "direction": "charge", "current_a": 1e-3, "until_voltage_v": 3.4},
        {"kind": "cc", "tag": "inner", "direction": "discharge", "current_a": 1e-3, "until_time_s": 60},
        {"kind": "rest", "duration_s": 60},
        {"kind": "loop", "to_tag": "inner", "count": 2},
        {"kind": "loop", "to_tag": "outer", "count": 3},
    ], "safety": SAFETY}
    steps = list(expand(load_program(data), cell()))
    assert [s.index for s in steps] == [0] + [1, 2, 3, 2, 3] * 3
    assert [s.cycle for s in steps] == [0] + [1] * 5 + [2] * 5 + [3] * 5


def test_expand_is_lazy_for_a_thousand_cycles():
    steps = expand(load_program(cccv_program(1000, rate_c=1 / 3)), cell())
    assert isinstance(steps, types.GeneratorType)
    last = None
    for last in steps:
        pass
    assert last.cycle == 1000 and last.number == 2001
    head = list(itertools.islice(expand(load_program(cccv_program(1000)), cell()), 3))
    assert [s.cycle for s in head] == [1, 1, 1]


def test_with_rests_inserts_rests_and_moves_tags():
    program = load_program(cccv_program(2))
    rested = with_rests(program, [(1, 1800.0), (2, 600.0)])
    kinds = [(s.kind, s.tag) for s in rested.steps]
    assert kinds == [("rest", None), ("rest", "c"), ("cccv", None), ("rest", None), ("cc", None),
                     ("loop", None)]
    steps = list(expand(rested, cell()))
    assert [s.kind for s in steps] == ["rest", "rest", "cccv", "rest", "cc"] * 1 + ["rest", "cccv", "rest", "cc"]
    with pytest.raises(ValueError, match="rest before step 9"):
        with_rests(program, [(9, 10.0)])


def test_cccv_needs_its_end_current():
    with pytest.raises(ValidationError, match="until_rate_c or until_current_a"):
        CCCV(rate_c=0.1, voltage_v=3.4)


def test_loops_must_nest_a_crossing_loop_is_refused():
    """A loop jumping into another's block runs it more often than the product of the counts
    (here step 0 would run 1 + 2·(count−1)… times, not count), which is what the station's
    duration and point limits count: such a program is refused, nested ones are not."""
    rest = {"kind": "rest", "duration_s": 10}
    crossing = {"steps": [{**rest, "tag": "a"}, {**rest, "tag": "b"},
                          {"kind": "loop", "to_tag": "a", "count": 1000},
                          {"kind": "loop", "to_tag": "b", "count": 1000}], "safety": SAFETY}
    with pytest.raises(ConfigError) as info:
        load_program(crossing)
    assert info.value.problems == [
        "steps[3].to_tag: its block (steps[1]…steps[3]) crosses that of the loop at steps[2] "
        "(steps[0]…steps[2]); loops must nest"]
    nested = {"steps": [{**rest, "tag": "a"}, {**rest, "tag": "b"},
                        {"kind": "loop", "to_tag": "b", "count": 3},
                        {"kind": "loop", "to_tag": "a", "count": 2}], "safety": SAFETY}
    assert len(load_program(nested).steps) == 4
