"""Cycling on the cycler channel, and the cold-discharge protocol that couples it to the chamber.

Resume after a crash (procedures/resume.py): a cycler runs its program on while no PC follows it,
so a step whose program had started re-attaches to it (``ctx.resume_position["program_started"]``)
instead of starting it again, and reads its records on; the records already stored are skipped by
the cycler's own record numbers. A cold discharge also keeps which of its chamber actions are
done (``done``) and the cell spectra measured (``eis``) in its position.
"""
from __future__ import annotations

import numpy as np

from config.cycling import CyclingProgram
from config.errors import ConfigError
from config.limits import program_limit_problems
from instruments.cycler import CyclerError, CyclerState, n_records
from instruments.landt.steptable import render_step_table
from procedures.estimates import program_estimate
from procedures.executors.eis import measure_spectrum
from config.documents import StreamRole
from procedures.watch import ConditionNotRecovered, hold_setpoint

RECORD_COLUMNS = {"record": ("", "int"), "cycle": ("", "int"), "step": ("", "int"),
                  "step_type": ("", "str"), "test_time_s": "s", "step_time_s": "s",
                  "voltage_v": "V", "current_a": "A", "capacity_ah": "Ah", "energy_wh": "Wh",
                  "out_of_band": ("", "int")}
"""The cycler's record columns, and ``out_of_band``: 1 for a record taken while the run was
suspended (procedures/watch.py): the cycler cannot be paused from outside, so it went on."""


class RestTooShort(CyclerError):
    """The cycler left a rest before the chamber had settled and soaked."""


def settle_chamber(ctx, setpoint_c: float, stabilization, soak_s: float) -> None:
    hold_setpoint(ctx, setpoint_c, stabilization, soak_s)


def mark_out_of_band(records: dict, program_t0: float, windows) -> dict:
    """``records`` with their ``out_of_band`` column: 1 where the record's clock time
    (``program_t0`` + its test time) falls in a suspension window."""
    t = program_t0 + np.asarray(records["test_time_s"], float)
    flag = np.zeros(len(t), dtype=np.int64)
    for start, end in windows:
        flag[(t >= start) & (t <= end)] = 1
    return {**records, "out_of_band": flag}


def follow_program(ctx, program: CyclingProgram, stream, on_records=None,
                   position=None) -> dict:
    """Start ``program`` on the station's cycler and stream its records until it ends.

    A cycler that cannot start remotely shows the operator its step table (station prompt) and is
    followed once data appear. ``on_records(records, mark)`` sees each new batch (numpy columns;
    ``mark`` adds the ``out_of_band`` column to records read meanwhile) (the cold-discharge
    protocol hooks the chamber onto the cycler's rests there). ``position()``: the step's own
    checkpoint fields, saved with the program's start once it runs and after each batch; a resumed
    step whose checkpoint says the program started re-attaches to it.
    """
    station = ctx.station
    cell = ctx.protocol.cell
    # The station's absolute limits once more, right before the command (validation ran earlier).
    problems = program_limit_problems("program", program, cell, station.config)
    if problems:
        raise ConfigError("cycler start refused", problems)
    cycler = station.cycler
    resumed = ctx.resume_position or {}
    if resumed.get("program_started"):
        cycler.attach(program, cell, ctx.sample.id)
        program_t0 = float(resumed["program_t0"])
    else:
        cycler.start(program, cell, ctx.sample.id,
                     on_prompt=lambda text: station.ask_operator(text, kind="cycler"))
        program_t0 = ctx.clock.now()

    def save_position() -> None:
        ctx.save_position(**(position() if position is not None else {}), program_started=True,
                          program_t0=program_t0)
    save_position()
    stored = ctx.stored_streams.get(stream.stream) or {}
    last_stored = stored.get("last_record")
    watch = getattr(ctx, "watch", None)

    def mark(batch: dict) -> dict:
        return mark_out_of_band(batch, program_t0, watch.out_of_band_windows() if watch is not None else ())
    poll = station.cycler_poll_interval_s
    pace = CyclePace(program_estimate(program, cell)[1])
    rows = 0
    last_record = None
    while True:
        ctx.clock.sleep(poll)
        state = cycler.state()
        records = cycler.read_new_columns()
        if last_stored is not None:
            records, last_stored = _unseen(records, last_stored)
        n = n_records(records)
        if n:
            records = mark(records)
            stream.write(records)
            rows += n
            last_record = {name: values[-1] for name, values in records.items()}
            pace.update(records["cycle"], records["test_time_s"])
            ctx.report_progress(cycle=pace.cycle, n_cycles=pace.n_cycles,
                                step_remaining_s=pace.remaining_s())
            if on_records is not None:
                on_records(records, mark)
                save_position()
        if watch is not None and watch.failure is not None:
            raise ConditionNotRecovered(watch.failure)
        if state == CyclerState.FAULT:
            raise CyclerError(f"cycler fault: {getattr(cycler, 'fault_reason', '') or 'unknown'}")
        if state in (CyclerState.FINISHED, CyclerState.IDLE) and not n:
            break
    summary = {"records": rows}
    if last_record is not None:
        summary.update(last_cycle=int(last_record["cycle"]), test_time_s=float(last_record["test_time_s"]))
    return summary


