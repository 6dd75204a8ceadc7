"""Effective cell capacity (Fig. 5A) against a hand calculation from the paper's assumptions."""

import numpy as np
import pytest

from analysis.cell_capacity import CellCapacityInputError, cell_capacity_curve, effective_cell_capacity


def hand_calculation(loading, anode_mg_per_mah):
    q = loading * 0.120  # mAh/cm2 per cathode layer
    layers = 7.2 / q
    per_layer_mg = loading / 0.6 + 2.7 * 20e-4 * 1e3 + 1.3 * 50e-4 * 1e3 + 1.1 * q * anode_mg_per_mah
    return layers, 7.2 / (layers * per_layer_mg / 1000)


@pytest.mark.parametrize("anode, anode_mg_per_mah", [
    ("sn", 1000 / 847), ("hard_carbon", 1000 / 250 / 0.7), ("anode_free", 0.0)])
@pytest.mark.parametrize("loading", [15.0, 30.0, 45.0])
def test_matches_hand_calculation(anode, anode_mg_per_mah, loading):
    layers, mah_per_g = hand_calculation(loading, anode_mg_per_mah)
    result = effective_cell_capacity(loading, anode)
    assert result["layers"] == pytest.approx(layers)
    assert result["cell_mah_per_g"] == pytest.approx(mah_per_g)
    assert result["cell_mah_per_cm2"] == pytest.approx(7.2)
    assert result["layer_mah_per_cm2"] == pytest.approx(loading * 0.12)
    parts = ("cathode_mg_per_cm2", "anode_mg_per_cm2", "al_mg_per_cm2", "separator_mg_per_cm2")
    assert sum(result[key] for key in parts) == pytest.approx(result["stack_mg_per_cm2"])


def test_known_value_for_45_mg_with_tin():
    # 1.333 layers x (75 + 5.4 + 6.5 + 7.013) mg/cm2 = 125.2 mg/cm2 for 7.2 mAh/cm2
    assert effective_cell_capacity(45.0, "sn")["cell_mah_per_g"] == pytest.approx(57.50, abs=0.01)


def test_capacity_rises_with_loading_and_orders_anodes():
    curve = cell_capacity_curve(np.linspace(5, 60, 12))
    for _, rows in curve.groupby("anode"):
        assert np.all(np.diff(rows["cell_mah_per_g"].to_numpy()) > 0)
    at_45 = curve[curve["loading_mg_per_cm2"] == 45.0].set_index("anode")["cell_mah_per_g"]
    assert at_45["anode_free"] > at_45["sn"] > at_45["hard_carbon"]
    # never above the composite's own specific capacity (72 mAh/g of composite)
    assert curve["cell_mah_per_g"].max() < 120 * 0.6


def test_whole_layers_round_up_and_build_more_capacity():
    result = effective_cell_capacity(45.0, "sn", whole_layers=True)
    assert result["layers"] == 2.0
    assert result["cell_mah_per_cm2"] == pytest.approx(10.8)
    exact = effective_cell_capacity(15.0, "sn", whole_layers=True)
    assert exact["layers"] == 4.0


def test_two_foils_per_layer_lower_the_capacity():
    one = effective_cell_capacity(30.0, "sn")
    two = effective_cell_capacity(30.0, "sn", al_foils_per_layer=2)
    assert two["al_mg_per_cm2"] == pytest.approx(2 * one["al_mg_per_cm2"])
    assert two["cell_mah_per_g"] < one["cell_mah_per_g"]


@pytest.mark.parametrize("kwargs, message", [
    ({"loading_mg_per_cm2": 0.0}, "loading_mg_per_cm2"),
    ({"loading_mg_per_cm2": 30.0, "anode": "lithium"}, "anode"),
    ({"loading_mg_per_cm2": 30.0, "nco_mass_fraction": 1.5}, "nco_mass_fraction"),
    ({"loading_mg_per_cm2": 30.0, "al_foils_per_layer": -1}, "al_foils_per_layer"),
    ({"loading_mg_per_cm2": float("nan")}, "loading_mg_per_cm2"),
])
def test_bad_input_raises_named_errors(kwargs, message):
    with pytest.raises(CellCapacityInputError, match=message):
        effective_cell_capacity(**kwargs)
