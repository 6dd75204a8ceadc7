"""Watched conditions (suspenders): the chamber must hold its set point while the run soaks and
measures there.

Once a step has settled the chamber at a set point, every chamber-log reading (ChamberLogger, a
clock task every ``chamber_log_interval_s``) is also judged here, with the chamber's alarms
(``ALARM?``). The run is *suspended* when the chamber

- leaves ``set point ± band_c`` (and counts as back only within ``band_c − hysteresis_c``, so
  noise at the edge does not toggle it),
- reports an alarm, or
- does not answer (after the driver's own retries).

While suspended, each reading checks whether the chamber answers again without alarm; the first
time it does, its mode is read and its set point and CONSTANT mode are sent again (an ESPEC comes
back from a power cut in STANDBY), once. The suspension ends when the air is back in the band. A
suspension still open ``recovery_timeout_s`` after it began is given up: the step raises
ConditionNotRecovered and the run ends failed, instruments safe, with the reason.

What a suspension does to the measurement it interrupts is the step kind's decision (the step
kinds' docstrings in procedures/steps.py): a soak is repeated after the chamber is stable again;
an EIS spectrum is stored, marked invalid and measured again after stabilization and soak; an LSV
or a DC polarization ends its step failed; cycling, which the cycler runs on its own, marks its
records out of band. Every suspension is a ``suspension`` document (config/documents.py), emitted
when it begins, when streams are invalidated and when it ends.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from config.documents import SuspensionState
from instruments.espec.errors import EspecCommunicationError
from instruments.espec.stability import wait_until_stable
from procedures.documents import new_uid

log = logging.getLogger(__name__)


class Suspended(Exception):
    """A watched condition was lost during a step that waits for it to come back."""


class ConditionNotRecovered(RuntimeError):
    """A watched condition did not come back within the protocol's ``recovery_timeout_s``."""


class OutOfBand(RuntimeError):
    """A measurement that cannot be repeated was caught with the chamber out of its band."""


class Band:
    """Inside/outside ``band_c`` of a set point with hysteresis: it leaves beyond ``band_c`` and
    comes back only within ``band_c − hysteresis_c``."""

    def __init__(self, band_c: float, hysteresis_c: float) -> None:
        if not 0 <= hysteresis_c < band_c:
            raise ValueError(f"hysteresis_c ({hysteresis_c}) must be >= 0 and below band_c ({band_c})")
        self.band_c = band_c
        self.hysteresis_c = hysteresis_c
        self.inside = True

    def update(self, deviation_c: float) -> bool:
        if self.inside and abs(deviation_c) > self.band_c:
            self.inside = False
        elif not self.inside and abs(deviation_c) <= self.band_c - self.hysteresis_c:
            self.inside = True
        return self.inside


@dataclass(frozen=True)
class SetPoint:
    """What holding a set point takes: the temperature, how stability is judged, the soak."""

    setpoint_c: float
    stabilization: object  # config.protocol.Stabilization
    soak_s: float