def _unseen(records: dict, last_stored: int) -> tuple[dict, int | None]:
    """The records numbered after ``last_stored`` (the last one a crashed process stored), and
    what to compare the next batch with (None once the cycler is past it)."""
    numbers = records.get("record")
    if numbers is None or not len(numbers):
        return records, last_stored
    keep = numbers > last_stored
    if keep.all():
        return records, None
    return {name: values[keep] for name, values in records.items()}, last_stored


class CyclePace:
    """How far a cycling program has come and how long the rest will take, from its records: the
    remaining cycles are assumed to last as long as the last few complete ones (capacity fades
    slowly, so recent cycles predict the next ones better than the nominal capacity does)."""

    RECENT = 5

    def __init__(self, n_cycles: int) -> None:
        self.n_cycles = n_cycles
        self.starts: dict[int, float] = {}
        self.last_time_s = 0.0

    @property
    def cycle(self) -> int | None:
        return max(self.starts) if self.starts else None

    def update(self, cycles: np.ndarray, test_time_s: np.ndarray) -> None:
        new = np.flatnonzero(np.r_[True, cycles[1:] != cycles[:-1]])
        for i in new:
            self.starts.setdefault(int(cycles[i]), float(test_time_s[i]))
        self.last_time_s = float(test_time_s[-1])

    def remaining_s(self) -> float | None:
        """Remaining time of the program, s, or None until one cycle is complete."""
        ordered = sorted(self.starts)
        complete = [c for c in ordered[:-1] if c >= 1]
        if not complete:
            return None
        recent = complete[-self.RECENT:]
        durations = [self.starts[ordered[ordered.index(c) + 1]] - self.starts[c] for c in recent]
        per_cycle = float(np.mean(durations))
        current = ordered[-1]
        in_current = self.last_time_s - self.starts[current]
        return max(per_cycle - in_current, 0.0) + max(self.n_cycles - current, 0) * per_cycle


def run_cycling(ctx, step) -> dict:
    if step.temperature_c is not None and not (ctx.resume_position or {}).get("program_started"):
        settle_chamber(ctx, step.temperature_c, step.stabilization, step.soak_s)
    stream = ctx.new_stream("cycling", RECORD_COLUMNS, metadata={
        "role": StreamRole.CYCLING.value, "phase": "program", "temperature_c": step.temperature_c},
        continue_stored=True)
    return {"stream": stream.stream, **follow_program(ctx, step.program, stream)}


class DischargeSpoiled(Exception):
    """A cold discharge measured records while the run was suspended (the chamber out of its
    band): it is stopped and repeated after a recharge."""

    def __init__(self, k: int, stream: str, cycle: int, records: int) -> None:
        super().__init__(f"discharge {k} caught out of band ({stream}, cycle {cycle})")
        self.k, self.stream, self.cycle, self.records = k, stream, cycle, records


def run_cold_discharge(ctx, step) -> dict:
    """PAPER.md protocol 7 as one program: [rest, CCCV at 20 °C, rest, C/10 discharge at T] per T.

    The chamber follows the cycler: when the records show a rest before a charge, the chamber goes
    to the charge temperature; at a rest before a discharge, to that discharge's temperature, and
    after the soak the cell's EIS is measured (when the station reaches the cell with its
    potentiostat). The rest must outlast settling + soak (+ EIS): if the cycler has moved on by
    then, the run fails with RestTooShort rather than discharging at the wrong temperature.

    A discharge that records while the run is suspended (its chamber out of band) is spoiled: the
    program is stopped, its records stay stored with ``out_of_band = 1``, and once the chamber is
    back a new program runs the protocol from that temperature on, into a new stream: the cell
    is recharged as the protocol charges it, the chamber soaks again at the temperature, and the
    discharge is measured again (the cell's EIS at that temperature is not measured twice). The
    analysis leaves the spoiled discharge out and says so (``repeated`` in the step summary and
    the stream's metadata).
    """
    resumed = ctx.resume_position or {}
    done: set[tuple[str, int]] = {(kind, int(k)) for kind, k in resumed.get("done", [])}
    eis_streams: list[dict] = list(resumed.get("eis", []))
    repeated: list[dict] = list(resumed.get("repeated", []))
    first = int(resumed.get("first", 0))
    records = 0
    while True:
        # A program not yet started after a repeat goes into a stream of its own.
        continue_stored = first == 0 or bool(resumed.get("program_started"))
        try:
            summary = _cold_discharge_program(ctx, step, first, done, eis_streams, repeated,
                                              continue_stored)
            records += summary.pop("records")
            return {**summary, "records": records, "eis": eis_streams, "repeated": repeated}
        except DischargeSpoiled as spoiled:
            first, resumed = spoiled.k, {}
            ctx.resume_position = None  # the repeat is a new program, started, not attached
            records += spoiled.records
            done -= {("charge_rest", first), ("discharge_rest", first)}
            temperature = step.temperatures_c[first]
            repeated.append({"temperature_c": temperature, "stream": spoiled.stream,
                             "cycle": spoiled.cycle})
            watch = ctx.watch
            watch.note(f"discharge at {temperature:g} °C stopped out of band (stream "
                       f"{spoiled.stream}, cycle {spoiled.cycle}); measured again after a recharge")
            # Saved before the repeat starts: a crash now resumes by starting it.
            ctx.save_position(done=sorted([kind, k] for kind, k in done), eis=eis_streams,
                              repeated=repeated, first=first)
            watch.wait_recovered()


