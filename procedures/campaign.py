"""Campaigns: many protocols at once on the cell positions of one station, on one clock.

Each run of a campaign (config/campaign.py) runs in its own thread through the run service, with
its position's instruments (instruments/positions.py) and its own RunClock on the station's
timeline: in simulation a discrete-event loop in which every run waits in virtual time and the
clock moves to the earliest wake-up, so runs of hundreds of hours go by in seconds; with real
instruments, real time.

Chambers are shared (procedures/chamber_arbiter.py): before each step a run's :class:`ChamberGate`
claims its chamber at the temperatures the step needs, and waits, visibly (a ``progress``
document with state "waiting" and the reason), while a run at another temperature holds it.
Waits happen only before a step, never inside one. What each run claimed, and when, is kept, and
:func:`band_audit` checks afterwards, against every run's chamber log, that while a run held its
chamber no reading after the chamber had settled left the run's band.

:class:`CampaignResult` holds each run's result and times (hours from the campaign's start):
``start_h`` is its first instrument command (after any wait for its first step), ``end_h`` its
end, ``waited_h`` its waits for the chamber, ``instrument_h`` = end − start − the waits after start.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from config.documents import RunStatus, StreamRole
from procedures.chamber_arbiter import ChamberArbiter, Claim
from procedures.service import RunResult, RunService, single_or_keyed
from procedures.steps import chamber_temperatures

log = logging.getLogger(__name__)
HOUR = 3600.0


class ChamberGate:
    """One run's access to its chamber (``arbiter`` None: a position on the bench)."""

    def __init__(self, arbiter: ChamberArbiter | None, clock, band_c: float, label) -> None:
        self.arbiter = arbiter
        self.clock = clock
        self.band_c = band_c
        self.label = label  # () -> how other runs' messages name this run ("run 7")
        self.run_t0: float | None = None
        self.first_command_at: float | None = None
        self.waits: list[tuple[float, float, str]] = []
        self.claims: list[list] = []  # [from, to (None while held), Claim]
        self._claim: Claim | None = None

    def before_step(self, ctx, index: int, step) -> None:
        if self.run_t0 is None:
            self.run_t0 = ctx.run_t0
        temperatures = chamber_temperatures(step)
        if self.arbiter is not None and temperatures is not None:
            if temperatures:
                self._claim_for(ctx, Claim(self.label(), temperatures, self.band_c))
            else:
                self._release()
        if self.first_command_at is None:
            self.first_command_at = self.clock.now()

    def _claim_for(self, ctx, claim: Claim) -> None:
        if self._claim is not None and self._claim.temperatures_c == claim.temperatures_c:
            return
        self._end_claim()
        if ctx.watch is not None:
            # The set point this run held is no longer its own: another run may take the chamber
            # elsewhere before this run's next step sets its own and watches that.
            ctx.watch.disarm()
        granted = self.arbiter.request(self, claim)
        self._wake(granted)
        if self not in granted:
            reason = self.arbiter.why_waiting(self)
            t0 = self.clock.now()
            ctx.report_progress(state="waiting", message=reason)
            try:
                self.clock.wait_for(lambda: self.arbiter.holds(self, claim))
            finally:  # an abort ends the wait too, and it still counts
                self.waits.append((t0, self.clock.now(), reason))
            ctx.report_progress(message=f"{self.arbiter.name} at {claim.text}: going on")
        self._claim = claim
        self.claims.append([self.clock.now(), None, claim])

    def _end_claim(self) -> None:
        if self._claim is not None:
            self.claims[-1][1] = self.clock.now()
            self._claim = None

    def _release(self) -> None:
        self._end_claim()
        if self.arbiter is not None:
            self._wake(self.arbiter.release(self))

    def _wake(self, granted) -> None:
        for gate in granted:
            if gate is not self:
                gate.clock.wake()

    def finish(self, ctx) -> None:
        if self.run_t0 is None:
            self.run_t0 = ctx.run_t0
        self._release()

    def waited_s(self, after: float | None = None) -> float:
        """Time spent waiting for the chamber (only what came after ``after``, if given)."""
        if after is None:
            return sum(t1 - t0 for t0, t1, _ in self.waits)
        return sum(t1 - max(t0, after) for t0, t1, _ in self.waits if t1 > after)


