"""Project-wide pytest options.

Device tiers (tests that talk to real instruments) run only when an address is given, as in
PyMeasure: ``pytest --device-address USB0 --biologic-dll C:/.../EClib64.dll``.
"""


def pytest_addoption(parser):
    group = parser.getgroup("devices", "real-instrument tests (skipped unless an address is given)")
    group.addoption("--device-address", action="store", default=None,
                    help="address of a connected instrument (e.g. USB0 or 192.168.0.5); enables device tests")
    group.addoption("--biologic-dll", action="store", default="",
                    help="path to EClib64.dll of the EC-Lab Development Package (BioLogic device tests)")
    group.addoption("--biologic-firmware-dir", action="store", default="",
                    help="folder with kernel*.bin, *.xlx and *.ecc (BioLogic device tests)")
    group.addoption("--biologic-board", action="store", default="premium", choices=("essential", "premium"),
                    help="board family of the BioLogic channel under test")
    group.addoption("--biologic-channel", action="store", default=1, type=int,
                    help="1-based BioLogic channel under test (a dummy cell must be connected)")
