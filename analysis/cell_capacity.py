"""Effective cell-level capacity versus cathode areal loading (protocol 8, the paper's Fig. 5A).

What the paper computes (Methods, "Effective capacity of ASSBs"): a stack must reach a target areal
capacity (7.2 mAh/cm²). A cathode layer with NCO loading L (mg/cm²) stores q = L × 120 mAh/g, so the
stack needs n = 7.2 / q layers, each with its own aluminium current collector and solid-electrolyte
separator; the thicker the cathode, the fewer inactive foils and separators. Cell capacity is the
target over the mass of the whole stack, per cm² of footprint.

Per layer, in mg/cm²:
* cathode composite: L / 0.60 (NCO is 60 wt % of the (60:20):18:2 NCO:NZC:o-NBH:VGCF composite);
* Al current collector: 2.7 g/cm³ × 20 µm = 5.4 (one foil per layer: Al serves both electrodes in
  sodium cells, so a bipolar-style stack shares one foil between neighbouring layers; set
  ``al_foils_per_layer`` = 2 for separate cathode and anode foils);
* separator: 1.3 g/cm³ × 50 µm = 6.5;
* anode, sized to N:P = 1.1: Sn 1.1 q / 847 mAh/g; hard carbon 1.1 q / 250 mAh/g, divided by 0.7
  because it is mixed 7:3 with solid electrolyte; anode-free none (sodium plates from the cathode).

The paper does not say whether n is rounded up to whole layers; by default it is not (a smooth curve,
exactly the target capacity). ``whole_layers=True`` rounds up and reports the larger capacity built.
"""

from __future__ import annotations

import math
from numbers import Real

import pandas as pd

ANODES = ("anode_free", "sn", "hard_carbon")


class CellCapacityInputError(ValueError):
    """An input of the cell-capacity estimate is out of range; the message names it."""


def _positive(name: str, value: float) -> float:
    if not (isinstance(value, Real) and math.isfinite(value) and value > 0):
        raise CellCapacityInputError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def effective_cell_capacity(loading_mg_per_cm2: float, anode: str = "sn", *,
                            target_mah_per_cm2: float = 7.2,
                            nco_capacity_mah_per_g: float = 120.0,
                            nco_mass_fraction: float = 0.60,
                            np_ratio: float = 1.1,
                            sn_capacity_mah_per_g: float = 847.0,
                            hard_carbon_capacity_mah_per_g: float = 250.0,
                            hard_carbon_mass_fraction: float = 0.7,
                            al_density_g_per_cm3: float = 2.7,
                            al_thickness_um: float = 20.0,
                            al_foils_per_layer: float = 1.0,
                            separator_density_g_per_cm3: float = 1.3,
                            separator_thickness_um: float = 50.0,
                            whole_layers: bool = False) -> dict:
    """Cell capacity of a stack of cathode layers with NCO loading ``loading_mg_per_cm2`` (mg/cm², > 0)
    built to ``target_mah_per_cm2``, with anode 'sn', 'hard_carbon' or 'anode_free'.

    Defaults are the paper's assumptions (module docstring). Returns a dict: loading_mg_per_cm2, anode,
    layer_mah_per_cm2 (one cathode layer), layers, cell_mah_per_cm2 (footprint), the stack's masses per
    cm² of footprint (cathode_mg_per_cm2, anode_mg_per_cm2, al_mg_per_cm2, separator_mg_per_cm2,
    stack_mg_per_cm2) and cell_mah_per_g (capacity per gram of stack).
    """
    if anode not in ANODES:
        raise CellCapacityInputError(f"anode must be one of {ANODES}, got {anode!r}")
    loading = _positive("loading_mg_per_cm2", loading_mg_per_cm2)
    target = _positive("target_mah_per_cm2", target_mah_per_cm2)
    for name, fraction in (("nco_mass_fraction", nco_mass_fraction),
                           ("hard_carbon_mass_fraction", hard_carbon_mass_fraction)):
        if not (isinstance(fraction, Real) and 0 < fraction <= 1):
            raise CellCapacityInputError(f"{name} must be in (0, 1], got {fraction!r}")
    for name, value in (("al_foils_per_layer", al_foils_per_layer),
                        ("al_thickness_um", al_thickness_um),
                        ("separator_thickness_um", separator_thickness_um)):
        if not (isinstance(value, Real) and math.isfinite(value) and value >= 0):
            raise CellCapacityInputError(f"{name} must be a finite number >= 0, got {value!r}")

    layer_mah = loading / 1000.0 * _positive("nco_capacity_mah_per_g", nco_capacity_mah_per_g)
    layers = target / layer_mah
    if whole_layers:
        layers = float(math.ceil(layers - 1e-12))

    anode_capacity_mah = _positive("np_ratio", np_ratio) * layer_mah
    if anode == "sn":
        anode_mg = anode_capacity_mah / _positive("sn_capacity_mah_per_g", sn_capacity_mah_per_g) * 1000.0
    elif anode == "hard_carbon":
        anode_mg = (anode_capacity_mah / _positive("hard_carbon_capacity_mah_per_g",
                                                   hard_carbon_capacity_mah_per_g)
                    * 1000.0 / hard_carbon_mass_fraction)
    else:
        anode_mg = 0.0
    # density (g/cm³) × thickness (µm → cm) gives g/cm²; × 1000 gives mg/cm².
    al_mg = (al_foils_per_layer * _positive("al_density_g_per_cm3", al_density_g_per_cm3)
             * al_thickness_um * 1e-4 * 1000.0)
    separator_mg = (_positive("separator_density_g_per_cm3", separator_density_g_per_cm3)
                    * separator_thickness_um * 1e-4 * 1000.0)
    cathode_mg = loading / nco_mass_fraction

    stack = {
        "cathode_mg_per_cm2": layers * cathode_mg,
        "anode_mg_per_cm2": layers * anode_mg,
        "al_mg_per_cm2": layers * al_mg,
        "separator_mg_per_cm2": layers * separator_mg,
    }
    stack_mg = sum(stack.values())
    cell_mah = layers * layer_mah
    return {
        "loading_mg_per_cm2": loading,
        "anode": anode,
        "layer_mah_per_cm2": layer_mah,
        "layers": layers,
        "cell_mah_per_cm2": cell_mah,
        **stack,
        "stack_mg_per_cm2": stack_mg,
        "cell_mah_per_g": cell_mah / (stack_mg / 1000.0),
    }


def cell_capacity_curve(loadings_mg_per_cm2, anodes=ANODES, **assumptions) -> pd.DataFrame:
    """``effective_cell_capacity`` for every loading (mg/cm²) and anode, one row each, as Fig. 5A plots
    it. Keyword ``assumptions`` are passed through."""
    return pd.DataFrame([effective_cell_capacity(float(loading), anode, **assumptions)
                         for anode in anodes for loading in loadings_mg_per_cm2])