class ChamberLogCapture:
    """Subscriber keeping a run's chamber log (absolute clock times) for the band audit."""

    def __init__(self) -> None:
        self.t0 = None
        self._descriptors: set[str] = set()
        self.times: list[np.ndarray] = []
        self.temperatures: list[np.ndarray] = []
        self.setpoints: list[np.ndarray] = []

    def __call__(self, name: str, doc: dict) -> None:
        if name == "start":
            self.t0 = doc["time"]
        elif name == "descriptor" and (doc.get("metadata") or {}).get("role") == StreamRole.CHAMBER_LOG.value:
            self._descriptors.add(doc["descriptor_uid"])
        elif name == "event_page" and doc["descriptor_uid"] in self._descriptors:
            data = doc["data"]
            self.times.append(self.t0 + np.asarray(data["time_s"], float))
            self.temperatures.append(np.asarray(data["temperature_c"], float))
            self.setpoints.append(np.asarray(data["setpoint_c"], float))

    def arrays(self):
        if not self.times:
            return np.empty(0), np.empty(0), np.empty(0)
        return (np.concatenate(self.times), np.concatenate(self.temperatures),
                np.concatenate(self.setpoints))


def band_audit(log: ChamberLogCapture, claims: list[list], end: float, t0: float = 0.0) -> dict:
    """The readings of a run's chamber log while it held its chamber. Once the run's own step has
    set a temperature it claimed, every reading must show a set point it claimed (nobody else moved
    the chamber); and once the chamber has settled at a set point (the first reading within the
    band after the set point changed) every later reading must stay within set point ± band until
    the set point changes again (the run's own next temperature)."""
    t, temperature, setpoint = log.arrays()
    checked = outside = foreign = 0
    first_problem = None
    for t_from, t_to, claim in claims:
        sel = (t >= t_from) & (t <= (end if t_to is None else t_to)) & np.isfinite(temperature)
        own = False
        settled_sp = None
        for ti, temp, sp in zip(t[sel], temperature[sel], setpoint[sel]):
            claimed = any(abs(sp - want) < 0.05 for want in claim.temperatures_c)
            if not claimed:
                if own:
                    foreign += 1
                    first_problem = first_problem or (
                        f"set point {sp:g} °C at {(ti - t0) / HOUR:.2f} h while the run held {claim.text}")
                continue
            own = True
            if settled_sp != sp:
                if abs(temp - sp) > claim.band_c:
                    continue  # still settling at a new set point: the step waits, measures nothing
                settled_sp = sp
            checked += 1
            if abs(temp - sp) > claim.band_c:
                outside += 1
                first_problem = first_problem or (
                    f"{temp:g} °C at set point {sp:g} °C (band ±{claim.band_c:g}) at {(ti - t0) / HOUR:.2f} h")
    return {"readings_checked": checked, "outside_band": outside, "foreign_setpoint": foreign,
            "ok": outside == 0 and foreign == 0, "first_problem": first_problem}


@dataclass
class CampaignRunResult:
    run: object  # config.campaign.CampaignRun
    result: RunResult | None
    start_h: float | None
    end_h: float | None
    waited_h: float
    instrument_h: float | None
    waits: list = field(default_factory=list)
    band: dict | None = None

    @property
    def status(self) -> str:
        return self.result.status.value if self.result is not None else RunStatus.FAILED.value

    def to_json(self) -> dict:
        out = {"run_id": self.result.run_id if self.result else None, "protocol": self.run.name,
               "position": self.run.position, "channels": self.run.channels,
               "chamber": self.run.chamber, "status": self.status,
               "start_h": _round(self.start_h), "end_h": _round(self.end_h),
               "instrument_h": _round(self.instrument_h), "waited_h": _round(self.waited_h),
               "waits": [{"from_h": _round(a), "to_h": _round(b), "reason": r} for a, b, r in self.waits],
               "band": self.band,
               "analysis": single_or_keyed(self.result.analysis) if self.result else None}
        if self.result is not None and self.result.reason:
            out["reason"] = self.result.reason
        if self.result is not None and self.result.report:
            out["report"] = self.result.report
        return out


def _round(value):
    return None if value is None else round(float(value), 4)


