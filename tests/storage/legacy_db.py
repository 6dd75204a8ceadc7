"""The runs stored in tests/storage/fixtures/cellbench_0bac8df.sqlite, and how that file was written.

The file was written by ``write_legacy_db`` with the storage code of commit 0bac8df (the schema
before migrations: no ``alembic_version`` table, no stored point counts). The migration tests
open a copy with the current code and compare what they read against ``LEGACY_RUNS``, so this
module is both the file's provenance and the expected data. Regenerating the file only makes
sense from a checkout of 0bac8df:

    git worktree add /tmp/cb0bac8df 0bac8df && cd /tmp/cb0bac8df
    PYTHONPATH=. python -c "import sys; sys.path.insert(0, '<this repo>/tests/storage'); \
        import legacy_db; legacy_db.write_legacy_db('sqlite:///cellbench_0bac8df.sqlite')"
"""
from __future__ import annotations

import numpy as np

T0 = 1_700_000_000.0
BIG_INT = 2 ** 53 + 7
"""Beyond a double's exact range: the legacy writer stored it in the row's ``extra`` JSON."""


def _cycling_pages() -> list[dict]:
    step_types = ["Rest", "CC_Chg", "CV_Chg", "Rest", "CC_DChg"]
    pages = []
    record = 0
    for cycle in range(1, 4):
        n = 40 + 10 * cycle
        pages.append({
            "record": np.arange(record, record + n),
            "cycle": np.full(n, cycle),
            "step_type": np.array([step_types[i * len(step_types) // n] for i in range(n)],
                                  dtype=object),
            "test_time_s": np.arange(record, record + n) * 10.0,
            "voltage_v": 2.0 + 1.7 * np.sin(np.linspace(0.0, np.pi, n)),
            "current_a": np.where(np.arange(n) < n // 2, 1.5e-4, -1.5e-4),
        })
        record += n
    pages[1]["current_a"][3] = np.nan
    return pages


def _eis_pages() -> list[dict]:
    frequency = np.logspace(6, -1, 36)
    return [{"time_s": np.arange(36) * 2.0 + 100.0 * k, "frequency_hz": frequency,
             "z_real_ohm": 1000.0 + 50.0 * k + 200.0 / (1.0 + frequency / 1e4),
             "z_imag_ohm": -300.0 * frequency / (frequency + 1e4),
             "range": np.array(["10mA"] * 20 + ["100uA"] * 15 + [None], dtype=object)}
            for k in range(2)]


LEGACY_RUNS = [
    {"protocol_name": "eis_temperature_steps", "status": "completed", "reason": "",
     "streams": [
         {"name": "eis_30c", "step_index": 0, "metadata": {"setpoint_c": 30.0},
          "columns": {"time_s": "s", "frequency_hz": "Hz", "z_real_ohm": "ohm",
                      "z_imag_ohm": "ohm", "range": ("", "str")},
          "pages": _eis_pages()},
         {"name": "chamber", "step_index": None, "metadata": {},
          "columns": {"time_s": "s", "temperature_c": "degC", "alarm_code": ("", "int")},
          "pages": [{"time_s": [0.0, 60.0, 120.0], "temperature_c": [29.8, 30.0, 30.1],
                     "alarm_code": np.array([0, BIG_INT, -3])}]},
         {"name": "never_written", "step_index": 1, "metadata": {},
          "columns": {"time_s": "s", "voltage_v": "V"}, "pages": []},
     ]},
    {"protocol_name": "full_cell_45mg", "status": "aborted",
     "reason": "aborted by the operator (SIGINT)",
     "streams": [
         {"name": "cycling", "step_index": 0, "metadata": {"channel": 1},
          "columns": {"record": ("", "int"), "cycle": ("", "int"), "step_type": ("", "str"),
                      "test_time_s": "s", "voltage_v": "V", "current_a": "A"},
          "pages": _cycling_pages()},
     ]},
    {"protocol_name": "lsv_oxidation", "status": "running", "reason": None,
     "streams": [
         {"name": "lsv", "step_index": 0, "metadata": {},
          "columns": {"time_s": "s", "voltage_v": "V", "current_a": "A"},
          "pages": [{"time_s": np.arange(25) * 1.0, "voltage_v": np.linspace(2.0, 5.0, 25),
                     "current_a": np.geomspace(1e-9, 1e-5, 25)}]},
     ]},
]
"""Three runs: completed; aborted with a reason; still ``running`` (its writer died)."""


def write_legacy_db(url: str) -> None:
    """Write ``LEGACY_RUNS`` through the storage writer at ``url`` (see the module docstring)."""
    from procedures.documents import DocumentStream, StreamWriter
    from storage.writer import StorageWriter

    writer = StorageWriter(url, flush_rows=64)
    for k, run in enumerate(LEGACY_RUNS):
        docs = DocumentStream()
        docs.subscribe(writer, critical=True)
        uid = f"legacy-run-{k}"
        docs.emit("start", {"run_uid": uid, "time": T0 + k, "protocol_name": run["protocol_name"],
                            "protocol": {"name": run["protocol_name"]}, "sample": {"id": "S1"},
                            "station": {"simulated": True}, "simulated": True})
        for index, stream in enumerate(run["streams"]):
            docs.emit("step_start", {"run_uid": uid, "step_index": index, "kind": "measure",
                                     "name": stream["name"], "params": {}, "time": T0 + k})
            out = StreamWriter(docs.emit, uid, stream["name"], stream["columns"],
                               step_index=stream["step_index"], metadata=stream["metadata"])
            for page in stream["pages"]:
                out.write(page)
            docs.emit("step_stop", {"run_uid": uid, "step_index": index, "status": "completed",
                                    "time": T0 + k + 1, "summary": {"pages": len(stream["pages"])}})
        if run["status"] == "running":
            writer.close()
            writer.run_id = writer.run_uid = None  # the writer "dies" here: no stop document
        else:
            docs.emit("stop", {"run_uid": uid, "time": T0 + k + 2, "status": run["status"],
                               "reason": run["reason"], "traceback": None})
    writer.engine.dispose()
