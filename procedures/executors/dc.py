"""DC techniques on the potentiostat: LSV from the open-circuit potential, and DC polarization."""
from __future__ import annotations

import numpy as np

from instruments.biologic import techniques as tq
from config.documents import StreamRole
from procedures.watch import OutOfBand, watch_of

DC_COLUMNS = {"time_s": "s", "ewe_v": "V", "i_a": "A"}

LSV_REST_RECORD_DT_S = 10.0
"""The LSV's open-circuit rest records a row every 10 s (the OCV it ends on is what matters)."""

LSV_CAUGHT = "LSV (destructive, not repeated)"
DCPOL_CAUGHT = "DC polarization (its steady states would be mixed across temperatures)"


def _write_chunks(ctx, pot, technique, stream, caught: str, extra=None, on_chunk=None) -> int:
    """Stream every decoded row of ``technique`` (device times, which count from the channel's
    start, shifted to count from the run's start). A suspension of the run (procedures/watch.py)
    stops the channel and fails the step (OutOfBand): ``caught`` names what was lost."""
    n = 0
    watch = watch_of(ctx)
    records = pot.run(technique)
    for chunk in records:
        if len(chunk):
            cols = chunk.columns
            data = {"time_s": pot.started_at - ctx.run_t0 + cols["time_s"], "ewe_v": cols["ewe_v"],
                    "i_a": cols["i_a"]}
            for key, value in (extra or {}).items():
                data[key] = np.full(len(chunk), value)
            stream.write(data)
            n += len(chunk)
            if on_chunk is not None:
                on_chunk(data)
        if watch is not None and watch.tripped:
            records.close()  # stops the channel; what was measured is stored
            watch.note(f"{caught}: step failed")
            raise OutOfBand(f"{caught} stopped with the chamber out of its band: "
                            f"{watch.suspensions[-1]['reason']}")
    return n


def run_lsv(ctx, step) -> dict:
    """OCV rest, then one sweep from the measured open-circuit potential to ``end_voltage_v``."""
    pot = ctx.station.potentiostat
    ocv_stream = ctx.new_stream("ocv", DC_COLUMNS, metadata={"role": StreamRole.OCV.value})
    rest = {"ewe": []}
    if step.rest_s > 0:
        _write_chunks(ctx, pot, tq.ocv(step.rest_s, record_every_dt_s=LSV_REST_RECORD_DT_S), ocv_stream,
                      LSV_CAUGHT, on_chunk=lambda d: rest["ewe"].append(d["ewe_v"]))
    if rest["ewe"]:
        ocv_v = float(np.concatenate(rest["ewe"])[-1])
    else:
        ocv_v = float(pot.current_values()["ewe_v"])
    stream = ctx.new_stream("lsv", DC_COLUMNS, metadata={
        "role": StreamRole.LSV.value, "scan_rate_v_per_s": step.scan_rate_v_per_s, "start_v": ocv_v,
        "end_voltage_v": step.end_voltage_v, "threshold_a_per_cm2": step.threshold_a_per_cm2})
    technique = tq.lsv(ocv_v, step.end_voltage_v, step.scan_rate_v_per_s,
                       record_every_de_v=step.record_every_dv_v)
    n = _write_chunks(ctx, pot, technique, stream, LSV_CAUGHT)
    return {"stream": stream.stream, "ocv_v": ocv_v, "points": n,
            "end_voltage_v": step.end_voltage_v}


def relative_drift_per_h(time_s: np.ndarray, current_a: np.ndarray) -> float | None:
    """|dI/dt|/|I| in 1/h from a straight line through the samples, None if undefined."""
    if len(time_s) < 3 or np.ptp(time_s) <= 0:
        return None
    slope, intercept = np.polyfit(time_s - time_s[-1], current_a, 1)
    level = abs(intercept)
    return None if level == 0 else abs(slope) * 3600.0 / level


def run_dc_polarization(ctx, step) -> dict:
    """Hold each voltage until the current's drift over the last window falls below the criterion.

    The SDK has no drift-based end condition, so each voltage runs as one CA technique with
    Duration_step = max_step_s, and the step is ended early by shortening Duration_step through
    BL_UpdateParameters (``end_step``) once the drift criterion holds (after min_step_s).

    Resume after a crash: the step goes on at the voltage level it was at (its checkpoint's
    ``level``), held again from its start; the rows of the interrupted hold stay in the stream
    before the new ones, and the analysis reads each level's current from its end.
    """
    pot = ctx.station.potentiostat
    stream = ctx.new_stream("dcpol", {**DC_COLUMNS, "setpoint_v": "V", "step": ("", "int")},
                            metadata={"role": StreamRole.DC_POLARIZATION.value,
                                      "drift_criterion_per_h": step.drift_criterion_per_h,
                                      "drift_window_s": step.drift_window_s},
                            continue_stored=True)
    first = int((ctx.resume_position or {}).get("level", 0))
    steps = []
    for k, voltage in enumerate(step.voltages_v):
        if k < first:
            continue
        if k > first:
            ctx.checkpoint()  # between voltage steps the pellet may rest: a safe point to pause
        ctx.save_position(level=k)
        times, currents = [], []
        state = {"last_check": None, "converged": False, "ended": False, "drift": None}

        def on_chunk(data, k=k):
            times.append(data["time_s"])
            currents.append(data["i_a"])
            t = np.concatenate(times)
            elapsed = t[-1] - t[0]
            if state["ended"] or elapsed < step.min_step_s or elapsed < step.drift_window_s:
                return
            if state["last_check"] is not None and t[-1] - state["last_check"] < step.check_interval_s:
                return
            state["last_check"] = t[-1]
            i = np.concatenate(currents)
            window = t >= t[-1] - step.drift_window_s
            drift = relative_drift_per_h(t[window], i[window])
            state["drift"] = drift
            if drift is not None and drift < step.drift_criterion_per_h:
                state["converged"] = state["ended"] = True
                pot.end_step(0, 0, duration_s=0.0)

        technique = tq.ca([voltage], [step.max_step_s], record_every_dt_s=step.record_every_dt_s)
        n = _write_chunks(ctx, pot, technique, stream, DCPOL_CAUGHT, extra={"setpoint_v": voltage, "step": k},
                          on_chunk=on_chunk)
        t = np.concatenate(times) if times else np.array([0.0])
        steps.append({"voltage_v": voltage, "points": n, "duration_s": float(t[-1] - t[0]),
                      "converged_online": state["converged"], "drift_per_h": state["drift"]})
        if step.rest_between_s > 0 and k < len(step.voltages_v) - 1:
            ctx.clock.sleep(step.rest_between_s)
    return {"stream": stream.stream, "steps": steps}
