"""The Landt cycler channel: started by the operator, followed through its text export.

LANDdt and LANHE have no public remote-control interface (research/landt_espec.md §2.1), so
``start()`` shows the operator the step table to load (``on_prompt``) and then waits, through the
clock, until records appear in the export file the software was told to write. From then on the
channel's state is inferred from that file: no records yet -> idle (waiting), records growing ->
running, no new record for ``finished_after_s`` while the last step of the table runs ->
finished, no new record for ``stalled_after_s`` elsewhere -> fault (the software or the channel
stopped mid-program). ``stop()`` asks the operator to stop the channel.
"""
from __future__ import annotations

from pathlib import Path


from config.cycling import CellSection, CyclingProgram, check_program_for_cell
from config.errors import ConfigError
from instruments.cycler import (CyclerCapabilities, CyclerChannel, CyclerError, CyclerState, Prompt,
                                concat_columns, n_records)
from instruments.landt.follower import ExportFollower, ExportRotatedError, read_retrying
from instruments.landt.steptable import StepTable, render_step_table


class LandtStartTimeout(CyclerError):
    """No record appeared in the export within the start timeout."""


class LandtCycler(CyclerChannel):
    """One Landt channel followed through ``export_path`` (tab-separated text export).

    clock: instruments.clock.Clock; poll_interval_s: how often start() looks for the first
    records, s; start_timeout_s: how long start() waits for them, s; finished_after_s and
    stalled_after_s: quiet times that mean finished (at the last step) or stalled (elsewhere), s;
    default_units: units of export headers without one (see exports.DEFAULT_UNITS).
    """

    capabilities = CyclerCapabilities(remote_start=False, live_data=True, pause=False)

    def __init__(self, export_path, clock, channel: int = 1, poll_interval_s: float = 10.0,
                 start_timeout_s: float = 3600.0, finished_after_s: float = 900.0,
                 stalled_after_s: float = 4 * 3600.0, default_units: dict | None = None) -> None:
        if poll_interval_s <= 0 or start_timeout_s <= 0 or finished_after_s <= 0 or stalled_after_s <= 0:
            raise ValueError("Landt cycler: poll_interval_s, start_timeout_s, finished_after_s and "
                             "stalled_after_s must be > 0")
        self.export_path = Path(export_path)
        self.clock = clock
        self.channel = channel
        self.poll_interval_s = poll_interval_s
        self.start_timeout_s = start_timeout_s
        self.finished_after_s = finished_after_s
        self.stalled_after_s = stalled_after_s
        self.default_units = default_units
        self.name = f"Landt channel {channel} ({self.export_path})"
        self.step_table: StepTable | None = None
        self.fault_reason = ""
        self.retried_reads = 0
        self._follower: ExportFollower | None = None
        self._buffer: list[dict] = []
        self._on_prompt: Prompt | None = None
        self._last_growth_s: float | None = None
        self._last_step: int | None = None
        self._stopped = False
        self._state = CyclerState.IDLE

    def start(self, program: CyclingProgram, cell: CellSection, sample_id: str,
              on_prompt: Prompt | None = None) -> None:
        """Show the step table through ``on_prompt`` and wait until the export has records.

        Raises ConfigError for a program that does not fit the cell, CyclerError when the export
        already holds records of an earlier test, LandtStartTimeout after ``start_timeout_s``.
        """
        if self._state in (CyclerState.RUNNING, CyclerState.PAUSED):
            raise CyclerError(f"{self.name}: start refused, a program is running")
        problems = check_program_for_cell(program, cell)
        if problems:
            raise ConfigError(f"{self.name}: program", problems)
        follower = ExportFollower(self.export_path, default_units=self.default_units)
        if follower.has_data():
            raise CyclerError(f"{self.name}: start refused, the export already holds records of an "
                              "earlier test; set the Landt export to a new file")
        self._follower = follower
        self._buffer = []
        self._last_growth_s = None
        self._last_step = None
        self._stopped = False
        self.fault_reason = ""
        self._on_prompt = on_prompt
        self.step_table = render_step_table(program, cell, sample_id=sample_id, channel=self.channel)
        if on_prompt is not None:
            on_prompt(self.step_table.text()
                      + f"\nLoad this program on channel {self.channel}, set the export to "
                        f"{self.export_path}, and start the test.\n")
        deadline = self.clock.now() + self.start_timeout_s
        # Records in the file, not records returned: a follower may hold back leading rests.
        while not follower.has_data():
            remaining = deadline - self.clock.now()
            if remaining <= 0:
                self._follower = None
                raise LandtStartTimeout(f"{self.name}: no records appeared in {self.export_path} within "
                                        f"{self.start_timeout_s:g} s of the start request")
            self.clock.sleep(min(self.poll_interval_s, remaining))
        self._poll()
        self._last_growth_s = self.clock.now()
        self._state = CyclerState.RUNNING

    def attach(self, program: CyclingProgram, cell: CellSection, sample_id: str) -> None:
        """Follow the test the Landt has kept running since cellbench stopped: its export is read
        again from the start (the caller skips the records it has, by record number)."""
        if self._state in (CyclerState.RUNNING, CyclerState.PAUSED):
            raise CyclerError(f"{self.name}: attach refused, already following a program")
        self._follower = ExportFollower(self.export_path, default_units=self.default_units)
        if not self._follower.has_data():
            raise CyclerError(f"{self.name}: attach refused, {self.export_path} holds no records: "
                              "is the test still running, and exported to this file?")
        self._buffer = []
        self._last_step = None
        self._stopped = False
        self.fault_reason = ""
        self.step_table = render_step_table(program, cell, sample_id=sample_id, channel=self.channel)
        self._poll()
        self._last_growth_s = self.clock.now()
        self._state = CyclerState.RUNNING

    def _poll(self, include_partial: bool = False) -> int:
        """Read what the export gained into the buffer; returns the number of new records."""
        if self._follower is None:
            return 0
        records = read_retrying(self._follower, self.clock, include_partial, on_retry=self._count_retry)
        n = n_records(records)
        if n:
            self._buffer.append(records)
            self._last_growth_s = self.clock.now()
            self._last_step = int(records["step"][-1])
        return n

    def _count_retry(self, exc) -> None:
        self.retried_reads += 1

    def state(self) -> CyclerState:
        if self._follower is None or self._state in (CyclerState.FINISHED, CyclerState.FAULT):
            return self._state
        try:
            self._poll()
        except ExportRotatedError as exc:
            self.fault_reason = str(exc)
            self._state = CyclerState.FAULT
            return self._state
        if self._stopped:
            self._poll(include_partial=True)
            self._state = CyclerState.FINISHED
        elif self._last_growth_s is not None:
            quiet_s = self.clock.now() - self._last_growth_s
            if quiet_s > self.finished_after_s and self._last_step == self.step_table.last_work_step:
                self._poll(include_partial=True)
                self._state = CyclerState.FINISHED
            elif quiet_s > self.stalled_after_s:
                self.fault_reason = (f"{self.name}: no new record for {quiet_s:.0f} s at step "
                                     f"{self._last_step} (the program ends at step "
                                     f"{self.step_table.last_work_step})")
                self._state = CyclerState.FAULT
        return self._state

    def stop(self) -> None:
        """Ask the operator to stop the channel (the Landt software cannot be stopped remotely)."""
        if self._on_prompt is not None:
            self._on_prompt(f"Stop channel {self.channel} in the Landt software now.")
        self._stopped = True

    def read_new_columns(self) -> dict:
        if self._follower is not None and self._state not in (CyclerState.FINISHED, CyclerState.FAULT):
            self._poll()
        records = concat_columns(self._buffer)
        self._buffer = []
        return records
