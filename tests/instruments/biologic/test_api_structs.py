"""Struct layout of the EClib binding (4-byte packing) and the encoding of TEccParam values."""
import ctypes
import struct
import sys

import pytest

from instruments.biologic import api
from instruments.biologic.techniques import EccValue


def test_data_infos_is_packed_to_four_bytes():
    assert api.TDataInfos.StartTime.offset == 28
    assert api.TDataInfos.MuxPad.offset == 36
    assert ctypes.sizeof(api.TDataInfos) == 40


@pytest.mark.parametrize("struct_type, size", [
    (api.TDeviceInfos, 11 * 4), (api.TChannelInfos, 21 * 4), (api.TCurrentValues, 19 * 4),
    (api.TDataBuffer, 4000), (api.TEccParam, 64 + 3 * 4),
])
def test_struct_sizes(struct_type, size):
    assert ctypes.sizeof(struct_type) == size


def test_field_offsets_follow_the_manual():
    assert api.TCurrentValues.TimeBase.offset == 8
    assert api.TCurrentValues.I.offset == 40
    assert api.TCurrentValues.ElapsedTime.offset == 52
    assert api.TChannelInfos.FirmwareCode.offset == 12
    assert api.TChannelInfos.MemFilled.offset == 52
    assert api.TChannelInfos.FloatFormat.offset == 76
    assert api.TEccParam.ParamType.offset == 64
    assert api.TEccParam.ParamVal.offset == 68
    assert api.TEccParam.ParamIndex.offset == 72
    # len is followed directly by the pointer: no 8-byte alignment gap on 64-bit Python
    assert api.TEccParams.pParams.offset == 4
    assert ctypes.sizeof(api.TEccParams) == 4 + ctypes.sizeof(ctypes.c_void_p)


@pytest.mark.parametrize("value, bits", [(1.0, 0x3F800000), (-2.5, 0xC0200000), (0.1, 0x3DCCCCCD),
                                         (7e6, 0x4AD59F80)])
def test_single_parameter_is_sent_as_ieee_bits(value, bits):
    param = EccValue("Amplitude_Voltage", "single", value, 3).to_struct()
    assert param.ParamType == api.PARAM_SINGLE
    assert param.ParamVal & 0xFFFFFFFF == bits
    assert param.ParamIndex == 3
    raw = bytes(param)
    assert raw[:17] == b"Amplitude_Voltage" and raw[17:64] == bytes(47)
    assert struct.unpack_from("<iiI", raw, 64) == (2, param.ParamVal, 3)


def test_bool_and_int_parameters():
    assert EccValue("sweep", "bool", True).to_struct().ParamVal == 1
    assert EccValue("sweep", "bool", False).to_struct().ParamType == api.PARAM_BOOL
    p = EccValue("I_Range", "int", -1).to_struct()
    assert (p.ParamType, p.ParamVal) == (api.PARAM_INT, -1)


def test_biologic_error_names_function_code_and_meaning():
    err = api.BiologicError("BL_LoadTechnique", -401, "peis.ecc")
    assert err.code == -401 and err.name == "ERR_TECH_INCOMPATIBLEECC"
    text = str(err)
    assert "BL_LoadTechnique" in text and "-401" in text and "not compatible" in text and "peis.ecc" in text
    assert api.BiologicError("BL_GetData", -12345).name.startswith("ERR_UNKNOWN")


def test_every_function_has_an_int_or_bool_return_type():
    for name, (restype, argtypes) in api.FUNCTIONS.items():
        assert restype in (ctypes.c_int32, ctypes.c_bool), name
        assert isinstance(argtypes, list)


@pytest.mark.skipif(sys.platform == "win32", reason="checks the non-Windows refusal")
def test_real_dll_refused_off_windows(tmp_path):
    fake_path = tmp_path / "EClib64.dll"
    fake_path.write_bytes(b"MZ")
    with pytest.raises(api.LibraryNotAvailable, match="only on Windows"):
        api.load_eclib(fake_path)
    with pytest.raises(api.LibraryNotAvailable, match="dll_path is empty"):
        api.load_eclib("")
