"""Cold-discharge table (protocol 7): discharge capacity at each chamber temperature relative to the
room-temperature discharge.

The protocol recharges the cell at 20 °C before every discharge, so each row is an independent
discharge; rows stay in the order they were measured (25, 0, -5, -10, -15 °C in the paper).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Real

import pandas as pd

DEFAULT_REFERENCE_TOLERANCE_C = 1.0


class ColdDischargeInputError(ValueError):
    """A cold-discharge entry is missing or out of range; the message names the entry and the field."""


def _number(entry: Mapping, key: str, position: int, required: bool) -> float | None:
    value = entry.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if required:
            raise ColdDischargeInputError(f"cold-discharge entry {position} has no '{key}'")
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ColdDischargeInputError(
            f"cold-discharge entry {position}: '{key}' is not a number: {value!r}") from exc
    if not math.isfinite(number):
        raise ColdDischargeInputError(f"cold-discharge entry {position}: '{key}' is not finite: {value!r}")
    return number


def _entries(discharges) -> list[Mapping]:
    if isinstance(discharges, pd.DataFrame):
        return discharges.to_dict("records")
    if isinstance(discharges, Iterable) and not isinstance(discharges, (str, bytes, Mapping)):
        entries = list(discharges)
        for position, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                raise ColdDischargeInputError(f"cold-discharge entry {position} is not a mapping: {entry!r}")
        return entries
    raise ColdDischargeInputError(
        f"discharges must be a list of mappings or a DataFrame, got {type(discharges).__name__}")


def cold_discharge_table(discharges, area_cm2: float | None, reference_temperature_c: float = 25.0,
                         reference_tolerance_c: float = DEFAULT_REFERENCE_TOLERANCE_C) -> list[dict]:
    """One row per discharge, in the given order.

    discharges: list of {"temperature_c", "discharge_mah" (>= 0), optional "avg_discharge_voltage_v"}
        or a DataFrame with those columns.
    area_cm2: cathode area (cm², > 0) for mAh/cm², or None.
    reference_temperature_c: temperature (°C) whose discharge is 100 %; the first entry within
        ``reference_tolerance_c`` (°C) of it is the reference. Without one every ratio is None.

    Returns [{"temperature_c", "discharge_mah", "discharge_mah_per_cm2", "ratio_to_reference_pct",
    and "avg_discharge_voltage_v" for entries that carry it}].
    """
    if area_cm2 is not None and not (isinstance(area_cm2, Real) and math.isfinite(area_cm2)
                                     and area_cm2 > 0):
        raise ColdDischargeInputError(f"area_cm2 must be a positive number or None, got {area_cm2!r}")
    if not reference_tolerance_c >= 0:
        raise ColdDischargeInputError(
            f"reference_tolerance_c must be >= 0 °C, got {reference_tolerance_c!r}")

    rows = []
    for position, entry in enumerate(_entries(discharges)):
        temperature_c = _number(entry, "temperature_c", position, required=True)
        discharge_mah = _number(entry, "discharge_mah", position, required=True)
        if discharge_mah < 0:
            raise ColdDischargeInputError(
                f"cold-discharge entry {position}: 'discharge_mah' must be >= 0, got {discharge_mah!r}")
        row = {
            "temperature_c": temperature_c,
            "discharge_mah": discharge_mah,
            "discharge_mah_per_cm2": None if area_cm2 is None else discharge_mah / area_cm2,
        }
        voltage_v = _number(entry, "avg_discharge_voltage_v", position, required=False)
        if voltage_v is not None:
            row["avg_discharge_voltage_v"] = voltage_v
        rows.append(row)

    reference = next((row for row in rows
                      if abs(row["temperature_c"] - reference_temperature_c) <= reference_tolerance_c), None)
    reference_mah = reference["discharge_mah"] if reference is not None else 0.0
    for row in rows:
        row["ratio_to_reference_pct"] = (row["discharge_mah"] / reference_mah * 100.0
                                         if reference_mah > 0 else None)
    return rows


def per_temperature_summary(cycles, discharge_temperatures_c: Mapping[int, float],
                            tolerance_c: float = DEFAULT_REFERENCE_TOLERANCE_C) -> list[dict]:
    """Coulombic efficiency and retention computed only between cycles discharged at the same
    temperature: a mean CE or a retention over cycles discharged at 25 °C and at −15 °C measures the
    temperature, not the cell.

    cycles: ``analysis.cycling.summarize_cycles``'s cycle entries (cycle, discharge_mah, ce_pct).
    discharge_temperatures_c: {cycle number: temperature (°C) of its discharge}; other cycles are
        left out. Temperatures within ``tolerance_c`` (°C) of a group's first are one group.

    Returns one entry per temperature, in the order first measured: {"temperature_c", "cycles"
    (numbers, in order), "mean_ce_pct" (mean CE of the group's cycles numbered 2 and up: cycle 1's CE
    is the ICE, which holds the first charge's irreversible loss; None without such a cycle),
    "retention_pct" (last discharge of the group over its first × 100; None with one discharge)}.
    """
    if not tolerance_c >= 0:
        raise ColdDischargeInputError(f"tolerance_c must be >= 0 °C, got {tolerance_c!r}")
    by_number = {}
    for position, entry in enumerate(_entries(cycles)):
        number = _number(entry, "cycle", position, required=True)
        by_number[int(number)] = entry
    groups: list[tuple[float, list[Mapping]]] = []
    for cycle, temperature in discharge_temperatures_c.items():
        if cycle not in by_number:
            raise ColdDischargeInputError(f"cycle {cycle} has a discharge temperature but no cycle entry")
        t = float(temperature)
        group = next((g for g in groups if abs(g[0] - t) <= tolerance_c), None)
        if group is None:
            groups.append((t, [by_number[cycle]]))
        else:
            group[1].append(by_number[cycle])
    summary = []
    for temperature, members in groups:
        members.sort(key=lambda entry: entry["cycle"])
        ce = [entry["ce_pct"] for entry in members if entry["cycle"] >= 2 and entry.get("ce_pct") is not None]
        discharged = [entry["discharge_mah"] for entry in members if entry.get("discharge_mah") is not None]
        retention = (discharged[-1] / discharged[0] * 100.0
                     if len(discharged) >= 2 and discharged[0] > 0 else None)
        summary.append({"temperature_c": temperature, "cycles": [int(entry["cycle"]) for entry in members],
                        "mean_ce_pct": sum(ce) / len(ce) if ce else None, "retention_pct": retention})
    return summary