@dataclass
class CampaignResult:
    name: str
    runs: list[CampaignRunResult]
    wall_s: float
    problems: list[str] = field(default_factory=list)
    summary: str | None = None
    clock_switches: int | None = None  # hand-overs between run threads (simulated timeline)

    @property
    def completed(self) -> bool:
        return all(r.status == RunStatus.COMPLETED.value for r in self.runs) and not self.problems

    @property
    def status(self) -> str:
        if self.completed:
            return RunStatus.COMPLETED.value
        statuses = {r.status for r in self.runs}
        for status in (RunStatus.UNSAFE, RunStatus.FAILED, RunStatus.ABORTED):
            if status.value in statuses:
                return status.value
        return RunStatus.FAILED.value

    @property
    def makespan_h(self) -> float:
        return max((r.end_h for r in self.runs if r.end_h is not None), default=0.0)

    @property
    def serial_h(self) -> float:
        return sum(r.instrument_h or 0.0 for r in self.runs)

    @property
    def band_ok(self) -> bool:
        return all(r.band is None or r.band["ok"] for r in self.runs)

    def to_json(self) -> dict:
        out = {"campaign": self.name, "status": self.status, "makespan_h": _round(self.makespan_h),
               "serial_h": _round(self.serial_h), "band_ok": self.band_ok,
               "wall_s": round(self.wall_s, 2), "runs": [r.to_json() for r in self.runs]}
        if self.problems:
            out["problems"] = self.problems
        if self.summary:
            out["summary"] = self.summary
        return out


