"""The fault matrix: every shipped protocol under every injected transport fault, at 1 in 100
instrument calls, on the simulated station through the run service.

A case is one protocol with one fault kind of one instrument (``[sim.faults.<instrument>]
rate = 0.01, kinds = [<kind>]``, instruments/sim/faults.py), run in its own process with a
timeout; the instruments a protocol never calls get no case. Each case must end as the issue asks: ``completed`` (the faults were retried), or
``failed``/``unsafe`` with the failure stored and naming an instrument error, never a traceback
out of the run service and never a hang. Reported per case: status, faults injected, retries by
the drivers, points stored (against the fault-free run of the same protocol), wall time.

Run: ``.venv/bin/python bench/bench_fault_matrix.py [--rate R] [--timeout S] [--cycles N]
[--only NAME ...] [--json FILE]`` from the repository root (the full matrix on the full shipped
protocols takes tens of minutes; ``--cycles N`` cuts every cycling loop to N passes, as the CI
test does). tests/procedures/test_fault_matrix.py runs a CI-sized matrix with the same code.
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RATE = 0.01
# Exceptions a run may fail with when an instrument fault persists: the drivers' errors (and
# what the steps make of a cycler's fault). Anything else is a bug the faults uncovered.
INSTRUMENT_ERRORS = ("EspecError", "EspecRefused", "EspecCommunicationError", "BiologicError",
                     "StartTimeout", "CyclerError", "RestTooShort", "ExportReadError",
                     "ExportFormatError", "ExportRotatedError", "LandtStartTimeout")


def protocols() -> list[str]:
    return sorted(p.stem for p in (ROOT / "config" / "protocols").glob("*.toml"))


def fault_cases() -> list[tuple[str, str]]:
    """(instrument, kind) of every injectable transport fault; (None, None) is no fault."""
    from instruments.sim.faults import KINDS
    return [(instrument, kind) for instrument, kinds in KINDS.items() for kind in kinds]


@dataclass
class CaseResult:
    protocol: str
    instrument: str | None
    kind: str | None
    status: str
    reason: str = ""
    run_id: int | None = None
    injected: int = 0
    calls: int = 0
    retried: int = 0
    points: int = 0
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)  # faults injected, by kind


def shortened(name: str, cycles: int | None):
    """The shipped protocol, validated; with ``cycles`` every cycling loop cut to that count."""
    from config.protocol import Protocol, load_protocol, resolve_protocol_path
    from config.station import load_station, read_toml
    path = resolve_protocol_path(name)
    if cycles is None:
        return load_protocol(path, load_station(simulate=True))
    data = read_toml(path)
    for step in data["steps"]:
        for pstep in step.get("program", {}).get("steps", []):
            if pstep.get("kind") == "loop":
                pstep["count"] = min(pstep["count"], cycles)
    return Protocol.model_validate(data)


def run_case(name: str, instrument: str | None, kind: str | None, db: str, rate: float = RATE,
             cycles: int | None = None) -> CaseResult:
    """One protocol under one fault kind (``instrument`` None: none; ``kind`` None: every kind of
    ``instrument``; ``instrument`` "all": every kind of every instrument), in this process."""
    from config.documents import RunStatus
    from config.station import load_station
    from instruments.sim.faults import KINDS
    from procedures.service import RunService
    from storage.readers import get_run
    logging.disable(logging.WARNING)  # each retry is logged; thousands here
    cfg = load_station(simulate=True)
    if instrument is not None:
        cfg.sim.faults = {inst: {"rate": rate, "kinds": [kind] if kind else list(KINDS[inst])}
                          for inst in (KINDS if instrument == "all" else [instrument])}
    protocol = shortened(name, cycles)
    stations, retried = [], []

    def count_retries(doc_name: str, doc: dict) -> None:
        if doc_name == "stop":  # the instruments are still open when the stop document goes out
            opened = stations[-1].instruments.opened()
            retried.append(sum(getattr(opened.get(role), attr, 0) or 0 for role, attr in (
                ("chamber", "retried_commands"), ("potentiostat", "retried_calls"),
                ("cycler", "retried_reads"))))

    t0 = time.perf_counter()
    service = RunService(cfg, db, report_dir=False, subscribers=[count_retries],
                         on_runner=lambda runner: stations.append(runner.station))
    result = service.run(protocol)
    case = CaseResult(name, instrument, kind, result.status.value, result.reason, result.run_id,
                      wall_s=time.perf_counter() - t0, retried=sum(retried))
    if instrument is not None and stations:
        for injector in stations[-1].instruments.lab.injectors.values():
            case.injected += sum(injector.injected.values())
            case.calls += injector.calls
            case.kinds.update(injector.injected)
    run = get_run(db, result.run_id) if result.run_id is not None else None
    if run is None:
        case.problems.append("no run stored")
        return case
    case.points = sum(s["n_points"] for s in run.get("streams", []))
    if run["status"] != case.status:
        case.problems.append(f"stored status {run['status']!r}, returned {case.status!r}")
    if result.status is not RunStatus.COMPLETED:
        if result.status not in (RunStatus.FAILED, RunStatus.UNSAFE):
            case.problems.append(f"ended {case.status}")
        if not run.get("reason"):
            case.problems.append("the failure is not stored with the run")
        error = case.reason.split(":", 1)[0]
        if error not in INSTRUMENT_ERRORS:
            case.problems.append(f"failed with {error}, not an instrument error")
    return case


def _case_in_child(args) -> CaseResult:
    return run_case(*args)


def run_matrix(names, cases, db_dir: Path, rate: float = RATE, cycles: int | None = None,
               timeout_s: float = 1800.0, on_result=None) -> list[CaseResult]:
    """Every (protocol, fault) case, each in a fresh spawned process (a hang is a timeout, a
    crash of the process a problem), one at a time; the fault-free case of each protocol first."""
    from config.station import load_station
    from procedures.steps import instruments_used
    results = []
    context = multiprocessing.get_context("spawn")
    station = load_station(simulate=True)
    for name in names:
        # A fault of an instrument the protocol never calls cannot happen: not run.
        used = instruments_used(shortened(name, cycles), station)
        for instrument, kind in [(None, None), *[c for c in cases if c[0] in used]]:
            db = f"sqlite:///{db_dir / f'{name}.sqlite'}"
            t0 = time.perf_counter()
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                future = pool.submit(_case_in_child, (name, instrument, kind, db, rate, cycles))
                try:
                    result = future.result(timeout=timeout_s)
                except FutureTimeout:
                    result = CaseResult(name, instrument, kind, "hang", wall_s=timeout_s,
                                        problems=[f"no end within {timeout_s:g} s"])
                    for process in list(pool._processes.values()):
                        process.kill()
                except Exception as exc:  # noqa: BLE001 - a crash out of the run service
                    result = CaseResult(name, instrument, kind, "traceback",
                                        reason=f"{type(exc).__name__}: {exc}",
                                        wall_s=time.perf_counter() - t0,
                                        problems=[f"{type(exc).__name__} out of the run service"])
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def print_row(r: CaseResult, baseline: dict) -> None:
    fault = f"{r.instrument}.{r.kind}" if r.instrument else "(none)"
    base = baseline.get(r.protocol)
    points = f"{r.points:>9,}" + ("" if base is None or r.instrument is None else f" ({r.points - base:+,})")
    reason = f"  {r.reason[:90]}" if r.status != "completed" else ""
    problems = f"  PROBLEM: {'; '.join(r.problems)}" if r.problems else ""
    print(f"{r.protocol:<20} {fault:<36} {r.status:<10} {r.injected:>6} {r.calls:>8} {r.retried:>7} "
          f"{points:<20} {r.wall_s:7.1f}{reason}{problems}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--timeout", type=float, default=1800.0, help="per case, wall s")
    parser.add_argument("--cycles", type=int, default=None, help="cut cycling loops to N passes")
    parser.add_argument("--only", nargs="*", default=None, help="protocol names")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    names = args.only or protocols()
    cases = fault_cases()
    print(f"fault matrix: {len(names)} protocols x {len(cases)} fault kinds at rate {args.rate:g}"
          + (f", cycling loops cut to {args.cycles}" if args.cycles else ", full protocols"))
    print(f"{'protocol':<20} {'fault':<36} {'status':<10} {'inject':>6} {'calls':>8} {'retried':>7} "
          f"{'points (vs none)':<20} {'wall s':>7}")
    baseline: dict[str, int] = {}

    def show(result: CaseResult) -> None:
        if result.instrument is None:
            baseline[result.protocol] = result.points
        print_row(result, baseline)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = run_matrix(names, cases, Path(tmp), args.rate, args.cycles, args.timeout, show)
    faulted = [r for r in results if r.instrument is not None]
    by_status: dict[str, int] = {}
    for r in faulted:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    bad = [r for r in results if r.problems]
    print(f"\n{len(faulted)} faulted runs in {time.perf_counter() - t0:.0f} s: "
          + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
          + f"; {sum(r.injected for r in faulted):,} faults injected, "
            f"{sum(r.retried for r in faulted):,} retries; {len(bad)} with problems")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
