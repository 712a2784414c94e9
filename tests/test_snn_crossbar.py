"""Spiking networks on crossbars: spikes are 1-bit inputs read in one binary pass whatever the DAC; snnTorch
models convert (Linear / Conv onto crossbars, Leaky / Synaptic onto the neuron unit) and, on the ideal chip,
compute snnTorch's traces; the neuron unit's mismatch comes from the spec; BPTT trains through the chip."""

from __future__ import annotations

import contextlib
import warnings

import pytest
import snntorch as snn
import torch
from torch import nn

import cimkit as ck
from cimkit.errors import InputError, SpecError
from cimkit.sim import cim_layers
from cimkit.sim.layers import CIMLinear
from cimkit.snn import LIF, FangNeuron

from .helpers import quiet_convert, spec_with


class SpikingMLP(nn.Module):
    """snnTorch's tutorial network: Linear -> Leaky -> Linear -> Leaky, stepped over time-major input."""

    def __init__(self, sizes=(784, 100, 10), reset="subtract", beta=0.9) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(sizes[0], sizes[1]), nn.Linear(sizes[1], sizes[2])
        self.lif1 = snn.Leaky(beta=beta, reset_mechanism=reset)
        self.lif2 = snn.Leaky(beta=beta, reset_mechanism=reset)

    def forward(self, x):
        m1, m2 = self.lif1.reset_mem(), self.lif2.reset_mem()
        spikes, mems = [], []
        for t in range(x.shape[0]):
            s1, m1 = self.lif1(self.fc1(x[t]), m1)
            s2, m2 = self.lif2(self.fc2(s1), m2)
            spikes.append(s2)
            mems.append(m2)
        return torch.stack(spikes), torch.stack(mems)


def _net(seed=0, **kw) -> SpikingMLP:
    torch.manual_seed(seed)
    net = SpikingMLP(**kw)
    with torch.no_grad():  # strong enough weights that both layers fire
        net.fc1.weight.mul_(4.0)
        net.fc2.weight.mul_(6.0)
    return net


def _spikes(shape, p=0.3, seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full(shape, p), generator=g)


def _passes_read(layer, x) -> list[int]:
    """The input passes of each chunk the layer's arrays read (the P dim of the read stage)."""
    seen = []
    handle = layer.register_stage_hook("read", lambda tile, c, info: seen.append(c.shape[1]) or c)
    with torch.no_grad():
        layer(x)
    handle.remove()
    return seen


# ---- one binary pass --------------------------------------------------------------------------------
def test_spikes_read_in_one_pass_not_through_the_bit_serial_dac():
    spec = ck.HardwareSpec.preset("rram-22nm")  # 8-bit bit-serial DAC
    assert spec.periphery.input_passes == 8
    layer = CIMLinear.from_module(nn.Linear(300, 20), spec, seed=0, name="fc")
    x = _spikes((16, 300))
    assert sum(_passes_read(layer, x)) == 8 * layer.mapping.row_tiles  # the DAC: 8 bit planes
    layer.input_mode = "auto"
    assert sum(_passes_read(layer, x)) == layer.mapping.row_tiles  # spikes: one pass per row tile
    layer.input_mode = "spikes"
    assert sum(_passes_read(layer, x)) == layer.mapping.row_tiles
    layer.input_mode = "auto"  # an input that is not all 0 / 1 goes through the DAC
    assert sum(_passes_read(layer, x * 0.5)) == 8 * layer.mapping.row_tiles


@pytest.mark.parametrize("preset", ["pcm", "rram-22nm", "sram", "neurram"])
def test_spike_reads_are_as_accurate_as_the_dac_on_every_preset(preset):
    """Calibrated, the one binary pass is as close to the exact product as the DAC's reading of the same spikes
    (within 20% and 0.02): nothing is lost by skipping the bit planes that are all zero."""
    spec = ck.HardwareSpec.preset(preset)
    lin = nn.Linear(256, 32)
    x = _spikes((64, 256))
    errors = {}
    for mode in ("spikes", "dac"):
        model = nn.Sequential(CIMLinear.from_module(lin, spec, seed=0, name="fc"))
        model[0].input_mode = mode
        ck.calibrate(model, [(x,)])
        with torch.no_grad():
            errors[mode] = float((model(x) - lin(x)).norm() / lin(x).norm())
    assert errors["spikes"] < 0.25
    assert errors["spikes"] <= 1.2 * errors["dac"] + 0.02, errors


