"""`main.py db upgrade`, and `runs`/`show` on a database written before migrations."""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from storage.schema import SCHEMA_REVISION

ROOT = Path(__file__).resolve().parents[2]
LEGACY_DB = Path(__file__).parent / "fixtures" / "cellbench_0bac8df.sqlite"


def cli(*args, check_exit=0):
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == check_exit, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture
def legacy(tmp_path) -> str:
    path = tmp_path / "legacy.sqlite"
    shutil.copyfile(LEGACY_DB, path)
    return str(path)


def test_db_upgrade_migrates_a_legacy_database_once(legacy):
    first = json.loads(cli("db", "upgrade", "--db", legacy, "--json").stdout)
    assert first == {"database": f"sqlite:///{legacy}", "revision_before": None,
                     "revision": SCHEMA_REVISION}
    again = cli("db", "upgrade", "--db", legacy).stdout
    assert again == f"sqlite:///{legacy}: schema already at revision {SCHEMA_REVISION}\n"


def test_db_upgrade_refuses_a_foreign_database_with_a_clear_error(tmp_path):
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    con.close()
    proc = cli("db", "upgrade", "--db", str(path), check_exit=2)
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"error: db upgrade of sqlite:///{path}: database ")
    assert "not migrating it" in proc.stderr


def test_runs_and_show_of_a_legacy_database_give_reasons_and_point_counts(legacy):
    runs = json.loads(cli("runs", "--db", legacy, "--json").stdout)
    assert [(r["run_id"], r["reason"], r["n_points"]) for r in runs] == [
        (3, None, 25), (2, "aborted by the operator (SIGINT)", 180), (1, "", 75)]
    shown = json.loads(cli("show", "1", "--db", legacy, "--json").stdout)
    assert shown["reason"] == "" and shown["n_points"] == 75
    assert shown["streams"] == [{"name": "eis_30c", "step_index": 0, "n_points": 72},
                                {"name": "chamber", "step_index": None, "n_points": 3},
                                {"name": "never_written", "step_index": 1, "n_points": 0}]
    text = cli("show", "2", "--db", legacy).stdout
    assert "run 2: full_cell_45mg — aborted (aborted by the operator (SIGINT))" in text
    assert "  stream cycling: 180 points" in text
    table = cli("runs", "--db", legacy).stdout.splitlines()
    assert table[0].split() == ["run", "protocol", "status", "points", "started", "(UTC)"]
    assert table[2].split()[:4] == ["2", "full_cell_45mg", "aborted", "180"]


def test_db_upgrade_of_an_unreachable_server_is_a_clear_error_without_the_password():
    # No PostgreSQL driver is installed here (or, with one, nothing listens on port 1).
    proc = cli("db", "upgrade", "--db", "postgresql://lab:secret@127.0.0.1:1/cellbench",
               check_exit=2)
    assert proc.stderr.startswith("error: db upgrade of postgresql://lab:***@127.0.0.1:1/"
                                  "cellbench: ")
    assert "secret" not in proc.stderr
