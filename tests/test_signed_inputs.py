"""Signed inputs and ADC ranges for transformer layers: sign-magnitude input planes, ADC ranges per input
bit, and calibration ranges counted from every partial sum."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import cimkit as ck
from cimkit.errors import SpecError
from cimkit.mapping import map_matrix
from cimkit.sim import quant
from cimkit.sim.histogram import BINS_PER_OCTAVE, MagnitudeHistogram

BIN = 2 ** (1 / BINS_PER_OCTAVE) - 1
QUIET = {"device.programming_noise_frac": 0.0, "device.read_noise_model": "none"}


def spec(**changes) -> ck.HardwareSpec:
    return ck.HardwareSpec.preset("rram-22nm").replace(**{**QUIET, **changes})


def rel_err(spec_, layer, x) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cim = ck.calibrate(ck.convert(layer, spec_, seed=0), [x])
        with torch.no_grad():
            y, ref = cim(x), layer(x)
    return float((y - ref).norm() / ref.norm())


@pytest.fixture(scope="module")
def layer_and_inputs():
    torch.manual_seed(0)
    return nn.Linear(512, 256), torch.randn(128, 512)


# ---- sign-magnitude planes ------------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(bits=st.integers(2, 10), data=st.data())
def test_sign_magnitude_planes_sum_back_to_the_codes(bits, data):
    q = 2 ** (bits - 1) - 1
    codes = torch.tensor(data.draw(st.lists(st.integers(-q, q), min_size=1, max_size=40)), dtype=torch.float32)
    planes, w = quant.sign_magnitude_planes(codes, bits)
    assert planes.shape[0] == 2 * (bits - 1) and set(planes.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal((torch.tensor(w).view(-1, 1) * planes).sum(0), codes)
    half = bits - 1  # the first phase holds only positive inputs' bits, the second only negative ones'
    assert not planes[:half, codes <= 0].any() and not planes[half:, codes >= 0].any()


def test_without_an_adc_sign_magnitude_reads_the_same_product_as_twos_complement(layer_and_inputs):
    """Both plane sets sum back to the same codes, and the reads are linear without a converter."""
    layer, x = layer_and_inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outs = [
            ck.convert(layer, spec(**{"periphery.adc_bits": None, "periphery.signed_inputs": m}), seed=0)(x)
            for m in ("twos_complement", "sign_magnitude")
        ]
    assert torch.allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    assert not torch.equal(outs[0], outs[1])  # the reads differ: different planes, differently rounded sums


def test_sign_magnitude_changes_nothing_for_inputs_that_are_never_negative(layer_and_inputs):
    layer, x = layer_and_inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outs = [
            ck.convert(layer, spec(**{"periphery.signed_inputs": m}), seed=0)(x.relu())
            for m in ("twos_complement", "sign_magnitude")
        ]
    assert torch.equal(outs[0], outs[1])


def test_sign_magnitude_and_per_bit_ranges_cut_the_error_of_a_5_bit_adc(layer_and_inputs):
    """The figures of issue 14 (Linear(512, 256), rram-22nm without noise, 5-bit ADC, offset-mapped weights):
    two's complement signed inputs ~0.48, sign-magnitude ~0.19; ReLU inputs ~0.21, per-bit ranges ~0.09."""
    layer, x = layer_and_inputs
    twos = rel_err(spec(), layer, x)
    sm = rel_err(spec(**{"periphery.signed_inputs": "sign_magnitude"}), layer, x)
    assert 0.35 < twos < 0.6 and sm < 0.5 * twos
    relu = rel_err(spec(), layer, x.relu())
    per_bit = rel_err(spec(**{"periphery.adc_range_per_input_bit": True}), layer, x.relu())
    assert per_bit < 0.7 * relu
    both = rel_err(
        spec(**{"periphery.adc_range_per_input_bit": True, "periphery.signed_inputs": "sign_magnitude"}), layer, x
    )
    assert both < sm


def test_sign_magnitude_costs_two_phases_of_magnitude_bits():
    base = spec()
    sm = spec(**{"periphery.signed_inputs": "sign_magnitude"})
    assert base.periphery.input_passes == 8 and sm.periphery.input_passes == 14
    assert map_matrix(512, 256, sm).input_passes == 14
    wl = ck.zoo.workload("lenet")
    assert ck.estimate(wl, sm).energy_j > ck.estimate(wl, base).energy_j


