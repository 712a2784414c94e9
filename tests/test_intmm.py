"""The integer fast path gives the float32 answer: exact decompositions, and layer outputs equal
to the float32 path across datapath configurations."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import cimkit as ck
from cimkit.sim import tile as tile_module
from cimkit.sim.intmm import codes_to_int8, int_mm_available, int_product, split_int8

from .helpers import rel_err, spec_with

pytestmark = pytest.mark.skipif(not int_mm_available(), reason="torch._int_mm does not run on this build")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 40), st.integers(1, 30), st.integers(0, 2**31 - 1))
def test_integer_matrices_split_into_one_exact_term(t, k, n, seed):
    g = torch.Generator().manual_seed(seed)
    m = torch.randint(-127, 128, (t, k, n), generator=g).float()
    split = split_int8(m)
    assert split.terms.shape[0] == 1 and split.weights == (1.0,)
    assert torch.equal(split.terms[0].float(), m)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 30), st.floats(1e-3, 1e4), st.integers(0, 2**31 - 1))
def test_float_matrices_reconstruct_within_6e8_of_their_peak(k, n, magnitude, seed):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(2, k, n, generator=g, dtype=torch.float64) * magnitude
    split = split_int8(m)
    rebuilt = sum(split.terms[i].double() * w for i, w in enumerate(split.weights))
    assert float((rebuilt - m).abs().max()) <= 6.2e-8 * float(m.abs().max())


@pytest.mark.parametrize("max_code", [1, 127, 255])
def test_int_product_equals_the_float_product(max_code):
    g = torch.Generator().manual_seed(max_code)
    codes = torch.randint(0, max_code + 1, (33, 70), generator=g).float()
    m = torch.randn(1, 70, 19, generator=g) * 3
    x8, shift = codes_to_int8(codes, max_code)
    split = split_int8(m)
    out = int_product(x8, shift, split, 0, torch.empty(33, 19), torch.empty(33, 19, dtype=torch.int32))
    ref = (codes.double() @ m[0].double()).float()
    assert rel_err(out, ref) < 1e-6


CONFIGS = [
    {"periphery.dac_mode": "bit_serial", "array.signed_mapping": "offset", "device.bits_per_cell": 2},
    {"periphery.dac_mode": "multi_level", "array.signed_mapping": "differential", "device.bits_per_cell": 8},
    {
        "periphery.dac_mode": "multi_level",
        "array.signed_mapping": "offset",
        "device.bits_per_cell": 3,
        "device.drift_nu": 0.05,
        "device.drift_nu_std": 0.01,
    },
    {
        "periphery.dac_mode": "bit_serial",
        "array.signed_mapping": "differential",
        "device.bits_per_cell": 1,
        "array.wire_resistance_ohm": 1.0,
        "array.ir_drop": "first_order",
        "device.stuck_off_rate": 0.05,
    },
]


@pytest.mark.parametrize("changes", CONFIGS)
@pytest.mark.parametrize("signed_inputs", [False, True])
def test_layer_outputs_match_the_float32_path(changes, signed_inputs, monkeypatch):
    lin = nn.Linear(300, 40)
    x = torch.randn(16, 300) if signed_inputs else torch.rand(16, 300)
    spec = spec_with(
        "rram-22nm",
        **{"periphery.adc_bits": 8, "periphery.adc_range": "fixed", "device.read_noise_model": "none", **changes},
    )
    fast = ck.convert(lin, spec, seed=4, t_inference_s=1e4)
    slow = ck.convert(lin, spec, seed=4, t_inference_s=1e4)
    with torch.no_grad():
        monkeypatch.setattr(tile_module, "int8_is_fast", lambda: True)  # whether or not it is, on this CPU
        a = fast(x)
        assert any(arr.int_split is not None for arr in fast.tile._arrays.values())
        monkeypatch.setattr(tile_module, "int8_is_fast", lambda: False)
        b = slow(x)
        assert all(arr.int_split is None for arr in slow.tile._arrays.values())
    # equal up to float32 rounding; a rounding tie at an ADC threshold may move one conversion by a step
    assert rel_err(a, b) < 1e-4
    assert float((a - b).abs().gt(1e-3 * b.abs().max()).float().mean()) < 0.01


def test_the_int8_choice_is_measured_once_per_machine_and_can_be_forced(tmp_path, monkeypatch):
    from cimkit.sim import intmm

    monkeypatch.setenv("CIMKIT_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(intmm, "_int8_three_times_faster", lambda: calls.append(1) or True)
    monkeypatch.setattr(intmm, "cpu_flags", lambda: frozenset({"avx512_vnni"}))
    try:
        for forced, expected in (("0", False), ("1", True)):
            monkeypatch.setenv("CIMKIT_INT8", forced)
            intmm.int8_is_fast.cache_clear()
            assert intmm.int8_is_fast() is expected
        assert calls == []  # forced: nothing measured
        monkeypatch.delenv("CIMKIT_INT8")
        for _ in range(2):  # measured once, then read back from the cache folder (a new process would too)
            intmm.int8_is_fast.cache_clear()
            assert intmm.int8_is_fast() is True
        assert calls == [1] and len(list((tmp_path / "cpu").glob("int8_*.json"))) == 1
        monkeypatch.setattr(intmm, "cpu_flags", lambda: frozenset({"avx2"}))  # no int8 instructions: never
        intmm.int8_is_fast.cache_clear()
        assert intmm.int8_is_fast() is False
    finally:
        intmm.int8_is_fast.cache_clear()
