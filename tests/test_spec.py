"""HardwareSpec: presets, YAML round trip, immutability, and errors that name the field."""

import pytest
import yaml

import cimkit as ck
from cimkit.errors import SpecError


@pytest.mark.parametrize("name", ["rram-22nm", "pcm", "sram", "ideal"])
def test_presets_load_and_round_trip(name, tmp_path):
    spec = ck.HardwareSpec.preset(name)
    path = tmp_path / "chip.yaml"
    spec.to_yaml(path)
    assert ck.HardwareSpec.from_yaml(path) == spec


def test_required_presets_exist():
    assert {"rram-22nm", "pcm", "sram", "ideal"} <= set(ck.HardwareSpec.presets())


def test_rram_preset_is_neurosim_configuration():
    s = ck.HardwareSpec.preset("rram-22nm")
    assert s.device.g_max_us == pytest.approx(1e6 / 6000)
    assert s.device.on_off_ratio == pytest.approx(150)
    assert (s.array.rows, s.array.cols, s.device.bits_per_cell, s.weight_bits) == (128, 128, 2, 8)
    assert (s.periphery.adc_bits, s.periphery.columns_per_adc, s.periphery.dac_mode) == (5, 8, "bit_serial")
    assert s.technology.node_nm == 22


def test_spec_is_immutable():
    spec = ck.HardwareSpec.preset("ideal")
    with pytest.raises(Exception):
        spec.array.rows = 64  # type: ignore[misc]


def test_replace_validates_and_copies():
    spec = ck.HardwareSpec.preset("rram-22nm")
    other = spec.replace(**{"periphery.adc_bits": 7, "array.rows": 256})
    assert other.periphery.adc_bits == 7 and other.array.rows == 256
    assert spec.periphery.adc_bits == 5
    with pytest.raises(SpecError, match="unknown field 'adc_bitz'"):
        spec.replace(**{"periphery.adc_bitz": 3})
    with pytest.raises(SpecError, match="array.rows"):
        spec.replace(**{"array.rows": 0})


def test_resistances_convert_to_conductances():
    dev = ck.HardwareSpec.from_dict({"device": {"r_on_ohm": 10_000, "r_off_ohm": 1_000_000}}).device
    assert dev.g_max_us == pytest.approx(100.0) and dev.g_min_us == pytest.approx(1.0)


def _err(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(SpecError) as info:
        ck.HardwareSpec.from_yaml(p)
    return str(info.value)


def test_unknown_key_names_field_and_allowed_keys(tmp_path):
    msg = _err(tmp_path, "array:\n  rows: 128\n  rowz: 64\n")
    assert "array.rowz" in msg and "unknown key" in msg and "rows" in msg and "signed_mapping" in msg


@pytest.mark.parametrize(
    "text, field",
    [
        ("periphery:\n  adc_bits: 0\n", "periphery.adc_bits"),
        ("periphery:\n  input_bits: -3\n", "periphery.input_bits"),
        ("weight_bits: 0\n", "weight_bits"),
        ("device:\n  bits_per_cell: -1\n", "device.bits_per_cell"),
        ("array:\n  rows: 0\n", "array.rows"),
        ("periphery:\n  dac_mode: pwm\n", "periphery.dac_mode"),
        ("array:\n  signed_mapping: twos_complement\n", "array.signed_mapping"),
        ("device:\n  g_min_us: 50\n  g_max_us: 10\n", "g_min_us"),
    ],
)
def test_bad_values_name_field_value_and_allowed(tmp_path, text, field):
    msg = _err(tmp_path, text)
    assert field in msg
    value = str(yaml.safe_load(text)).split(": ")[-1].strip("}'")
    assert value in msg


def test_bit_serial_needs_integer_input_bits():
    with pytest.raises(SpecError, match="bit_serial"):
        ck.HardwareSpec.from_dict({"periphery": {"dac_mode": "bit_serial", "input_bits": None}})


def test_unknown_preset_lists_available():
    with pytest.raises(SpecError, match="available: .*rram-22nm"):
        ck.HardwareSpec.preset("nope")


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(SpecError, match="no such hardware description file"):
        ck.HardwareSpec.from_yaml(tmp_path / "missing.yaml")
    assert "not valid YAML" in _err(tmp_path, "array: [rows: 1\n")
