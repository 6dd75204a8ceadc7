"""Mutation score of the analysis modules, one module at a time against its own tests.

    python tests/mutation/run_mutation.py [MODULE ...] [--json PATH] [--keep] [--children N]
    python tests/mutation/run_mutation.py MODULE --resume FOLDER


For each module (default: every module in TESTS_BY_MODULE) the repository is copied to a scratch
folder, mutmut (3.x) mutates that one module's functions and runs only that module's test files,
and then each module-level numeric constant is changed by +1, −1, ×0.5, ×1.1 and ×2 in turn (mutmut
mutates numbers inside functions only) and the same tests are run on each change, --children
changes at a time, each in its own copy of the folder.

The score is killed / counted mutants, where a mutant counts unless it only changes the message of
a raised exception (the text of the error, not whether or where it is raised). Timeouts count as
killed (the mutant made the analysis hang or crawl); "no tests" and "suspicious" count as survived.
Every survivor is printed as the changed source line(s), to be killed or explained in
tests/MUTANTS.md. Exit code 0 when every module ran, 1 when a run failed.

mutmut's timeout is wall-clock time ((estimated test time + 1 s) × 15): on a machine shared with
other jobs a mutant that only waited for a core would count as killed. So the mutants that time
out are run once more with four times the allowance, and only those that time out again count as
timeouts.

--keep leaves the scratch folder; --resume FOLDER reuses it after tests were added (or after a run
was stopped): the module's test files are copied in again and the mutants not killed (survivors and
those not yet tested) and the surviving constant changes are run again, all with the re-check
allowance, as are timeouts that did not have it yet. Tests are only added between the two, so a
killed mutant stays killed.

--only FUNCTION (repeatable) tests only the mutants of those functions and no constant changes: a
partial score, for modules whose full run does not fit the time at hand (eis.py on shared cores).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import fnmatch
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each module against its own test files only: the score says what those tests catch, and a run
# takes minutes, not hours.
TESTS_BY_MODULE = {
    "arrhenius": ["tests/analysis/test_arrhenius.py"],
    "cold_discharge": ["tests/analysis/test_cold_discharge.py"],
    "dcpol": ["tests/analysis/test_dcpol.py"],
    "lsv": ["tests/analysis/test_lsv.py"],
    "cycling": ["tests/analysis/test_cycling.py", "tests/analysis/test_cycling_mutants.py"],
    "physics": ["tests/analysis/test_dcpol.py", "tests/analysis/test_eis.py"],
    "inputs": ["tests/analysis/test_lsv.py", "tests/analysis/test_dcpol.py"],
    "cell_capacity": ["tests/analysis/test_cell_capacity.py"],
    "cell_eis": ["tests/analysis/test_cell_eis.py"],
    "dqdv": ["tests/analysis/test_dqdv.py"],
    "records": ["tests/analysis/test_records.py"],
    "biologic_files": ["tests/analysis/test_biologic_files.py"],
    "report": ["tests/analysis/test_report.py"],
    "symmetric": ["tests/analysis/test_symmetric.py"],
    "kramers_kronig": ["tests/analysis/test_kramers_kronig.py"],
    "eis": ["tests/analysis/test_eis.py"],
}
KILLED = {"killed", "timeout", "caught by type check"}
CONSTANT_FACTORS = (0.5, 1.1, 2.0)
PYTEST_ARGS = ["-p", "no:cacheprovider", "-q", "-x"]
TIMEOUT_MULTIPLIER = 15.0  # mutmut's default
TIMEOUT_RECHECK_FACTOR = 4.0
CONSTANTS_FILE = "constant_mutants.json"


@dataclass
class Mutant:
    name: str
    status: str
    lines: list[int]
    change: str
    message_only: bool = False


@dataclass
class ModuleResult:
    module: str
    mutants: list[Mutant] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    partial: bool = False  # only some functions' mutants, no constant changes

    @property
    def counted(self) -> list[Mutant]:
        return [m for m in self.mutants if not m.message_only]

    @property
    def killed(self) -> int:
        return sum(m.status in KILLED for m in self.counted)

    @property
    def survivors(self) -> list[Mutant]:
        return [m for m in self.counted if m.status not in KILLED]

    @property
    def score_pct(self) -> float | None:
        return 100.0 * self.killed / len(self.counted) if self.counted else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"analysis modules (default: {' '.join(TESTS_BY_MODULE)})")
    parser.add_argument("--json", type=Path, help="also write the results (with every survivor) here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folders (for mutmut show)")
    parser.add_argument("--children", type=int, default=None,
                        help="mutants tested at once (default: the cores the load average leaves free, at least 1)")
    parser.add_argument("--resume", type=Path, metavar="FOLDER",
                        help="re-test only the survivors in a folder kept by --keep (one module)")
    parser.add_argument("--only", action="append", default=[], metavar="FUNCTION",
                        help="only the mutants of this function (repeatable; glob); no constant changes: partial")
    args = parser.parse_args(argv)
    modules = args.modules or list(TESTS_BY_MODULE)
    unknown = [m for m in modules if m not in TESTS_BY_MODULE]
    if unknown:
        print(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(TESTS_BY_MODULE)}", file=sys.stderr)
        return 2
    if args.resume is not None and (len(modules) != 1 or not (args.resume / "mutants").is_dir()):
        print("--resume needs one module and a scratch folder kept by --keep", file=sys.stderr)
        return 2
    if args.only and len(modules) != 1:
        print("--only needs one module", file=sys.stderr)
        return 2
    if args.children is not None and args.children < 1:
        print(f"--children must be >= 1, got {args.children}", file=sys.stderr)
        return 2
    children = args.children or _free_cores()

    results = []
    for module in modules:
        print(f"== analysis/{module}.py against {' '.join(_existing_tests(module))}", flush=True)
        result = run_module(module, keep=args.keep, children=children, resume=args.resume, only=args.only)
        results.append(result)
        _print_module(result)
    _print_table(results)
    if args.json:
        args.json.write_text(json.dumps([_as_json(r) for r in results], indent=2), encoding="utf-8")
    return 1 if any(r.error for r in results) else 0


def _existing_tests(module: str) -> list[str]:
    return [t for t in TESTS_BY_MODULE[module] if (ROOT / t).exists()]


def _free_cores() -> int:
    cores = os.cpu_count() or 1
    return max(1, min(cores, cores - int(os.getloadavg()[0])))


def run_module(module: str, keep: bool = False, children: int = 1, resume: Path | None = None,
               only: list[str] = ()) -> ModuleResult:
    result = ModuleResult(module, partial=bool(only))
    patterns = [f"analysis.{module}.x_{function}__mutmut_*" for function in only]
    started = time.monotonic()
    tests = _existing_tests(module)
    work = resume or Path(tempfile.mkdtemp(prefix=f"cellbench-mutation-{module}-"))
    try:
        if resume is None:
            _copy_project(work, tests)
            _append_mutmut_config(work / "pyproject.toml", module, tests)
            names = patterns
        else:
            for test in tests:
                shutil.copy2(ROOT / test, work / test)
            allowance = TIMEOUT_MULTIPLIER * TIMEOUT_RECHECK_FACTOR
            rechecked = _timeout_multiplier(work / "pyproject.toml") >= allowance
            _set_timeout_multiplier(work / "pyproject.toml", allowance)
            names = _names_to_resume(_mutmut_results(work, module, patterns), rechecked)
        error = _mutmut_run(work, children, names)
        # A resumed run already gives every mutant the re-check allowance.
        timeouts = [] if error or resume is not None else [
            m.name for m in _mutmut_results(work, module, patterns) if m.status == "timeout"]
        if timeouts:
            _set_timeout_multiplier(work / "pyproject.toml", TIMEOUT_MULTIPLIER * TIMEOUT_RECHECK_FACTOR)
            error = _mutmut_run(work, children, timeouts)
        if error is not None:
            result.error = error
            return result
        result.mutants += _mutmut_results(work, module, patterns)
        if not patterns:
            result.mutants += _constant_mutants(work, module, tests, resume is not None, children)
    finally:
        result.seconds = time.monotonic() - started
        if keep or resume is not None:
            print(f"   scratch folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _mutmut_run(work: Path, children: int, names: list[str]) -> str | None:
    """Run mutmut (on ``names`` only, when given); an error text when it failed."""
    log = work / "mutmut.log"
    with log.open("a", encoding="utf-8") as out:
        run = subprocess.run([_mutmut(), "run", "--max-children", str(children), *names], cwd=work, stdout=out,
                             stderr=subprocess.STDOUT)
    if run.returncode == 0:
        return None
    tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
    return f"mutmut run exited with {run.returncode}:\n{tail}"


def _names_to_resume(mutants: list[Mutant], rechecked: bool) -> list[str]:
    """Mutants a resumed run tests again: every one not killed (survivors and those the earlier run
    did not reach), and its timeouts too unless they were reached with the re-check allowance (a run
    stopped before its re-check leaves timeouts of the ordinary allowance, which a starved mutant
    can reach without hanging)."""
    return [m.name for m in mutants if m.status not in KILLED or (m.status == "timeout" and not rechecked)]


def _timeout_multiplier(pyproject: Path) -> float:
    found = re.search(r"(?m)^timeout_multiplier = (.*)$", pyproject.read_text(encoding="utf-8"))
    return float(found.group(1)) if found else TIMEOUT_MULTIPLIER


def _set_timeout_multiplier(pyproject: Path, multiplier: float) -> None:
    # mutmut re-tests only the timed-out mutants when nothing but the timeout setting changed.
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(re.sub(r"(?m)^timeout_multiplier = .*$", f"timeout_multiplier = {multiplier!r}", text),
                         encoding="utf-8")


def _mutmut() -> str:
    found = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or shutil.which("mutmut")
    if not found:
        raise SystemExit("mutmut is not installed: pip install -e '.[mutation]'")
    return found


def _copy_project(work: Path, tests: list[str]) -> None:
    # Tracked and new (not ignored) files, without the other modules' tests.
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.splitlines()
    for name in listed:
        path = Path(name)
        if path.parts[0] == "tests" and path.name.startswith("test_") and name not in tests:
            continue
        if not (ROOT / path).is_file():
            continue  # deleted in the work tree but not yet in the index
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, work / path)


def _append_mutmut_config(pyproject: Path, module: str, tests: list[str]) -> None:
    with pyproject.open("a", encoding="utf-8") as out:
        out.write(
            "\n[tool.mutmut]\n"
            'source_paths = ["analysis"]\n'
            f'only_mutate = ["analysis/{module}.py"]\n'
            f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
            f"pytest_add_cli_args = {json.dumps(PYTEST_ARGS[:3])}\n"
            f"timeout_multiplier = {TIMEOUT_MULTIPLIER!r}\n"
        )


def _mutmut_results(work: Path, module: str, patterns: list[str] = ()) -> list[Mutant]:
    meta = json.loads((work / "mutants" / "analysis" / f"{module}.py.meta").read_text(encoding="utf-8"))
    mutated_source = (work / "mutants" / "analysis" / f"{module}.py").read_text(encoding="utf-8")
    original_source = (work / "analysis" / f"{module}.py").read_text(encoding="utf-8")
    functions = _mutant_functions(mutated_source)
    mutated_lines = mutated_source.split("\n")  # as ast counts lines (str.splitlines also splits at \x0c, \x85, ...)
    first_lines = _original_first_lines(original_source)
    statuses = _status_names()
    mutants = []
    for key, exit_code in meta["exit_code_by_key"].items():
        if patterns and not any(fnmatch.fnmatch(key, pattern) for pattern in patterns):
            continue
        name = key.rsplit(".", 1)[-1]
        base, _, _ = name.rpartition("__mutmut_")
        original, mutant = functions[f"{base}__mutmut_orig"], functions[name]
        status = statuses[exit_code]
        # Only survivors are printed; describing every mutant would slice the large mutated file each time.
        lines, change = (([], "") if status in KILLED
                         else _describe_change(mutated_lines, original, mutant, first_lines.get(base, 0)))
        mutants.append(Mutant(key, status, lines, change, _only_message(original, mutant)))
    return mutants


def _status_names():
    from mutmut.stats import status_by_exit_code
    return status_by_exit_code


def _mutant_functions(source: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(source)
    nodes = list(tree.body) + [n for c in tree.body if isinstance(c, ast.ClassDef) for n in c.body]
    return {n.name: n for n in nodes
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and "__mutmut_" in n.name}


def _original_first_lines(source: str) -> dict[str, int]:
    # mutmut names a function f "x_f" and a method C.m "xǁCǁm".
    tree = ast.parse(source)
    lines = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines[f"x_{node.name}"] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines[f"xǁ{node.name}ǁ{item.name}"] = item.lineno
    return lines


def _describe_change(lines: list[str], original: ast.AST, mutant: ast.AST, first_line: int) -> tuple[list[int], str]:
    # Whole lines of the mutated file, split once: ast.get_source_segment splits the whole file
    # again on every call, minutes per survivor listing on eis.py's 2352 mutants.
    before = lines[original.lineno - 1:original.end_lineno]
    after = [line.replace(mutant.name, original.name, 1) for line in lines[mutant.lineno - 1:mutant.end_lineno]]
    lines, change = [], []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            continue
        lines += [first_line + i for i in range(a0, max(a1, a0 + 1))]
        change += [f"- {line.strip()}" for line in before[a0:a1]] + [f"+ {line.strip()}" for line in after[b0:b1]]
    return lines, "  ".join(change)


def _only_message(original: ast.AST, mutant: ast.AST) -> bool:
    """True when every difference lies in the arguments of the exception a raise statement builds."""
    differences: list[list[tuple[str, str]]] = []
    _ast_differences(original, mutant, [], differences)
    return bool(differences) and all(_inside_raise_message(path) for path in differences)


def _ast_differences(a, b, path, out) -> None:
    if type(a) is not type(b):
        out.append(path)
        return
    if isinstance(a, list):
        if len(a) != len(b):
            out.append(path)
            return
        for x, y in zip(a, b):
            _ast_differences(x, y, path, out)
        return
    if not isinstance(a, ast.AST):
        if a != b:
            out.append(path)
        return
    for name in a._fields:
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef)) and name == "name":
            continue
        _ast_differences(getattr(a, name), getattr(b, name), path + [(type(a).__name__, name)], out)


def _inside_raise_message(path: list[tuple[str, str]]) -> bool:
    for position, step in enumerate(path):
        if step == ("Raise", "exc"):
            rest = path[position + 1:]
            return len(rest) >= 1 and rest[0][0] == "Call" and rest[0][1] in ("args", "keywords")
    return False


def _constant_mutants(work: Path, module: str, tests: list[str], survivors_only: bool = False,
                      children: int = 1) -> list[Mutant]:
    """Each module-level number changed in turn; with ``survivors_only`` the changes that were
    killed in the folder's earlier run keep that verdict and only the others are run again.

    ``children`` changes are tested at once, each in its own copy of the folder (without mutmut's
    mutants/): every change starts pytest afresh, which on a shared machine takes most of a run."""
    path = Path("analysis") / f"{module}.py"
    source = (work / path).read_text(encoding="utf-8")
    saved = work / CONSTANTS_FILE
    earlier = json.loads(saved.read_text(encoding="utf-8")) if survivors_only and saved.exists() else {}
    changes = [(f"constant {name} #{index + 1}", name, node, variant)
               for name, node, value in _numeric_constants(source)
               for index, variant in enumerate(_variants(value))]
    statuses = {key: earlier[key] for key, *_ in changes if earlier.get(key) in KILLED}
    pending = [change for change in changes if change[0] not in statuses]
    folders = queue.Queue()
    folders.put(work)
    copies = [Path(tempfile.mkdtemp(prefix=f"cellbench-constants-{module}-"))
              for _ in range(min(children, len(pending)) - 1)]
    for copy in copies:
        shutil.copytree(work, copy, ignore=shutil.ignore_patterns("mutants"), dirs_exist_ok=True)
        folders.put(copy)

    def run(change) -> str:
        _, _, node, variant = change
        folder = folders.get()
        try:
            (folder / path).write_text(_replace_segment(source, node, repr(variant)), encoding="utf-8")
            return _run_tests(folder, tests)
        finally:
            (folder / path).write_text(source, encoding="utf-8")
            folders.put(folder)

    try:
        with ThreadPoolExecutor(max_workers=1 + len(copies)) as pool:
            for change, status in zip(pending, pool.map(run, pending)):
                statuses[change[0]] = status
    finally:
        (work / path).write_text(source, encoding="utf-8")
        for copy in copies:
            shutil.rmtree(copy, ignore_errors=True)
        saved.write_text(json.dumps(statuses, indent=1), encoding="utf-8")
    lines = source.splitlines()
    return [Mutant(key, statuses[key], [node.lineno], f"- {lines[node.lineno - 1].strip()}  + {name} = {variant!r}")
            for key, name, node, variant in changes]


def _numeric_constants(source: str):
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        number = _number_of(value)
        if number is not None:
            yield target.id, value, number


def _number_of(node: ast.AST):
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number_of(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    return None


def _variants(value):
    candidates = [value + 1, value - 1] + [value * factor for factor in CONSTANT_FACTORS]
    if isinstance(value, int):
        candidates = [int(round(c)) for c in candidates]
    unique = []
    for candidate in candidates:
        if candidate != value and candidate not in unique:
            unique.append(candidate)
    return unique


def _replace_segment(source: str, node: ast.AST, text: str) -> str:
    lines = source.splitlines(keepends=True)
    start = sum(len(l) for l in lines[:node.lineno - 1]) + _char_offset(lines[node.lineno - 1], node.col_offset)
    end = sum(len(l) for l in lines[:node.end_lineno - 1]) + _char_offset(lines[node.end_lineno - 1],
                                                                            node.end_col_offset)
    return source[:start] + text + source[end:]


def _char_offset(line: str, byte_offset: int) -> int:
    # ast offsets count UTF-8 bytes.
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8"))


def _run_tests(work: Path, tests: list[str]) -> str:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    try:
        run = subprocess.run([sys.executable, "-m", "pytest", *PYTEST_ARGS, *tests], cwd=work, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    except subprocess.TimeoutExpired:
        return "timeout"
    return {0: "survived", 5: "no tests"}.get(run.returncode, "killed")


def _print_module(result: ModuleResult) -> None:
    if result.error:
        print(f"   FAILED: {result.error}")
        return
    for mutant in result.survivors:
        where = ",".join(str(n) for n in sorted(set(mutant.lines))) or "?"
        print(f"   survived ({mutant.status}) {result.module}.py:{where} {mutant.name.rsplit('.', 1)[-1]}: "
              f"{_short(mutant.change)}")


def _short(text: str, width: int = 220) -> str:
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= width else text[:width - 1] + "…"


def _print_table(results: list[ModuleResult]) -> None:
    print()
    print(f"{'module':<16} {'mutants':>8} {'message':>8} {'counted':>8} {'killed':>7} {'survived':>9} "
          f"{'score':>7} {'time':>7}")
    for r in results:
        if r.error:
            print(f"{r.module:<16} failed (see above)")
            continue
        message = len(r.mutants) - len(r.counted)
        score = "—" if r.score_pct is None else f"{r.score_pct:.1f} %"
        print(f"{r.module:<16} {len(r.mutants):>8} {message:>8} {len(r.counted):>8} {r.killed:>7} "
              f"{len(r.survivors):>9} {score:>7} {r.seconds:>6.0f}s" + ("  partial (--only)" if r.partial else ""))


def _as_json(result: ModuleResult) -> dict:
    return {"module": result.module, "partial": result.partial, "error": result.error, "seconds": round(result.seconds, 1),
            "mutants": len(result.mutants), "counted": len(result.counted), "killed": result.killed,
            "score_pct": result.score_pct,
            "survivors": [{"name": m.name, "status": m.status, "lines": sorted(set(m.lines)), "change": m.change}
                          for m in result.survivors]}


if __name__ == "__main__":
    sys.exit(main())
