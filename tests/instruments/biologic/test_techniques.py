"""Technique specs: parameter sets, file names, and validation before anything is sent."""
import pytest

from instruments.biologic import techniques as tq
from instruments.biologic.techniques import Limits, LimitTest, TechniqueError


def labels(technique):
    return {(v.label, v.index) for v in technique.ecc_values()}


def test_frequency_count_for_7mhz_to_1hz_at_10_per_decade():
    assert tq.frequency_count(7e6, 1.0, 10) == 69
    assert tq.frequency_count(1e6, 0.1, 5) == 36


def test_ecc_file_names_carry_the_board_family():
    assert tq.PEIS.ecc_file("essential") == "peis.ecc"
    assert tq.PEIS.ecc_file("premium") == "peis4.ecc"
    assert tq.CALIMIT.ecc_file("premium") == "calimit4.ecc"
    assert tq.CA.ecc_file("digicore") == "ca5.ecc"          # board type 3 (manual §7.1)
    with pytest.raises(ValueError, match="board"):
        tq.CA.ecc_file("vmp3")


def test_vscan_sends_only_labels_the_manual_lists_for_it():
    labels = {v.label for v in tq.lsv(0.0, 1.0, 1e-3).ecc_values()}
    assert "Average_over_dE" not in labels
    assert {"Voltage_step", "Scan_Rate", "Scan_number", "Record_every_dE", "N_Cycles"} <= labels


def test_technique_ids():
    assert {s.name: s.technique_id for s in tq.SPECS.values()} == {
        "OCV": 100, "CA": 101, "CP": 102, "VSCAN": 124, "PEIS": 104, "CALIMIT": 157, "CPLIMIT": 155}


def test_peis_parameter_set():
    t = tq.peis(7e6, 1.0, 0.01, points_per_decade=10)
    t.validate(Limits("premium", 7e6))
    sent = {v.label: v for v in t.ecc_values()}
    assert sent["Frequency_number"].value == 69 and sent["Frequency_number"].kind == "int"
    assert sent["sweep"].value is False  # logarithmic
    assert sent["Amplitude_Voltage"].kind == "single"
    assert sent["I_Range"].value == tq.I_RANGE_AUTO
    assert {"vs_initial", "vs_final", "Initial_Voltage_step", "Final_Voltage_step", "Duration_step",
            "Step_number", "Record_every_dT", "Record_every_dI", "Initial_frequency", "Final_frequency",
            "Average_N_times", "Correction", "Wait_for_steady"} <= set(sent)


def test_ca_arrays_expand_with_step_index():
    t = tq.ca([0.1, 0.2, 0.0], [10, 20, 30], record_every_dt_s=1.0)
    t.validate()
    assert ("Voltage_step", 2) in labels(t) and ("Duration_step", 1) in labels(t)
    assert ("Step_number", 0) in labels(t)
    assert [v.value for v in t.ecc_values() if v.label == "Step_number"] == [2]


def test_vscan_lsv_has_two_vertices():
    t = tq.lsv(0.0, 5.0, 50e-6, 1e-3)
    t.validate()
    assert t.values["Scan_number"] == 0 and t.values["Voltage_step"] == [0.0, 5.0]


def test_frequency_above_model_limit_is_refused():
    t = tq.peis(7e6, 1.0, 0.01, frequency_number=10)
    with pytest.raises(TechniqueError, match="above this instrument's maximum 1e"):
        t.validate(Limits("essential", 1e6))


def test_every_problem_is_reported_at_once():
    t = tq.Technique(tq.CA, {"Voltage_step": [0.1, 20.0], "vs_initial": [False, "yes"],
                             "Duration_step": [1.0, -1.0], "Step_number": 1, "Record_every_dT": 1.0,
                             "Record_every_dI": 0.0, "N_Cycles": 0, "voltage_step": 1})
    with pytest.raises(TechniqueError) as info:
        t.validate()
    problems = " | ".join(info.value.problems)
    assert "Voltage_step[1]" in problems and "outside" in problems
    assert "vs_initial[1]" in problems and "True/False" in problems
    assert "Duration_step[1]" in problems
    assert "unknown parameter 'voltage_step'" in problems and "case-sensitive" in problems


def test_step_count_must_match_step_number():
    t = tq.ca([0.1, 0.2], [10.0], record_every_dt_s=1.0)
    with pytest.raises(TechniqueError, match="Duration_step has 1 entries but Step_number 1 needs 2"):
        t.validate()


def test_too_many_steps():
    with pytest.raises(TechniqueError, match="allowed 1..20"):
        tq.calimit([0.1] * 21, [1.0] * 21).validate()


def test_cp_refuses_auto_range_and_current_above_range():
    with pytest.raises(TechniqueError, match="fixed range"):
        tq.cp([1e-6], [10.0], i_range="auto").validate()
    with pytest.raises(TechniqueError, match="exceeds the I range full scale"):
        tq.cp([2e-3], [10.0], i_range="1mA").validate()
    tq.cp([1e-3], [10.0], i_range="1mA").validate()


def test_premium_only_ranges_refused_on_essential_boards():
    t = tq.ca([0.1], [1.0], i_range="100pA")
    t.validate(Limits("premium"))
    with pytest.raises(TechniqueError, match="essential"):
        t.validate(Limits("essential"))


def test_missing_required_and_wrong_types():
    with pytest.raises(TechniqueError, match="Rest_time_T is required"):
        tq.Technique(tq.OCV, {"Record_every_dE": 0.0, "Record_every_dT": 1.0}).validate()
    with pytest.raises(TechniqueError, match="must be an integer"):
        tq.Technique(tq.PEIS, {**tq.peis(1e5, 1.0, 0.01, frequency_number=5).values,
                               "Frequency_number": 5.0}).validate()
    with pytest.raises(TechniqueError, match="finite"):
        tq.ocv(float("nan")).validate()


def test_vscan_needs_positive_rates_and_de():
    with pytest.raises(TechniqueError, match="Scan_Rate after the first vertex"):
        tq.vscan([0.0, 1.0], [0.0, 0.0], 1e-3).validate()
    with pytest.raises(TechniqueError, match="Record_every_dE must be > 0"):
        tq.vscan([0.0, 1.0], [1e-3, 1e-3], 0.0).validate()


def test_named_ranges():
    assert tq.ca([0.1], [1.0], i_range="10uA", e_range="5V").values["I_Range"] == 5
    with pytest.raises(ValueError, match="I range '3mA'"):
        tq.ca([0.1], [1.0], i_range="3mA")


def test_limit_test_words_round_trip():
    word = LimitTest("I", "<", 1e-6).config_word()
    assert word == (3 << 5) | 1
    assert LimitTest("E", ">", 4.2, "and").config_word() == 0b111
    assert tq.decode_limit_test(word, 1e-6) == LimitTest("I", "<", 1e-6)
    assert tq.decode_limit_test(0, 0.0) is None
    t = tq.cplimit([1e-3, -1e-3], [3600, 3600], i_range="10mA",
                   tests=[[LimitTest("E", ">", 4.2)], [LimitTest("E", "<", 2.0)]], exit_on_limit="next_step")
    t.validate()
    assert t.values["Test1_Config"] == [0b101, 0b001] and t.values["Test2_Config"] == [0, 0]
    assert t.values["Exit_Cond"] == [0, 0]
