"""A campaign's schedule without instruments: each run's steps take their ``plan`` estimates
(procedures/estimates.py), and the runs share their chambers through the same ChamberArbiter the
running campaign uses, so the plan waits where the runs will (as far as the estimates hold)."""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from procedures.chamber_arbiter import ChamberArbiter, Claim
from procedures.steps import chamber_temperatures, expand_steps, plan_steps

HOUR = 3600.0


@dataclass(eq=False)
class PlannedRun:
    run: object  # config.campaign.CampaignRun
    steps: list
    durations: list
    index: int = 0
    start_s: float | None = None
    end_s: float | None = None
    claim: Claim | None = None
    waiting_since: float | None = None
    waiting_for: str = ""
    waits: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.run.name} ({self.run.position})"

    def to_json(self) -> dict:
        waited = sum(b - a for a, b, _ in self.waits)
        after_start = sum(b - max(a, self.start_s) for a, b, _ in self.waits if b > self.start_s)
        return {"protocol": self.run.name, "position": self.run.position, "channels": self.run.channels,
                "chamber": self.run.chamber, "start_h": round(self.start_s / HOUR, 3),
                "end_h": round(self.end_s / HOUR, 3),
                "instrument_h": round((self.end_s - self.start_s - after_start) / HOUR, 3),
                "waited_h": round(waited / HOUR, 3),
                "waits": [{"from_h": round(a / HOUR, 3), "to_h": round(b / HOUR, 3), "reason": r}
                          for a, b, r in self.waits]}


def plan_campaign(campaign) -> dict:
    """The schedule: per run its channels, chamber, start and end (hours from the campaign's
    start), its waits and why; and the campaign's makespan against the serial sum."""
    arbiters = {name: ChamberArbiter(name) for name in campaign.station.chambers}
    runs = []
    for run in campaign.runs:
        planned = plan_steps(run.protocol, run.station)
        runs.append(PlannedRun(run, list(expand_steps(run.protocol)),
                               [p.estimate.duration_s for p in planned]))
    queue: list = []
    order = itertools.count()
    for planned in runs:
        heapq.heappush(queue, (0.0, next(order), planned))

    def resume(keys, t: float) -> None:
        for key in keys:
            if key.waiting_since is not None:
                key.waits.append((key.waiting_since, t, key.waiting_for))
                key.waiting_since = None
                heapq.heappush(queue, (t, next(order), key))

    while queue:
        t, _, planned = heapq.heappop(queue)
        arbiter = arbiters.get(planned.run.chamber) if planned.run.chamber else None
        if planned.index == len(planned.steps):
            planned.end_s = t
            if arbiter is not None:
                resume(arbiter.release(planned), t)
            continue
        step = planned.steps[planned.index]
        temperatures = chamber_temperatures(step)
        if arbiter is not None and temperatures is not None:
            if not temperatures:
                planned.claim = None
                resume(arbiter.release(planned), t)
            elif planned.claim is None or planned.claim.temperatures_c != temperatures:
                claim = Claim(planned.label, temperatures, planned.run.protocol.protocol.watch.band_c)
                planned.claim = claim
                granted = arbiter.request(planned, claim)
                resume([k for k in granted if k is not planned], t)
                if planned not in granted:
                    planned.waiting_since, planned.waiting_for = t, arbiter.why_waiting(planned)
                    continue  # a release pushes it again
        if planned.start_s is None:
            planned.start_s = t
        planned.index += 1
        heapq.heappush(queue, (t + planned.durations[planned.index - 1], next(order), planned))
    entries = [p.to_json() for p in runs]
    return {"campaign": campaign.name,
            "makespan_h": round(max(e["end_h"] for e in entries), 3),
            "serial_h": round(sum(e["instrument_h"] for e in entries), 3),
            "runs": entries}
