"""BioLogic potentiostat driver over the EC-Lab Development Package (real DLL or FakeEClib).

    with open_potentiostat(station.potentiostat, clock, lab) as pstat:
        for chunk in pstat.run(techniques.peis(7e6, 1.0, 0.01, points_per_decade=10)):
            store(chunk.columns)          # frequency_hz, z_real_ohm, z_imag_ohm, ...

``run`` validates every parameter against the technique spec and this instrument's limits
before anything is sent, loads the technique chain, starts the channel and returns an iterator
that polls BL_GetData every ``poll_interval_s`` through the injected clock (never time.sleep).
It rides out the start race (the first polls may read STOP with no rows) for
``start_timeout_s``; a channel that has not started by then is an error (``StartTimeout``) and
is stopped, never a measurement with no points. It drains every row that is still in the
instrument after the state turned STOP, and yields decoded ``RecordChunk``s with unit-named
columns; ``time_s`` counts seconds since the channel started (``started_at`` is that clock
time). Closing the iterator early (break, abort) or an error stops the channel; a stop the
library refuses is logged (the run's safe state then tries again and fails the run loudly).

Transient library errors (communication, a lost connection, a busy library, a corrupted
transfer: ``TRANSIENT``) are retried under ``instruments.retry``'s policy: ``retries`` times with
a doubling pause from ``retry_backoff_s``, on the clock; any other error (a technique file that
does not fit the firmware, -401, is not cured by another try), or one that persists, is raised.
"""
from __future__ import annotations

import ctypes
import logging
import os
from ctypes import byref
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from instruments.biologic import api, layouts
from instruments.biologic import techniques as tq
from instruments.biologic.api import BiologicError
from instruments.retry import RetryPolicy

log = logging.getLogger(__name__)

# Firmware per board family (manual §7.1): DIGICORE boards take kernel5.bin and no FPGA file.
# Without firmware_dir both names are passed as NULL, which the manual defines as "the default
# files of the library's folder" (BL_LoadFirmware); the kernel*/xlx names then never matter.
FPGA_FILES = {"essential": "Vmp_ii_0437_a6.xlx", "premium": "vmp_iv_0395_aa.xlx", "digicore": None}
KERNEL_FILES = {"essential": "kernel.bin", "premium": "kernel4.bin", "digicore": "kernel5.bin"}
BOARD_TYPE_OF = {name: code for code, name in api.BOARD_TYPE_CODES.items()}
IEEE_PROBES = {0x3F800000: 1.0, 0xC0490FDB: -3.1415927410125732, 0x2EDBE6FF: 1e-10}


# EClib codes worth another try: the call did not reach the instrument or its answer was lost
# (-1: the instrument was not reachable for this call, as during a USB re-enumeration; -201: the
# connection could not be made this time).
TRANSIENT = frozenset({-1, -12, -101, -104, -105, -200, -201, -202, -404})


class StartTimeout(RuntimeError):
    """The channel never started (no rows, state STOP) within ``start_timeout_s``."""


class ChannelOptionError(RuntimeError):
    """The channel reports an option error (TCurrentValues.OptErr, e.g. an amplifier fault)."""


def option_error_text(code: int) -> str:
    """Words for a TCurrentValues.OptErr code (100-103: 4 A amplifier, 200-203: 48 V, ...)."""
    base = code - code % 100 if code >= 100 else code
    return f"{code} ({api.OPTION_ERRORS.get(base, 'unknown option error')})"


class BiologicConfigError(ValueError):
    """The station's description of the potentiostat disagrees with the instrument, or is invalid."""


@dataclass(frozen=True)
class DeviceInfo:
    device_code: int
    model: str
    n_channels: int
    firmware_version: int
    firmware_date: str
    library_version: str


@dataclass(frozen=True)
class ChannelInfo:
    channel: int  # 1-based
    firmware_code: int
    firmware_version: int
    board: str | None
    state: int
    mem_filled_bytes: int
    min_i_range: int
    max_i_range: int
    max_bandwidth: int
    has_impedance_board: bool


