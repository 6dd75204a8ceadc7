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
