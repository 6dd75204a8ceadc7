"""Following a growing Landt text export: appended chunks, partial lines, rotation."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from instruments.landt.exports import ExportFormatError, read_export
from instruments.landt.follower import ExportFollower, ExportRotatedError

HEADER = "Record\tCycle\tStep\tStepStatus\tTestTime\tStepTime\tVoltage/V\tCurrent/mA\tCapacity/mAh\tEnergy/mWh\n"


def line(record: int, status: str = "CC_Chg", current_ma: float = 0.5) -> str:
    t = 60 * (record - 1)
    return (f"{record}\t1\t2\t{status}\t0 {t // 3600:02d}:{t % 3600 // 60:02d}:00.000\t"
            f"0 00:{t % 3600 // 60:02d}:00.000\t{3.0 + record * 0.001:.4f}\t{current_ma}\t{record * 0.01}\t"
            f"{record * 0.03}\n")


def append(path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def test_reads_only_what_was_appended_and_waits_for_whole_lines(tmp_path):
    path = tmp_path / "ch1.txt"
    follower = ExportFollower(path)
    assert len(follower.read_new()) == 0                       # no file yet
    append(path, "Test name\tS1\nChannel\t1\n")                # metadata block before the header
    assert len(follower.read_new()) == 0 and not follower.started
    append(path, HEADER + line(1) + line(2))
    first = follower.read_new()
    assert follower.started
    assert first["record"].tolist() == [1, 2]
    assert first["voltage_v"].tolist() == pytest.approx([3.001, 3.002])
    assert first["current_a"].tolist() == pytest.approx([5e-4, 5e-4])
    assert first["test_time_s"].tolist() == [0.0, 60.0]
    partial = line(3)
    append(path, partial[:17])                                 # the writer is in the middle of line 3
    assert len(follower.read_new()) == 0
    append(path, partial[17:] + line(4, "CC_DChg"))
    second = follower.read_new()
    assert second["record"].tolist() == [3, 4]
    assert second["voltage_v"].tolist() == pytest.approx([3.003, 3.004])
    assert second["current_a"].tolist() == pytest.approx([5e-4, -5e-4])   # sign from the step state
    assert len(follower.read_new()) == 0
    append(path, line(5).rstrip("\n"))                         # last line, never terminated
    assert len(follower.read_new()) == 0
    assert follower.read_new(include_partial=True)["record"].tolist() == [5]


def test_truncation_and_replacement_are_errors(tmp_path):
    path = tmp_path / "ch1.txt"
    path.write_text(HEADER + line(1) + line(2), encoding="utf-8")
    follower = ExportFollower(path)
    assert len(follower.read_new()) == 2
    path.write_text(HEADER, encoding="utf-8")
    with pytest.raises(ExportRotatedError, match="shrank"):
        follower.read_new()

    follower = ExportFollower(path)
    follower.read_new()
    other = tmp_path / "other.txt"
    other.write_text(HEADER + line(1) + line(2) + line(3), encoding="utf-8")
    os.replace(other, path)
    with pytest.raises(ExportRotatedError, match="replaced"):
        follower.read_new()

    os.remove(path)
    follower = ExportFollower(path)
    path.write_text(HEADER + line(1), encoding="utf-8")
    follower.read_new()
    os.remove(path)
    with pytest.raises(ExportRotatedError, match="disappeared"):
        follower.read_new()


def minimal_lanhe_lines(discharge_first: bool) -> list[str]:
    """A default LANHE text export: test time, voltage and current only (signed current)."""
    sign = -1 if discharge_first else 1
    currents = [0.0] * 4 + [0.5 * sign] * 7 + [0.0] * 3 + [-0.5 * sign] * 6 + [0.5 * sign] * 5 + [0.0] * 2
    lines = ["TestTime/s\tVoltage/V\tCurrent/mA"]
    for k, current in enumerate(currents):
        lines.append(f"{10 * k}\t{3.0 + 0.01 * (k % 7):.3f}\t{current}")
    return lines


@pytest.mark.parametrize("discharge_first", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, 5, 40])
def test_minimal_lanhe_export_followed_in_chunks_equals_the_whole_file(tmp_path, chunk, discharge_first):
    lines = minimal_lanhe_lines(discharge_first)
    whole = tmp_path / "whole.txt"
    whole.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = read_export(whole)
    path = tmp_path / "ch1.txt"
    follower = ExportFollower(path)
    frames = []
    append(path, lines[0] + "\n")
    for start in range(1, len(lines), chunk):
        append(path, "".join(f"{text}\n" for text in lines[start:start + chunk]))
        frames.append(follower.read_new())
    frames.append(follower.read_new(include_partial=True))
    followed = pd.concat(frames, ignore_index=True)
    assert len(followed) == len(expected) == len(lines) - 1
    for column in ("record", "cycle", "step", "step_type"):
        assert followed[column].tolist() == expected[column].tolist(), column
    for column in ("test_time_s", "step_time_s", "current_a", "capacity_ah", "energy_wh"):
        np.testing.assert_allclose(followed[column], expected[column], rtol=1e-12, atol=1e-15)
    assert expected["cycle"].tolist()[0] == (0 if discharge_first else 1)


def test_leading_rests_are_held_until_the_direction_is_known(tmp_path):
    lines = minimal_lanhe_lines(discharge_first=True)
    path = tmp_path / "ch1.txt"
    path.write_text("\n".join(lines[:4]) + "\n", encoding="utf-8")     # header + 3 rests
    follower = ExportFollower(path)
    assert len(follower.read_new()) == 0 and follower.has_data()
    append(path, "\n".join(lines[4:7]) + "\n")                          # the discharge begins
    frame = follower.read_new()
    assert frame["record"].tolist() == [1, 2, 3, 4, 5, 6]
    assert set(frame["cycle"]) == {0}


def test_followed_export_without_current_says_which_columns_to_enable(tmp_path):
    path = tmp_path / "ch1.txt"
    path.write_text("TestTime/s\tVoltage/V\n0\t3.0\n" * 40000, encoding="utf-8")
    with pytest.raises(ExportFormatError, match=r"ch1.txt: no header.*enable.*TestTime, Voltage and Current"):
        ExportFollower(path).read_new()


def test_a_ragged_line_names_its_record(tmp_path):
    path = tmp_path / "ch1.txt"
    path.write_text(HEADER + line(1) + "2\t1\t2\n", encoding="utf-8")
    with pytest.raises(ExportFormatError, match="record line 2 has 3 fields"):
        ExportFollower(path).read_new()
