"""The mutation runner's own logic: which mutants count, and the constant changes it makes."""

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("run_mutation", Path(__file__).with_name("run_mutation.py"))
run_mutation = importlib.util.module_from_spec(_SPEC)
sys.modules["run_mutation"] = run_mutation  # its dataclasses look their module up
_SPEC.loader.exec_module(run_mutation)


def _function(source: str) -> ast.FunctionDef:
    return ast.parse(source).body[0]


ORIGINAL = '''
def f(x):
    if x < 0:
        raise ValueError(f"x must be >= 0, got {x}")
    return x * 2
'''


@pytest.mark.parametrize("mutant, message_only", [
    (ORIGINAL.replace('f"x must be >= 0, got {x}"', '"XXx must be >= 0XX"'), True),
    (ORIGINAL.replace('ValueError(f"x must be >= 0, got {x}")', "ValueError(None)"), True),
    (ORIGINAL.replace('ValueError(f"x must be >= 0, got {x}")', "ValueError()"), True),
    (ORIGINAL.replace("raise ValueError", "raise TypeError"), False),
    (ORIGINAL.replace("x < 0", "x <= 0"), False),
    (ORIGINAL.replace("x * 2", "x * 3"), False),
    (ORIGINAL.replace("x < 0", "x <= 0").replace('f"x must be >= 0, got {x}"', '"XX"'), False),
    (ORIGINAL, False),
])
def test_only_a_changed_exception_message_is_left_out(mutant, message_only):
    assert run_mutation._only_message(_function(ORIGINAL), _function(mutant)) is message_only


def test_constant_variants_are_plus_minus_one_and_factors_without_repeats():
    assert run_mutation._variants(50) == [51, 49, 25, 55, 100]
    assert run_mutation._variants(5) == [6, 4, 2, 10]  # 5 * 1.1 rounds to 6, already there
    assert run_mutation._variants(1e-10) == pytest.approx([1 + 1e-10, -1 + 1e-10, 5e-11, 1.1e-10, 2e-10])
    assert run_mutation._variants(0) == [1, -1]


def test_module_level_numbers_are_found_and_replaced_in_place():
    source = 'Ω_OHM = 5\nLIMIT: float = -1.5  # µA\nNAME = "x"\nFLAG = True\nPAIR = (1, 2)\n\ndef f():\n    y = 3\n'
    found = list(run_mutation._numeric_constants(source))
    assert [(name, value) for name, _, value in found] == [("Ω_OHM", 5), ("LIMIT", -1.5)]
    node = found[1][1]
    assert run_mutation._replace_segment(source, node, "-3.0").splitlines()[1] == "LIMIT: float = -3.0  # µA"
    assert run_mutation._replace_segment(source, found[0][1], "10").splitlines()[0] == "Ω_OHM = 10"


def test_a_resumed_run_tests_again_what_was_not_killed_and_timeouts_without_the_re_check():
    mutants = [run_mutation.Mutant(name, status, [], "") for name, status in (
        ("a", "killed"), ("b", "survived"), ("c", "not checked"), ("d", "timeout"), ("e", "no tests"))]
    assert run_mutation._names_to_resume(mutants, rechecked=True) == ["b", "c", "e"]
    assert run_mutation._names_to_resume(mutants, rechecked=False) == ["b", "c", "d", "e"]


def test_the_timeout_allowance_is_read_from_the_kept_folder(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.mutmut]\ntimeout_multiplier = 15.0\n')
    assert run_mutation._timeout_multiplier(pyproject) == 15.0
    run_mutation._set_timeout_multiplier(pyproject, 60.0)
    assert run_mutation._timeout_multiplier(pyproject) == 60.0


def test_constant_changes_run_side_by_side_and_resume_only_the_survivors(tmp_path, monkeypatch):
    """A module whose test catches LIMIT halved and doubled but not ±1: two changes at a time, each
    in its own copy of the folder; a resumed run keeps the killed verdicts and runs the survivors
    again. The test run is simulated in-process (pytest's start-up would cost seconds per change)."""
    (tmp_path / "analysis").mkdir()
    (tmp_path / "mutants").mkdir()  # mutmut's, not copied
    (tmp_path / "analysis" / "m.py").write_text("LIMIT = 10\n\n\ndef over(x):\n    return x > LIMIT\n")
    checks = [lambda over: over(16) and not over(8)]
    folders = set()

    def run_tests(folder, tests):
        folders.add(folder)
        namespace = {}
        exec((folder / "analysis" / "m.py").read_text(), namespace)
        return "survived" if checks[0](namespace["over"]) else "killed"

    monkeypatch.setattr(run_mutation, "_run_tests", run_tests)
    mutants = run_mutation._constant_mutants(tmp_path, "m", ["tests/test_m.py"], children=2)
    assert [(m.name, m.status) for m in mutants] == [  # 11, 9, 5, 20 (× 1.1 is 11 again)
        ("constant LIMIT #1", "survived"), ("constant LIMIT #2", "survived"), ("constant LIMIT #3", "killed"),
        ("constant LIMIT #4", "killed")]
    assert mutants[1].change == "- LIMIT = 10  + LIMIT = 9"
    assert tmp_path in folders and len(folders) == 2
    assert (tmp_path / "analysis" / "m.py").read_text().startswith("LIMIT = 10\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis", "constant_mutants.json", "mutants"]
    assert not any(folder.exists() for folder in folders - {tmp_path})  # the copy is removed
    checks[0] = lambda over: over(11) and not over(10)
    folders.clear()
    resumed = run_mutation._constant_mutants(tmp_path, "m", ["tests/test_m.py"], survivors_only=True, children=2)
    assert [m.status for m in resumed] == ["killed"] * 4
    assert len(folders) == 2  # the two survivors only, side by side