def _cold_discharge_program(ctx, step, first: int, done: set, eis_streams: list, repeated: list,
                            continue_stored: bool) -> dict:
    """Run (or follow, resumed) the program of temperatures ``first``… to its end; raises
    DischargeSpoiled, program stopped, when a discharge records out of band."""
    cell = ctx.protocol.cell
    program, roles = step.program_for(cell, first)
    table = render_step_table(program, cell)
    step_roles = {table.numbers[i]: role for i, role in enumerate(roles)}
    discharge_steps = {number: role[1] for number, role in step_roles.items() if role[0] == "discharge"}
    stream = ctx.new_stream("cold_discharge", RECORD_COLUMNS, metadata={
        "role": StreamRole.CYCLING.value, "phase": "cold_discharge",
        "temperatures_c": list(step.temperatures_c[first:]),
        **({"repeats": step.temperatures_c[first]} if first else {})},
        continue_stored=continue_stored)
    rows = [0]

    def position() -> dict:
        return {"done": sorted([kind, k] for kind, k in done), "eis": eis_streams,
                "repeated": repeated, "first": first}

    def spoiled_in(batch) -> int | None:
        steps = np.asarray(batch["step"])
        flagged = np.asarray(batch["out_of_band"]) != 0
        for number in dict.fromkeys(steps[flagged].tolist()):
            if int(number) in discharge_steps:
                return discharge_steps[int(number)]
        return None

    def on_records(batch, mark) -> None:
        rows[0] += n_records(batch)
        if (k := spoiled_in(batch)) is not None:
            stop_spoiled(k, batch, mark)
        entered = int(batch["step"][-1])
        for number in dict.fromkeys(batch["step"].tolist()):
            role = step_roles.get(int(number))
            if role is None or role in done or role[0] not in ("charge_rest", "discharge_rest"):
                continue
            if int(number) != entered:
                raise RestTooShort(f"rest step {number} ({role[0]} {role[1]}) ended before cellbench "
                                   f"saw it; poll the cycler more often or lengthen the rest")
            act(role, entered, mark)
            done.add(role)

    def stop_spoiled(k: int, batch, mark) -> None:
        cycler = ctx.station.cycler
        cycler.stop()
        last = mark(cycler.read_new_columns())
        stream.write(last)
        rows[0] += n_records(last)
        in_discharge = np.isin(np.asarray(batch["step"]), [n for n, j in discharge_steps.items() if j == k])
        raise DischargeSpoiled(k, stream.stream, int(np.asarray(batch["cycle"])[in_discharge][0]), rows[0])

    def act(role, entered: int, mark) -> None:
        kind, k = role
        if kind == "charge_rest":
            settle_chamber(ctx, step.charge_temperature_c, step.stabilization, step.soak_s)
        else:
            temperature = step.temperatures_c[k]
            settle_chamber(ctx, temperature, step.stabilization, step.soak_s)
            # A repeated discharge keeps the cell spectrum measured before its first attempt.
            measured = any(e.get("discharge") == k for e in eis_streams)
            if step.eis and not measured and ctx.station.cell_on_potentiostat():
                name = f"eis_cell_{_slug(temperature)}c"
                summary = measure_spectrum(ctx, step.peis, name,
                                           metadata={"role": StreamRole.CELL_EIS.value, "setpoint_c": temperature})
                eis_streams.append({**summary, "setpoint_c": temperature, "discharge": k})
        still = ctx.station.cycler.read_new_columns()
        if n_records(still):
            still = mark(still)
            stream.write(still)
            rows[0] += n_records(still)
            if int(still["step"][-1]) != entered:
                raise RestTooShort(f"the cycler left rest step {entered} before the chamber had settled "
                                   f"and soaked at {kind} {k}; lengthen rest_before_"
                                   f"{'charge' if kind == 'charge_rest' else 'discharge'}_s")

    summary = follow_program(ctx, program, stream, on_records=on_records, position=position)
    # Every record this program wrote, those read while the chamber was being set included.
    return {**summary, "stream": stream.stream, "records": rows[0]}


def _slug(value: float) -> str:
    return f"{value:g}".replace("-", "m").replace(".", "p")
