"""What the ingest benchmarks share: the points they write and the portable reference path.

bench_storage_ingest.py (SQLite) and bench_pg_ingest.py (PostgreSQL) write the same N points
(time_s and four floats from one seeded generator) and time SQLAlchemy Core ``insert()``
executemany with dicts, the portable path the storage writer avoids, the same way.
"""
from __future__ import annotations

import time

import numpy as np
from sqlalchemy import insert

from storage.schema import points

BATCH = 5000
FLOAT_COLUMNS = ("time_s", "voltage_v", "current_a", "temperature_c", "z_real_ohm")
SLOTS = ("time_s", "v0", "v1", "v2", "v3")  # the point slots FLOAT_COLUMNS are stored in


def make_data(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    data = {name: rng.normal(size=n) for name in FLOAT_COLUMNS}
    data["time_s"] = np.arange(n) * 0.1
    return data


def core_insert_s(engine, stream_id: int, data: dict[str, np.ndarray], n: int) -> float:
    """Seconds to insert ``n`` points of ``data`` into stream ``stream_id`` with Core ``insert()``
    and dicts, one transaction per ``BATCH`` rows."""
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        stop = min(start + BATCH, n)
        cols = [data[c][start:stop].tolist() for c in FLOAT_COLUMNS]
        rows = [{"stream_id": stream_id, "seq": seq, **dict(zip(SLOTS, values))}
                for seq, values in zip(range(start, stop), zip(*cols))]
        with engine.begin() as conn:
            conn.execute(insert(points), rows)
    return time.perf_counter() - t0
