"""Transport faults of the simulated station, drawn at a rate per instrument call.

The station file asks for them per instrument, and every simulator injects them where a real
fault would happen, so the drivers meet them on their real path:

.. code-block:: toml

    [sim.faults.chamber]
    rate = 0.01                       # probability that one command meets a fault
    kinds = ["timeout", "garbled"]    # drawn uniformly among these (default: every kind)

=================  =============================================================================
chamber            ``timeout``: the command is lost, no reply; ``garbled``: the reply arrives with
                   a character destroyed (a control byte); ``truncated``: the reply's start
                   arrives without its end or terminator (the read times out, the fragment stays
                   in the buffer); ``disconnect``: the connection drops (in process: the adapter
                   refuses until reopened; over TCP: the socket is closed); ``na``: the command
                   arrives corrupted and the chamber answers ``NA:CMD ERR``
potentiostat       ``timeout``: the call blocks ``timeout_s`` (default 5 s) of clock time and
                   returns -202 (no acknowledgement); ``not_connected`` -1,
                   ``connection_failed`` -201: returned instead of the call's work;
                   ``incompatible_technique`` -401: returned by BL_LoadTechnique and
                   BL_UpdateParameters only (the calls that load technique files)
cycler             ``partial_write``: the Landt software's write of new records stops part-way
                   (the last line is truncated; the rest follows with the next write);
                   ``read_error``: opening the export fails (a sharing violation)
=================  =============================================================================

The draws come from their own random stream (seeded from ``[sim] seed`` and the instrument), so
injecting faults never changes the noise of what the instruments measure. ``injected`` counts
the faults by kind.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

KINDS: dict[str, tuple[str, ...]] = {
    "chamber": ("timeout", "garbled", "truncated", "disconnect", "na"),
    "potentiostat": ("timeout", "not_connected", "connection_failed", "incompatible_technique"),
    "cycler": ("partial_write", "read_error"),
}
TRANSPORT_KEYS = ("rate", "kinds", "timeout_s")
_STREAM = {name: k for k, name in enumerate(KINDS)}


def transport_part(table: dict | None) -> tuple[dict, dict]:
    """Split an instrument's fault table into its transport faults and the rest (the simulator's
    own settings, e.g. the chamber's ``drop_reply_every``)."""
    table = dict(table or {})
    return ({k: table.pop(k) for k in TRANSPORT_KEYS if k in table}, table)


def transport_problems(instrument: str, table: dict) -> list[str]:
    """What is wrong with ``[sim.faults.<instrument>]``'s transport keys (rate, kinds, timeout_s)."""
    where = f"sim.faults.{instrument}"
    problems = []
    rate = table.get("rate", 0.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        problems.append(f"{where}.rate: a probability per call, 0 to 1, not {rate!r}")
    kinds = table.get("kinds", list(KINDS[instrument]))
    if isinstance(kinds, str):
        kinds = [kinds]
    if not isinstance(kinds, (list, tuple)) or not kinds:
        problems.append(f"{where}.kinds: a non-empty list of {list(KINDS[instrument])}")
    else:
        unknown = [k for k in kinds if k not in KINDS[instrument]]
        if unknown:
            problems.append(f"{where}.kinds: unknown {unknown}; known: {list(KINDS[instrument])}")
    if "timeout_s" in table:
        timeout = table["timeout_s"]
        if instrument != "potentiostat":
            problems.append(f"{where}.timeout_s: only the potentiostat's timeouts last a set time")
        elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 255:
            problems.append(f"{where}.timeout_s: 0 < timeout_s <= 255 s, not {timeout!r}")
    return problems


def fault_table_problems(faults: dict) -> list[str]:
    """Every problem of the station file's ``[sim.faults]``, as one list: the instruments, their
    transport faults, and each simulator's own settings."""
    from instruments.biologic.driver import fake_option_problems
    from instruments.espec.simulator import chamber_fault_problems
    own_checks = {"chamber": chamber_fault_problems, "potentiostat": fake_option_problems,
                  "cycler": lambda rest: [f"sim.faults.cycler: unknown fault(s) {sorted(rest)}; "
                                          f"known: {list(TRANSPORT_KEYS[:2])}"] if rest else []}
    problems = []
    for instrument, table in (faults or {}).items():
        if instrument not in KINDS:
            problems.append(f"sim.faults.{instrument}: no such instrument; known: {list(KINDS)}")
            continue
        if not isinstance(table, dict):
            problems.append(f"sim.faults.{instrument}: a table of fault settings, not {table!r}")
            continue
        transport, rest = transport_part(table)
        problems += transport_problems(instrument, transport)
        problems += own_checks[instrument](rest)
    return problems


class FaultInjector:
    """Draws the faults of one instrument: ``draw(applicable)`` returns the kind of fault the
    present call meets, or None. ``applicable``: the kinds this call can meet (default all)."""

    def __init__(self, instrument: str, table: dict | None = None, seed: int = 0) -> None:
        transport, _ = transport_part(table)
        problems = transport_problems(instrument, transport) if instrument in KINDS else [
            f"sim.faults.{instrument}: no such instrument; known: {list(KINDS)}"]
        if problems:
            raise ValueError("; ".join(problems))
        self.instrument = instrument
        self.rate = float(transport.get("rate", 0.0))
        kinds = transport.get("kinds", KINDS[instrument])
        self.kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        self.timeout_s = float(transport.get("timeout_s", 5.0))
        self.rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xFA17, _STREAM[instrument]])
        self.calls = 0
        self.injected: Counter[str] = Counter()

    @classmethod
    def of_lab(cls, lab, instrument: str) -> "FaultInjector":
        """The injector a simulator takes from its SimLab (no faults without a lab)."""
        faults = getattr(lab, "faults", None) or {}
        return cls(instrument, faults.get(instrument), getattr(lab, "seed", 0))

    def draw(self, applicable: Iterable[str] | None = None) -> str | None:
        if self.rate <= 0.0:
            return None
        candidates = self.kinds if applicable is None else tuple(k for k in self.kinds if k in applicable)
        if not candidates:
            return None
        self.calls += 1
        if self.rng.random() >= self.rate:
            return None
        kind = candidates[int(self.rng.integers(len(candidates)))]
        self.injected[kind] += 1
        return kind

    def uniform(self) -> float:
        """A number in [0, 1) from the same stream (where a fault cuts a reply or a write)."""
        return float(self.rng.random())
