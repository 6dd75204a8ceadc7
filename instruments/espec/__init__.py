"""ESPEC temperature chamber: driver, simulator, connection factory and stability wait."""
from instruments.espec.adapters import SimulatorAdapter, open_chamber
from instruments.espec.driver import (Alarms, ChamberType, EspecChamber, Monitor,
                                      TemperatureStatus)
from instruments.espec.errors import EspecCommunicationError, EspecError, EspecRefused
from instruments.espec.simulator import EspecSimulator, SimulatorServer, serve_tcp
from instruments.espec.stability import ChamberNotStable, Reading, wait_until_stable

__all__ = ["Alarms", "ChamberNotStable", "ChamberType", "EspecChamber", "EspecCommunicationError",
           "EspecError", "EspecRefused", "EspecSimulator", "Monitor", "Reading",
           "SimulatorAdapter", "SimulatorServer", "TemperatureStatus", "open_chamber",
           "serve_tcp", "wait_until_stable"]