class CampaignRunner:
    """Runs a loaded campaign on its station (see module doc).

    db: storage URL or path; report_dir: reports go to DIR/run_<id>/ and the summary to
    DIR/campaign_<name>.md (None: reports/…; False: none); subscribers: added to every run's
    document stream, called as ``subscriber(run, name, doc)`` with the CampaignRun.
    """

    def __init__(self, campaign, db=None, *, report_dir=None, subscribers=(), operator=None) -> None:
        self.campaign = campaign
        self.db = db
        self.report_dir = report_dir
        self.subscribers = list(subscribers)
        self.operator = operator
        self._services: list[RunService] = []
        self._stop_reason = ""
        self._lock = threading.Lock()
        out = Path(report_dir) if report_dir else None
        # One helper process writes the reports while the other runs go on.
        self._reporter = None if report_dir is False else RunService(
            campaign.station, db, report_dir=out)

    def abort(self, reason: str = "abort requested") -> None:
        with self._lock:
            self._stop_reason = reason
            for service in self._services:
                service.abort(reason)

    def run(self) -> CampaignResult:
        from instruments.positions import open_position_station
        wall_t0 = time.perf_counter()
        campaign = self.campaign
        station = open_position_station(campaign.station)
        if self._reporter is not None:
            self._reporter.start_report_processes()
        problems: list[str] = []
        try:
            try:
                with station.run_clock("station").participate():
                    station.open_shared([run.position for run in campaign.runs])
            except Exception as exc:  # noqa: BLE001 - no run starts; the campaign says why
                problems.append(f"the station's shared instruments did not open: "
                                f"{type(exc).__name__}: {exc}")
            t0 = station.timeline.now()
            arbiters = {name: ChamberArbiter(name) for name in campaign.station.chambers}
            remaining = {name: sum(1 for r in campaign.runs if r.chamber == name) for name in arbiters}
            jobs = [self._job(run, station, arbiters) for run in campaign.runs]
            if problems:
                for job in jobs:  # never to take part: out of the clock's schedule
                    station.timeline.leave(job["clock"].token)
            threads = [] if problems else [
                threading.Thread(target=self._run_one, args=(job, station, remaining, problems),
                                 name=f"campaign run {job['run'].index}", daemon=True)
                for job in jobs]
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)  # the main thread stays responsive to signals
        finally:
            with station.run_clock("station").participate():
                station.close()
        results = [self._result(job, t0) for job in jobs]
        result = CampaignResult(campaign.name, results, time.perf_counter() - wall_t0, problems,
                                clock_switches=getattr(station.timeline, "switches", None))
        self._finish_reports(jobs, result)
        return result

    def _job(self, run, station, arbiters) -> dict:
        clock = station.run_clock(f"run {run.index} ({run.name})")
        service = RunService(run.station, self.db, operator=self.operator, report_dir=False)
        with self._lock:
            self._services.append(service)
            if self._stop_reason:
                service.abort(self._stop_reason)
        arbiter = arbiters.get(run.chamber) if run.chamber else None

        def label() -> str:
            run_id = service.current_run_id
            return f"run {run_id}" if run_id is not None else f"{run.name} ({run.position})"
        gate = ChamberGate(arbiter, clock, run.protocol.protocol.watch.band_c, label)
        return {"run": run, "clock": clock, "service": service, "gate": gate,
                "log": ChamberLogCapture(), "result": None, "safe_problem": None}

    def _run_one(self, job: dict, station, remaining: dict, problems: list) -> None:
        run, clock = job["run"], job["clock"]
        subscribers = [job["log"], *[_bound(s, run) for s in self.subscribers]]
        with clock.participate():
            try:
                job["result"] = job["service"].run(
                    run.protocol, run.source, subscribers, instruments=station.position(run.position, clock),
                    gate=job["gate"])
            except Exception as exc:  # noqa: BLE001 - one run's failure must not stop the others
                log.exception("campaign run %s failed", run.name)
                problems.append(f"run {run.index} ({run.name}): {type(exc).__name__}: {exc}")
            job["end"] = clock.now()
            if self._reporter is not None and job["result"] is not None:
                with self._lock:
                    self._reporter.submit_report(job["result"])
            if run.chamber is not None:
                remaining[run.chamber] -= 1
                if remaining[run.chamber] == 0:
                    problem = station.chamber_safe(run.chamber)
                    if problem:
                        problems.append(problem)

    def _result(self, job: dict, t0: float) -> CampaignRunResult:
        gate, result = job["gate"], job["result"]
        start = gate.first_command_at
        end = (gate.run_t0 + result.duration_s) if (result is not None and gate.run_t0 is not None) \
            else job.get("end")
        waits = [((a - t0) / HOUR, (b - t0) / HOUR, reason) for a, b, reason in gate.waits]
        instrument_h = None
        if start is not None and end is not None:
            instrument_h = (end - start - gate.waited_s(after=start)) / HOUR
        band = None
        if job["run"].chamber is not None and gate.claims:
            band = band_audit(job["log"], gate.claims, end if end is not None else t0, t0)
        return CampaignRunResult(job["run"], result, None if start is None else (start - t0) / HOUR,
                                 None if end is None else (end - t0) / HOUR, gate.waited_s() / HOUR,
                                 instrument_h, waits, band)

    def _finish_reports(self, jobs: list[dict], result: CampaignResult) -> None:
        if self._reporter is None:
            return
        from procedures.campaign_summary import write_summary
        from procedures.service import PROJECT_ROOT
        self._reporter.finish_reports([job["result"] for job in jobs if job["result"] is not None])
        out = Path(self.report_dir) if self.report_dir else PROJECT_ROOT / "reports"
        result.summary = str(write_summary(result, out))


def _bound(subscriber, run):
    return lambda name, doc: subscriber(run, name, doc)


class CampaignProgressPrinter:
    """One line on stderr per run start, end, wait and resumption (a campaign subscriber)."""

    def __init__(self, stream=None) -> None:
        import sys
        self.out = stream or sys.stderr
        self.t0: float | None = None

    def __call__(self, run, name: str, doc: dict) -> None:
        if name == "start":
            self.t0 = doc["time"] if self.t0 is None else min(self.t0, doc["time"])
            self._say(doc["time"], f"{run.name} started on {run.position} ({', '.join(run.channels)}"
                      f"{', ' + run.chamber if run.chamber else ''})")
        elif name == "stop":
            self._say(doc["time"], f"{run.name} {doc['status']}"
                      + (f": {doc['reason']}" if doc.get("reason") else ""))
        elif name == "progress" and doc.get("state") == "waiting":
            self._say(doc["time"], f"{run.name} waits: {doc['message']}")
        elif name == "progress" and doc.get("message", "").endswith("going on"):
            self._say(doc["time"], f"{run.name}: {doc['message']}")

    def _say(self, t: float, text: str) -> None:
        hours = 0.0 if self.t0 is None else (t - self.t0) / HOUR
        print(f"[{hours:9.2f} h] {text}", file=self.out, flush=True)