@dataclass
class RecordChunk:
    """Rows of one BL_GetData call: one technique of the chain, one process."""

    technique_index: int
    technique: str
    process: int
    loop: int
    columns: dict = field(default_factory=dict)
    irq_skipped: int = 0
    saturated: bool = False     # TCurrentValues.Saturation: the control amplifier saturated
    i_overflow: bool = False    # TCurrentValues.Ioverflow: the current exceeded its range
    e_overflow: bool = False    # TCurrentValues.Eoverflow: the potential exceeded its range

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def build_ecc_params(values: Iterable[tq.EccValue], dll=None) -> tuple[ctypes.Array, api.TEccParams]:
    """The TEccParam array and the TEccParams that points at it (keep both alive for the call).

    With ``dll`` the entries are filled by BL_Define{Bool,Sgl,Int}Parameter, as the manual
    shows; without, they are filled here; both give the same bytes.
    """
    values = list(values)
    array = (api.TEccParam * max(len(values), 1))()
    for k, v in enumerate(values):
        if dll is None:
            array[k] = v.to_struct()
            continue
        define = {"bool": "BL_DefineBoolParameter", "single": "BL_DefineSglParameter",
                  "int": "BL_DefineIntParameter"}[v.kind]
        value = bool(v.value) if v.kind == "bool" else (float(v.value) if v.kind == "single" else int(v.value))
        code = getattr(dll, define)(v.label.encode("ascii"), value, v.index, byref(array[k]))
        if code != 0:
            raise BiologicError(define, code, f"parameter {v.label}[{v.index}] = {v.value!r}")
    return array, api.TEccParams(len(values), ctypes.cast(array, ctypes.POINTER(api.TEccParam)))


