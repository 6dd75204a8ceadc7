"""The simulated station outlives the process that controls it: its state is saved to a file.

A real station keeps going when the PC running cellbench crashes: the Landt cycles on, a BioLogic
channel runs its technique and buffers its points, the chamber holds its set point. To behave
the same way, the simulated station (the SimLab with its thermal, pellet and cell models and its
random generator, the chamber simulator, the fake EClib with its channels, running technique and
buffered rows, the simulated Landt with its running program, and the virtual time) is pickled
to a file, in ONE pickle so that objects the simulators share (the cell model, the lab) stay
shared. The clock is not pickled with them (it carries the run's periodic tasks): it is saved as
its time and given back by reference when loading; so are the technique specs, which the fake
EClib compares by identity.

Why a saved state rather than a simulated-lab process that lives on: the simulators are in-process
objects called through the drivers (the fake DLL through ctypes), and a lab process would need a
remote interface for each; and in virtual time nothing moves while no controller waits, so a
process that survives the controller would only hold the state, which a file does as well.

Consistency with storage: the storage writer saves the state inside each transaction, just
before it commits, in a file named by that transaction's ``generation``, which the transaction
records (storage/checkpoints.py). Resume loads the state of the committed generation: the
instruments are then exactly where the committed data say (every point read from them is in that
transaction), with whatever they had not yet been asked for still in their buffers. A state file
written for a transaction that did not commit is ignored.

What the Landt had written to its text export is in the export file beside the state; the state
records its length, and a restore cuts the file back to it (what the simulated Landt wrote after
the saved moment is written again, identically, as the restored program runs on).

Instrument time while no controller is attached (``[sim] offline_time``): ``"none"`` (the
instruments stop with the controller, so a resumed run is comparable point by point with an
uninterrupted one), or a factor of the wall time between the save and the restore (1.0: the lab
ran on in real time; the Landt's records of that time are then in its export, the BioLogic's rows
in its buffer up to what it holds).
"""
from __future__ import annotations

import importlib
import io
import os
import pickle
import time
from pathlib import Path

from instruments.clock import Clock

STATE_VERSION = 1
_CLOCK = "clock"


class SimStateError(RuntimeError):
    """A saved simulated-station state is missing or unreadable; names the file."""


def _constants() -> dict[int, tuple[str, str]]:
    """Module constants the simulators refer to and compare by identity (the BioLogic technique
    specs): saved as references, so a restored instrument holds the very same objects."""
    from instruments.biologic import techniques
    return {id(value): (techniques.__name__, name) for name, value in vars(techniques).items()
            if isinstance(value, techniques.TechniqueSpec)}


class _Pickler(pickle.Pickler):
    def __init__(self, file, protocol) -> None:
        super().__init__(file, protocol=protocol)
        self.constants = _constants()

    def persistent_id(self, obj):
        if isinstance(obj, Clock):
            return _CLOCK
        return self.constants.get(id(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, clock) -> None:
        super().__init__(file)
        self.clock = clock

    def persistent_load(self, pid):
        if pid == _CLOCK:
            return self.clock
        try:
            module, name = pid
            return getattr(importlib.import_module(module), name)
        except (TypeError, ValueError, ImportError, AttributeError):
            raise pickle.UnpicklingError(f"unknown reference {pid!r} in a simulated-station "
                                         "state") from None


def save_state(path: Path, clock_time: float, objects: dict, export_path: Path | None) -> None:
    """Write the state atomically (a temporary file renamed over ``path``) and durably: a header
    (times, the export's length), then the objects."""
    export_size = export_path.stat().st_size if export_path is not None and export_path.exists() else None
    buffer = io.BytesIO()
    pickle.dump({"version": STATE_VERSION, "clock_time": clock_time, "wall_time": time.time(),
                 "export_path": str(export_path) if export_path else None,
                 "export_size": export_size}, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(objects)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(buffer.getbuffer())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_state(path: Path, make_clock, offline_time="none") -> tuple[object, dict]:
    """(clock, objects) of the state at ``path``. ``make_clock(t)`` builds the clock at instrument
    time ``t``: the saved time, plus ``offline_time`` × the wall time since the save. The Landt's
    export file is cut back to the length it had at the save (the simulators then run the offline
    time forward when they are next asked)."""
    try:
        with open(path, "rb") as f:
            header = pickle.load(f)
            if header.get("version") != STATE_VERSION:
                raise SimStateError(f"simulated station state {path} has version "
                                    f"{header.get('version')!r}, this cellbench reads {STATE_VERSION}")
            saved_t = float(header["clock_time"])
            clock = make_clock(saved_t)
            objects = _Unpickler(f, clock).load()
    except OSError as exc:
        raise SimStateError(f"simulated station state {path}: {exc.strerror or exc}") from None
    except SimStateError:
        raise
    except Exception as exc:  # noqa: BLE001 - any corruption is one clear error
        raise SimStateError(f"simulated station state {path} is unreadable: "
                            f"{type(exc).__name__}: {exc}") from None
    if header.get("export_path") and header.get("export_size") is not None:
        export = Path(header["export_path"])
        if export.exists():
            with open(export, "r+b") as f:
                f.truncate(int(header["export_size"]))
    if offline_time != "none":
        clock._advance_to(saved_t + float(offline_time) * max(time.time() - header["wall_time"], 0.0))
    return clock, objects
