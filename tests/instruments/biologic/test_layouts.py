"""Decoding of BL_GetData buffers laid out by hand per the manual's record tables."""
import math
import struct

import numpy as np
import pytest

from instruments.biologic import layouts
from instruments.biologic.layouts import LayoutError, decode, layout_for


def f32(x):
    """The uint32 word holding x as an IEEE-754 single."""
    return struct.unpack("<I", struct.pack("<f", x))[0]


def i32(x):
    return struct.unpack("<I", struct.pack("<i", x))[0]


def buffer(rows):
    words = np.zeros(1000, dtype=np.uint32)
    flat = [w for row in rows for w in row]
    words[: len(flat)] = flat
    return words


def test_ca_rows_time_floats_and_cycle_both_families():
    tb = 21e-6
    rows = [[0, 0, f32(0.5), f32(1.25e-6), i32(0)],
            [1, 7, f32(0.5), f32(-3.0e-9), i32(2)]]
    for board in ("essential", "premium"):
        cols = decode(buffer(rows), 2, 5, layout_for(101, board, 0), 100.0, tb)
        assert cols["time_s"] == pytest.approx([100.0, 100.0 + tb * (2 ** 32 + 7)], rel=1e-12)
        assert cols["ewe_v"] == pytest.approx([0.5, 0.5])
        assert cols["i_a"] == pytest.approx([1.25e-6, -3.0e-9], rel=1e-6)
        assert cols["cycle"].tolist() == [0, 2]


def test_ocv_layout_differs_between_families():
    essential = decode(buffer([[0, 50, f32(0.8), f32(-0.1)]]), 1, 4, layout_for(100, "essential", 0), 0.0, 2e-5)
    assert essential["ewe_v"] == pytest.approx([0.8]) and essential["ece_v"] == pytest.approx([-0.1])
    assert essential["time_s"] == pytest.approx([50 * 2e-5])
    assert essential["i_a"].tolist() == [0.0]
    premium = decode(buffer([[0, 50, f32(0.8)]]), 1, 3, layout_for(100, "premium", 0), 0.0, 2e-5)
    assert premium["ewe_v"] == pytest.approx([0.8]) and "ece_v" not in premium


def test_vscan_column_order_per_family():
    # essential: t_h, t_l, Ec, <I>, <Ewe>, cycle ; premium: t_h, t_l, <I>, <Ewe>, cycle
    ess = decode(buffer([[0, 10, f32(1.0), f32(2e-6), f32(1.001), i32(1)]]), 1, 6,
                 layout_for(124, "essential", 0), 0.0, 40e-6)
    assert (ess["ec_v"][0], ess["i_a"][0], ess["ewe_v"][0], ess["cycle"][0]) == pytest.approx((1.0, 2e-6, 1.001, 1))
    pre = decode(buffer([[0, 10, f32(2e-6), f32(1.001), i32(1)]]), 1, 5, layout_for(124, "premium", 0), 0.0, 50e-6)
    assert (pre["i_a"][0], pre["ewe_v"][0], pre["cycle"][0]) == pytest.approx((2e-6, 1.001, 1))
    assert pre["time_s"][0] == pytest.approx(10 * 50e-6)


def _peis_row(freq, ewe_mod, i_mod, phase, t, essential):
    row = [f32(freq), f32(ewe_mod), f32(i_mod), f32(phase), f32(0.01), f32(2e-9), 0,
           f32(0.0), f32(0.0), f32(0.0), f32(0.0), 0, 0, f32(t)]
    return row + ([f32(5.0)] if essential else [])


@pytest.mark.parametrize("board, n_cols", [("essential", 15), ("premium", 14)])
def test_peis_process_1_gives_impedance(board, n_cols):
    phase = -math.pi / 3
    rows = [_peis_row(1e5, 0.01, 0.01 / 200.0, phase, 3.5, board == "essential"),
            _peis_row(1.0, 0.01, 0.01 / 5000.0, -0.1, 12.25, board == "essential")]
    cols = decode(buffer(rows), 2, n_cols, layout_for(104, board, 1), 20.0, 24e-6)
    assert cols["frequency_hz"] == pytest.approx([1e5, 1.0])
    assert cols["z_mod_ohm"] == pytest.approx([200.0, 5000.0], rel=1e-6)
    assert cols["z_real_ohm"][0] == pytest.approx(200.0 * math.cos(phase), rel=1e-6)
    assert cols["z_imag_ohm"][0] == pytest.approx(200.0 * math.sin(phase), rel=1e-6)
    assert cols["z_imag_ohm"][0] < 0
    assert cols["phase_rad"][1] == pytest.approx(-0.1)
    assert cols["time_s"] == pytest.approx([23.5, 32.25])
    assert cols["ewe_v"] == pytest.approx([0.01, 0.01]) and cols["i_a"] == pytest.approx([2e-9, 2e-9])
    if board == "essential":
        assert cols["i_range"].tolist() == [5.0, 5.0]


def test_peis_process_0_is_dc_points():
    cols = decode(buffer([[0, 1000, f32(0.2), f32(1e-7)]]), 1, 4, layout_for(104, "premium", 0), 0.0, 24e-6)
    assert cols["time_s"] == pytest.approx([0.024]) and cols["i_a"] == pytest.approx([1e-7])


def test_column_count_mismatch_is_an_error():
    with pytest.raises(LayoutError, match="15 columns, layout expects 14"):
        decode(buffer([[0] * 15]), 1, 15, layout_for(104, "premium", 1), 0.0, 24e-6)
    with pytest.raises(LayoutError, match="no record layout"):
        layout_for(999, "premium", 0)
    with pytest.raises(LayoutError, match="do not fit"):
        decode(np.zeros(10, np.uint32), 3, 5, layout_for(101, "premium", 0), 0.0, 21e-6)


def test_nan_start_time_counts_from_zero():
    cols = decode(buffer([[0, 100, f32(0.1), f32(0.0), 0]]), 1, 5, layout_for(101, "premium", 0), float("nan"), 1e-3)
    assert cols["time_s"] == pytest.approx([0.1])


def test_decoded_columns_do_not_alias_the_buffer():
    words = buffer([[0, 1, f32(0.5), f32(1e-3), 0]])
    cols = decode(words, 1, 5, layout_for(101, "premium", 0), 0.0, 1.0)
    words[:] = 0
    assert cols["ewe_v"][0] == pytest.approx(0.5)


def test_ieee_view_matches_struct():
    values = [0.0, -1.5, 3.4e38, 1e-30, 7e6]
    words = np.array([f32(v) for v in values], dtype=np.uint32)
    assert layouts.ieee_words_to_float(words) == pytest.approx(np.float32(values).astype(float))
