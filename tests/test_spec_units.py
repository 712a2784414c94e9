"""The spec as a chip of typed units (issue 11, point 3).

- A spec has a crossbar unit (the device / array / periphery / technology / chip sections, unchanged) and a
  digital unit (``digital``); ``routing`` sends an op kind to a unit, and kinds it does not list run on
  their default unit. A route that names an unknown kind, an unknown unit, or a unit that cannot run the
  kind is refused with the kind, the unit and what the unit runs.
- Cells have a write energy, a row write time and an endurance; the chip an optional inference rate.
- Option strings resolve through registries: ``device.read_noise_model`` (``cimkit.spec.noise.READ_NOISE``),
  ``periphery.dac_mode`` (``cimkit.spec.units.DAC_MODES``), ``chip.adc_type`` (the cost model's
  ``ADC_KINDS``). A plug-in registers a name and specs and the simulator accept it.
- Every existing file keeps loading with the same values, and the simulator's outputs do not change.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import cimkit as ck
from cimkit.errors import InputError, SpecError
from cimkit.spec import (
    DAC_MODES,
    READ_NOISE,
    UNIT_TYPES,
    DacMode,
    ReadNoiseModel,
    register_dac_mode,
    register_unit_type,
)
from cimkit.spec.model import BUILTIN_ADC_KINDS
from cimkit.spec.units import _bits

from .helpers import quiet_convert, spec_with

ROOT = Path(__file__).resolve().parents[1]
NEW_FIELDS = {
    "digital": None,
    "routing": None,
    "ap": None,
    "cam_attention": None,
    "neuron": None,
    "device": {"write_energy_pj", "write_time_ns", "endurance_cycles"},
    "chip": {"inferences_per_s"},
    "periphery": {"adc_range_per_input_bit", "signed_inputs"},
}


def _err(data) -> str:
    with pytest.raises(SpecError) as info:
        ck.HardwareSpec.from_dict(data)
    return str(info.value)


@pytest.fixture
def plugins():
    """Names registered by a test, removed from their registry afterwards (registries have no public
    removal: a plug-in stays for the life of the process)."""
    added = []
    yield lambda registry, name: added.append((registry, name))
    for registry, name in added:
        registry._entries.pop(name, None)


# ---- existing files ------------------------------------------------------------------------------------

#: sha256 (first 16 hex digits) of the canonical JSON of ``model_dump(mode="json")`` of each file, taken
#: from the spec before issue 11 (commit 5c78904), when the spec had none of NEW_FIELDS
BEFORE = {
    "ideal": "50d433db88bd961b",
    "neurram": "f7e9826f2957f116",
    "pcm": "a58ce786e643492a",
    "rram-22nm": "f4b7b9d9b18e44fa",
    "sram": "1881d65c52b89223",
    "examples/joint_base.yaml": "f49f3b6ba2eb4357",
}


#: defaults issue 12 turned into null ("modeled": the node's nominal supply, the array's read time, half the
#: rows as bus width), with the value each had before; an explicit value is kept as written
NULLED = {("technology", "supply_v"): 0.8, ("periphery", "read_latency_ns"): 1.0, ("chip", "buffer_bus_bits"): 64}


def _old_fields(dump: dict) -> dict:
    for (section, key), old in NULLED.items():
        if dump.get(section, {}).get(key, old) is None:
            dump[section][key] = old
    out = {}
    for key, value in dump.items():
        if key in NEW_FIELDS and NEW_FIELDS[key] is None:
            continue
        out[key] = {k: v for k, v in value.items() if k not in NEW_FIELDS[key]} if key in NEW_FIELDS else value
    return out


def _load(name: str) -> ck.HardwareSpec:
    return ck.HardwareSpec.from_yaml(ROOT / name) if name.endswith(".yaml") else ck.HardwareSpec.preset(name)


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_existing_files_load_with_the_values_they_had(name):
    dump = _old_fields(_load(name).model_dump(mode="json"))
    assert hashlib.sha256(json.dumps(dump, sort_keys=True).encode()).hexdigest()[:16] == BEFORE[name]


def test_every_preset_is_covered_and_every_value_written_in_a_preset_is_the_specs():
    assert set(ck.HardwareSpec.presets()) <= set(BEFORE)
    for name in ck.HardwareSpec.presets():
        spec = ck.HardwareSpec.preset(name)
        written = yaml.safe_load((Path(ck.spec.model.PRESET_DIR) / f"{name}.yaml").read_text())
        dump = spec.model_dump()
        for key, value in written.items():
            if not isinstance(value, dict):
                assert dump[key] == value, (name, key)
                continue
            for field, v in value.items():
                if field in ("r_on_ohm", "r_off_ohm"):
                    field, v = {"r_on_ohm": "g_max_us", "r_off_ohm": "g_min_us"}[field], 1e6 / v
                got = dump[key][field]
                assert (list(got) if isinstance(got, tuple) else got) == v, (name, key, field)


def test_every_hardware_file_in_the_repository_loads_and_round_trips(tmp_path):
    files = [ROOT / "examples/joint_base.yaml", *Path(ck.spec.model.PRESET_DIR).glob("*.yaml")]
    for path in files:
        spec = ck.HardwareSpec.from_yaml(path)
        spec.to_yaml(tmp_path / "again.yaml")
        assert ck.HardwareSpec.from_yaml(tmp_path / "again.yaml") == spec
    routed = spec_with("rram-22nm", **{"digital.lanes": 128}).replace(routing={"matmul": "crossbar"})
    routed.to_yaml(tmp_path / "routed.yaml")
    assert ck.HardwareSpec.from_yaml(tmp_path / "routed.yaml") == routed


def test_import_and_preset_loading_do_not_need_torch():
    code = (
        "import sys, cimkit.spec as s\n"
        "[s.HardwareSpec.preset(n) for n in s.HardwareSpec.presets()]\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---- units and routing ----------------------------------------------------------------------------------


def test_builtin_unit_types_and_what_they_run():
    assert {"crossbar", "digital"} <= set(UNIT_TYPES.names())
    assert UNIT_TYPES.get("crossbar").kinds() == {"linear", "conv", "matmul"}
    import cimkit.workload  # noqa: F401 - registers the "kv_cache" kind, whose default unit is digital (a plug-in)

    # "neuron" (spiking neuron updates) and "kv_cache" run on the digital unit by default

    assert UNIT_TYPES.get("digital").runs == {"matmul", "softmax", "norm", "act", "eltwise", "pool", "embedding"}
    assert UNIT_TYPES.get("digital").kinds() == UNIT_TYPES.get("digital").runs | {"kv_cache", "neuron"}
    assert UNIT_TYPES.get("digital").can_run("kv_cache") and not UNIT_TYPES.get("crossbar").can_run("kv_cache")


def test_digital_section_defaults_and_bounds():
    d = ck.HardwareSpec().digital
    assert (d.lanes, d.data_bits) == (64, 16)
    assert "digital.lanes" in _err({"digital": {"lanes": 0}})
    assert "digital.data_bits" in _err({"digital": {"data_bits": 0}})
    assert "digital.clock" in _err({"digital": {"clock": 1}}) and "unknown key" in _err({"digital": {"clock": 1}})


def test_without_routing_each_kind_runs_on_its_default_unit():
    spec = ck.HardwareSpec.preset("rram-22nm")
    assert spec.routing == {}
    assert spec.unit_for("linear") == spec.unit_for("conv") == "crossbar"
    for kind in ("matmul", "softmax", "norm", "act", "eltwise", "pool", "embedding"):
        assert spec.unit_for(kind) == "digital"
    with pytest.raises(InputError, match="softmax"):
        spec.unit_for("no_such_kind")


def test_routing_overrides_the_default_unit():
    spec = ck.HardwareSpec.preset("rram-22nm").replace(routing={"matmul": "crossbar"})
    assert spec.unit_for("matmul") == "crossbar"  # CIM arrays rewritten per input
    assert spec.unit_for("softmax") == "digital"
    assert ck.HardwareSpec.from_dict({"routing": {"linear": "crossbar", "act": "digital"}}).unit_for("act") == "digital"


@pytest.mark.parametrize(
    "routing, expected",
    [
        # a unit that cannot run the kind: the kind, the unit and what it runs
        ({"softmax": "crossbar"}, ["routing", "'softmax'", "'crossbar'", "cannot run", "conv, linear, matmul"]),
        (
            {"linear": "digital"},
            [
                "'linear'",
                "'digital'",
                "cannot run",
                "act, eltwise, embedding, kv_cache, matmul, neuron, norm, pool, softmax",
            ],
        ),
        # an unknown unit: the kind, the unit and the units there are
        ({"softmax": "npu"}, ["'softmax'", "'npu'", "not a unit", "units: crossbar, digital"]),
        # an unknown op kind: the kind, its unit and the kinds there are
        ({"attention": "digital"}, ["'attention'", "'digital'", "not a registered op kind", "linear", "softmax"]),
        # not strings / not a mapping
        ({"softmax": 3}, ["routing.softmax = 3", "valid string"]),
        (["softmax"], ["routing = ['softmax']", "valid dictionary"]),
    ],
)
def test_bad_routes_are_refused_naming_kind_unit_and_what_the_unit_runs(routing, expected):
    msg = _err({"routing": routing})
    for part in expected:
        assert part in msg, (part, msg)


def test_a_bad_route_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "chip.yaml"
    path.write_text("routing:\n  softmax: crossbar\n")
    with pytest.raises(SpecError, match=r"chip\.yaml(.|\n)*softmax(.|\n)*crossbar"):
        ck.HardwareSpec.from_yaml(path)


def test_a_plugin_unit_type_can_be_routed_to(plugins):
    assert "not a unit" in _err({"routing": {"eltwise": "ap_test"}})
    register_unit_type("ap_test", {"eltwise", "act"}, "associative processor (test)")
    plugins(UNIT_TYPES, "ap_test")
    spec = ck.HardwareSpec.from_dict({"routing": {"eltwise": "ap_test"}})
    assert spec.unit_for("eltwise") == "ap_test"
    assert "'ap_test' runs act, eltwise" in _err({"routing": {"softmax": "ap_test"}})


# ---- cell writes and endurance ---------------------------------------------------------------------------


def test_write_fields_of_the_presets():
    rram, pcm, sram = (ck.HardwareSpec.preset(n).device for n in ("rram-22nm", "pcm", "sram"))
    assert (rram.write_energy_pj, rram.write_time_ns, rram.endurance_cycles) == (20.0, 60.0, 1e6)
    assert pcm.endurance_cycles == 1e8 and sram.endurance_cycles == 1e16
    assert sram.write_energy_pj < 1 < rram.write_energy_pj  # fJ-range SRAM writes, pJ-range RRAM writes
    assert ck.HardwareSpec().chip.inferences_per_s is None
    assert ck.HardwareSpec(chip={"inferences_per_s": 30.0}).chip.inferences_per_s == 30.0


@pytest.mark.parametrize(
    "section, field, value",
    [
        ("device", "write_energy_pj", -1.0),
        ("device", "write_time_ns", -0.5),
        ("device", "endurance_cycles", 0),
        ("device", "endurance_cycles", -1e6),
        ("chip", "inferences_per_s", 0),
        ("chip", "inferences_per_s", -3.0),
        ("device", "write_energy_pj", True),
    ],
)
def test_write_and_rate_fields_refuse_negative_or_zero(section, field, value):
    msg = _err({section: {field: value}})
    assert f"{section}.{field}" in msg and str(value) in msg


# ---- read-noise models -----------------------------------------------------------------------------------


def test_read_noise_registry_and_errors():
    assert set(READ_NOISE.names()) >= {"none", "proportional", "additive", "pcm"}
    msg = _err({"device": {"read_noise_model": "telegraph"}})
    assert "device.read_noise_model = 'telegraph'" in msg and "none, proportional, additive, pcm" in msg
    assert "valid string" in _err({"device": {"read_noise_model": 1}})


def _state_and_cells(preset: str, t_s: float = 20.0):
    from cimkit.sim import program

    spec = ck.HardwareSpec.preset(preset)
    m = ck.map_matrix(40, 12, spec)
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(1, 12, 40, generator=gen)
    state, _, _ = program.program(w, spec, m, lambda shape: torch.randn(shape, generator=gen))
    return spec, state, program.drifted(state, spec, t_s)


@pytest.mark.parametrize(
    "preset, model, frac, t_s",
    [
        ("rram-22nm", "proportional", 0.01, 20.0),
        ("rram-22nm", "additive", 0.03, 20.0),
        ("pcm", "pcm", 0.2, 20.0),
        ("pcm", "pcm", 0.2, 86400.0),
        ("pcm", "pcm", 0.05, 1.0),
    ],
)
def test_read_variance_is_the_models_formula_bit_for_bit(preset, model, frac, t_s):
    """The simulator's read variance equals each model's formula written out here (as sim/program.py
    computed it before the models moved into cimkit.spec.noise), to the last bit."""
    from cimkit.sim import program

    spec, state, g = _state_and_cells(preset, t_s)
    spec = spec.replace(**{"device.read_noise_model": model, "device.read_noise_frac": frac})
    dev = spec.device
    g_max = state.beta + (dev.g_max_us - dev.g_min_us) * 1e-6 / state.g_unit_s
    if model == "proportional":  # frac^2 * sum over the polarities of g^2, squares added by FMA
        expected = torch.mul(g[0], g[0])
        for pol in g[1:]:
            expected.addcmul_(pol, pol)
        expected.mul_(frac**2)
    elif model == "additive":
        expected = torch.full_like(g[0], g.shape[0] * (frac * g_max) ** 2)
    else:  # Nandakumar et al. 2019 1/f noise, Q_s = min(0.0088 / x^0.65, cap)
        t = max(t_s, dev.drift_t0_s)
        q_s = (0.0088 / (g / g_max).clamp(min=1e-3) ** 0.65).clamp(max=frac)
        sigma = g * q_s * math.sqrt(math.log((t + dev.read_time_s) / (2 * dev.read_time_s)))
        expected = sigma.square().sum(0)
    got = program.read_variance(g, state, spec, t_s)
    assert torch.equal(got, expected)
    buffer = torch.empty_like(g[0])
    assert torch.equal(program.read_variance(g, state, spec, t_s, out=buffer), expected)
    assert program.read_variance(g, state, spec.replace(**{"device.read_noise_model": "none"}), t_s) is None
    assert program.read_variance(g, state, spec.replace(**{"device.read_noise_frac": 0.0}), t_s) is None


def test_noise_models_work_on_numpy_arrays_too():
    import numpy as np

    dev = ck.HardwareSpec.preset("pcm").device
    g = np.array([[0.5, 10.0, 25.0], [1.0, 0.0, 3.0]], dtype=np.float32)
    gt = torch.from_numpy(g)
    for name in ("proportional", "additive", "pcm"):
        model = READ_NOISE.get(name)
        got = model.variance(g, 25.0, dev, 3600.0)
        assert isinstance(got, np.ndarray)
        np.testing.assert_allclose(got, model.variance(gt, 25.0, dev, 3600.0).numpy(), rtol=1e-6)
        np.testing.assert_allclose(got, (model.std(g, 25.0, dev, 3600.0) ** 2).sum(0), rtol=1e-6)


class _SquareRootNoise(ReadNoiseModel):
    """Test plug-in: std = read_noise_frac * sqrt(g * g_max)."""

    def std(self, g, g_max, device, t_s):
        return device.read_noise_frac * (g * g_max) ** 0.5


def test_a_plugin_read_noise_model_is_used_by_the_spec_and_the_simulator(plugins):
    with pytest.raises(SpecError, match="sqrt_test"):
        spec_with("rram-22nm", **{"device.read_noise_model": "sqrt_test"})
    READ_NOISE.register("sqrt_test", _SquareRootNoise())
    plugins(READ_NOISE, "sqrt_test")
    changes = {"device.read_noise_frac": 0.05, "periphery.adc_bits": None, "array.ir_drop": "none"}
    spec = spec_with("rram-22nm", **{"device.read_noise_model": "sqrt_test", **changes})
    torch.manual_seed(0)
    lin, x = torch.nn.Linear(40, 6), torch.randn(5, 40)
    with torch.no_grad():
        noisy = quiet_convert(lin, spec, seed=0)(x)
        quiet = quiet_convert(lin, spec.replace(**{"device.read_noise_model": "none"}), seed=0)(x)
        again = quiet_convert(lin, spec, seed=0)(x)
    assert not torch.equal(noisy, quiet) and torch.equal(noisy, again)
    # the simulator's variance is the plug-in's: sum over the pair of frac^2 * g * g_max
    from cimkit.sim import program

    _, state, g = _state_and_cells("rram-22nm")
    s = spec.replace(**{"device.read_noise_frac": 0.05})
    g_max = state.beta + (s.device.g_max_us - s.device.g_min_us) * 1e-6 / state.g_unit_s
    torch.testing.assert_close(program.read_variance(g, state, s, 20.0), (0.05**2 * g * g_max).sum(0))


# ---- DAC modes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, bits, passes, pulses, planes",
    [
        ("multi_level", 8, 1, 1, False),
        ("bit_serial", 8, 8, 1, True),
        ("bit_serial", 3, 3, 1, True),
        ("pulse_train", 4, 1, 4, False),
        ("pulse_train", 1, 1, 2, False),
        ("multi_level", None, 1, 1, False),
    ],
)
def test_dac_modes_say_passes_pulses_and_bit_planes(mode, bits, passes, pulses, planes):
    p = ck.HardwareSpec(periphery={"dac_mode": mode, "input_bits": bits}).periphery
    assert (p.input_passes, p.pulses_per_read, p.dac.bit_planes) == (passes, pulses, planes)
    assert DAC_MODES.get(mode) is p.dac


def test_dac_mode_errors():
    msg = _err({"periphery": {"dac_mode": "pwm"}})
    assert "periphery.dac_mode = 'pwm'" in msg and "multi_level, bit_serial, pulse_train" in msg
    assert "bit_serial" in _err({"periphery": {"dac_mode": "bit_serial", "input_bits": None}})


def test_a_plugin_dac_mode_is_used_by_the_spec_and_the_simulator(plugins):
    register_dac_mode(
        DacMode(
            "planes_test",
            "bit planes, as bit_serial (test)",
            input_passes=_bits,
            bit_planes=True,
            binary=True,
            needs_input_bits=True,
        )
    )
    plugins(DAC_MODES, "planes_test")
    serial = spec_with("rram-22nm", **{"device.read_noise_model": "none"})
    plugin = serial.replace(**{"periphery.dac_mode": "planes_test"})
    assert plugin.periphery.input_passes == 8
    assert "needs an integer input_bits" in _err({"periphery": {"dac_mode": "planes_test", "input_bits": None}})
    torch.manual_seed(0)
    lin, x = torch.nn.Linear(40, 6), torch.randn(5, 40)
    with torch.no_grad():
        assert torch.equal(quiet_convert(lin, plugin, seed=0)(x), quiet_convert(lin, serial, seed=0)(x))


def test_bit_plane_drive_reconstructs_the_codes():
    from cimkit.sim import kernel
    from cimkit.spec.model import PeripherySpec

    codes = torch.tensor([[-8.0, -1.0, 0.0, 5.0, 7.0]])
    enc = kernel.Encoding(1.0, True, 4)
    serial = PeripherySpec(input_bits=4, dac_mode="bit_serial")
    planes, weights, binary, code_max = kernel.drive(codes, enc, serial, 7.0)
    assert binary and code_max == 1.0 and planes.shape[0] == 4
    assert torch.equal(sum(w * p for w, p in zip(weights, planes)), codes)
    one, w1, binary, code_max = kernel.drive(codes, enc, PeripherySpec(input_bits=4, dac_mode="pulse_train"), 7.0)
    assert not binary and w1 == [1.0] and torch.equal(one[0], codes) and code_max == 7.0


# ---- ADC kinds ------------------------------------------------------------------------------------------


def test_adc_type_is_checked_against_the_adc_kinds(plugins):
    for kind in BUILTIN_ADC_KINDS:
        assert ck.HardwareSpec(chip={"adc_type": kind}).chip.adc_type == kind
    msg = _err({"chip": {"adc_type": "flash_test"}})
    assert "chip.adc_type = 'flash_test'" in msg and "mlsa, sar, survey, integrate_fire" in msg
    from cimkit.cost.components import ADC_KINDS

    ADC_KINDS.register("flash_test", ADC_KINDS.get("mlsa"))
    plugins(ADC_KINDS, "flash_test")
    assert ck.HardwareSpec(chip={"adc_type": "flash_test"}).chip.adc_type == "flash_test"


def test_schema_descriptions_list_the_builtin_options():
    defs = ck.HardwareSpec.model_json_schema()["$defs"]
    descriptions = {
        "adc_type": defs["ChipSpec"]["properties"]["adc_type"]["description"],
        "dac_mode": defs["PeripherySpec"]["properties"]["dac_mode"]["description"],
        "read_noise_model": defs["DeviceSpec"]["properties"]["read_noise_model"]["description"],
    }
    for name in BUILTIN_ADC_KINDS:
        assert f"'{name}'" in descriptions["adc_type"]
    for name in ("multi_level", "bit_serial", "pulse_train"):
        assert f"'{name}'" in descriptions["dac_mode"]
    for name in ("none", "proportional", "additive", "pcm"):
        assert f"'{name}'" in descriptions["read_noise_model"]


def test_a_routing_entry_can_be_set_by_its_dotted_path():
    spec = ck.HardwareSpec.preset("rram-22nm")
    assert spec.replace(**{"routing.matmul": "crossbar"}).routing == {"matmul": "crossbar"}
    with pytest.raises(SpecError, match=r"op kind 'softmax' is routed to unit 'crossbar', which cannot run it"):
        spec.replace(**{"routing.softmax": "crossbar"})
    with pytest.raises(SpecError, match=r"chip.foo: unknown field 'foo'"):
        spec.replace(**{"chip.foo": 1})
