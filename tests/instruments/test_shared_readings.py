"""A chamber several runs log answers every run from one reading per tick, alarms included."""
from __future__ import annotations

from instruments.positions import SharedReadings
from instruments.sim.clock import VirtualClock


class CountingChamber:
    def __init__(self) -> None:
        self.queries: list[str] = []
        self.setpoint = 25.0

    @property
    def temperature_status(self):
        self.queries.append("TEMP?")
        return (25.0, self.setpoint, 150.0, -40.0)

    @property
    def alarms(self):
        self.queries.append("ALARM?")
        return ()

    def standby(self) -> None:
        self.queries.append("MODE, STANDBY")


def test_readings_are_shared_within_their_age_and_forgotten_after_a_command():
    clock = VirtualClock(start=0.0)
    chamber = CountingChamber()
    shared = SharedReadings(chamber, clock, max_age_s=1.0)
    for _ in range(3):  # three runs logging the chamber at the same tick
        assert shared.temperature_status[0] == 25.0
        assert shared.alarms == ()
    assert chamber.queries == ["TEMP?", "ALARM?"]
    clock.sleep(1.5)
    shared.alarms
    assert chamber.queries[-1] == "ALARM?" and len(chamber.queries) == 3
    shared.standby()  # a command: what was read before it no longer holds
    shared.temperature_status
    shared.alarms
    assert chamber.queries[-3:] == ["MODE, STANDBY", "TEMP?", "ALARM?"]
    shared.setpoint = 30.0  # so does a setting
    assert shared.temperature_status[1] == 30.0
