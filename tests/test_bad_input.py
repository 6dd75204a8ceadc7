"""Bad input at the command line (issue 9, scope 6): a clear message and exit code 2, never a
traceback; and generated protocol files through ``plan`` and the loader.

The property tests run ``CELLBENCH_EXAMPLES`` examples each (default 300); the acceptance figure
of 10,000 is ``CELLBENCH_EXAMPLES=10000 pytest tests/test_bad_input.py``.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from config.errors import ConfigError
from config.protocol import PROTOCOL_DIR, load_protocol
from config.station import load_station, read_toml
from storage.writer import StorageWriter

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("CELLBENCH_EXAMPLES", "300"))


def cli(*args, cwd=ROOT, stdout=subprocess.PIPE):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, cwd=cwd, timeout=300)


def assert_clear_failure(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr + (proc.stdout or "")


def test_a_non_utf8_protocol_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[protocol]\nname = "Kälte"\n'.encode("latin-1"))
    assert_clear_failure(cli("plan", str(path)), "not UTF-8 text")
    assert_clear_failure(cli("run", str(path), "--simulate", "--db", str(tmp_path / "r.db")),
                         "not UTF-8 text")


def test_a_directory_as_the_protocol(tmp_path):
    (tmp_path / "protocol.toml").mkdir()
    assert_clear_failure(cli("plan", str(tmp_path / "protocol.toml")), "is a directory")
    assert_clear_failure(cli("run", str(tmp_path / "protocol.toml"), "--simulate",
                             "--db", str(tmp_path / "r.db")), "is a directory")


def test_an_unreadable_station_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "station.toml"
    path.write_text("[station]\n")
    path.chmod(0)
    assert_clear_failure(cli("plan", "onbh_conductivity", "--station", str(path)), "cannot be read")


@pytest.mark.parametrize("url", ["postgresql+psycopg2://nobody@127.0.0.1:1/none",
                                 "mysql+nosuchdriver://x@127.0.0.1:1/none"])
def test_an_unreachable_db(url):
    assert_clear_failure(cli("runs", "--db", url), "--db")


def test_a_db_that_cannot_be_opened(tmp_path):
    (tmp_path / "db").mkdir()
    assert_clear_failure(cli("runs", "--db", f"sqlite:///{tmp_path / 'db'}"), "cannot be reached or opened")


def many_runs(path: Path, n: int) -> str:
    url = f"sqlite:///{path}"
    writer = StorageWriter(url)
    for k in range(n):
        writer("start", {"run_uid": f"run-{k}", "protocol_name": "p", "time": 0.0})
        writer("stop", {"status": "completed", "time": 1.0})
    writer.close()
    return url


def test_runs_into_a_closed_pipe(tmp_path):
    url = many_runs(tmp_path / "many.db", 3000)
    reader = subprocess.Popen(["head", "-n", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "runs", "--db", url],
                            stdout=reader.stdin, stderr=subprocess.PIPE, cwd=ROOT)
    reader.stdin.close()
    _, err = proc.communicate(timeout=120)
    assert reader.stdout.read().count(b"\n") == 2
    reader.wait(timeout=10)
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    assert proc.returncode == 2


def test_export_onto_an_existing_file(tmp_path):
    url = many_runs(tmp_path / "one.db", 1)
    out = tmp_path / "taken.csv"
    out.write_text("keep me")
    assert_clear_failure(cli("export", "1", "--db", url, "--out", str(out)),
                         "exists and is not a directory")
    assert out.read_text() == "keep me"


def test_report_text_from_files_is_escaped():
    from analysis.report import escape
    escaped = escape("<script>alert(1)</script> *bold* [link](x) | pipe")
    assert "<script>" not in escaped and "*bold*" not in escaped
    assert "\\[link\\](x)" in escaped and "\\|" in escaped


# --- generated protocol files ------------------------------------------------------------------
STATION = load_station(simulate=True)
SHIPPED = [read_toml(p) for p in sorted(PROTOCOL_DIR.glob("*.toml"))]

nasty_numbers = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 1e12, -1e12, 1e308, 5e-324,
                     20.0, 40.0, 9.5, 500.0, -273.15]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-10**15, max_value=10**15))
nasty_values = st.one_of(nasty_numbers, st.text(max_size=8), st.booleans(), st.none(),
                         st.lists(nasty_numbers, max_size=4))


def _paths(value, prefix=()):
    """Every (path, leaf) of nested dicts and lists."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))
    else:
        yield prefix, value


