"""Overpotential per half cycle of a synthetic symmetric-cell record with known plateaus."""

import numpy as np
import pandas as pd
import pytest

from analysis.symmetric import SymmetricInputError, symmetric_overpotential

AREA_CM2 = 0.785
CURRENT_A = 0.2e-3 * AREA_CM2
HALF_S = 5 * 3600.0
TRANSIENT_V, TRANSIENT_S = 0.010, 300.0
END_SPIKE_V = 0.005


def plateau_v(cycle, positive):
    """The known overpotential: grows with cycling, slightly larger on the negative half."""
    return 0.020 + 0.002 * cycle + (0.0 if positive else 0.001)


def build_record(n_cycles, start_negative=False, seed=0):
    rng = np.random.default_rng(seed)
    halves = [(0, False)] if start_negative else []
    halves += [(cycle, positive) for cycle in range(1, n_cycles + 1) for positive in (True, False)]
    parts, t0 = [], 0.0
    for cycle, positive in halves:
        t = np.concatenate(([0.0], np.sort(rng.uniform(0, HALF_S, 300)), [HALF_S]))
        magnitude = (plateau_v(cycle, positive) + TRANSIENT_V * np.exp(-t / TRANSIENT_S)
                     + END_SPIKE_V * np.clip((t / HALF_S - 0.95) / 0.05, 0, 1) + rng.normal(0, 2e-4, t.size))
        sign = 1.0 if positive else -1.0
        parts.append(pd.DataFrame({"test_time_s": t0 + t, "voltage_v": sign * magnitude,
                                   "current_a": sign * CURRENT_A}))
        t0 += HALF_S
    return pd.concat(parts, ignore_index=True)


def test_plateau_mean_recovers_the_overpotential_of_every_half():
    result = symmetric_overpotential(build_record(10))
    assert result["method"] == "plateau_mean"
    assert [entry["cycle"] for entry in result["cycles"]] == list(range(1, 11))
    for entry in result["cycles"]:
        charge, discharge = plateau_v(entry["cycle"], True), plateau_v(entry["cycle"], False)
        assert entry["overpotential_charge_v"] == pytest.approx(charge, abs=2e-4)
        assert entry["overpotential_discharge_v"] == pytest.approx(discharge, abs=2e-4)
        assert entry["overpotential_mean_v"] == pytest.approx((charge + discharge) / 2, abs=2e-4)


def test_midpoint_and_max_methods():
    df = build_record(3)
    midpoint = symmetric_overpotential(df, method="midpoint")["cycles"]
    peak = symmetric_overpotential(df, method="max")["cycles"]
    for mid, top in zip(midpoint, peak):
        expected = plateau_v(mid["cycle"], True)
        assert mid["overpotential_charge_v"] == pytest.approx(expected, abs=1e-3)
        assert top["overpotential_charge_v"] == pytest.approx(expected + TRANSIENT_V, abs=1e-3)


def test_negative_first_half_is_cycle_zero_without_a_mean():
    result = symmetric_overpotential(build_record(2, start_negative=True))
    zero = result["cycles"][0]
    assert zero["cycle"] == 0
    assert zero["overpotential_charge_v"] is None and zero["overpotential_mean_v"] is None
    assert zero["overpotential_discharge_v"] == pytest.approx(plateau_v(0, False), abs=2e-4)
    assert [entry["cycle"] for entry in result["cycles"]] == [0, 1, 2]


def test_hundred_cycles_with_minimal_columns_are_quick():
    df = build_record(100).rename(columns={"test_time_s": "time_s"})
    cycles = symmetric_overpotential(df)["cycles"]
    assert len(cycles) == 100
    assert cycles[-1]["overpotential_charge_v"] == pytest.approx(plateau_v(100, True), abs=2e-4)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "median"}, "method"),
    ({"plateau_window": (0.9, 0.1)}, "plateau_window"),
])
def test_bad_options_raise(kwargs, message):
    with pytest.raises(SymmetricInputError, match=message):
        symmetric_overpotential(build_record(1), **kwargs)


def test_bad_record_raises():
    with pytest.raises(SymmetricInputError, match="voltage_v"):
        symmetric_overpotential(build_record(1).drop(columns="voltage_v"))
