"""ctypes view of the EC-Lab Development Package (EClib) API, written from its documented signatures.

Everything here follows the package manual (structures, 4-byte packing, stdcall exports, int32
error codes); no vendor code is copied. The same function table is applied to the real DLL
(``load_eclib``) and to the simulated one (``instruments.biologic.fake_dll``), so both are called
with identical ctypes arguments and both write into the caller's structures.

Channel numbers are 0-based at this level; the driver converts from the 1-based station file.
"""
from __future__ import annotations

import ctypes
import sys
from ctypes import POINTER, Structure, c_bool, c_char, c_char_p, c_double, c_float, c_int32, c_uint8, c_uint32
from pathlib import Path

DATA_BUFFER_WORDS = 1000
PARAM_LABEL_BYTES = 64

# Channel states (TCurrentValues.State / TChannelInfos.State).
STATE_STOP, STATE_RUN, STATE_PAUSE = 0, 1, 2

# TChannelInfos.FirmwareCode
FIRMWARE_NONE, FIRMWARE_INTERPRETER, FIRMWARE_KERNEL, FIRMWARE_ECAL = 0, 1, 5, 10

# BL_GetChannelBoardType
BOARD_TYPE_CODES = {1: "essential", 2: "premium", 3: "digicore"}

# TDeviceInfos.DeviceCode of the models this project may meet (package manual, device constants).
DEVICE_MODELS = {6: "VSP", 12: "VMP-300", 16: "SP-300", 20: "VSP-300", 21: "SP-200", 27: "SP-240", 34: "VSP-3e"}

# TEccParam.ParamType
PARAM_INT, PARAM_BOOL, PARAM_SINGLE = 0, 1, 2


class TDeviceInfos(Structure):
    """Instrument identity, filled by BL_Connect only."""

    _pack_ = 4
    _fields_ = [
        ("DeviceCode", c_int32), ("RAMSize", c_int32), ("CPU", c_int32),
        ("NumberOfChannels", c_int32), ("NumberOfSlots", c_int32), ("FirmwareVersion", c_int32),
        ("FirmwareDate_yyyy", c_int32), ("FirmwareDate_mm", c_int32), ("FirmwareDate_dd", c_int32),
        ("HTdisplayOn", c_int32), ("NbOfConnectedPC", c_int32),
    ]


class TChannelInfos(Structure):
    """Per-channel description. Newer libraries append FloatFormat and CPUCIE; the larger
    layout is allocated so that either library version writes inside it."""

    _pack_ = 4
    _fields_ = [
        ("Channel", c_int32), ("BoardVersion", c_int32), ("BoardSerialNumber", c_int32),
        ("FirmwareCode", c_int32), ("FirmwareVersion", c_int32), ("XilinxVersion", c_int32),
        ("AmpCode", c_int32), ("NbAmps", c_int32), ("Lcboard", c_int32), ("Zboard", c_int32),
        ("MUXboard", c_int32), ("GPRAboard", c_int32), ("MemSize", c_int32), ("MemFilled", c_int32),
        ("State", c_int32), ("MaxIRange", c_int32), ("MinIRange", c_int32), ("MaxBandwidth", c_int32),
        ("NbOfTechniques", c_int32), ("FloatFormat", c_int32), ("CPUCIE", c_int32),
    ]


class TCurrentValues(Structure):
    """Instantaneous channel values; TimeBase (s) scales the t_high/t_low record words."""

    _pack_ = 4
    _fields_ = [
        ("State", c_int32), ("MemFilled", c_int32), ("TimeBase", c_float),
        ("Ewe", c_float), ("EweRangeMin", c_float), ("EweRangeMax", c_float),
        ("Ece", c_float), ("EceRangeMin", c_float), ("EceRangeMax", c_float),
        ("Eoverflow", c_int32), ("I", c_float), ("IRange", c_int32), ("Ioverflow", c_int32),
        ("ElapsedTime", c_float), ("Freq", c_float), ("Rcomp", c_float), ("Saturation", c_int32),
        ("OptErr", c_int32), ("OptPos", c_int32),
    ]