@st.composite
def mutated_protocols(draw):
    """A shipped protocol with a few of its values replaced by nasty ones, or a key added."""
    import copy
    data = copy.deepcopy(draw(st.sampled_from(SHIPPED)))
    leaves = list(_paths(data))
    for _ in range(draw(st.integers(1, 4))):
        path, _ = draw(st.sampled_from(leaves))
        target = data
        for part in path[:-1]:
            target = target[part]
        value = draw(nasty_values)
        if value is None:
            if isinstance(target, dict):
                target.pop(path[-1], None)
        else:
            target[path[-1]] = value
    return data


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value == math.inf else
                                                "-inf" if value == -math.inf else repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + "}"
    raise TypeError(value)


def dump_toml(data: dict) -> str:
    return "\n".join(f'"{k}" = {_toml(v)}' for k, v in data.items()) + "\n"


def _numbers(value):
    for _, leaf in _paths(value.model_dump() if hasattr(value, "model_dump") else value):
        if isinstance(leaf, float):
            yield leaf


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_protocols())
def test_generated_protocol_files_are_refused_or_within_the_limits(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("gen") / "p.toml"
    path.write_text(dump_toml(data))
    try:
        protocol = load_protocol(path, STATION)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and ":" in p for p in exc.problems)
        event("refused")
        return
    event("accepted")
    assert all(math.isfinite(x) for x in _numbers(protocol))
    lo, hi = STATION.chamber.min_temperature_c, STATION.chamber.max_temperature_c
    for path, leaf in _paths(protocol.model_dump(exclude={"sample": {"sim"}, "cell": {"sim"}})):
        names = [p for p in path if isinstance(p, str)]
        if not isinstance(leaf, float) or not names:
            continue
        if names[-1].endswith("_v"):
            assert abs(leaf) <= 10.0, (path, leaf)
        elif names[-1].endswith("_a"):
            assert abs(leaf) <= STATION.cycler.max_current_a, (path, leaf)
        elif names[-1] in ("setpoint_c", "temperature_c", "temperatures_c", "charge_temperature_c"):
            assert lo <= leaf <= hi, (path, leaf)
    for step in protocol.steps:
        for name, value in step:
            if name.endswith("_s") and isinstance(value, float):
                assert 0 <= value <= STATION.limits.max_protocol_duration_s
    # what the loader accepts, plan can plan
    from procedures.steps import plan_steps
    assert sum(p.estimate.duration_s for p in plan_steps(protocol, STATION)) >= 0


PLAN_BATCH = 100


@settings(max_examples=max(EXAMPLES // PLAN_BATCH, 3), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(st.lists(mutated_protocols(), min_size=PLAN_BATCH, max_size=PLAN_BATCH))
def test_plan_on_generated_files_reports_each_without_a_traceback(tmp_path_factory, batch):
    folder = tmp_path_factory.mktemp("plan")
    paths = []
    for k, data in enumerate(batch):
        paths.append(folder / f"p{k}.toml")
        paths[-1].write_text(dump_toml(data))
    proc = cli("plan", "--json", *map(str, paths))
    assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    entries = json.loads(proc.stdout)
    assert [e["file"] for e in entries] == list(map(str, paths))
    event(f"{sum(e['valid'] for e in entries) // 10 * 10}+ of {PLAN_BATCH} valid")
    for entry in entries:
        assert entry["valid"] != bool(entry["errors"])
        if entry["valid"]:
            assert math.isfinite(entry["expected_duration_s"])
            assert entry["expected_duration_s"] <= STATION.limits.max_protocol_duration_s
