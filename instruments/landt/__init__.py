"""Landt / LANHE cycler: export readers, the export follower, the step table, the driver and its
simulator. The Landt software has no remote interface; see driver.py for how a run is started."""
from instruments.landt.driver import LandtCycler, LandtStartTimeout
from instruments.landt.exports import ExportFormatError, read_export
from instruments.landt.follower import ExportFollower, ExportRotatedError
from instruments.landt.simulator import SimulatedLandt
from instruments.landt.steptable import StepTable, render_step_table

__all__ = ["LandtCycler", "LandtStartTimeout", "ExportFormatError", "read_export", "ExportFollower",
           "ExportRotatedError", "SimulatedLandt", "StepTable", "render_step_table"]