class ConditionWatch:
    """Judges the chamber readings of one run while a set point is held (see the module
    docstring). ``settings`` is the protocol's ChamberWatch."""

    def __init__(self, ctx, settings, interval_s: float) -> None:
        self.ctx = ctx
        self.settings = settings
        self.interval_s = interval_s
        self.band = Band(settings.band_c, settings.hysteresis_c)
        self.held: SetPoint | None = None
        self.open: dict | None = None  # the current suspension's document
        self.suspensions: list[dict] = []  # every suspension of the run, latest documents
        self.failure: str | None = None
        self._resent = False

    # --- what steps declare -------------------------------------------------------------------
    @property
    def armed(self) -> bool:
        return self.held is not None

    def arm(self, held: SetPoint) -> None:
        """The chamber has settled at ``held.setpoint_c``: watch it from now on."""
        self.held = held
        self.band = Band(self.settings.band_c, self.settings.hysteresis_c)

    def disarm(self) -> None:
        """A new set point is on its way (the chamber is ramping): nothing to judge until armed.
        A suspension still open (the step that held the old set point went on, as cycling does)
        ends here: the old set point no longer matters."""
        if self.open is not None:
            now = self.ctx.clock.now()
            self.open["action"] = "; ".join(filter(None, [self.open["action"],
                                                          "ended by the next set point"]))
            self.open.update(state=SuspensionState.RECOVERED.value, ended_at=now, time=now)
            self._emit()
            self.open = None
        self.held = None

    @property
    def count(self) -> int:
        """Suspensions so far: a measurement compares it before and after itself."""
        return len(self.suspensions)

    def out_of_band_windows(self) -> list[tuple[float, float]]:
        """Clock-time intervals the run was suspended (an open one runs to now)."""
        now = self.ctx.clock.now()
        return [(s["started_at"], s["ended_at"] if s["ended_at"] is not None else now)
                for s in self.suspensions]

    # --- readings (the chamber logger's clock task) ------------------------------------------
    def observe(self, now: float, temperature_c: float, alarms: tuple[int, ...] | None,
                error: str | None) -> None:
        """Judge one reading: ``temperature_c`` (NaN when the chamber did not answer, ``error``
        then says why) and the active alarm codes (None when not read)."""
        if self.held is None or self.failure is not None:
            return
        setpoint = self.held.setpoint_c
        reason = None
        if error is not None or not math.isfinite(temperature_c):
            reason = f"chamber unreachable ({error or 'no reading'})"
        elif alarms:
            reason = f"chamber alarm {', '.join(map(str, alarms))}"
        in_band = self.band.inside if reason else self.band.update(temperature_c - setpoint)
        if reason is None and not in_band:
            reason = (f"chamber at {temperature_c:.1f} °C, outside {setpoint:g} ± "
                      f"{self.settings.band_c:g} °C")
        if self.open is None:
            if reason is not None:
                self._begin(now, reason)
            return
        if now - self.open["started_at"] > self.settings.recovery_timeout_s:
            self._give_up(now)
            return
        if error is not None or alarms:
            return
        if not self._resent:
            self._resend()
        if self._resent and in_band:
            self._end(now)

    def concerned_by(self, temperature_c: float, alarms: tuple[int, ...] | None,
                     error: str | None) -> bool:
        """Whether ``observe`` of this reading could do anything: a set point is held and the
        reading is not quietly inside the band (or a suspension is open). It changes nothing, so
        another thread may ask (a shared chamber's monitor, deciding whether to wake the run)."""
        held = self.held
        if held is None or self.failure is not None:
            return False
        if self.open is not None or error is not None or alarms:
            return True
        return not abs(temperature_c - held.setpoint_c) <= self.band.band_c - self.band.hysteresis_c

    def lose(self, now: float, reason: str) -> None:
        """A step saw the condition lost itself (a command unanswered): suspend now."""
        if self.open is None:
            self._begin(now, reason)

    def _begin(self, now: float, reason: str) -> None:
        log.warning("run suspended: %s", reason)
        self._resent = False
        self.open = {"run_uid": self.ctx.run_uid, "suspension_uid": new_uid(),
                     "state": SuspensionState.SUSPENDED.value, "step_index": self.ctx.step_index,
                     "reason": reason, "setpoint_c": self.held.setpoint_c, "started_at": now,
                     "ended_at": None, "time": now, "invalidated": [], "action": ""}
        self.suspensions.append(self.open)
        self._emit()
        self.ctx.report_progress(state="suspended", message=reason)

    def _resend(self) -> None:
        """The chamber answers again: read its mode and send the set point and CONSTANT again."""
        chamber = self.ctx.station.chamber
        try:
            mode = chamber.mode
            self.ctx.station.set_chamber(self.held.setpoint_c)
        except Exception as exc:  # noqa: BLE001 - tried again at the next reading
            log.warning("re-sending the set point failed: %s", exc)
            return
        self._resent = True
        self.open["mode_found"] = mode
        log.info("chamber answered in %s; set point %g °C and CONSTANT sent again", mode,
                 self.held.setpoint_c)

    def _end(self, now: float) -> None:
        self.open.update(state=SuspensionState.RECOVERED.value, ended_at=now, time=now)
        self._emit()
        log.warning("run resumed after %.0f s: %s", now - self.open["started_at"], self.open["reason"])
        self.ctx.report_progress(message=f"resumed: chamber back at {self.held.setpoint_c:g} °C")
        self.open = None

    def _give_up(self, now: float) -> None:
        self.failure = (f"{self.open['reason']}; not recovered within "
                        f"{self.settings.recovery_timeout_s:g} s (protocol.watch.recovery_timeout_s)")
        self.open.update(state=SuspensionState.UNRECOVERED.value, ended_at=now, time=now,
                         action="run ended safe")
        self._emit()
        self.open = None

    def _emit(self) -> None:
        self.ctx.emit("suspension", dict(self.open))

    # --- what steps do about it ---------------------------------------------------------------
    @property
    def tripped(self) -> bool:
        return self.open is not None or self.failure is not None

    def check(self) -> None:
        """Raise Suspended while a suspension is open (ConditionNotRecovered once given up)."""
        if self.failure is not None:
            raise ConditionNotRecovered(self.failure)
        if self.open is not None:
            raise Suspended(self.open["reason"])

    def note(self, action: str, invalidated: str | None = None) -> None:
        """Say what the interrupted step did (and which stream it invalidated), in the latest
        suspension's document."""
        latest = self.open or (self.suspensions[-1] if self.suspensions else None)
        if latest is None:
            return
        latest["action"] = "; ".join(filter(None, [latest["action"], action]))
        if invalidated is not None:
            latest["invalidated"] = [*latest["invalidated"], invalidated]
        latest["time"] = self.ctx.clock.now()
        self.ctx.emit("suspension", dict(latest))

    def sleep(self, seconds: float) -> None:
        """Sleep, raising Suspended at the first reading that suspends the run."""
        clock = self.ctx.clock
        end = clock.now() + seconds
        self.check()
        while clock.now() < end:
            clock.wait_until(min(end, clock.now() + self.interval_s))
            self.check()

    def wait_recovered(self) -> None:
        """Wait (abortably) until the open suspension ends; ConditionNotRecovered if it is given up."""
        while self.open is not None and self.failure is None:
            self.ctx.clock.sleep(self.interval_s)
        if self.failure is not None:
            raise ConditionNotRecovered(self.failure)

    def soak(self) -> None:
        """The held set point's soak, watched: after a suspension the chamber is stabilized again
        and the soak starts over."""
        held = self.held
        while True:
            try:
                self.sleep(held.soak_s)
                return
            except Suspended:
                self.note("soak started over once the chamber was stable again")
                self.reestablish(soak=False)

    def reestablish(self, soak: bool = True) -> None:
        """After a suspension: wait for recovery, stabilize at the set point again, soak again."""
        held = self.held
        while True:
            self.wait_recovered()
            stab = held.stabilization
            try:
                wait_until_stable(self.ctx.station.chamber, held.setpoint_c, stab.tolerance_c,
                                  stab.dwell_s, stab.timeout_s, self.ctx.clock, poll_s=stab.poll_s)
            except Exception:
                if self.open is None and self.failure is None:
                    raise
                continue  # lost again while stabilizing: that suspension is waited for first
            if self.open is None:
                break
        if soak:
            self.soak()


