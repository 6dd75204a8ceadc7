"""Re-attaching to a BioLogic channel after a crash: its buffered rows are read, what its finite
memory lost meanwhile is recorded as a gap, then the channel is stopped.

A channel goes on with its technique when the controlling PC dies, and keeps the rows nobody
reads in its data memory; a full memory overwrites its oldest rows (instruments/biologic/
fake_dll.py). On resume, before the interrupted step is taken up again (procedures/resume.py:
measured again, continued at its level, or failed), those rows are read without reloading
firmware or a technique (``BiologicPotentiostat.reattach``) and appended to the stream they
belong to: the last potentiostat stream of the interrupted step. Then the channel is stopped,
since the step's own policy decides what is measured next.

A gap is found two ways, and both are recorded: the instrument's count of rows it could not
deliver (TDataInfos.IRQskipped), and the points the technique's sampling puts between the last
row stored and the first row read back (a DC technique records every ``dt``, an LSV every
``dE / scan rate``, a PEIS one row per frequency of its known list). The ``gap`` document is
stored with the rows read after it (config/documents.py ``GapDoc``).
"""
from __future__ import annotations

import logging

import numpy as np

from config.documents import StreamRole
from instruments.biologic import techniques as tq
from procedures.documents import StreamWriter

log = logging.getLogger(__name__)

TECHNIQUE_OF_ROLE = {StreamRole.OCV.value: "OCV", StreamRole.LSV.value: "VSCAN",
                     StreamRole.DC_POLARIZATION.value: "CA", StreamRole.EIS_SPECTRUM.value: "PEIS"}
"""The technique whose rows each potentiostat stream role stores."""
POTENTIOSTAT_KINDS = ("peis", "lsv", "dc_polarization", "cold_discharge")
"""The step kinds that may leave a technique on the channel (a cold discharge: its cell EIS)."""


def _sampling(step, role: str):
    """How the technique behind a stream samples: a row every ``dt`` s (float), or the PEIS
    frequency list (array)."""
    from procedures.executors.dc import LSV_REST_RECORD_DT_S
    from procedures.executors.eis import peis_technique
    if role == StreamRole.EIS_SPECTRUM.value:
        return tq.peis_frequencies(peis_technique(step.peis).values)
    if role == StreamRole.OCV.value:
        return LSV_REST_RECORD_DT_S
    if role == StreamRole.LSV.value:
        return step.record_every_dv_v / step.scan_rate_v_per_s
    return step.record_every_dt_s


def _missing(sampling, stored_n: int, t_last: float, first: dict) -> int:
    """Points the sampling puts between the last stored row and the first one read back."""
    if isinstance(sampling, np.ndarray):  # a spectrum: rows are frequencies 0, 1, ... in order
        j = int(np.argmin(np.abs(np.log(sampling) - np.log(first["frequency_hz"]))))
        return max(j - stored_n, 0)
    return max(int(round((first["time_s"] - t_last) / sampling)) - 1, 0)


def reattach_potentiostat(ctx, point, k: int, step, db) -> None:
    """Read what the potentiostat channel holds of step ``k`` (``step``, the one the crash cut;
    None when none was) into its stream, emit a gap for what it lost, and stop the channel (a
    no-op when it holds nothing)."""
    from storage.readers import column_max
    station = ctx.station
    if station.simulated and "potentiostat" not in station.instruments.simulators:
        return  # the run never opened the potentiostat: nothing of it to read
    if not station.simulated and (step is None or step.kind not in POTENTIOSTAT_KINDS):
        return
    pot = station.potentiostat
    state = pot.current_values()
    if state["state"] == 0 and state["mem_filled_bytes"] == 0:
        return
    streams = [s for s in point.stored_streams.values() if step is not None
               and s["step_index"] == k and s["metadata"].get("role") in TECHNIQUE_OF_ROLE]
    target = streams[-1] if streams else None
    role = target["metadata"]["role"] if target else None
    writer = None
    if target is not None:
        writer = StreamWriter(ctx.emit, ctx.run_uid, target["name"],
                              {c: (spec["unit"], spec["dtype"]) for c, spec in target["columns"].items()},
                              resume=(target["descriptor_uid"], target["n_points"]))
    stored_n = target["n_points"] if target is not None else 0
    # Read before the rows below are written: they may reach storage while being read back.
    t_stored = column_max(db, point.run_id, target["name"], "time_s") if stored_n else None
    lost, read, unstored, first = 0, 0, 0, None
    for chunk in pot.reattach():
        lost += max(chunk.irq_skipped, 0)
        if not len(chunk) or (chunk.technique == "PEIS" and chunk.process != 1):
            continue  # a PEIS's DC-hold rows are never stored (procedures/executors/eis.py)
        if writer is None or chunk.technique != TECHNIQUE_OF_ROLE[role]:
            unstored += len(chunk)
            continue
        data = {"time_s": pot.started_at - ctx.run_t0 + chunk.columns["time_s"]}
        for column in writer.columns:
            if column in chunk.columns and column != "time_s":
                data[column] = chunk.columns[column]
        data.update(_row_constants(writer.columns, data, point, step, len(chunk)))
        if first is None:
            first = {c: float(np.asarray(data[c])[0]) for c in ("time_s", "frequency_hz") if c in data}
        writer.write(data)
        read += len(chunk)
    if state["state"] != 0:
        pot.stop()
    if unstored:
        # A measurement that has no stream to continue (a cold discharge's cell EIS, which is
        # measured again): said, not stored.
        log.warning("resume: %d rows the potentiostat held belong to no stream of step %d that "
                    "is continued; not stored (the step measures again)", unstored, k)
    if first is None:
        return
    target["n_points"] = writer.seq  # the step, taken up again, continues after them
    log.info("resume: %d rows read back from the potentiostat channel into %s", read, target["name"])
    sampling = _sampling(step, role)
    # The row before the first one read back: the last stored, or none since the technique began.
    t_start = pot.started_at - ctx.run_t0
    t_last = t_start if isinstance(sampling, np.ndarray) else t_start - sampling
    if t_stored is not None:
        t_last = max(t_last, t_stored)
    missing = _missing(sampling, stored_n, t_last, first)
    if lost or missing:
        ctx.emit("gap", {"run_uid": ctx.run_uid, "stream": target["name"], "step_index": k,
                         "technique": TECHNIQUE_OF_ROLE[role], "from_s": float(t_last),
                         "to_s": first["time_s"], "points_lost": int(lost),
                         "points_expected": missing, "time": ctx.clock.now()})


def _row_constants(columns: dict, data: dict, point, step, n: int) -> dict:
    """Columns the executor writes as constants of the measurement: a DC polarization's level."""
    out = {}
    if "setpoint_v" in columns and "setpoint_v" not in data:
        level = int((point.position or {}).get("level", 0))
        out = {"setpoint_v": np.full(n, step.voltages_v[level]), "step": np.full(n, level)}
    return out