# ---- ADC ranges per input bit ----------------------------------------------------------------------------
def test_per_bit_ranges_are_calibrated_for_the_planes_a_layer_drives(layer_and_inputs):
    layer, x = layer_and_inputs
    sm = spec(**{"periphery.adc_range_per_input_bit": True, "periphery.signed_inputs": "sign_magnitude"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unsigned = ck.calibrate(ck.convert(layer, sm, seed=0), [x.relu()])
        signed = ck.calibrate(ck.convert(layer, sm, seed=0), [x])
    slices = unsigned.mapping.slices
    assert unsigned.adc_full_scale.shape == signed.adc_full_scale.shape == (14, slices)
    assert torch.isfinite(unsigned.adc_full_scale[:8]).all() and torch.isnan(unsigned.adc_full_scale[8:]).all()
    assert torch.isfinite(signed.adc_full_scale).all()
    assert torch.isfinite(unsigned(x.relu())).all()
    # the sparse top input bit of ReLU inputs reads smaller sums than the half-full lower ones
    assert (unsigned.adc_full_scale[7] < unsigned.adc_full_scale[0]).all()


def test_per_bit_ranges_need_bit_planes_and_calibration():
    with pytest.raises(SpecError, match="adc_range_per_input_bit needs"):
        spec(**{"periphery.adc_range_per_input_bit": True, "periphery.adc_range": "fixed"})
    with pytest.raises(SpecError, match="adc_range_per_input_bit needs"):
        spec(**{"periphery.adc_range_per_input_bit": True, "periphery.dac_mode": "multi_level"})
    with pytest.raises(SpecError, match="sign_magnitude' needs input_bits >= 2"):
        spec(**{"periphery.signed_inputs": "sign_magnitude", "periphery.input_bits": 1})


# ---- ranges from every partial sum -----------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3000), q=st.floats(0.01, 1.0), scale=st.floats(1e-6, 1e6), seed=st.integers(0, 2**16))
def test_histogram_quantiles_are_within_one_bin_of_the_order_statistic(n, q, scale, seed):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(2, n, generator=g) * scale
    values[1, : n // 3] = 0  # exact zeros count too
    hist = MagnitudeHistogram(2)
    for part in values.split(97, dim=1):
        hist.add(part)
    est = hist.quantile(q)
    exact = values.abs().sort(1).values[:, max(1, math.ceil(n * q)) - 1]
    for e, x in zip(est.tolist(), exact.tolist()):
        assert (e == 0.0) if x == 0 else abs(e / x - 1) <= BIN * 1.001


def test_an_empty_range_stays_uncalibrated():
    hist = MagnitudeHistogram(3)
    hist.add(torch.ones(1, 5), first=1)
    est = hist.quantile(0.5)
    assert math.isnan(est[0]) and abs(est[1] - 1) <= BIN and math.isnan(est[2])


def test_adc_ranges_see_every_column():
    """One output column reads far larger sums than the others; at percentile 100 its slice's range is the
    largest partial sum read, within one bin (a strided subsample of the partial sums can miss the column)."""
    torch.manual_seed(1)
    layer = nn.Linear(128, 256, bias=False)
    with torch.no_grad():
        layer.weight.mul_(0.01)
        layer.weight[37] = 1.0
    x = torch.rand(64, 128)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cim = ck.convert(layer, spec(), seed=0)
        peak = torch.zeros(cim.mapping.slices)

        def record(tile, value, info):
            s_dim = info.dims.index("S")
            peak.copy_(torch.maximum(peak, value.movedim(s_dim, 0).reshape(peak.numel(), -1).abs().amax(1)))

        ck.calibrate(cim, [x], percentile=100.0)
        handle = cim.tile.register_stage_hook("read", record)
        cim.tile.calibrating = "adc"  # read the analog sums as calibration saw them
        cim(x)
        cim.tile.calibrating = None
        handle.remove()
    assert torch.allclose(cim.adc_full_scale, peak, rtol=BIN * 1.001)
