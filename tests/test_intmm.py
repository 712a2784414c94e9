"""The integer fast path gives the float32 answer: exact decompositions, and layer outputs equal
to the float32 path across datapath configurations."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import cimkit as ck
from cimkit.sim import tile as tile_module
from cimkit.sim.intmm import IntTerms, codes_to_int8, int_mm_available, split_int8

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
def test_integer_terms_give_the_float_product(max_code):
    """Codes (shifted by -128 above 127) times a float matrix's int8 terms, combined in float64 with the
    column sums undoing the shift, are the float product to float32 precision."""
    g = torch.Generator().manual_seed(max_code)
    codes = torch.randint(0, max_code + 1, (33, 70), generator=g).float()
    m = torch.randn(1, 70, 19, generator=g) * 3
    x8, shift = codes_to_int8(codes, max_code)
    split = split_int8(m)
    values = torch.stack([torch._int_mm(x8, t[0]) for t in split.terms], 1)  # (M, J, N)
    terms = IntTerms(values.view(1, 1, 33, -1, 1, 19), split.weights, len(split.weights), split.column_sums(), shift)
    ref = (codes.double() @ m[0].double()).float()
    assert rel_err(terms.signal().view(33, 19), ref) < 1e-6
    assert terms.variance() is None


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


CONV_CONFIGS = [  # (changes, conv keyword arguments)
    ({"periphery.dac_mode": "bit_serial", "device.bits_per_cell": 2}, {"padding": 1}),
    (
        {"periphery.dac_mode": "bit_serial", "array.conv_mapping": "im2col"},
        {"stride": 2, "groups": 2, "in_channels": 44},
    ),
    ({"periphery.dac_mode": "multi_level", "array.signed_mapping": "differential"}, {"padding": 1, "dilation": 2}),
    ({"periphery.dac_mode": "multi_level", "array.signed_mapping": "offset", "device.bits_per_cell": 3}, {}),
    ({"periphery.dac_mode": "bit_serial"}, {"kernel_size": 1, "in_channels": 200}),  # 1x1: 128 + 72 channels
]


@pytest.mark.parametrize(("changes", "conv_kw"), CONV_CONFIGS)
def test_convolution_outputs_match_the_float32_path(changes, conv_kw, monkeypatch):
    """Convolutions on the integer path (bit planes packed into bytes, or 8-bit codes shifted into int8
    with the rows' column sums undoing the shift, also on a last row tile with fewer rows) give the
    float32 path's outputs."""
    torch.manual_seed(5)
    kw = {"in_channels": 22, **conv_kw}  # 22 x 9 = 198 rows per group: two row tiles, the last partly used
    kw = {"kernel_size": 3, **kw}
    conv = nn.Conv2d(out_channels=12, **kw)
    x = torch.rand(3, kw["in_channels"], 11, 11)
    spec = spec_with(
        "rram-22nm",
        **{"periphery.adc_bits": 8, "periphery.adc_range": "fixed", "device.read_noise_model": "none", **changes},
    )
    fast = ck.convert(conv, spec, seed=4)
    slow = ck.convert(conv, spec, seed=4)
    with torch.no_grad():
        monkeypatch.setattr(tile_module, "int8_is_fast", lambda: True)
        a = fast(x)
        assert any(arr.int_split is not None for arr in fast.tile._arrays.values())
        monkeypatch.setattr(tile_module, "int8_is_fast", lambda: False)
        b = slow(x)
    assert fast.mapping.row_tiles == 2
    # equal up to float32 rounding; a rounding tie at an ADC threshold may move one conversion by a step
    assert rel_err(a, b) < 2e-3
    assert float((a - b).abs().gt(1e-3 * b.abs().max()).float().mean()) < 0.01


def _chunks(layer, x, int_path: bool, monkeypatch):
    """The conv layer's chunks of partial sums for 8 bit planes of ``x``'s codes, as float32 (signal,
    variance) pairs, on the integer or the float32 path."""
    from cimkit.sim import kernel, quant

    monkeypatch.setattr(tile_module, "int8_is_fast", lambda: int_path)
    layer.tile._arrays = {}
    codes = quant.quantize_input(x, 8, float(x.max()) / 255, False)
    planes, _ = quant.bit_planes(codes, 8, False)
    xl = layer.layout.place(planes.flatten(0, 1))
    arrays = layer.tile.arrays(layer.layout, torch.float32, xl.device)
    var_dtype = arrays.variance.dtype
    out = []
    for ch in layer.layout.chunks(xl, 8, 1.0, arrays, lambda v: v.to(var_dtype), kernel.chunk_scratch, True):
        c = ch.signal
        var = c.variance() if isinstance(c, IntTerms) else ch.variance.float().clone()  # chunks are scratch views
        c = c.signal() if isinstance(c, IntTerms) else c.clone()
        out.append((c, var))
    return out


def test_binary_passes_read_their_variances_in_the_same_integer_product(monkeypatch):
    """With read noise, bit planes on the integer path carry the variances as two more int8 terms: their
    partial sums equal the float32 path's, and their variances the float32 variance product's to within
    1.6e-5 of the largest cell variance per row read (an absolute bound: the terms share one scale)."""
    torch.manual_seed(6)
    monkeypatch.setattr(tile_module, "variance_dtype", lambda: torch.float32)
    layer = ck.convert(nn.Conv2d(16, 8, 3, padding=1), "rram-22nm", seed=2)
    x = torch.relu(torch.randn(2, 16, 7, 7))
    fast = _chunks(layer, layer.layout.prepare(x), True, monkeypatch)
    slow = _chunks(layer, layer.layout.prepare(x), False, monkeypatch)
    peak = float(layer.tile.variance.max())
    assert len(fast) == len(slow)
    for (c_int, v_int), (c_f, v_f) in zip(fast, slow):
        assert rel_err(c_int, c_f) < 1e-6
        assert rel_err(v_int, v_f) < 1e-3
        assert float((v_int - v_f).abs().max()) <= layer.mapping.rows_per_tile * 1.6e-5 * peak + 1e-6 * float(v_f.max())
        assert bool((v_int[c_int == 0] == 0).all())  # windows that read no current read no noise


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 2),
    st.integers(1, 3),
    st.integers(1, 9),
    st.integers(1, 3),
    st.integers(1, 300),
    st.integers(1, 3),
    st.integers(0, 2),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_the_kernel_and_the_torch_chain_read_integer_terms_alike(o, r, m, s, z, n_signal, n_var, shifted, seed):
    from cimkit.sim import fused
    from cimkit.sim.rng import CounterNormal

    g = torch.Generator().manual_seed(seed)
    j = n_signal + n_var
    values = torch.randint(-16002, 16003, (o, r, m, j, s, z), generator=g, dtype=torch.int32)
    if n_var:  # variances are sums of non-negative terms
        values[:, :, :, n_signal:] = values[:, :, :, n_signal:].abs()
    weights = tuple(float(w) for w in torch.rand(j, generator=g, dtype=torch.float64) * 1e-2)
    col_sums = torch.randn(o, s * z, generator=g) * 50
    terms = IntTerms(values, weights, n_signal, col_sums if shifted else None, 128.0 if shifted else 0.0)
    var = None if n_var else torch.rand(o, r, m, s, z, generator=g)
    where = fused.Place(r, m, counter=CounterNormal(seed).next_counter())
    inv = torch.rand(s, generator=g) + 0.5
    f = torch.rand(r, s, generator=g)
    accs = []
    for native in (None, False):
        acc = torch.zeros(o, m, z)
        fused.read_chain(terms, var, CounterNormal(0), where, inv, -128, 127, f, acc, native=native)
        accs.append(acc)
    assert torch.equal(accs[0], accs[1])