@contextlib.contextmanager
def _quiet():
    """Without the uncalibrated-ADC warning (these checks read fixed full-scale ranges)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_ideal_spike_product_is_exact():
    lin = nn.Linear(200, 30)
    layer = CIMLinear.from_module(lin, ck.HardwareSpec.preset("ideal"), seed=0, name="fc")
    layer.input_mode = "spikes"
    x = _spikes((32, 200))
    with torch.no_grad():
        torch.testing.assert_close(layer(x), lin(x), rtol=1e-5, atol=1e-5)


def test_input_mode_spikes_refuses_other_values_and_bad_modes():
    layer = CIMLinear.from_module(nn.Linear(10, 4), ck.HardwareSpec.preset("rram-22nm"), seed=0, name="fc1")
    layer.input_mode = "spikes"
    with pytest.raises(InputError, match="fc1: input_mode is 'spikes'"):
        layer(torch.full((2, 10), 0.5))
    with pytest.raises(InputError, match="input_mode must be one of dac, spikes, auto"):
        layer.input_mode = "binary"


# ---- converting snnTorch models ----------------------------------------------------------------------
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_converted_snntorch_model_on_the_ideal_chip_has_snntorch_traces(reset):
    net = _net(reset=reset)
    chip = quiet_convert(net, "ideal")
    assert [type(m) for m in (chip.lif1, chip.lif2)] == [LIF, LIF]
    assert all(layer.input_mode == "auto" for layer in cim_layers(chip))
    assert [n for n, _ in chip.cim_summary.neurons] == ["lif1", "lif2"]
    x = _spikes((25, 8, 784))
    with torch.no_grad():
        ref_spk, ref_mem = net(x)
        spk, mem = chip(x)
    assert ref_spk.sum() > 0
    assert float((mem - ref_mem).abs().max()) <= 1e-4  # float32 sums in another order
    assert float((spk != ref_spk).float().mean()) <= 1e-3


def test_converted_snn_reads_one_pass_per_step_on_a_bit_serial_chip():
    chip = quiet_convert(_net(), "rram-22nm")
    passes = []
    for layer in cim_layers(chip):
        layer.register_stage_hook("read", lambda tile, c, info: passes.append(c.shape[1]) or c)
    with torch.no_grad(), _quiet():
        chip(_spikes((3, 4, 784)))
    assert passes and set(passes) == {1}


def test_neuron_mismatch_comes_from_the_spec_and_the_seed():
    spec = spec_with("ideal", **{"neuron.threshold_sigma_rel": 0.2, "neuron.leak_sigma_rel": 0.5})
    x = _spikes((20, 8, 784))
    runs = []
    for seed in (0, 0, 1):
        chip = quiet_convert(_net(), spec, seed=seed)
        assert chip.lif1.variation.threshold_sigma_rel == 0.2
        with torch.no_grad():
            runs.append(chip(x)[0])
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    with torch.no_grad():
        assert not torch.equal(runs[0], quiet_convert(_net(), "ideal")(x)[0])
    with pytest.raises(SpecError, match="threshold_sigma_rel"):
        spec_with("ideal", **{"neuron.threshold_sigma_rel": -1})


def test_fang_neurons_and_cimkit_neurons_convert():
    class FangNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(50, 20, bias=False)
            self.neuron = FangNeuron()

        def forward(self, x):
            self.neuron.reset_state()
            return torch.stack([self.neuron(self.fc(x[t])) for t in range(x.shape[0])])

    net = FangNet()
    spec = spec_with("ideal", **{"neuron.threshold_sigma_rel": 0.1})
    chip = quiet_convert(net, spec)
    assert isinstance(chip.neuron, FangNeuron) and chip.neuron.variation.threshold_sigma_rel == 0.1
    assert net.neuron.variation.threshold_sigma_rel == 0.0  # the original is untouched
    with torch.no_grad():
        out = chip(_spikes((10, 4, 50)))
    assert out.shape == (10, 4, 20)


def test_bptt_trains_through_the_chip():
    chip = quiet_convert(_net(sizes=(64, 32, 4)), "rram-22nm")
    x, y = _spikes((12, 16, 64)), torch.randint(0, 4, (16,), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(chip.parameters(), lr=1e-2)
    with _quiet():
        spk, mem = chip(x)
        loss = nn.functional.cross_entropy(mem.sum(0), y)
        loss.backward()
    for layer in cim_layers(chip):
        assert layer.weight.grad is not None and float(layer.weight.grad.abs().sum()) > 0
    opt.step()


def test_neuron_section_is_stored_only_when_set():
    """Fingerprints of saved studies, checkpoints and evaluations leave the default neuron section out (what was
    stored before it existed still matches) and include a set one (mismatch changes results)."""
    from cimkit.spec.model import stored_content

    plain = ck.HardwareSpec.preset("rram-22nm")
    assert "neuron" not in stored_content(plain)
    varied = plain.replace(**{"neuron.threshold_sigma_rel": 0.1})
    assert stored_content(varied)["neuron"]["threshold_sigma_rel"] == 0.1


def test_a_model_just_trained_converts_and_quantizes():
    """Neuron state left by a training forward (non-leaf tensors) does not stop convert / QAT / the sigmoid-sum
    quantizer from copying the model."""
    from cimkit.snn import prepare_sigmoid_quant
    from cimkit.train import QuantConfig, prepare_qat

    class WithFang(nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.fc, self.fang = _net(sizes=(32, 16, 4)), nn.Linear(4, 4), FangNeuron()

        def forward(self, x):
            spk, _ = self.net(x)
            return torch.stack([self.fang(self.fc(spk[t])) for t in range(x.shape[0])])

    model = WithFang()
    model(_spikes((5, 3, 32))).sum().backward()
    assert not model.net.lif1.mem.is_leaf and not model.fang.m.is_leaf
    chip = quiet_convert(model, "ideal")
    assert not chip.net.lif1.mem.requires_grad
    prepare_qat(model, QuantConfig(bits=4))
    prepare_sigmoid_quant(model, bits=2)
