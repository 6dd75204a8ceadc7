"""An analysis result (nested dicts and lists, as stored) as tables a person can read.

Scalars at one level make a two-column table (quantity, value); a list of records (the spectra of
a conductivity series, the cycles of a cycling run) makes a table with a row per record; nested
dicts are flattened into dotted names of their parent's table.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)


def format_value(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.5g}"
    if isinstance(value, (list, tuple)):
        return "; ".join(format_value(v) for v in value)
    return str(value)


def _is_records(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def result_tables(title: str, result) -> list[Table]:
    """Tables of one analysis result, the summary first."""
    summary = Table(title, ["quantity", "value"])
    tables = [summary]
    _collect(result if isinstance(result, dict) else {"result": result}, "", title, summary, tables)
    return [t for t in tables if t.rows]


def _collect(mapping: dict, prefix: str, title: str, summary: Table, tables: list[Table]) -> None:
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _collect(value, f"{name}.", title, summary, tables)
        elif _is_records(value):
            columns = list(dict.fromkeys(k for record in value for k in record
                                         if not isinstance(record[k], (dict, list)) or k == "warnings"))
            tables.append(Table(f"{title}: {name}", columns,
                                [[format_value(record.get(c)) for c in columns] for record in value]))
        else:
            summary.rows.append([name, format_value(value)])