class TDataInfos(Structure):
    """Describes one BL_GetData buffer. With 4-byte packing StartTime sits at offset 28."""

    _pack_ = 4
    _fields_ = [
        ("IRQskipped", c_int32), ("NbRows", c_int32), ("NbCols", c_int32),
        ("TechniqueIndex", c_int32), ("TechniqueID", c_int32), ("ProcessIndex", c_int32),
        ("loop", c_int32), ("StartTime", c_double), ("MuxPad", c_int32),
    ]


class TDataBuffer(Structure):
    _pack_ = 4
    _fields_ = [("data", c_uint32 * DATA_BUFFER_WORDS)]


class TEccParam(Structure):
    """One technique parameter: label (case-sensitive), type, raw 32-bit value, step index."""

    _pack_ = 4
    _fields_ = [
        ("ParamStr", c_char * PARAM_LABEL_BYTES), ("ParamType", c_int32),
        ("ParamVal", c_int32), ("ParamIndex", c_int32),
    ]


class THardwareConf(Structure):
    """BL_GetHardConf/BL_SetHardConf (SP-300 series): Conn 0 standard, 1 CE to ground, 2 WE to
    ground, 3 high voltage; Ground 0 grounded, 1 floating."""

    _pack_ = 4
    _fields_ = [("Conn", c_int32), ("Ground", c_int32)]


class TEccParams(Structure):
    _pack_ = 4
    _fields_ = [("len", c_int32), ("pParams", POINTER(TEccParam))]


# name -> (restype, argtypes). Output text buffers are POINTER(c_char) so that the callee writes
# into the caller's memory; input strings are c_char_p.
FUNCTIONS: dict[str, tuple[type, list]] = {
    "BL_GetLibVersion": (c_int32, [POINTER(c_char), POINTER(c_uint32)]),
    "BL_GetErrorMsg": (c_int32, [c_int32, POINTER(c_char), POINTER(c_uint32)]),
    "BL_Connect": (c_int32, [c_char_p, c_uint8, POINTER(c_int32), POINTER(TDeviceInfos)]),
    "BL_Disconnect": (c_int32, [c_int32]),
    "BL_TestConnection": (c_int32, [c_int32]),
    "BL_GetChannelsPlugged": (c_int32, [c_int32, POINTER(c_uint8), c_uint8]),
    "BL_IsChannelPlugged": (c_bool, [c_int32, c_uint8]),
    "BL_GetChannelInfos": (c_int32, [c_int32, c_uint8, POINTER(TChannelInfos)]),
    "BL_GetChannelBoardType": (c_int32, [c_int32, c_uint8, POINTER(c_uint32)]),
    "BL_LoadFirmware": (c_int32, [c_int32, POINTER(c_uint8), POINTER(c_int32), c_uint8, c_bool, c_bool,
                                  c_char_p, c_char_p]),
    "BL_DefineBoolParameter": (c_int32, [c_char_p, c_bool, c_int32, POINTER(TEccParam)]),
    "BL_DefineSglParameter": (c_int32, [c_char_p, c_float, c_int32, POINTER(TEccParam)]),
    "BL_DefineIntParameter": (c_int32, [c_char_p, c_int32, c_int32, POINTER(TEccParam)]),
    "BL_LoadTechnique": (c_int32, [c_int32, c_uint8, c_char_p, TEccParams, c_bool, c_bool, c_bool]),
    "BL_StartChannel": (c_int32, [c_int32, c_uint8]),
    "BL_StopChannel": (c_int32, [c_int32, c_uint8]),
    "BL_GetCurrentValues": (c_int32, [c_int32, c_uint8, POINTER(TCurrentValues)]),
    "BL_GetData": (c_int32, [c_int32, c_uint8, POINTER(TDataBuffer), POINTER(TDataInfos),
                             POINTER(TCurrentValues)]),
    "BL_UpdateParameters": (c_int32, [c_int32, c_uint8, c_int32, TEccParams, c_char_p]),
    "BL_ConvertNumericIntoSingle": (c_int32, [c_uint32, POINTER(c_float)]),
    "BL_ConvertChannelNumericIntoSingle": (c_int32, [c_uint32, POINTER(c_float), c_uint32]),
    "BL_GetMessage": (c_int32, [c_int32, c_uint8, POINTER(c_char), POINTER(c_uint32)]),
    "BL_GetHardConf": (c_int32, [c_int32, c_uint8, POINTER(THardwareConf)]),
    "BL_SetHardConf": (c_int32, [c_int32, c_uint8, THardwareConf]),
}

