"""Quantizers of the datapath: properties that hold for every input (hypothesis)."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cimkit.sim.quant import (
    adc,
    adc_code_limits,
    aligned_adc_step,
    bit_planes,
    input_code_limits,
    quantize_input,
    slice_magnitudes,
)

floats = st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=64)


@settings(max_examples=80, deadline=None)
@given(floats, st.integers(1, 12), st.booleans(), st.floats(1e-3, 10))
def test_input_quantizer_codes_and_error(values, bits, signed, scale):
    x = torch.tensor(values)
    q = quantize_input(x, bits, scale, signed)
    lo, hi = input_code_limits(bits, signed)
    assert torch.equal(q, q.round()) and q.min() >= lo and q.max() <= hi
    inside = (x / scale >= lo - 0.5) & (x / scale <= hi + 0.5)
    assert torch.all((q * scale - x)[inside].abs() <= scale / 2 * (1 + 1e-5) + 1e-6)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 12), st.booleans(), st.data())
def test_bit_planes_recombine_exactly(bits, signed, data):
    lo, hi = input_code_limits(bits, signed)
    codes = torch.tensor(data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=50)), dtype=torch.float32)
    planes, weights = bit_planes(codes, bits, signed)
    assert set(planes.unique().tolist()) <= {0.0, 1.0}
    recombined = sum(w * p for w, p in zip(weights, planes))
    assert torch.equal(recombined, codes)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 8), st.integers(1, 16), st.data())
def test_slices_recombine_exactly(bits_per_cell, total_bits, data):
    slices = math.ceil(total_bits / bits_per_cell)
    mags = torch.tensor(
        data.draw(st.lists(st.integers(0, 2**total_bits - 1), min_size=1, max_size=50)), dtype=torch.float32
    )
    levels = slice_magnitudes(mags, bits_per_cell, slices)
    assert levels.max() <= 2**bits_per_cell - 1 and levels.min() >= 0
    recombined = sum(levels[s] * 2 ** (s * bits_per_cell) for s in range(slices))
    assert torch.equal(recombined, mags)


@settings(max_examples=80, deadline=None)
@given(floats, st.integers(2, 12), st.booleans(), st.floats(1e-3, 100))
def test_adc_error_bounded_by_half_step_in_range_and_clips_outside(values, bits, signed, step):
    y = torch.tensor(values)
    out = adc(y, step, bits, signed)
    lo, hi = adc_code_limits(bits, signed)
    inside = (y >= lo * step) & (y <= hi * step)
    assert torch.all((out - y)[inside].abs() <= step / 2 * (1 + 1e-5))
    assert torch.all(out <= hi * step * (1 + 1e-6)) and torch.all(out >= lo * step * (1 + 1e-6))
    assert torch.allclose(out[y > hi * step], torch.tensor(hi * step, dtype=out.dtype))


@settings(max_examples=80, deadline=None)
@given(st.floats(1e-3, 1e7), st.integers(2, 16), st.booleans())
def test_aligned_step_is_power_of_two_and_covers_full_scale(full_scale, bits, signed):
    step = aligned_adc_step(full_scale, bits, signed)
    top = adc_code_limits(bits, signed)[1]
    assert math.log2(step) == round(math.log2(step))
    assert top * step >= full_scale * (1 - 1e-9)
    assert top * step / 2 < full_scale * (1 + 1e-9)  # the smallest such step


def test_aligned_step_converts_integer_sums_exactly_when_resolution_suffices():
    y = torch.arange(0, 129, dtype=torch.float32)
    step = aligned_adc_step(128, 8, signed=False)
    assert step == 1 and torch.equal(adc(y, step, 8, False), y)
