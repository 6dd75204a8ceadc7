"""Resume after a crash: continue a stored run where it stopped, with the same run id and streams.

What a resumed run starts from, all of it in storage (storage/checkpoints.py):

- the run row: its protocol and the station snapshot (a simulated run resumes on the simulated
  station, with the station file it ran with);
- the checkpoint, committed with the rows it covers: the step index reached and that step's
  position; and for a simulated run the generation of the simulated station's state saved with
  that transaction (instruments/sim/persist.py), which is loaded, so the simulated instruments are
  where the committed data say, their unread points still in their buffers;
- the stored points: the analyzers are fed them first (the analysis covers the whole run), the
  cycler's stream goes on after its last stored record number, every stream after its last seq.

Before the interrupted step is taken up again, the potentiostat channel is re-attached
(procedures/reattach.py): the rows it still holds of that step's measurement are read into the
step's stream, what its finite memory lost while no process read it is stored as a gap, and the
channel is stopped.

Each step kind says how it is taken up again (procedures/steps.py, ``StepKind.resume``):

- a chamber step, a PEIS spectrum (with the soak before it: a temperature_eis_series resumes at the
  temperature whose spectrum was not complete) and a hold are done again; a partial spectrum is
  kept, marked ``incomplete`` and left out of the analysis;
- a DC polarization goes on at the voltage level it was at (held again from its start);
- cycling and the cold discharge re-attach to the cycler program, which ran on (no restart), and
  the cold discharge keeps which chamber actions and cell spectra are done;
- an LSV cannot be resumed mid-sweep (the sweep changes the sample: a second one would measure
  another sample); the step ends ``failed`` with that reason and the run goes on with the next.

A run that was aborted (Ctrl+C) resumes the same way, except that the abort stopped the cycler: a
cycling step cannot re-attach then, and ends failed with that reason. A completed run is not run
again; a failed or unsafe run is refused (its failure needs a person).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from config.documents import RunStatus, StreamRole
from config.errors import ConfigError

log = logging.getLogger(__name__)

EIS_ROLES = (StreamRole.EIS_SPECTRUM.value, StreamRole.CELL_EIS.value)
REPLAY_PAGE_ROWS = 100_000
"""Stored rows per replayed event page (the analyzers' memory is what bounds a long run)."""
LSV_NOT_RESUMABLE = ("an LSV sweep cannot be resumed mid-sweep: it changes the sample (oxidation or "
                     "reduction), so a second sweep would measure another sample")
ABORTED_CYCLER = ("the run's abort stopped the cycler program; a stopped Landt program cannot be "
                  "continued from cellbench")


class ResumeError(Exception):
    """The run cannot be resumed: says which and why (an expected failure: exit code 2)."""


@dataclass
class ResumePoint:
    """What Runner.run(resume=...) needs to continue a stored run."""

    run_id: int
    run_uid: str
    clock_t0: float
    start_index: int
    position: dict | None
    stored_streams: dict
    close_steps: list = field(default_factory=list)
    """(step index, status, summary) of steps the crash left running: step_stop documents."""
    replay: Callable = lambda emit: None
    """Feeds the stored data to an emit function (the analyzers' stream)."""
    reattach: Callable = lambda ctx: None
    """Reads what the potentiostat channel still holds of the interrupted step into its stream
    (procedures/reattach.py), before the step is taken up again."""


# --- where the simulated station's state lives ---------------------------------------------------
def state_root(db) -> Path:
    """The folder of the simulated station's saved states: beside a SQLite file
    (``X.sqlite.state/``), else ``data/state/`` of the working directory."""
    from storage.engine import engine_for, is_sqlite_file
    engine = engine_for(db)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and is_sqlite_file(database):
        path = Path(database)
        return path.with_name(path.name + ".state")
    return Path("data") / "state"


def state_file(root: Path, run_id: int, generation: int) -> Path:
    return root / f"run_{run_id}" / f"state-{generation:09d}.pkl"


class SimStateSaver:
    """The storage writer's ``on_transaction`` for a simulated station: saves the station's state
    for each transaction's generation, before it commits, and removes the states older than the
    last committed one (a transaction that does not commit leaves that one the newest valid)."""

    def __init__(self, db, instruments) -> None:
        self.root = state_root(db)
        self.instruments = instruments

    def discard(self, run_id: int) -> None:
        """Remove the run's saved states and the simulated Landt's export: a run that ended
        completed, failed or unsafe is never resumed (an aborted one may be)."""
        import shutil
        shutil.rmtree(self.root / f"run_{run_id}", ignore_errors=True)
        try:
            self.root.rmdir()  # only if no other run's state is left
        except OSError:
            pass

    def __call__(self, run_id: int, generation: int) -> None:
        path = state_file(self.root, run_id, generation)
        self.instruments.save_state(path)
        for old in path.parent.glob("state-*.pkl"):
            if int(old.stem.split("-")[1]) < generation - 1:
                old.unlink(missing_ok=True)


# --- planning the resume ---------------------------------------------------------------------------
def plan_resume(db, run: dict, protocol, checkpoint: dict | None) -> ResumePoint:
    """Where and how run ``run`` (storage.readers.get_run) goes on."""
    from procedures.reattach import reattach_potentiostat
    from procedures.steps import expand_steps, kind_of
    from storage.checkpoints import run_streams
    from storage.readers import column_max
    run_id = run["run_id"]
    expanded = list(expand_steps(protocol))
    stored = {s["name"]: s for s in run_streams(db, run_id)}
    for s in stored.values():
        if "record" in s["columns"] and s["n_points"]:
            s["last_record"] = int(column_max(db, run_id, s["name"], "record"))
    clock_t0 = checkpoint["clock_t0"] if checkpoint else 0.0
    k = checkpoint["step_index"] if checkpoint else -1
    position = dict(checkpoint["position"]) if checkpoint else {}
    rows = [s for s in run["steps"] if s["step_index"] == k]
    point = ResumePoint(run_id=run_id, run_uid=run["uid"], clock_t0=clock_t0, start_index=0,
                        position=None, stored_streams=stored)
    point.replay = lambda emit: replay_stored(db, run, stored, incomplete_streams(point), emit)
    point.reattach = lambda ctx: reattach_potentiostat(ctx, point, k, None, db)
    if k < 0 or not rows:
        return point
    status = rows[-1]["status"]
    if status == "completed":
        point.start_index = k + 1
        return point
    step = expanded[k]
    point.reattach = lambda ctx: reattach_potentiostat(ctx, point, k, step, db)
    policy = kind_of(step).resume
    of_step = [name for name, s in stored.items() if s["step_index"] == k]
    aborted = run["status"] == RunStatus.ABORTED.value
    if policy == "continue" and aborted and position.get("program_started"):
        policy, reason = "fail", ABORTED_CYCLER
    elif policy == "fail":
        reason = LSV_NOT_RESUMABLE
    if policy == "continue":
        done = {e.get("stream") for e in position.get("eis", [])}
        incomplete = [n for n in of_step if stored[n]["metadata"].get("role") in EIS_ROLES
                      and n not in done]
        point.close_steps.append((k, "interrupted", {"incomplete_streams": incomplete}))
        point.start_index, point.position = k, position
    elif policy == "fail":
        point.close_steps.append((k, "failed", {"reason": reason, "incomplete_streams": of_step}))
        point.start_index = k + 1
    else:
        point.close_steps.append((k, "interrupted", {"incomplete_streams": of_step}))
        point.start_index = k
        if policy == "redo_after_soak" and k > 0 and expanded[k - 1].kind == "chamber":
            point.start_index = k - 1
    return point


def incomplete_streams(point: ResumePoint) -> set[str]:
    return {n for _, _, summary in point.close_steps for n in summary.get("incomplete_streams", [])}


def replay_stored(db, run: dict, stored: dict, incomplete: set, emit) -> None:
    """Emit the run's stored streams (descriptor, then pages) and its steps' ``step_stop``
    documents to ``emit``: what the analyzers of the resumed run would have seen."""
    from storage.readers import read_stream
    for name, s in stored.items():
        metadata = dict(s["metadata"])
        if name in incomplete:
            metadata["incomplete"] = True
        emit("descriptor", {"run_uid": run["uid"], "descriptor_uid": s["descriptor_uid"],
                            "stream": name, "step_index": s["step_index"],
                            "columns": s["columns"], "metadata": metadata})
        if not s["n_points"] or metadata.get("incomplete"):
            continue
        frame = read_stream(db, run["run_id"], name)
        for start in range(0, len(frame), REPLAY_PAGE_ROWS):
            page = frame.iloc[start:start + REPLAY_PAGE_ROWS]
            emit("event_page", {"descriptor_uid": s["descriptor_uid"], "seq_start": start,
                                "data": {c: page[c].to_numpy() for c in s["columns"]}})
    for step in run["steps"]:
        if step["status"] != "running":
            emit("step_stop", {"run_uid": run["uid"], "step_index": step["step_index"],
                               "status": step["status"], "time": 0.0,
                               "summary": step["summary"] or {}})


# --- the resume itself ---------------------------------------------------------------------------
def stored_station(run: dict):
    """The station configuration the run was started with."""
    from config.station import StationConfig
    from pydantic import ValidationError
    station = run.get("station") or {}
    if station.get("position") is not None:
        raise ResumeError(f"run {run['run_id']} ran in a campaign (position "
                          f"{station['position']!r}); campaign runs cannot be resumed")
    snapshot = station.get("config")
    if not snapshot:
        raise ResumeError(f"run {run['run_id']} has no station snapshot: it cannot be resumed")
    try:
        return StationConfig.model_validate(snapshot)
    except ValidationError as exc:
        raise ResumeError(f"run {run['run_id']}: its stored station is not valid for this "
                          f"cellbench: {exc.errors()[0]['msg']}") from None


def stored_protocol(run: dict, station_cfg):
    from config.protocol import Protocol, station_problems
    from pydantic import ValidationError
    try:
        protocol = Protocol.model_validate(run["protocol"])
    except ValidationError as exc:
        raise ResumeError(f"run {run['run_id']}: its stored protocol is not valid for this "
                          f"cellbench: {exc.errors()[0]['msg']}") from None
    problems = station_problems(protocol, station_cfg)
    if problems:
        raise ConfigError(f"run {run['run_id']} protocol", problems)
    return protocol


def check_resumable(run: dict) -> str:
    """The run's effective status; ResumeError when it cannot be resumed."""
    status = run["status"]  # the effective status (storage/liveness.py)
    if status == RunStatus.RUNNING.value:
        raise ResumeError(f"run {run['run_id']} is still running (process {run.get('pid')} on "
                          f"{run.get('host') or 'another host'}); stop it first")
    if status in (RunStatus.FAILED.value, RunStatus.UNSAFE.value):
        raise ResumeError(f"run {run['run_id']} ended {status}"
                          + (f" ({run['reason']})" if run.get("reason") else "")
                          + ": a failed run is not resumed; look at the station and start a new run")
    return status


def open_resumed_station(db, run: dict, checkpoint: dict | None, station_cfg):
    """The instruments of a simulated run restored from the state of the committed generation;
    None for a real station (its instruments are opened as for any run)."""
    if not run.get("simulated"):
        return None
    from instruments.station import open_instruments, saved_state_error
    if checkpoint is None:
        raise ResumeError(f"run {run['run_id']} has no checkpoint (it was stored by a cellbench "
                          "without resume): it cannot be resumed")
    path = state_file(state_root(db), run["run_id"], checkpoint["generation"])
    try:
        return open_instruments(station_cfg, restore_from=path)
    except saved_state_error() as exc:
        raise ResumeError(f"run {run['run_id']}: {exc}") from None
