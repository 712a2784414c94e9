"""The associative processor as a unit of the chip (issue 14, point 5): ``routing: {softmax: ap}`` prices every
softmax op of a workload with the AP model (cimkit.ap), through the ``ap`` spec section and the ``ap`` cost
component, with the same events and figures as ``cimkit.ap.cost.ap_softmax_cost`` (one price list:
``cimkit.ap.figures``)."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

import cimkit as ck
from cimkit.ap import figures as APF
from cimkit.ap.cost import DEFAULT_FIGURES, EXP_POLYS, PRECISIONS, APFigures, ap_softmax_cost
from cimkit.cost import constants as K
from cimkit.cost.components import primitive_energy_pj
from cimkit.errors import InputError, SpecError
from cimkit.ops.intsoftmax import IBERT_EXP, LOW_PRECISION
from cimkit.spec.model import ApSpec
from cimkit.workload.core import Op, Workload

MINILM = ck.zoo.workload("minilm-l6", seq_len=512)


def _on_ap(spec: ck.HardwareSpec, **ap) -> ck.HardwareSpec:
    return spec.replace(routing={"softmax": "ap"}, **{f"ap.{k}": v for k, v in ap.items()})


def _err(data: dict) -> str:
    with pytest.raises(SpecError) as exc:
        ck.HardwareSpec.from_dict(data)
    return str(exc.value)


def _toy(softmax: Op) -> Workload:
    fc = Op("fc", "linear", 40, 40, in_shape=(40,), out_shape=(40,), vectors=6, macs=6 * 40 * 40)
    return Workload("toy", (1, 40), [fc, softmax])


def _same(new: dict, old: dict) -> bool:
    """Equal rows, numbers to 1e-12 (the interconnect's span is the chip's area less the AP's, a subtraction
    that may move its figures by an ulp when the AP is there)."""
    return new.keys() == old.keys() and all(
        new[k] == pytest.approx(old[k], rel=1e-12, abs=0) if isinstance(old[k], float) else new[k] == old[k]
        for k in old
    )


def test_routing_softmax_to_ap_changes_only_the_softmax_rows():
    base = ck.HardwareSpec.preset("rram-22nm")
    before, after = ck.estimate(MINILM, base), ck.estimate(MINILM, _on_ap(base))
    softmax = [i for i, layer in enumerate(after.layers) if layer["kind"] == "softmax"]
    assert len(softmax) == 6
    for i, (old, new) in enumerate(zip(before.layers, after.layers)):
        if i in softmax:
            assert new["unit"] == "ap" and old["unit"] == "digital"
            assert new["energy_digital_j"] == 0 and new["energy_ap_j"] > 0 and old["energy_ap_j"] == 0
            # the scores still come from and go back to the buffers, over the same interconnect
            assert new["energy_buffer_j"] == old["energy_buffer_j"]
            assert new["energy_interconnect_j"] == pytest.approx(old["energy_interconnect_j"], rel=1e-12)
        else:
            assert _same(new, old), new["name"]
    old_kinds, new_kinds = before.by_kind(), after.by_kind()
    assert set(old_kinds) == set(new_kinds)
    for kind in old_kinds:
        if kind not in ("softmax", "other"):  # "other": leakage (the AP's area leaks too) and layout
            assert _same(new_kinds[kind], old_kinds[kind]), kind
    assert new_kinds["softmax"]["energy_j"] == pytest.approx(sum(after.layers[i]["energy_j"] for i in softmax))
    assert after.units["ap"]["ops"] == 6 and "ap" not in before.units
    # the AP sits beside the tiles' interconnect: its area is the chip's, not the interconnect's span
    assert before.area_breakdown_mm2["ap"] == 0 < after.area_breakdown_mm2["ap"]
    assert after.area_breakdown_mm2["interconnect"] == pytest.approx(
        before.area_breakdown_mm2["interconnect"], rel=1e-12
    )
    assert after.area_mm2 == pytest.approx(before.area_mm2 + after.area_breakdown_mm2["ap"], rel=1e-12)


def test_the_ap_energy_in_the_estimate_is_ap_softmax_cost():
    spec = _on_ap(ck.HardwareSpec.preset("rram-22nm"))
    r = ck.estimate(MINILM, spec)
    c = ap_softmax_cost(512, 12)  # 12 heads x 512 queries x 512 scores, the defaults of the ap section
    for layer in r.layers:
        if layer["kind"] == "softmax":
            assert layer["energy_ap_j"] == pytest.approx(c.energy_j, rel=1e-12)
    assert r.energy_breakdown_j["ap"] == pytest.approx(6 * c.energy_j, rel=1e-12)
    assert r.latency_breakdown_s["ap"] == pytest.approx(6 * c.latency_s, rel=1e-12)
    assert r.area_breakdown_mm2["ap"] == pytest.approx(c.area_mm2, rel=1e-12)
    assert (c.rounds, c.tiles) == (3, 12 * 512 * 2)  # 12,288 arrays of 256 rows, 4,096 per round


def test_a_non_default_ap_section_prices_as_ap_softmax_cost_with_the_same_parameters():
    ap = dict(
        words=1 << 16,
        tile_rows=32,
        clock_hz=5e8,
        compare_row_energy_fj=10.0,
        compare_bit_energy_fj=0.5,
        write_bit_energy_fj=3.0,
        count_energy_fj_per_row=7.0,
        cell_area_um2=0.3,
        input_bits=8,
        output_bits=6,
        exp_poly="ibert",
        precision="low",
    )
    spec = _on_ap(ck.HardwareSpec.preset("rram-22nm"), **ap)
    op = Op("attn.softmax", "softmax", in_shape=(2, 3, 40), out_shape=(2, 3, 40), elements=240, fn="softmax", reduce=40)
    r = ck.estimate(_toy(op), spec)
    c = ap_softmax_cost(
        40,
        6,
        queries=1,
        input_bits=8,
        output_bits=6,
        exp=IBERT_EXP,
        widths=LOW_PRECISION,
        tile_rows=32,
        ap_rows=1 << 16,
        figures=APFigures.from_spec(spec.ap),
    )
    assert c.tiles == 12 and c.rounds == 1
    assert r.layers[1]["energy_ap_j"] == pytest.approx(c.energy_j, rel=1e-12)
    assert r.latency_breakdown_s["ap"] == pytest.approx(c.latency_s, rel=1e-12)
    assert r.area_breakdown_mm2["ap"] == pytest.approx(c.area_mm2, rel=1e-12)
    # vectorized over configurations: estimate_many gives each spec's estimate (softmax on the AP or not)
    specs = [
        ck.HardwareSpec.preset("rram-22nm"),
        spec,
        _on_ap(ck.HardwareSpec.preset("rram-22nm")),
        spec.replace(**{"ap.precision": "wide", "ap.exp_poly": "chebyshev64"}),
    ]
    many = ck.estimate_many(_toy(op), specs)
    for i, s in enumerate(specs):
        one = ck.estimate(_toy(op), s)
        assert many.energy_j[i] == pytest.approx(one.energy_j, rel=1e-12)
        assert many.latency_s[i] == pytest.approx(one.latency_s, rel=1e-12)
        assert many.area_mm2[i] == pytest.approx(one.area_mm2, rel=1e-12)


def test_the_ap_section_is_read_only_when_an_op_runs_on_the_ap():
    base = ck.HardwareSpec.preset("rram-22nm")
    other = base.replace(**{"ap.compare_row_energy_fj": 1.0, "ap.words": 1 << 10, "ap.precision": "low"})
    assert ck.estimate(MINILM, base).to_dict() == {**ck.estimate(MINILM, other).to_dict(), "spec": base.name}
    for name in ck.HardwareSpec.presets():  # no preset routes to the AP; each has the default section
        spec = ck.HardwareSpec.preset(name)
        assert spec.ap == ApSpec() and "ap" not in spec.routing.values()


def test_the_defaults_are_the_figures_cimkit_ap_cites():
    assert APF.WRITE_BIT_FJ == pytest.approx(K.SRAM_ENERGY_PJ_PER_BYTE / 8 * 1e3, rel=1e-15)
    assert APF.COUNT_FJ_PER_ROW == pytest.approx(primitive_energy_pj("add", 8) * 1e3, rel=1e-15)
    assert APFigures.from_spec(ApSpec()) == DEFAULT_FIGURES
    assert (ApSpec().words, ApSpec().tile_rows, ApSpec().input_bits, ApSpec().output_bits) == (1 << 20, 256, 16, 8)
    assert set(typing.get_args(ApSpec.model_fields["exp_poly"].annotation)) == set(EXP_POLYS)
    assert set(typing.get_args(ApSpec.model_fields["precision"].annotation)) == set(PRECISIONS)
    for name, info in ApSpec.model_fields.items():  # documented
        assert info.description, name


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"routing": {"norm": "ap"}}, ["'norm'", "'ap'", "cannot run", "'ap' runs softmax"]),
        ({"routing": {"softmax": "apx"}}, ["'apx'", "not a unit", "units: crossbar, digital, ap"]),
        ({"ap": {"precision": "medium"}}, ["ap.precision = 'medium'", "'wide' or 'low'"]),
        ({"ap": {"exp_poly": "taylor"}}, ["ap.exp_poly = 'taylor'", "'chebyshev64' or 'ibert'"]),
        ({"ap": {"words": 100}}, ["words (100)", "tile_rows (256)"]),
        ({"ap": {"compare_row_energy_fj": -1.0}}, ["ap.compare_row_energy_fj = -1.0", "greater than or equal to 0"]),
        ({"ap": {"clock_hz": 0}}, ["ap.clock_hz = 0", "greater than 0"]),
        ({"ap": {"input_bits": 40}}, ["ap.input_bits = 40", "less than or equal to 32"]),
        ({"ap": {"tile_rows": True}}, ["ap.tile_rows", "boolean"]),
        ({"ap": {"lanes": 4}}, ["ap.lanes", "unknown key", "words, tile_rows, clock_hz"]),
    ],
)
def test_bad_routing_and_bad_ap_fields_are_refused_naming_the_field_and_what_is_allowed(data, expected):
    msg = _err(data)
    for part in expected:
        assert part in msg, (part, msg)


def test_ops_the_ap_program_cannot_run_are_refused_naming_them():
    spec = _on_ap(ck.HardwareSpec.preset("rram-22nm"))
    log = Op(
        "head.log_softmax", "softmax", in_shape=(6, 40), out_shape=(6, 40), elements=240, fn="log_softmax", reduce=40
    )
    with pytest.raises(
        InputError,
        match=r"op 'head.log_softmax' \(softmax, log_softmax\) is routed to the "
        r"associative processor .* no log_softmax: route softmax to 'digital'",
    ):
        ck.estimate(_toy(log), spec)
    flat = Op("flat.softmax", "softmax", in_shape=(240,), out_shape=(240,), elements=240, fn="softmax", reduce=0)
    with pytest.raises(InputError, match=r"op 'flat.softmax' .* reduce = 0 .* the AP needs the row length"):
        ck.estimate(_toy(flat), spec)
    softmin = Op("s.softmin", "softmax", in_shape=(6, 40), out_shape=(6, 40), elements=240, fn="softmin", reduce=40)
    assert ck.estimate(_toy(softmin), spec).layers[1]["energy_ap_j"] == pytest.approx(
        ap_softmax_cost(40, 6, queries=1).energy_j, rel=1e-12
    )


def test_the_spec_and_the_cost_model_without_the_ap_do_not_import_torch():
    code = (
        "import sys, cimkit.spec as s, cimkit.cost, cimkit.zoo, cimkit.ap.figures\n"
        "spec = s.HardwareSpec.preset('rram-22nm').replace(**{'ap.precision': 'low'})\n"
        "cimkit.cost.estimate(cimkit.zoo.workload('bert-base', seq_len=16), spec)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_simulator_runs_a_softmax_routed_to_the_ap_as_the_aps_program_computes_it():
    """``convert`` under ``routing: {softmax: ap}``: the model's softmax gives the integer kernel of the AP's
    program (its widths, exp polynomial and bit widths), which the AP's functional run matches bit for bit."""
    import torch
    from torch import nn

    from cimkit.ap.softmax import ap_softmax_codes
    from cimkit.ops.intsoftmax import int_softmax

    class Scores(nn.Module):
        def forward(self, x):
            return torch.softmax(2 * x, dim=-1)

    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    spec = _on_ap(ck.HardwareSpec.preset("ideal"), precision="low", exp_poly="ibert", input_bits=8, output_bits=6)
    y = ck.convert(Scores(), spec)(x)
    expected = int_softmax(2 * x, -1, input_bits=8, output_bits=6, exp=IBERT_EXP, widths=LOW_PRECISION)
    assert torch.equal(y, expected)
    scale = float((2 * x).abs().max()) / 127  # int_softmax's grid: max |x| over the top code
    q = torch.round(2 * x / scale).to(torch.int64)
    ap = ap_softmax_codes(q, scale, input_bits=8, output_bits=6, exp=IBERT_EXP, widths=LOW_PRECISION)
    assert torch.equal(ap.codes.to(torch.float32) / 64, y)
    assert not torch.equal(y, torch.softmax(2 * x, dim=-1))  # not the float softmax
