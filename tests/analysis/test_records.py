"""Records CSV reader: good files load, bad ones are refused naming file, line and column."""

import numpy as np
import pytest

from analysis.records import RecordsFormatError, read_records_csv


def write(tmp_path, text, name="run.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_required_columns_as_floats_and_keeps_extras(tmp_path):
    path = write(tmp_path, "step,time_s,voltage_v,current_a,note\n"
                           "1,0.0,0.1,1e-9,start\n"
                           "1,1.5,0.1,-2.5E-10,\n"
                           "2, 3.0 ,0.2,3e-9,x\n")
    frame = read_records_csv(path)
    assert list(frame.columns) == ["time_s", "voltage_v", "current_a", "step", "note"]
    np.testing.assert_allclose(frame["time_s"], [0.0, 1.5, 3.0])
    np.testing.assert_allclose(frame["current_a"], [1e-9, -2.5e-10, 3e-9])
    assert frame["time_s"].dtype == np.float64
    assert frame["step"].tolist() == [1.0, 1.0, 2.0]
    assert frame["note"].tolist() == ["start", "", "x"]


def test_byte_order_mark_and_blank_lines_are_tolerated(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftime_s,voltage_v,current_a\n\n0,1,2\n\n1,1,2\n".encode("utf-8"))
    frame = read_records_csv(path)
    assert frame.shape == (2, 3)


def test_header_only_gives_an_empty_frame(tmp_path):
    frame = read_records_csv(write(tmp_path, "time_s,voltage_v,current_a\n"))
    assert frame.empty and list(frame.columns) == ["time_s", "voltage_v", "current_a"]


def test_missing_column_is_named(tmp_path):
    path = write(tmp_path, "time_s,voltage_v\n0,1\n")
    with pytest.raises(RecordsFormatError, match=r"run\.csv: line 1: missing column\(s\) 'current_a'"):
        read_records_csv(path)


def test_non_numeric_value_names_file_line_and_column(tmp_path):
    path = write(tmp_path, "time_s,voltage_v,current_a\n0,1,2\n\n1,abc,2\n")
    with pytest.raises(RecordsFormatError) as error:
        read_records_csv(path)
    message = str(error.value)
    assert str(path) in message
    assert "line 4" in message  # the blank line 3 still counts
    assert "column 'voltage_v'" in message and "'abc'" in message


def test_empty_and_non_finite_values_are_refused(tmp_path):
    with pytest.raises(RecordsFormatError, match=r"line 3, column 'current_a': is empty"):
        read_records_csv(write(tmp_path, "time_s,voltage_v,current_a\n0,1,2\n1,1,\n"))
    with pytest.raises(RecordsFormatError, match=r"line 2, column 'time_s': 'nan'"):
        read_records_csv(write(tmp_path, "time_s,voltage_v,current_a\nnan,1,2\n"))


def test_ragged_row_is_refused(tmp_path):
    with pytest.raises(RecordsFormatError, match="line 3 has 4 fields, the header"):
        read_records_csv(write(tmp_path, "time_s,voltage_v,current_a\n0,1,2\n1,2,3,4\n"))


def test_empty_file_and_duplicate_column_are_refused(tmp_path):
    with pytest.raises(RecordsFormatError, match="file is empty"):
        read_records_csv(write(tmp_path, ""))
    with pytest.raises(RecordsFormatError, match="'time_s' appears twice"):
        read_records_csv(write(tmp_path, "time_s,time_s,voltage_v,current_a\n"))


def test_errors_are_value_errors(tmp_path):
    with pytest.raises(ValueError):
        read_records_csv(write(tmp_path, "a,b\n"))


def test_values_round_trip_exactly_in_a_large_file(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(20000, 3)) * np.array([1e3, 1.0, 1e-9])
    path = tmp_path / "large.csv"
    lines = ["time_s,voltage_v,current_a,step"]
    lines += [f"{t!r},{v!r},{i!r},{k // 100}" for k, (t, v, i) in enumerate(values.tolist())]
    path.write_text("\n".join(lines) + "\n")
    frame = read_records_csv(path)
    np.testing.assert_array_equal(frame[["time_s", "voltage_v", "current_a"]].to_numpy(), values)
    assert frame["step"].iloc[-1] == 199.0


def test_bad_value_deep_in_a_large_file_is_located(tmp_path):
    lines = ["time_s,voltage_v,current_a"] + [f"{k},0.1,1e-9" for k in range(5000)]
    lines[4321] = "4320,0.1,1e-9x"
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(RecordsFormatError, match=r"line 4322, column 'current_a': '1e-9x'"):
        read_records_csv(path)


def test_non_utf8_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("time_s,voltage_v,current_a,note\n0,1,2,\xb5A\n".encode("latin-1"))
    with pytest.raises(RecordsFormatError, match=r"latin1\.csv: not UTF-8 text"):
        read_records_csv(path)
