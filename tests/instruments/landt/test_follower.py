"""Following a growing Landt text export: appended chunks, partial lines, rotation."""
from __future__ import annotations

import os

import pytest

from instruments.landt.exports import ExportFormatError
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


def test_followed_export_needs_the_columns_a_chunk_cannot_derive(tmp_path):
    path = tmp_path / "ch1.txt"
    path.write_text("TestTime/s\tVoltage/V\tCurrent/mA\n0\t3.0\t0.5\n", encoding="utf-8")
    with pytest.raises(ExportFormatError, match=r"ch1.txt: no column for step_time, capacity, step, cycle"):
        ExportFollower(path).read_new()


def test_a_ragged_line_names_its_record(tmp_path):
    path = tmp_path / "ch1.txt"
    path.write_text(HEADER + line(1) + "2\t1\t2\n", encoding="utf-8")
    with pytest.raises(ExportFormatError, match="record line 2 has 3 fields"):
        ExportFollower(path).read_new()