# Functions absent from older library versions; the driver copes without them.
OPTIONAL_FUNCTIONS = frozenset({"BL_GetChannelBoardType", "BL_ConvertChannelNumericIntoSingle",
                                "BL_GetHardConf", "BL_SetHardConf"})

# TCurrentValues.OptErr: option errors are positive (manual §5.4); 0 = none.
OPTION_ERRORS = {1: "options changed", 2: "open-in", 100: "4 A amplifier", 200: "48 V amplifier",
                 300: "10 A / 5 V amplifier", 600: "1 A 48 V amplifier"}

# Error codes of the package manual: code -> (name, meaning).
ERRORS: dict[int, tuple[str, str]] = {
    0: ("ERR_NOERROR", "no error"),
    -1: ("ERR_GEN_NOTCONNECTED", "no instrument connected"),
    -2: ("ERR_GEN_CONNECTIONINPROGRESS", "connection in progress"),
    -3: ("ERR_GEN_CHANNELNOTPLUGGED", "selected channel not plugged"),
    -4: ("ERR_GEN_INVALIDPARAMETERS", "invalid function parameters"),
    -5: ("ERR_GEN_FILENOTEXISTS", "selected file does not exist"),
    -6: ("ERR_GEN_FUNCTIONFAILED", "function failed"),
    -7: ("ERR_GEN_NOCHANNELSELECTED", "no channel selected"),
    -8: ("ERR_GEN_INVALIDCONF", "invalid instrument configuration"),
    -9: ("ERR_GEN_ECLAB_LOADED", "EC-Lab firmware loaded on the instrument"),
    -10: ("ERR_GEN_LIBNOTCORRECTLYLOADED", "library not correctly loaded in memory"),
    -11: ("ERR_GEN_USBLIBRARYERROR", "USB library not correctly loaded in memory"),
    -12: ("ERR_GEN_FUNCTIONINPROGRESS", "function of the library already in progress"),
    -13: ("ERR_GEN_CHANNEL_RUNNING", "selected channel already running"),
    -14: ("ERR_GEN_DEVICE_NOTALLOWED", "device not allowed"),
    -15: ("ERR_GEN_UPDATEPARAMETERS", "invalid update-parameters call"),
    -101: ("ERR_INSTR_VMEERROR", "internal instrument communication failed"),
    -102: ("ERR_INSTR_TOOMANYDATA", "too many data to transfer from the instrument"),
    -103: ("ERR_INSTR_RESPNOTPOSSIBLE", "selected channel unplugged"),
    -104: ("ERR_INSTR_RESPERROR", "instrument response error"),
    -105: ("ERR_INSTR_MSGSIZEERROR", "invalid message size"),
    -200: ("ERR_COMM_COMMFAILED", "communication with the instrument failed"),
    -201: ("ERR_COMM_CONNECTIONFAILED", "cannot establish a connection with the instrument"),
    -202: ("ERR_COMM_WAITINGACK", "waiting for the instrument's acknowledgement"),
    -203: ("ERR_COMM_INVALIDIPADDRESS", "invalid IP address"),
    -204: ("ERR_COMM_ALLOCMEMFAILED", "cannot allocate memory in the instrument"),
    -205: ("ERR_COMM_LOADFIRMWAREFAILED", "cannot load the firmware into the channel"),
    -206: ("ERR_COMM_INCOMPATIBLESERVER", "communication firmware not compatible with the library"),
    -207: ("ERR_COMM_MAXCONNREACHED", "maximum number of connections reached"),
    -300: ("ERR_FIRM_FIRMFILENOTEXISTS", "cannot find the kernel firmware file"),
    -301: ("ERR_FIRM_FIRMFILEACCESSFAILED", "cannot read the kernel firmware file"),
    -302: ("ERR_FIRM_FIRMINVALIDFILE", "invalid kernel firmware file"),
    -303: ("ERR_FIRM_FIRMLOADINGFAILED", "cannot load the kernel firmware on the channel"),
    -304: ("ERR_FIRM_XILFILENOTEXISTS", "cannot find the FPGA file"),
    -305: ("ERR_FIRM_XILFILEACCESSFAILED", "cannot read the FPGA file"),
    -306: ("ERR_FIRM_XILINVALIDFILE", "invalid FPGA file"),
    -307: ("ERR_FIRM_XILLOADINGFAILED", "cannot load the FPGA file on the channel"),
    -308: ("ERR_FIRM_FIRMWARENOTLOADED", "no firmware loaded on the channel"),
    -309: ("ERR_FIRM_FIRMWAREINCOMPATIBLE", "loaded firmware not compatible with the library"),
    -400: ("ERR_TECH_ECCFILENOTEXISTS", "cannot find the technique (.ecc) file"),
    -401: ("ERR_TECH_INCOMPATIBLEECC", "technique file not compatible with the channel firmware"),
    -402: ("ERR_TECH_ECCFILECORRUPTED", "technique file corrupted"),
    -403: ("ERR_TECH_LOADTECHNIQUEFAILED", "cannot load the technique"),
    -404: ("ERR_TECH_DATACORRUPTED", "data returned by the instrument are corrupted"),
    -405: ("ERR_TECH_MEMFULL", "cannot load the technique: channel memory full"),
}


