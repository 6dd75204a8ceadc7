"""Claiming a run to resume it (storage/claims.py): two real processes claim the same interrupted
run at the same moment, round after round, on every backend; exactly one wins each round, and
the other is told which process holds the run."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from storage.claims import RunHeld, claim_run, release_run
from storage.engine import engine_for, upgrade_database
from storage.liveness import host_name
from storage.schema import runs

ROUNDS = 12
ROOT = Path(__file__).resolve().parents[2]


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def interrupted_run(url: str, pid: int) -> None:
    """Run 1 as a SIGKILLed process leaves it: ``running``, by a process that is gone."""
    upgrade_database(url)
    now = datetime.now(timezone.utc)
    values = {"status": "running", "host": host_name(), "pid": pid, "process_started": "gone:1",
              "updated_at": now, "ended_at": None}
    engine = engine_for(url)
    with engine.begin() as conn:
        if conn.execute(select(runs.c.id).where(runs.c.id == 1)).first() is None:
            conn.execute(insert(runs).values(id=1, uid="claim-test", protocol_name="p",
                                             simulated=True, started_at=now, **values))
        else:
            conn.execute(update(runs).where(runs.c.id == 1).values(**values))


def _claimer(url: str, barrier, results) -> None:
    for _ in range(ROUNDS):
        barrier.wait()
        try:
            claim_run(url, 1)
            results.put((os.getpid(), "won"))
        except RunHeld as exc:
            results.put((os.getpid(), str(exc)))
        barrier.wait()


def test_two_processes_claiming_at_once_one_wins_and_the_other_names_it(db_url):
    gone = dead_pid()
    interrupted_run(db_url, gone)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(3, timeout=120), context.Queue()
    procs = [context.Process(target=_claimer, args=(db_url, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    try:
        for _ in range(ROUNDS):
            barrier.wait()  # both claim now
            barrier.wait()  # both have claimed
            outcome = dict(results.get(timeout=60) for _ in range(2))
            winners = [pid for pid, said in outcome.items() if said == "won"]
            assert len(winners) == 1, outcome
            loser = next(pid for pid in outcome if pid != winners[0])
            assert f"process {winners[0]} on {host_name()}" in outcome[loser]
            with engine_for(db_url).connect() as conn:
                row = conn.execute(select(runs.c.status, runs.c.pid).where(runs.c.id == 1)).one()
            assert (row.status, row.pid) == ("running", winners[0])
            interrupted_run(db_url, gone)
    finally:
        for p in procs:
            p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]


def test_a_run_whose_process_lives_is_not_claimed_and_its_own_claim_is_kept(db_url):
    interrupted_run(db_url, dead_pid())
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from storage.claims import claim_run; "
         f"claim_run({db_url!r}, 1); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunHeld, match=f"driven by process {holder.pid} on "):
            claim_run(db_url, 1)
    finally:
        holder.communicate("", timeout=60)
    claim_run(db_url, 1)  # its holder is gone
    claim_run(db_url, 1)  # this process holds it: claiming again changes nothing
    with engine_for(db_url).connect() as conn:
        assert conn.execute(select(runs.c.pid).where(runs.c.id == 1)).scalar() == os.getpid()


def test_a_failed_resume_gives_its_claim_back(db_url):
    interrupted_run(db_url, dead_pid())
    claim_run(db_url, 1)
    release_run(db_url, 1)
    with engine_for(db_url).connect() as conn:
        assert conn.execute(select(runs.c.status).where(runs.c.id == 1)).scalar() == "interrupted"
    claim_run(db_url, 1)  # claimable again
