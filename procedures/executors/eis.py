"""PEIS of whatever sits on the potentiostat channel, with the temperature it was measured at."""
from __future__ import annotations

import re

from instruments.biologic import techniques as tq
from config.documents import StreamRole
from procedures.watch import watch_of

COLUMNS = {"time_s": "s", "frequency_hz": "Hz", "z_real_ohm": "ohm", "z_imag_ohm": "ohm",
           "z_mod_ohm": "ohm", "phase_rad": "rad", "ewe_v": "V", "i_a": "A"}


def peis_technique(settings) -> tq.Technique:
    return tq.peis(settings.initial_frequency_hz, settings.final_frequency_hz, settings.amplitude_v,
                   points_per_decade=settings.points_per_decade, dc_voltage_v=settings.dc_voltage_v,
                   vs_initial=settings.dc_vs_ocv, average_n_times=settings.average_n_times,
                   wait_for_steady=settings.wait_for_steady_periods)


def measure_spectrum(ctx, settings, stream_name: str, metadata: dict | None = None) -> dict:
    """Run one PEIS, streaming one row per frequency; returns the step summary.

    The spectrum's ``temperature_c`` is the mean chamber reading over the measurement (readings
    taken just before and after included), as the sample sits at the chamber's temperature after
    the soak.

    While the chamber holds a watched set point (procedures/watch.py), a spectrum caught by a
    suspension is stopped, kept in storage but marked invalid (the suspension document names it;
    analysis leaves it out), and measured again, into a new stream, once the chamber is back,
    stable and soaked. ``summary["invalid"]`` lists the spectra given up that way.
    """
    invalid: list[str] = []
    while True:
        watch = watch_of(ctx)
        before = watch.count if watch is not None else 0
        summary = _measure_once(ctx, settings, stream_name, metadata, watch)
        if watch is None or (watch.count == before and not watch.tripped):
            return {**summary, "invalid": invalid}
        invalid.append(summary["stream"])
        watch.note("spectrum stored as invalid, measured again after stabilization and soak",
                   invalidated=summary["stream"])
        watch.reestablish()


def _measure_once(ctx, settings, stream_name: str, metadata: dict | None, watch) -> dict:
    clock = ctx.clock
    pot = ctx.station.potentiostat
    logger = getattr(ctx, "chamber_logger", None)
    t_start = clock.now()
    if logger is not None:
        logger.read_now()
    stream = ctx.new_stream(stream_name, COLUMNS,
                            metadata={"role": StreamRole.EIS_SPECTRUM.value, **(metadata or {})})
    run_t0 = ctx.run_t0
    n = 0
    records = pot.run(peis_technique(settings))
    for chunk in records:
        if chunk.process == 1 and len(chunk):
            cols = chunk.columns
            stream.write({"time_s": pot.started_at - run_t0 + cols["time_s"],
                          **{k: cols[k] for k in COLUMNS if k != "time_s"}})
            n += len(chunk)
        if watch is not None and watch.tripped:
            records.close()  # stops the channel: the rest of this spectrum would be worthless
            break
    t_end = clock.now()
    temperature = None
    if logger is not None:
        logger.read_now()
        temperature = logger.mean_between(t_start, clock.now())
    return {"stream": stream.stream, "points": n, "temperature_c": temperature,
            "duration_s": t_end - t_start}


def stream_slug(name: str) -> str:
    """A readable, column-safe stream name: 'day 0: PEIS at -10 °C' -> 'day_0_peis_at_m10_c'."""
    text = re.sub(r"-(?=\d)", "m", name.lower())
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_") or "peis"


def run_peis(ctx, step) -> dict:
    name = step.name or "peis"
    summary = measure_spectrum(ctx, step.peis, stream_slug(name))
    if summary["points"] == 0:
        raise RuntimeError(f"PEIS '{name}' returned no frequency rows")
    return summary