def error_name(code: int) -> str:
    return ERRORS.get(code, (f"ERR_UNKNOWN({code})", ""))[0]


def error_meaning(code: int) -> str:
    return ERRORS.get(code, ("", "unknown error code"))[1]


class BiologicError(RuntimeError):
    """A non-zero return code of an EClib function, named with its meaning."""

    def __init__(self, function: str, code: int, detail: str = "", instrument: str = "BioLogic") -> None:
        self.function = function
        self.code = int(code)
        self.name = error_name(self.code)
        self.meaning = error_meaning(self.code)
        self.detail = detail
        text = f"{instrument}: {function} returned {self.code} ({self.name}: {self.meaning})"
        super().__init__(f"{text}; {detail}" if detail else text)


class LibraryNotAvailable(OSError):
    """The EClib DLL cannot be loaded here (not Windows, missing file, wrong bitness)."""


class EClibFunctionMissing(AttributeError):
    """The loaded library version does not export a function."""


def apply_prototypes(lib) -> dict[str, object]:
    """Set argtypes/restype on every function ``lib`` exports; returns the bound functions.

    Optional functions missing from an older DLL are left out of the result.
    """
    bound = {}
    for name, (restype, argtypes) in FUNCTIONS.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            if name in OPTIONAL_FUNCTIONS:
                continue
            raise LibraryNotAvailable(f"EClib does not export {name}: not an EC-Lab Development "
                                      f"Package library, or too old") from None
        fn.restype = restype
        fn.argtypes = argtypes
        bound[name] = fn
    return bound


class EClib:
    """The functions of a loaded library (real or fake), by name, with their ctypes prototypes."""

    def __init__(self, functions: dict[str, object], source: str) -> None:
        self._functions = functions
        self.source = source

    def __getattr__(self, name: str):
        try:
            return self._functions[name]
        except KeyError:
            raise EClibFunctionMissing(f"{self.source} does not provide {name}") from None

    def has(self, name: str) -> bool:
        return name in self._functions


def load_eclib(dll_path: str | Path) -> EClib:
    """Load the real EClib DLL (stdcall, Windows only) from ``dll_path``."""
    path = Path(dll_path)
    if not str(dll_path):
        raise LibraryNotAvailable("no EClib DLL configured (potentiostat.dll_path is empty)")
    if sys.platform != "win32":
        raise LibraryNotAvailable(
            f"the EC-Lab Development Package DLL ({path.name}) runs only on Windows; on this "
            f"{sys.platform} host use the simulator (station simulate = true) or a Windows host")
    if not path.is_file():
        raise LibraryNotAvailable(f"EClib DLL not found at {path}")
    try:
        lib = ctypes.WinDLL(str(path))
    except OSError as exc:
        raise LibraryNotAvailable(f"cannot load {path} ({exc}); the DLL's bitness must match "
                                  f"Python's ({8 * ctypes.sizeof(ctypes.c_void_p)}-bit)") from None
    return EClib(apply_prototypes(lib), str(path))
