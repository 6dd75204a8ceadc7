"""A chamber shared by the runs of one station: who holds it at which set point, who waits.

A run claims its chamber before each step that needs it (the step-kind registry says at which
temperatures, ``procedures.steps.chamber_temperatures``). Claims at one and the same temperature
share the chamber; a claim at another temperature, or one that moves the chamber itself (several
temperatures in one step), waits until the chamber is free. Waiting is first come, first served:
a claim that could share the present set point still queues behind one that came earlier, so a
run that needs another temperature is never starved by a stream of runs at the present one.

A run keeps its claim across the steps that need no temperature of their own (the EIS after a
chamber step) and gives it up when it claims another temperature, when it reaches a pause that
needs no chamber (storage) or when it ends. The same arbiter serves the running campaign and
its plan (procedures/campaign_plan.py), so the plan waits where the run will.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    """What one run needs of a chamber for a step: ``temperatures_c`` (one: shareable; several:
    the chamber to itself) within ``band_c``."""

    run: str
    temperatures_c: tuple
    band_c: float

    @property
    def exclusive(self) -> bool:
        return len(self.temperatures_c) > 1

    @property
    def text(self) -> str:
        return "/".join(f"{t:g}" for t in self.temperatures_c) + " °C"


class ChamberArbiter:
    def __init__(self, name: str) -> None:
        self.name = name
        self.holders: dict[object, Claim] = {}
        self.queue: deque[tuple[object, Claim]] = deque()

    def _compatible(self, claim: Claim) -> bool:
        if not self.holders:
            return True
        if claim.exclusive:
            return False
        return all(not held.exclusive and held.temperatures_c == claim.temperatures_c
                   for held in self.holders.values())

    def holds(self, key, claim: Claim) -> bool:
        return self.holders.get(key) == claim

    def request(self, key, claim: Claim) -> list:
        """Claim the chamber for ``key``. Returns the keys granted by this call: ``key`` itself
        when it may go on now (otherwise it queues, once, until a ``release`` grants it), and any
        waiting key that the claim ``key`` gave up to ask for this one lets in."""
        if self.holds(key, claim):
            return [key]
        granted = self.release(key) if key in self.holders else []
        if any(k == key for k, _ in self.queue):
            return granted
        if not self.queue and self._compatible(claim):
            self.holders[key] = claim
            return [*granted, key]
        self.queue.append((key, claim))
        return granted

    def release(self, key) -> list:
        """``key`` gives up its claim (or leaves the queue); returns the keys granted by it."""
        self.holders.pop(key, None)
        self.queue = deque((k, c) for k, c in self.queue if k != key)
        return self._grant()

    def _grant(self) -> list:
        granted = []
        while self.queue and self._compatible(self.queue[0][1]):
            key, claim = self.queue.popleft()
            self.holders[key] = claim
            granted.append(key)
        return granted

    def why_waiting(self, key) -> str:
        """Why ``key`` waits: who holds the chamber at what, or, when it could share with them,
        who asked before it."""
        position = next((i for i, (k, _) in enumerate(self.queue) if k == key), None)
        if position is None:
            return f"{self.name} not waited for"
        if self.holders and not self._compatible(self.queue[position][1]):
            held = {}
            for claim in self.holders.values():
                held.setdefault(claim.text, []).append(claim.run)
            return f"{self.name} held " + "; ".join(
                f"at {text} by {', '.join(runs)}" for text, runs in held.items())
        first = self.queue[0][1]
        return f"{self.name} promised first to {first.run} at {first.text}"
