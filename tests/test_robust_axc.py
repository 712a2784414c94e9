"""Approximate computing on the chip: the digital unit's approximate products (spec digital.multiplier /
digital.adder) in the simulator and the cost model, and the AxC table (cimkit.robust.axc)."""

import pytest
import torch
from torch import nn

import cimkit as ck
from cimkit.errors import SpecError
from cimkit.ops import approx
from cimkit.robust import TECHNIQUES, axc_table, count_macs
from cimkit.sim.digital import DigitalProduct

from .helpers import quiet_convert, spec_with, trained_on_digits


class Scores(nn.Module):
    """A product of two activations (attention scores) between two crossbar layers."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k = nn.Linear(16, 16), nn.Linear(16, 16)

    def forward(self, x):
        return self.q(x) @ self.k(x).transpose(-2, -1)


def test_the_exact_digital_unit_reproduces_the_integer_product_of_its_codes():
    torch.manual_seed(0)
    a, b = torch.randn(3, 5, 7), torch.randn(3, 7, 4)
    unit = DigitalProduct(spec_with("ideal", **{"digital.data_bits": 8}).digital)
    out = unit(a, b)
    top = 127
    sa = a.abs().amax(dim=(-2, -1), keepdim=True).double() / top  # one scale per matrix
    sb = b.abs().amax(dim=(-2, -1), keepdim=True).double() / top
    qa, qb = torch.round(a.double() / sa).to(torch.int64), torch.round(b.double() / sb).to(torch.int64)
    ref = (qa @ qb).to(torch.float64) * (sa * sb)
    assert torch.equal(out, ref.float())


def test_digital_multiplier_settings_in_the_simulator():
    """drum-16 on 16-bit codes is exact, so the model computes the float product up to the 16-bit grid; Mitchell
    changes it by at most its 1/9 relative error per product and never upward in magnitude on average."""
    torch.manual_seed(0)
    model = Scores().eval()
    x = torch.randn(2, 6, 16)
    ref = quiet_convert(model, ck.HardwareSpec.preset("ideal"), seed=0)(x)
    exact = quiet_convert(model, spec_with("ideal", **{"digital.multiplier": "drum-16"}), seed=0)(x)
    assert (exact - ref).abs().max() < 1e-3 * ref.abs().max()
    mitchell = quiet_convert(model, spec_with("ideal", **{"digital.multiplier": "mitchell"}), seed=0)(x)
    err = (mitchell - ref).norm() / ref.norm()
    assert 1e-3 < err < 1 / 9
    loa = quiet_convert(model, spec_with("ideal", **{"digital.adder": "loa-12"}), seed=0)(x)
    assert 0 < (loa - ref).abs().max() < 0.05 * ref.abs().max()


def test_gradients_pass_straight_through_the_approximate_digital_products():
    torch.manual_seed(0)
    model = Scores()
    x = torch.randn(2, 6, 16, requires_grad=True)
    chip = quiet_convert(model, spec_with("ideal", **{"digital.multiplier": "mitchell"}), seed=0)
    chip(x).sum().backward()
    ref_x = x.detach().clone().requires_grad_()
    model(ref_x).sum().backward()
    assert torch.allclose(x.grad, ref_x.grad, rtol=1e-3, atol=1e-3)


def test_the_cost_model_prices_the_digital_macs_with_the_multiplier_and_adder():
    wl = ck.zoo.workload("deit-tiny")
    base = ck.HardwareSpec.preset("rram-22nm")
    exact = ck.estimate(wl, base)
    for mul, add in (("mitchell", "exact"), ("drum-4", "loa-4")):
        r = ck.estimate(wl, base.replace(**{"digital.multiplier": mul, "digital.adder": add}))
        assert r.total.energy_breakdown_j["digital"] < exact.total.energy_breakdown_j["digital"]
        for comp, e in exact.total.energy_breakdown_j.items():
            if comp not in ("digital", "layout"):  # layout: a fraction of the chip's dynamic energy
                assert r.total.energy_breakdown_j[comp] == pytest.approx(e, rel=1e-12)
        assert r.total.latency_s == pytest.approx(exact.total.latency_s)
    # an approximate multiplier with no digital matmul to price changes nothing
    vgg = ck.zoo.workload("vgg8")
    assert ck.estimate(vgg, base.replace(**{"digital.multiplier": "mitchell"})).total.energy_j == pytest.approx(
        ck.estimate(vgg, base).total.energy_j, rel=1e-12
    )


def test_bad_digital_arithmetic_is_refused_by_the_spec():
    with pytest.raises(SpecError, match="digital.multiplier"):
        spec_with("ideal", **{"digital.multiplier": "wallace"})
    with pytest.raises(SpecError, match="digital.adder"):
        spec_with("ideal", **{"digital.adder": "loa"})
    with pytest.raises(SpecError, match="2 to 16 bits"):
        spec_with("ideal", **{"digital.multiplier": "mitchell", "digital.data_bits": 20})
    assert spec_with("ideal", **{"digital.multiplier": "DRUM-6"}).digital.multiplier == "drum-6"


def test_axc_table_places_every_technique_and_prices_what_it_approximates():
    torch.manual_seed(0)
    model, d = trained_on_digits(nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)))
    x, y = d.x_test[:120], d.y_test[:120]
    assert count_macs(model, x) == 64 * 32 + 32 * 10
    r = axc_table(
        model.eval(),
        x,
        y,
        "rram-22nm",
        calibration=d.x_train[:200],
        multipliers=["truncate-4", "mitchell"],
        adders=["loa-4"],
        precision={"periphery.adc_bits": [3]},
        skipping=[0.3],
        memory=[0.01],
    )
    by = {(row.technique, row.setting): row for row in r.rows}
    assert by[("multiplier", "exact 8-bit")].relative_energy == 1.0
    assert by[("multiplier", "mitchell")].relative_energy < 1.0
    assert by[("adder", "loa-4")].relative_energy < 1.0
    assert by[("precision", "periphery.adc_bits=3")].relative_energy < 1.0
    assert by[("skipping", "threshold=0.3")].relative_energy < 1.0
    assert by[("memory", "bit flips 0.01/bit")].energy_j is None
    assert {row.taxonomy for row in r.rows} == set(TECHNIQUES.values())
    assert abs(by[("multiplier", "exact 8-bit")].accuracy - r.float_accuracy) <= 0.02  # 8-bit integer ~ float
    assert all(0 <= row.accuracy <= 1 for row in r.rows)
    assert r.to_dict()["result"] == "AxcResult"


def test_the_approximate_multiplier_statistics_are_the_published_ones():
    """Exhaustive 8 x 8 unsigned statistics (cimkit.ops.approx; its own tests hold the rest)."""
    for name, mred, max_red in (("mitchell", 3.788, 11.11), ("drum-6", 1.301, 6.35), ("drum-4", 5.887, 26.56)):
        s = approx.error_statistics(name)
        assert round(100 * s["mred"], 3) == mred
        assert round(100 * s["max_red"], 2) == max_red
    assert approx.error_statistics("exact")["error_rate"] == 0


def test_an_inputs_approximate_products_do_not_depend_on_its_batch():
    torch.manual_seed(0)
    model = Scores().eval()
    chip = quiet_convert(model, spec_with("ideal", **{"digital.multiplier": "mitchell"}), seed=0)
    x = torch.randn(4, 6, 16)
    x[3] *= 50  # a loud neighbour
    together = chip(x)
    alone = torch.cat([chip(x[i : i + 1]) for i in range(4)])
    assert torch.equal(together, alone)
