"""BioLogic potentiostats through the EC-Lab Development Package: ctypes binding, techniques,
record layouts, the driver, and a simulated DLL bound to the virtual lab."""
from instruments.biologic.api import BiologicError, LibraryNotAvailable, load_eclib
from instruments.biologic.driver import (BiologicConfigError, BiologicPotentiostat, ChannelInfo, DeviceInfo,
                                         RecordChunk, open_potentiostat)
from instruments.biologic.fake_dll import FakeEClib
from instruments.biologic.layouts import LayoutError
from instruments.biologic.techniques import (LimitTest, Technique, TechniqueError, ca, calimit, cp, cplimit,
                                             lsv, ocv, peis, vscan)

__all__ = [
    "BiologicError", "LibraryNotAvailable", "load_eclib", "BiologicConfigError", "BiologicPotentiostat",
    "ChannelInfo", "DeviceInfo", "RecordChunk", "open_potentiostat", "FakeEClib", "LayoutError",
    "LimitTest", "Technique", "TechniqueError", "ca", "calimit", "cp", "cplimit", "lsv", "ocv", "peis", "vscan",
]
