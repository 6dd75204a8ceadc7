"""The fault matrix in CI (issue 9, scope 5): every shipped protocol, its cycling loops cut to two
passes, with every transport fault of every instrument injected at 1 in 100 calls, completes
through retries or stops in its safe state with the failure stored; none ends in a traceback out
of the run service or a hang. bench/bench_fault_matrix.py runs the full matrix (each fault kind
alone, the full protocols) with the same code."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bench_fault_matrix import protocols, run_case  # noqa: E402

RESULTS = []


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", protocols())
def test_a_shipped_protocol_survives_or_fails_safe_under_every_fault(name, tmp_path):
    case = run_case(name, "all", None, f"sqlite:///{tmp_path / 'm.sqlite'}", cycles=2)
    RESULTS.append(case)
    assert case.problems == [], case
    assert case.status in ("completed", "failed", "unsafe")
    assert case.calls > 0 and case.points > 0


def test_the_matrix_injected_faults_and_they_were_retried():
    if len(RESULTS) != len(protocols()):
        pytest.skip("runs with the whole matrix only")
    kinds = Counter()
    for case in RESULTS:
        kinds.update(case.kinds)
    assert sum(case.injected for case in RESULTS) >= 100
    assert sum(case.retried for case in RESULTS) >= 100
    # Every kind of the chamber occurs; the potentiostat and the cycler (read every 30 min of
    # simulated time) are called far less: some of their kinds at least.
    assert {"timeout", "garbled", "truncated", "disconnect", "na"} <= set(kinds)
    assert set(kinds) & {"not_connected", "connection_failed", "incompatible_technique"}
    assert set(kinds) & {"partial_write", "read_error"}
    assert sum(case.status == "completed" for case in RESULTS) >= len(RESULTS) // 2
