"""One poller per shared chamber: every run in it is served from one reading per tick, and a run
that sleeps is not woken for its log unless the reading matters to it now."""
from __future__ import annotations

import threading

from instruments.chamber_monitor import ChamberMonitor
from instruments.shared_clock import RunClock, SharedVirtualTimeline


class CountingChamber:
    """Answers like the driver; counts the commands each reading costs."""

    def __init__(self, timeline) -> None:
        self.timeline = timeline
        self.queries: list[tuple[str, float]] = []
        self.alarm_codes: tuple[int, ...] = ()
        self.silent = False

    @property
    def temperature_status(self):
        self.queries.append(("TEMP?", self.timeline.now()))
        if self.silent:
            raise TimeoutError("no reply")
        return (25.0 + self.timeline.now() / 1000.0, 25.0, 150.0, -40.0)

    @property
    def alarms(self):
        self.queries.append(("ALARM?", self.timeline.now()))

        class Alarms:
            codes = self.alarm_codes
        return Alarms()


def run_all(*targets) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
        assert not t.is_alive(), "a participant did not finish"


def test_runs_logging_one_chamber_are_served_by_one_reading_per_tick():
    timeline = SharedVirtualTimeline(start=0.0)
    chamber = CountingChamber(timeline)
    monitor = ChamberMonitor(chamber, timeline, "a")
    got: dict[str, list] = {"x": [], "y": [], "z": []}
    clocks = {name: RunClock(timeline, name) for name in got}

    def run(name: str, interval_s: float, alarms: bool, duration_s: float):
        def body():
            clock = clocks[name]
            with clock.participate():
                sub = monitor.subscribe(interval_s, got[name].append, wants_alarms=lambda: alarms)
                clock.sleep(duration_s)
                sub.cancel()
        return body

    run_all(run("x", 300.0, True, 3000.0), run("y", 300.0, False, 3000.0), run("z", 60.0, False, 1200.0))
    times = {name: [r.time for r in readings] for name, readings in got.items()}
    # the first reading at the start, then on the grid of the interval: the same instants for x and y
    assert times["x"] == times["y"] == [0.0] + [300.0 * k for k in range(1, 11)]
    assert times["z"] == [60.0 * k for k in range(0, 21)]
    assert all(rx is ry and rx.alarms == () for rx, ry in zip(got["x"], got["y"]))  # one reading
    assert all(r.alarms is None for r in got["z"][1::5])  # z alone at 60 s, 120 s, …: no alarm asked
    temps = [q for q in chamber.queries if q[0] == "TEMP?"]
    assert len(temps) == len(set(t for _, t in temps)) == 21 + 6  # one TEMP? per instant, not per run
    assert [t for q, t in chamber.queries if q == "ALARM?"] == times["x"]  # only x asks for alarms
    assert [r.temperature_c for r in got["z"][:2]] == [25.0, 25.06]
    thread = monitor._thread
    if thread is not None:
        thread.join(10)
    assert monitor._thread is None  # no subscriber left: the monitor left the timeline


def test_a_failed_reading_is_delivered_as_such():
    timeline = SharedVirtualTimeline(start=0.0)
    chamber = CountingChamber(timeline)
    chamber.silent = True
    monitor = ChamberMonitor(chamber, timeline, "a")
    got = []
    clock = RunClock(timeline, "run")

    def body():
        with clock.participate():
            sub = monitor.subscribe(10.0, got.append, wants_alarms=lambda: True)
            clock.sleep(15.0)
            sub.cancel()
    run_all(body)
    assert [r.time for r in got] == [0.0, 10.0]
    assert all(r.error == "no reply" and r.temperature_c != r.temperature_c for r in got)


def test_a_nudged_run_takes_its_readings_at_once_and_sleeps_on():
    """A reading that matters (an alarm) wakes the run's thread for its hooks without cutting its
    sleep short; the other readings wait until the run wakes on its own."""
    timeline = SharedVirtualTimeline(start=0.0)
    chamber = CountingChamber(timeline)
    monitor = ChamberMonitor(chamber, timeline, "a")
    clock = RunClock(timeline, "run")
    inbox, taken = [], []

    def deliver(reading) -> None:
        inbox.append(reading)
        if reading.alarms:
            clock.nudge()

    def take() -> None:
        taken.append((clock.now(), [r.time for r in inbox]))
        inbox.clear()

    other = RunClock(timeline, "fault")  # made before the threads start, as all participants

    def alarm_at_250():
        with other.participate():
            other.sleep(250.0)
            chamber.alarm_codes = (21,)

    def body():
        with clock.participate():
            sub = monitor.subscribe(100.0, deliver, wants_alarms=lambda: True)
            clock.after_wait(take)
            clock.sleep(1000.0)
            assert clock.now() == 1000.0
            sub.cancel()
    run_all(body, alarm_at_250)
    # the readings at 0, 100, 200 wait for the alarm's nudge at 300; then each alarm reading nudges
    assert taken[0] == (300.0, [0.0, 100.0, 200.0, 300.0])
    assert [t for t, _ in taken[:8]] == [300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0]


def test_wake_still_ends_a_wait_early():
    timeline = SharedVirtualTimeline(start=0.0)
    sleeper, waker = RunClock(timeline, "sleeper"), RunClock(timeline, "waker")
    ended = []

    def sleep():
        with sleeper.participate():
            sleeper.sleep(1000.0)
            ended.append(sleeper.now())

    def wake():
        with waker.participate():
            waker.sleep(40.0)
            sleeper.wake()
    run_all(sleep, wake)
    assert ended == [40.0]


def test_a_run_waiting_for_its_chamber_is_not_read_for():
    """Paused (its run waits for the chamber in a campaign), a subscriber costs no reading; resumed,
    it is read at once if a reading fell due meanwhile."""
    timeline = SharedVirtualTimeline(start=0.0)
    chamber = CountingChamber(timeline)
    monitor = ChamberMonitor(chamber, timeline, "a")
    clock = RunClock(timeline, "run")
    got = []

    def body():
        with clock.participate():
            sub = monitor.subscribe(10.0, got.append)
            clock.sleep(25.0)
            sub.pause()
            clock.sleep(1000.0)
            sub.resume()
            clock.sleep(24.0)
            sub.cancel()
    run_all(body)
    assert [r.time for r in got] == [0.0, 10.0, 20.0, 1025.0, 1030.0, 1040.0]
    assert len(chamber.queries) == 6