class BiologicPotentiostat:
    """One channel of a BioLogic potentiostat.

    dll: an object with the EClib exports (``api.load_eclib(path)`` or ``FakeEClib``).
    channel: 1-based channel number. board: 'essential' (VMP3 family) or 'premium' (VMP-300
    family). max_eis_frequency_hz: the model's EIS limit, checked before sending.
    firmware_dir: folder with kernel*.bin, *.xlx and *.ecc ('' = the library's defaults).
    poll_interval_s: wait between BL_GetData calls that returned no rows, s.
    """

    def __init__(self, dll, clock, *, address: str = "USB0", channel: int = 1, board: str = "premium",
                 model: str = "SP-200", max_eis_frequency_hz: float = 7e6, firmware_dir: str = "",
                 connect_timeout_s: int = 5, poll_interval_s: float = 1.0, define_params_with_dll: bool = True,
                 start_timeout_s: float | None = None, max_voltage_v: float = 10.0,
                 retries: int = 3, retry_backoff_s: float = 1.0) -> None:
        if board not in tq.BOARDS:
            raise BiologicConfigError(f"potentiostat.board must be one of {tq.BOARDS}, not {board!r}")
        if not 1 <= channel <= 16:
            raise BiologicConfigError(f"potentiostat.channel must be 1..16, not {channel}")
        if poll_interval_s <= 0:
            raise BiologicConfigError(f"potentiostat.poll_interval_s must be > 0, not {poll_interval_s}")
        if not 1 <= connect_timeout_s <= 255:
            raise BiologicConfigError(f"potentiostat.connect_timeout_s must be 1..255 s, not {connect_timeout_s}")
        if not 0 < max_voltage_v <= 100:
            raise BiologicConfigError(f"potentiostat.max_voltage_v must be in (0, 100] V, not {max_voltage_v}")
        try:
            RetryPolicy(retries, retry_backoff_s)
        except ValueError as exc:
            raise BiologicConfigError(f"potentiostat: {exc}") from None
        self.dll, self.clock = dll, clock
        self.address, self.channel, self.board, self.model = address, channel, board, model
        self.limits = tq.Limits(board=board, max_eis_frequency_hz=float(max_eis_frequency_hz))
        self.firmware_dir = firmware_dir
        self.connect_timeout_s = int(connect_timeout_s)
        self.poll_interval_s = float(poll_interval_s)
        self.start_timeout_s = (max(3 * self.poll_interval_s, 5.0) if start_timeout_s is None
                                else float(start_timeout_s))
        self.define_params_with_dll = define_params_with_dll
        self.max_voltage_v = float(max_voltage_v)
        self.retries, self.retry_backoff_s = int(retries), float(retry_backoff_s)
        self.retried_calls = 0
        self.device: DeviceInfo | None = None
        self.started_at: float | None = None
        self.points_lost = 0
        self.overflow_chunks = 0
        self.firmware_loaded = False  # whether connect() had to load the kernel firmware
        self.messages: list[str] = []
        self._id: int | None = None
        self._owns_connection = True  # False for another channel on a shared connection
        self._chain: list[tq.Technique] | None = None
        self._to_float: Callable[[np.ndarray], np.ndarray] = layouts.ieee_words_to_float

    @property
    def _ch(self) -> int:
        return self.channel - 1

    def __repr__(self) -> str:
        return f"<BiologicPotentiostat {self.model} {self.address} channel {self.channel} ({self.board})>"

    def _call(self, name: str, *args, detail: str = "", accept: tuple[int, ...] = (0,)) -> int:
        """Call EClib's ``name``; a code in ``accept`` is returned, a transient one retried under
        the retry policy, any other raised as BiologicError."""
        function = getattr(self.dll, name)
        instrument = f"BioLogic {self.model} at {self.address}"

        def attempt(n: int) -> int:
            code = function(*args)
            if code in accept:
                return code
            if code == -13 and name == "BL_StartChannel" and n > 0:
                return 0  # the start before the lost reply went through
            raise BiologicError(name, code, detail, instrument=instrument)

        def count(exc) -> None:
            self.retried_calls += 1
        return RetryPolicy(self.retries, self.retry_backoff_s).call(
            attempt, clock=self.clock, transient=lambda exc: getattr(exc, "code", None) in TRANSIENT,
            describe=f"{self!r}: {name}", on_retry=count)

    def _check_potentials(self, technique: tq.Technique) -> None:
        """No potential beyond ±max_voltage_v: every voltage parameter, and an EIS bias plus its
        amplitude (checked again here, whatever the protocol's validation said)."""
        amplitude = abs(technique.values.get("Amplitude_Voltage", 0.0))
        problems = []
        for label, value in technique.values.items():
            if "Voltage" not in label or label == "Amplitude_Voltage":
                continue
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                if not abs(v) + amplitude <= self.max_voltage_v:
                    problems.append(f"{label}: {v} V (± {amplitude} V) is beyond the station's "
                                    f"limit ±{self.max_voltage_v} V")
        if problems:
            raise tq.TechniqueError(technique.name, problems)

    def _require_connected(self) -> None:
        if self._id is None:
            raise BiologicError("(not connected)", -1, "call connect() first",
                                instrument=f"BioLogic {self.model} at {self.address}")

    # --- connection ------------------------------------------------------------------------------
    def connect(self, address: str | None = None, timeout_s: int | None = None,
                force_firmware: bool = False) -> DeviceInfo:
        """Connect, check the channel and its board family, load the kernel firmware when the
        channel lacks it (``force_firmware`` replaces EC-Lab's firmware, error -9 otherwise)."""
        if address is not None:
            self.address = address
        timeout = self.connect_timeout_s if timeout_s is None else int(timeout_s)
        version = self.library_version()
        conn_id, info = ctypes.c_int32(), api.TDeviceInfos()
        self._call("BL_Connect", self.address.encode("ascii"), timeout, byref(conn_id), byref(info),
                   detail=f"address {self.address!r}")
        self._id = conn_id.value
        try:
            self._check_channel()
            self._ensure_firmware(force_firmware)
            self._probe_float_format()
            self.read_messages()
        except BaseException:
            self.disconnect()
            raise
        self.device = DeviceInfo(info.DeviceCode, api.DEVICE_MODELS.get(info.DeviceCode, f"code {info.DeviceCode}"),
                                 info.NumberOfChannels, info.FirmwareVersion,
                                 f"{info.FirmwareDate_yyyy:04d}-{info.FirmwareDate_mm:02d}-{info.FirmwareDate_dd:02d}",
                                 version)
        return self.device

    def library_version(self) -> str:
        buf, size = ctypes.create_string_buffer(256), ctypes.c_uint32(256)
        self._call("BL_GetLibVersion", buf, byref(size))
        return buf.value.decode("ascii", "replace")

    def _check_channel(self) -> None:
        if not self.dll.BL_IsChannelPlugged(self._id, self._ch):
            raise BiologicError("BL_IsChannelPlugged", -3, f"channel {self.channel}",
                                instrument=f"BioLogic {self.model} at {self.address}")
        if self.dll.has("BL_GetChannelBoardType"):
            code = ctypes.c_uint32()
            self._call("BL_GetChannelBoardType", self._id, self._ch, byref(code))
            found = api.BOARD_TYPE_CODES.get(code.value, f"type {code.value}")
            if found != self.board:
                raise BiologicConfigError(
                    f"potentiostat.board is {self.board!r} but channel {self.channel} reports a {found!r} "
                    f"board; fix station.toml (it selects the .ecc files and record layouts)")

    def _ensure_firmware(self, force: bool) -> None:
        # Before the kernel is loaded BL_GetChannelInfos answers -308 and "part of the info is
        # still valid" (BioLogic's own example); -309 is a kernel of another package version,
        # which cannot run this library's techniques, so it is replaced like a missing one.
        code, info = self._read_channel_info()
        if code == 0 and info.firmware_code == api.FIRMWARE_KERNEL and not force:
            return
        chans = (ctypes.c_uint8 * 16)()
        results = (ctypes.c_int32 * 16)()
        chans[self._ch] = 1
        kernel = xlx = None
        if self.firmware_dir:
            kernel = os.path.join(self.firmware_dir, KERNEL_FILES[self.board]).encode()
            if FPGA_FILES[self.board] is not None:
                xlx = os.path.join(self.firmware_dir, FPGA_FILES[self.board]).encode()
        # Only our own kernel is replaced unasked: EC-Lab's firmware still needs force (-9).
        force = force or (code == -309 and info.firmware_code == api.FIRMWARE_KERNEL)
        self._call("BL_LoadFirmware", self._id, chans, results, 16, False, force, kernel, xlx)
        if results[self._ch] != 0:
            hint = (" (EC-Lab's firmware is on the channel: close EC-Lab, or connect with force_firmware=True)"
                    if results[self._ch] == -9 else "")
            raise BiologicError("BL_LoadFirmware", results[self._ch], f"channel {self.channel}{hint}")
        if self.channel_info().firmware_code != api.FIRMWARE_KERNEL:
            raise BiologicError("BL_LoadFirmware", -308, f"channel {self.channel} still has no kernel firmware")
        self.firmware_loaded = True

    def _convert_word(self, word: int, out: ctypes.c_float) -> None:
        # Newer libraries convert per board type (some boards send TI-DSP floats); the old
        # board-blind function is the fallback of libraries without it.
        if self.dll.has("BL_ConvertChannelNumericIntoSingle"):
            self._call("BL_ConvertChannelNumericIntoSingle", word, byref(out), BOARD_TYPE_OF[self.board])
        else:
            self._call("BL_ConvertNumericIntoSingle", word, byref(out))

    def _probe_float_format(self) -> None:
        """Use the numpy IEEE view only if the library converts known words the same way."""
        out = ctypes.c_float()
        for word, value in IEEE_PROBES.items():
            self._convert_word(word, out)
            if out.value != np.float32(value):
                self._to_float = self._convert_with_dll
                return
        self._to_float = layouts.ieee_words_to_float

    def _convert_with_dll(self, words: np.ndarray) -> np.ndarray:
        out, value = np.empty(len(words)), ctypes.c_float()
        for k, word in enumerate(np.asarray(words, np.uint32)):
            self._convert_word(int(word), value)
            out[k] = value.value
        return out

    def read_messages(self) -> list[str]:
        """Drain the channel's message queue (BL_GetMessage until empty); the messages are
        also kept in ``messages``. A queue nobody reads fills up in the library."""
        self._require_connected()
        buf, new = ctypes.create_string_buffer(1024), []
        while True:
            size = ctypes.c_uint32(len(buf))
            self._call("BL_GetMessage", self._id, self._ch, buf, byref(size), detail=f"channel {self.channel}")
            if size.value == 0:
                break
            new.append(buf.value.decode("ascii", "replace"))
        for text in new:
            log.info("BioLogic %s channel %d: %s", self.model, self.channel, text)
        self.messages.extend(new)
        return new

    def hardware_config(self) -> dict:
        """Cell connection and grounding of an SP-300-series channel (BL_GetHardConf):
        ``{"connection": 0 standard | 1 CE to ground | 2 WE to ground | 3 HV, "floating": bool}``."""
        self._require_hard_conf()
        conf = api.THardwareConf()
        self._call("BL_GetHardConf", self._id, self._ch, byref(conf), detail=f"channel {self.channel}")
        return {"connection": conf.Conn, "floating": bool(conf.Ground)}

    def set_hardware_config(self, connection: int = 0, floating: bool = False) -> None:
        """Set the cell connection (0-3, see hardware_config) and floating ground of an
        SP-300-series channel (BL_SetHardConf); not while a technique runs."""
        self._require_hard_conf()
        if connection not in (0, 1, 2, 3):
            raise ValueError(f"hardware connection must be 0, 1, 2 or 3, not {connection!r}")
        self._call("BL_SetHardConf", self._id, self._ch, api.THardwareConf(connection, int(bool(floating))),
                   detail=f"channel {self.channel}: connection {connection}, floating {bool(floating)}")

    def _require_hard_conf(self) -> None:
        self._require_connected()
        if self.board == "essential" or not self.dll.has("BL_GetHardConf"):
            raise BiologicConfigError(f"{self!r}: the hardware configuration (floating ground, CE/WE to "
                                      "ground) is set through BL_SetHardConf on SP-300-series channels "
                                      "only; VMP3-family channels set it with technique parameters")

    def _read_channel_info(self) -> tuple[int, ChannelInfo]:
        info = api.TChannelInfos()
        # Before the kernel is loaded the library answers -308 (or -309) with part of the info.
        code = self._call("BL_GetChannelInfos", self._id, self._ch, byref(info), accept=(0, -308, -309),
                          detail=f"channel {self.channel}")
        board = None
        if self.dll.has("BL_GetChannelBoardType"):
            board_code = ctypes.c_uint32()
            self._call("BL_GetChannelBoardType", self._id, self._ch, byref(board_code))
            board = api.BOARD_TYPE_CODES.get(board_code.value)
        return code, ChannelInfo(self.channel, info.FirmwareCode, info.FirmwareVersion, board, info.State,
                                 info.MemFilled, info.MinIRange, info.MaxIRange, info.MaxBandwidth,
                                 bool(info.Zboard))

    def channel_info(self) -> ChannelInfo:
        """The channel's description (BL_GetChannelInfos); BiologicError without firmware (-308)."""
        self._require_connected()
        code, info = self._read_channel_info()
        if code != 0:
            raise BiologicError("BL_GetChannelInfos", code, f"channel {self.channel}",
                                instrument=f"BioLogic {self.model} at {self.address}")
        return info

    def current_values(self) -> dict:
        """Instantaneous state (0 stop, 1 run, 2 pause), ewe_v, i_a, elapsed_s, frequency_hz, i_range."""
        self._require_connected()
        cv = api.TCurrentValues()
        self._call("BL_GetCurrentValues", self._id, self._ch, byref(cv))
        return {"state": cv.State, "ewe_v": cv.Ewe, "i_a": cv.I, "elapsed_s": cv.ElapsedTime,
                "frequency_hz": cv.Freq, "i_range": cv.IRange, "mem_filled_bytes": cv.MemFilled}

    def disconnect(self) -> None:
        """Close the connection; a channel sharing another's connection only lets go of it."""
        if self._id is None:
            return
        conn_id, self._id = self._id, None
        if self._owns_connection:
            self._call("BL_Disconnect", conn_id)

    def channel_on_connection(self, channel: int, clock=None) -> "BiologicPotentiostat":
        """Another channel of this device on this driver's connection (one BL_Connect per device,
        as the library expects): its channel and board checked and its kernel firmware loaded
        if missing. ``clock``: what that channel's waits go through (default this driver's)."""
        self._require_connected()
        other = BiologicPotentiostat(
            self.dll, clock or self.clock, address=self.address, channel=channel, board=self.board,
            model=self.model, max_eis_frequency_hz=self.limits.max_eis_frequency_hz,
            firmware_dir=self.firmware_dir, connect_timeout_s=self.connect_timeout_s,
            poll_interval_s=self.poll_interval_s, define_params_with_dll=self.define_params_with_dll,
            start_timeout_s=self.start_timeout_s, max_voltage_v=self.max_voltage_v,
            retries=self.retries, retry_backoff_s=self.retry_backoff_s)
        other._id, other._owns_connection = self._id, False
        other._check_channel()
        other._ensure_firmware(False)
        other._to_float = self._to_float
        other.read_messages()
        other.device = self.device
        return other

    def __enter__(self) -> "BiologicPotentiostat":
        if self._id is None:
            self.connect()
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._chain is not None:
                self.stop()
        finally:
            self.disconnect()

    # --- techniques ------------------------------------------------------------------------------
    def _ecc_path(self, technique: tq.Technique) -> bytes:
        name = technique.ecc_file(self.board)
        return (os.path.join(self.firmware_dir, name) if self.firmware_dir else name).encode()

    def run(self, technique: tq.Technique | Iterable[tq.Technique],
            on_rows: Callable[[RecordChunk], None] | None = None) -> Iterator[RecordChunk]:
        """Validate, load and start ``technique`` (or a chain of them); returns the iterator of
        decoded chunks (``on_rows(chunk)`` is also called for each). Starts at once."""
        chain = [technique] if isinstance(technique, tq.Technique) else list(technique)
        if not chain:
            raise ValueError("run: no technique given")
        for item in chain:
            item.validate(self.limits)
            self._check_potentials(item)
        self._require_connected()
        if self._chain is not None:
            raise BiologicError("BL_StartChannel", -13, "the previous run's records are still being read: "
                                "iterate them to the end or close() the iterator first",
                                instrument=f"BioLogic {self.model} at {self.address}")
        dll = self.dll if self.define_params_with_dll else None
        for k, item in enumerate(chain):
            _array, params = build_ecc_params(item.ecc_values(), dll)
            self._call("BL_LoadTechnique", self._id, self._ch, self._ecc_path(item), params,
                       k == 0, k == len(chain) - 1, False, detail=f"{item.name} ({self._ecc_path(item).decode()})")
        self._call("BL_StartChannel", self._id, self._ch, detail=f"channel {self.channel}")
        self._chain = chain
        self.started_at = self.clock.now()
        return self._records(chain, on_rows)

    def collect(self, technique, on_rows=None) -> dict[tuple[int, int], dict[str, np.ndarray]]:
        """Run to the end; columns concatenated per (technique index, process)."""
        parts: dict[tuple[int, int], list] = {}
        for chunk in self.run(technique, on_rows):
            parts.setdefault((chunk.technique_index, chunk.process), []).append(chunk.columns)
        return {key: {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
                for key, chunks in parts.items()}

    def _records(self, chain: list, on_rows) -> Iterator[RecordChunk]:
        buf, infos, cv = api.TDataBuffer(), api.TDataInfos(), api.TCurrentValues()
        words = np.ctypeslib.as_array(buf.data)
        active = False
        try:
            while True:
                self._call("BL_GetData", self._id, self._ch, byref(buf), byref(infos), byref(cv),
                           detail=f"channel {self.channel}")
                if cv.OptErr != 0:
                    raise ChannelOptionError(f"{self!r}: option error {option_error_text(cv.OptErr)} at "
                                             f"option position {cv.OptPos}; the run is stopped")
                if infos.NbRows > 0:
                    active = True
                    chunk = self._decode(chain, words, infos, cv)
                    if on_rows is not None:
                        on_rows(chunk)
                    yield chunk
                    continue  # drain without waiting
                if cv.State != api.STATE_STOP:
                    active = True
                elif cv.MemFilled == 0 and active:
                    self.read_messages()
                    return
                elif cv.MemFilled == 0 and self.clock.now() - self.started_at >= self.start_timeout_s:
                    raise StartTimeout(f"{self!r}: the channel did not start within {self.start_timeout_s:g} s "
                                       f"of BL_StartChannel (state STOP, no data); it is stopped")
                self.clock.sleep(self.poll_interval_s)
        except BaseException as exc:  # an error, or the iterator closed early (GeneratorExit)
            self._chain = None
            if self._id is not None:
                self._stop_after(exc)
            raise
        finally:
            self._chain = None

    def reattach(self) -> Iterator[RecordChunk]:
        """The rows the channel holds of a technique another controller started (a process that
        died since): read as they are, without loading firmware or a technique, until a
        BL_GetData returns none; the channel goes on with its technique. ``started_at`` is set
        to when the channel started it (from TCurrentValues.ElapsedTime), so that the rows'
        times count from the same origin as those read before. What the channel's memory lost
        meanwhile is each chunk's ``irq_skipped``."""
        self._require_connected()
        if self._chain is not None:
            raise BiologicError("BL_GetData", -13, "this controller is still reading its own run",
                                instrument=f"BioLogic {self.model} at {self.address}")
        buf, infos, cv = api.TDataBuffer(), api.TDataInfos(), api.TCurrentValues()
        self._call("BL_GetCurrentValues", self._id, self._ch, byref(cv), detail=f"channel {self.channel}")
        self.started_at = self.clock.now() - float(cv.ElapsedTime)
        words = np.ctypeslib.as_array(buf.data)
        while True:
            self._call("BL_GetData", self._id, self._ch, byref(buf), byref(infos), byref(cv),
                       detail=f"channel {self.channel}")
            if infos.NbRows <= 0:
                return
            yield self._decode(None, words, infos, cv)

    def _stop_after(self, cause: BaseException) -> None:
        """Stop the channel after an abort or an error. A refused stop is logged here, not
        raised over the error that led here; the run's safe state stops the channel again and
        fails loudly if it still cannot."""
        try:
            self.stop()
        except BiologicError as exc:
            log.error("%s (after %s)", exc, type(cause).__name__)

    def _decode(self, chain: list | None, words: np.ndarray, infos: api.TDataInfos,
                cv: api.TCurrentValues) -> RecordChunk:
        """Decode one BL_GetData's rows; ``chain``: the techniques this controller loaded (None
        when re-attached: the technique is known by its ID only)."""
        index = infos.TechniqueIndex
        if chain is None:
            spec = tq.SPECS_BY_ID.get(infos.TechniqueID)
            if spec is None:
                raise layouts.LayoutError(f"data for an unknown technique ID {infos.TechniqueID}")
            technique = spec.name
        elif not 0 <= index < len(chain) or chain[index].spec.technique_id != infos.TechniqueID:
            raise layouts.LayoutError(f"data for technique #{index} (ID {infos.TechniqueID}) do not match the "
                                      f"loaded chain {[t.name for t in chain]}")
        else:
            technique = chain[index].name
        layout = layouts.layout_for(infos.TechniqueID, self.board, infos.ProcessIndex)
        columns = layouts.decode(words, infos.NbRows, infos.NbCols, layout, infos.StartTime, cv.TimeBase,
                                 self._to_float)
        measured = [name for name, kind in layout.words if kind in ("float", "ftime")]
        for name in measured + (["time_s"] if "time_s" in columns else []):
            # A measured value is finite: nan or inf in the buffer is a corrupted transfer.
            if not np.isfinite(columns[name]).all():
                raise layouts.LayoutError(f"{self!r}: {technique} data: non-finite values in "
                                          f"{name} (corrupted transfer); the run is stopped")
        self.points_lost += max(infos.IRQskipped, 0)
        chunk = RecordChunk(index, technique, infos.ProcessIndex, infos.loop, columns, infos.IRQskipped,
                            saturated=bool(cv.Saturation), i_overflow=bool(cv.Ioverflow),
                            e_overflow=bool(cv.Eoverflow))
        if chunk.saturated or chunk.i_overflow or chunk.e_overflow:
            # The rows are kept (they are what the instrument measured) but flagged: an
            # overflowing current is clipped at its range's full scale.
            self.overflow_chunks += 1
            log.warning("%r: %s %d rows read with %s", self, chunk.technique, len(chunk),
                        ", ".join(n for n, f in (("saturation", chunk.saturated), ("I overflow", chunk.i_overflow),
                                                 ("E overflow", chunk.e_overflow)) if f))
        return chunk

    def stop(self) -> None:
        """Stop the channel now (rows already measured can still be drained by the iterator)."""
        self._require_connected()
        self._call("BL_StopChannel", self._id, self._ch, detail=f"channel {self.channel}")

    def update_parameters(self, technique_index: int, values: dict) -> None:
        """Change parameters of a running technique: ``{label: value}``, ``{label: [per step]}`` or
        ``{label: {step: value}}``; at most 10 TEccParams, no hardware parameters (I/E range,
        bandwidth), validated against the technique spec before sending."""
        self._require_connected()
        if self._chain is None or not 0 <= technique_index < len(self._chain):
            raise ValueError(f"update_parameters: no running technique #{technique_index}")
        technique = self._chain[technique_index]
        hardware = sorted(set(values) & tq.HARDWARE_LABELS)
        if hardware:
            raise tq.TechniqueError(technique.name, [f"{hardware} cannot change while a technique runs"])
        merged, to_send = dict(technique.values), []
        for label, value in values.items():
            param = technique.spec.param(label)
            if param is None:
                raise tq.TechniqueError(technique.name, [f"unknown parameter {label!r}"])
            if param.steps and isinstance(value, dict):
                steps = list(merged.get(label, []))
                for index, v in value.items():
                    if not 0 <= index < len(steps):
                        raise tq.TechniqueError(technique.name, [f"{label}[{index}]: no such step"])
                    steps[index] = v
                    to_send.append(tq.EccValue(label, param.kind, v, index))
                merged[label] = steps
            else:
                merged[label] = value
                seq = value if param.steps else [value]
                to_send.extend(tq.EccValue(label, param.kind, v, i) for i, v in enumerate(seq))
        if len(to_send) > 10:
            raise tq.TechniqueError(technique.name, [f"{len(to_send)} parameters to update; at most 10 per call"])
        tq.Technique(technique.spec, merged).validate(self.limits)
        _array, params = build_ecc_params(to_send, self.dll if self.define_params_with_dll else None)
        self._call("BL_UpdateParameters", self._id, self._ch, technique_index, params, self._ecc_path(technique),
                   detail=f"{technique.name}: {sorted(values)}")
        technique.values = merged

    def end_step(self, technique_index: int, step: int, duration_s: float = 0.0) -> None:
        """End step ``step`` early by shortening its Duration_step to ``duration_s`` s (a step that
        has run longer than that ends at once; the SDK has no 'next step' command)."""
        self.update_parameters(technique_index, {"Duration_step": {step: float(duration_s)}})


CONFIG_KEYS = {"driver", "address", "channel", "n_channels", "dll_path", "firmware_dir", "board", "model",
               "max_eis_frequency_hz", "connect_timeout_s", "poll_interval_s", "max_voltage_v"}
FAKE_OPTIONS = {"fail_on", "start_race_polls", "firmware", "current_offset_a", "current_noise_fraction",
                "ewe_noise_v", "n_channels", "option_error"}


def fake_option_problems(options: dict) -> list[str]:
    """Problems of ``[sim.faults.potentiostat]``'s settings of the simulated EClib (the transport
    faults, rate, kinds and timeout_s, are checked by instruments.sim.faults)."""
    bad = sorted(set(options) - FAKE_OPTIONS)
    return [f"sim.faults.potentiostat: unknown option(s) {bad}; known: "
            f"{sorted(FAKE_OPTIONS | {'rate', 'kinds', 'timeout_s'})}"] if bad else []


def open_potentiostat(config, clock, lab=None, dll=None, channel_labs: dict | None = None,
                      memory_bytes: int | None = None) -> BiologicPotentiostat:
    """A driver (not yet connected) from the station's potentiostat section (dict or model).

    Without ``lab`` the real DLL is loaded from ``dll_path``; with a SimLab, a FakeEClib bound to
    it stands in, configured by the same section and by ``lab.faults['potentiostat']`` (keys:
    fail_on, start_race_polls, firmware, current_offset_a, current_noise_fraction, ewe_noise_v);
    ``dll``: that FakeEClib already built (a simulated station restored from its saved state);
    ``memory_bytes``: the FakeEClib's channel memory (``[sim] potentiostat_buffer_bytes``).
    """
    cfg = dict(config.model_dump() if hasattr(config, "model_dump") else config)
    unknown = sorted(set(cfg) - CONFIG_KEYS)
    if unknown:
        raise BiologicConfigError(f"potentiostat: unknown setting(s) {unknown}; known: {sorted(CONFIG_KEYS)}")
    if cfg.get("driver", "biologic") != "biologic":
        raise BiologicConfigError(f"potentiostat.driver must be 'biologic', not {cfg['driver']!r}")
    address = cfg.get("address", "USB0")
    board = cfg.get("board", "premium")
    model = cfg.get("model", "SP-200")
    max_f = float(cfg.get("max_eis_frequency_hz", 7e6))
    if dll is None and lab is None:
        dll = api.load_eclib(cfg.get("dll_path", ""))
    elif dll is None:
        from instruments.biologic.fake_dll import FakeEClib
        from instruments.sim.faults import transport_part
        _, options = transport_part((getattr(lab, "faults", None) or {}).get("potentiostat"))
        problems = fake_option_problems(options)
        if problems:
            raise BiologicConfigError("; ".join(problems))
        options.setdefault("n_channels", max(int(cfg.get("n_channels") or 1), int(cfg.get("channel", 1))))
        if memory_bytes is not None:
            options["memory_bytes"] = int(memory_bytes)
        dll = FakeEClib(lab, board=board, model=model, max_eis_frequency_hz=max_f, addresses=(address,),
                        channel_labs=channel_labs, **options)
    return BiologicPotentiostat(
        dll, clock, address=address, channel=int(cfg.get("channel", 1)), board=board, model=model,
        max_eis_frequency_hz=max_f, firmware_dir=cfg.get("firmware_dir", ""),
        connect_timeout_s=int(cfg.get("connect_timeout_s", 5)), poll_interval_s=float(cfg.get("poll_interval_s", 1.0)),
        max_voltage_v=float(cfg.get("max_voltage_v", 10.0)))