def watch_of(ctx) -> ConditionWatch | None:
    """The run's watch if a set point is held now, else None."""
    watch = getattr(ctx, "watch", None)
    return watch if watch is not None and watch.armed else None


def hold_setpoint(ctx, setpoint_c: float, stabilization, soak_s: float) -> float:
    """Set the chamber, wait until it is stable, then soak (watched); returns the clock time it
    first settled."""
    watch = getattr(ctx, "watch", None)
    held = SetPoint(setpoint_c, stabilization, soak_s)
    if watch is not None:
        watch.disarm()
    try:
        ctx.station.set_chamber(setpoint_c)
        wait_until_stable(ctx.station.chamber, setpoint_c, stabilization.tolerance_c,
                          stabilization.dwell_s, stabilization.timeout_s, ctx.clock,
                          poll_s=stabilization.poll_s)
    except EspecCommunicationError as exc:
        if watch is None:
            raise
        # Silent while ramping (after the driver's retries): a suspension like any other; the
        # set point is sent again when the chamber answers, and the run goes on once it is there.
        watch.arm(held)
        watch.lose(ctx.clock.now(), f"chamber unreachable ({exc})")
        watch.reestablish(soak=False)
    settled = ctx.clock.now()
    if watch is None:
        ctx.clock.sleep(soak_s)
    else:
        watch.arm(held)
        watch.soak()
    return settled
