"""Dynamic matmuls (attention's Q K^T and A V) on crossbars rewritten per input: ``routing: {matmul: crossbar}``."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cimkit as ck
from cimkit.errors import InputError
from cimkit.mapping import weight_slices
from cimkit.sim.dynamic import CIMDynamicMatmul

from .helpers import minilm_or_skip

ON_ARRAYS = {"matmul": "crossbar"}


class SdpaAttention(nn.Module):
    """Self-attention through ``F.scaled_dot_product_attention`` (options passed through)."""

    def __init__(self, e=32, h=4, kv_heads=None, **sdpa):
        super().__init__()
        self.h, self.kv = h, kv_heads or h
        d = e // h
        self.q = nn.Linear(e, e)
        self.kv_proj = nn.Linear(e, 2 * self.kv * d)
        self.o = nn.Linear(e, e)
        self.sdpa = sdpa

    def forward(self, x, mask=None):
        b, l, e = x.shape
        d = e // self.h
        q = self.q(x).view(b, l, self.h, d).transpose(1, 2)
        k, v = self.kv_proj(x).view(b, l, 2, self.kv, d).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=self.kv != self.h, **self.sdpa)
        return self.o(y.transpose(1, 2).reshape(b, l, e))


class MatmulAttention(nn.Module):
    """Self-attention written out with ``@`` and ``torch.matmul``, as Hugging Face's eager attention is."""

    def __init__(self, e=32, h=4):
        super().__init__()
        self.h = h
        self.qkv, self.o = nn.Linear(e, 3 * e), nn.Linear(e, e)

    def forward(self, x):
        b, l, e = x.shape
        q, k, v = self.qkv(x).view(b, l, 3, self.h, e // self.h).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-1, -2) / (e // self.h) ** 0.5, dim=-1)
        return self.o(torch.matmul(a, v).transpose(1, 2).reshape(b, l, e))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = MatmulAttention()
        self.conv = nn.Conv1d(32, 32, 3, padding=1)  # a crossbar layer whose own products are not dynamic

    def forward(self, x):
        return self.conv(self.attn(x).transpose(1, 2)).transpose(1, 2)


def spec(preset="ideal", **changes):
    return ck.HardwareSpec.preset(preset).replace(routing=ON_ARRAYS, **changes)


def convert(model, s, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ck.convert(model, s, seed=seed)


def x_in(b=2, l=10, seed=0):
    return torch.randn(b, l, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "make",
    [
        lambda: SdpaAttention(),
        lambda: SdpaAttention(is_causal=True),
        lambda: SdpaAttention(kv_heads=2),
        lambda: SdpaAttention(scale=0.3),
        lambda: MatmulAttention(),
    ],
)
def test_on_an_ideal_chip_the_products_are_exact(make):
    torch.manual_seed(0)
    model = make().eval()
    x = x_in()
    cim = convert(model, spec())
    with torch.no_grad():
        y, ref = cim(x), model(x)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    assert cim.cim_dynamic.calls == 2 and len(cim.cim_dynamic.sites) == 2


@pytest.mark.parametrize(
    "mask",
    [
        torch.ones(10, 10, dtype=torch.bool).tril(),  # boolean: True attends
        torch.zeros(10, 10).masked_fill(torch.ones(10, 10, dtype=torch.bool).triu(1), float("-inf")),
    ],
)  # additive
def test_attention_masks_are_applied_as_sdpa_applies_them(mask):
    torch.manual_seed(0)
    model = SdpaAttention().eval()
    x = x_in()
    with torch.no_grad():
        torch.testing.assert_close(convert(model, spec())(x, mask), model(x, mask), rtol=1e-5, atol=1e-5)


def test_without_the_route_dynamic_matmuls_stay_digital():
    model = MatmulAttention().eval()
    cim = convert(model, "ideal")
    assert not hasattr(cim, "cim_dynamic")
    assert ck.HardwareSpec.preset("rram-22nm").unit_for("matmul") == "digital"


def test_sites_are_named_by_the_calling_module_and_crossbar_layers_are_left_alone():
    torch.manual_seed(0)
    model = Block().eval()
    cim = convert(model, spec())
    with torch.no_grad():
        torch.testing.assert_close(cim(x_in()), model(x_in()), rtol=1e-5, atol=1e-5)
    names = [site.layer_name for site in cim.cim_dynamic.sites.values()]
    assert names == ["attn.matmul0", "attn.matmul1"]  # the conv's own batched products are not sites
    assert cim.cim_dynamic.calls == 2
    layers = ck.sim.cim_layers(cim)
    assert sum(isinstance(m, CIMDynamicMatmul) for m in layers) == 2


def test_each_write_draws_new_programming_noise_and_a_seed_reproduces_the_sequence():
    torch.manual_seed(0)
    model = MatmulAttention().eval()
    s = spec("rram-22nm", **{"device.read_noise_model": "none"})  # programming noise only
    x = x_in()
    a, b = convert(model, s, seed=3), convert(model, s, seed=3)
    with torch.no_grad():
        first, second = a(x), a(x)
        again = [b(x), b(x)]
    assert not torch.equal(first, second)  # the arrays are written anew with each input
    assert torch.equal(first, again[0]) and torch.equal(second, again[1])
    static = convert(model, ck.HardwareSpec.preset("rram-22nm").replace(**{"device.read_noise_model": "none"}))
    with torch.no_grad():
        assert torch.equal(static(x), static(x))  # with digital attention only the programmed weights matter


def test_calibrate_reaches_the_sites_and_their_ranges_survive_new_shapes():
    torch.manual_seed(0)
    model = MatmulAttention().eval()
    cim = convert(model, spec("rram-22nm"))
    ck.calibrate(cim, [x_in(seed=s) for s in range(2)])
    qk, av = cim.cim_dynamic.sites.values()
    for site in (qk, av):
        assert torch.isfinite(site.input_range) and torch.isfinite(site.adc_full_scale).all()
    assert bool(qk.input_signed) and not bool(av.input_signed)  # queries are signed, probabilities not
    ranges = qk.input_range.clone(), qk.adc_full_scale.clone()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not calibrated" warning at another batch and length
        y = cim(x_in(b=3, l=7))
    assert y.shape == (3, 7, 32) and qk.mapping.groups == 12
    assert torch.equal(qk.input_range, ranges[0]) and torch.equal(qk.adc_full_scale, ranges[1])


def test_noise_costs_accuracy_on_arrays_as_on_the_static_layers():
    torch.manual_seed(0)
    model = MatmulAttention().eval()
    x = x_in(b=4, l=16)
    with torch.no_grad():
        ref = model(x)
    errors = {}
    for route in ({}, ON_ARRAYS):
        cim = convert(model, ck.HardwareSpec.preset("pcm").replace(routing=route))
        ck.calibrate(cim, [x_in(b=4, l=16, seed=s) for s in range(1, 3)])
        with torch.no_grad():
            errors[bool(route)] = float((cim(x) - ref).norm() / ref.norm())
    assert errors[True] > errors[False] > 0  # the attention products add their own error
    assert errors[True] < 0.5  # ... without destroying the output (measured 0.102 against 0.078)


def test_gradients_reach_both_operands():
    torch.manual_seed(0)
    model = MatmulAttention()
    cim = convert(model, spec())
    x = x_in().requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    cim(x).square().sum().backward()
    model(x2).square().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-5)  # through Q, K and V
    torch.testing.assert_close(cim.qkv.weight.grad, model.qkv.weight.grad, rtol=1e-4, atol=1e-5)
    assert not any("cim_dynamic" in n for n, _ in cim.named_parameters())  # operands are not parameters


def test_a_saved_chip_keeps_the_sites_ranges_and_streams():
    torch.manual_seed(0)
    model = MatmulAttention().eval()
    s = spec("rram-22nm")
    cim = convert(model, s, seed=1)
    ck.calibrate(cim, [x_in(seed=5)])
    buf = io.BytesIO()
    torch.save(cim.state_dict(), buf)
    state = torch.load(io.BytesIO(buf.getvalue()))
    assert not any(k.startswith("cim_dynamic") and k.endswith("g_programmed") for k in state)  # no operand
    fresh = convert(model, s, seed=1)  # no sites yet: the load makes them
    fresh.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(fresh(x_in(seed=6)), cim(x_in(seed=6)))


def test_a_non_finite_operand_is_refused_naming_the_site():
    class Bad(nn.Module):
        def forward(self, x):
            k = x.clone()
            k[0, 0, 0] = float("nan")
            return x @ k.transpose(-1, -2)

    cim = convert(Bad(), spec())
    with pytest.raises(InputError, match=r"matmul0: the operand to write has non-finite"):
        cim(x_in())


def test_minilm_attention_runs_on_rewritten_arrays():
    tok, bert = minilm_or_skip()
    b = tok(["the movie was great fun", "what a waste of time"], padding=True, return_tensors="pt")
    cim = convert(bert, spec())
    with torch.no_grad():
        y, ref = cim(**b).last_hidden_state, bert(**b).last_hidden_state
    torch.testing.assert_close(y, ref, rtol=1e-3, atol=1e-3)
    names = [s.layer_name for s in cim.cim_dynamic.sites.values()]
    assert len(names) == 12 and names[:2] == [
        "encoder.layer.0.attention.self.matmul0",
        "encoder.layer.0.attention.self.matmul1",
    ]


def test_the_cost_model_prices_the_same_route_minilm_writes_k_and_v_per_inference():
    wl = ck.zoo.workload("minilm-l6", seq_len=128)
    written = sum(o.groups * o.in_features * o.out_features for o in wl.ops if o.kind == "matmul")
    assert written == 589_824  # K and V: 2 x 128 tokens x 384 features x 6 layers
    s = ck.HardwareSpec.preset("rram-22nm").replace(routing=ON_ARRAYS, **{"chip.inferences_per_s": 100.0})
    rep = ck.estimate(wl, s)
    cells_per_value = weight_slices(s)  # offset-mapped: one cell per slice
    assert rep.energy_breakdown_j["writes"] == pytest.approx(
        written * cells_per_value * s.device.write_energy_pj * 1e-12, rel=1e-12
    )
    # one write per cell per inference: 1e6 cycles at 100 inferences/s last 10,000 s (2.8 hours)
    assert rep.endurance["lifetime_s"] == pytest.approx(s.device.endurance_cycles / 100.0)
    assert rep.endurance["lifetime_s"] == pytest.approx(1e4)


def test_the_conversion_summary_says_where_dynamic_matmuls_run():
    assert "rewritten per input" in str(convert(MatmulAttention(), spec()).cim_summary)
    assert "rewritten per input" not in str(convert(MatmulAttention(), "ideal").cim_summary)


def test_a_deep_copy_runs_its_own_sites():
    import copy

    torch.manual_seed(0)
    cim = convert(MatmulAttention().eval(), spec("pcm"), seed=2)
    twin = copy.deepcopy(cim)
    with torch.no_grad():
        a, b = cim(x_in()), twin(x_in())
    assert torch.equal(a, b)  # the same chip in the same state
    assert cim.cim_dynamic.calls == 2 and twin.cim_dynamic.calls == 2  # each counted its own products


def test_baddbmm_runs_on_arrays_and_einsum_warns_that_it_stays_digital():
    class Scores(nn.Module):
        def forward(self, q, k):
            bias = torch.ones(q.shape[0], q.shape[1], k.shape[1])
            return torch.baddbmm(bias, q, k.transpose(1, 2), beta=0.5, alpha=0.25)

    class Einsum(nn.Module):
        def forward(self, q, k):
            return torch.einsum("bld,bmd->blm", q, k)

    q, k = torch.randn(3, 5, 8), torch.randn(3, 6, 8)
    cim = convert(Scores(), spec())
    with torch.no_grad():
        torch.testing.assert_close(cim(q, k), Scores()(q, k), rtol=1e-5, atol=1e-5)
    assert cim.cim_dynamic.calls == 1
    cim = convert(Einsum(), spec())
    with pytest.warns(UserWarning, match=r"torch.einsum multiplies two activations.*stays digital"):
        cim(q, k)
    assert cim.cim_dynamic.calls == 0


@pytest.mark.parametrize("case", ["plain", "padding", "causal", "unbatched", "weights_per_head", "encoder"])
def test_torch_multihead_attention_runs_its_attention_on_arrays(case):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    x = x_in(b=2, l=6)
    pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    causal = nn.Transformer.generate_square_subsequent_mask(6)
    if case == "encoder":
        model = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True).eval()
        cim = convert(model, spec())
        with torch.no_grad():
            torch.testing.assert_close(
                cim(x, src_key_padding_mask=pad), model(x, src_key_padding_mask=pad), rtol=1e-4, atol=1e-5
            )
        assert cim.cim_dynamic.calls == 2
        return
    cim = convert(mha, spec())
    kwargs = {
        "plain": {},
        "padding": {"key_padding_mask": pad},
        "causal": {"attn_mask": causal, "is_causal": True},
        "unbatched": {},
        "weights_per_head": {"average_attn_weights": False, "attn_mask": causal < 0},
    }[case]
    inputs = (x[0],) * 3 if case == "unbatched" else (x,) * 3
    with torch.no_grad():
        (y, w), (ref, ref_w) = cim(*inputs, **kwargs), mha(*inputs, **kwargs)
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(w, ref_w, rtol=1e-4, atol=1e-5)
    assert cim.cim_dynamic.calls == 2


def test_an_attention_that_stays_digital_under_the_route_says_so():
    mha = nn.MultiheadAttention(32, 4, add_bias_kv=True, batch_first=True).eval()
    cim = convert(mha, spec())
    with pytest.warns(UserWarning, match=r"multi_head_attention_forward.*stays digital"):
        cim(x_in(), x_in(), x_in())
    assert cim.cim_dynamic.calls == 0


def test_products_with_weights_are_not_written_per_input():
    class TiedHead(nn.Module):  # a tied output head: x @ embedding.weight^T, and a buffer product
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(50, 32)
            self.register_buffer("proj", torch.randn(32, 32))

        def forward(self, x):
            return (x @ self.proj) @ self.embed.weight.t()

    cim = convert(TiedHead(), spec())
    with torch.no_grad():
        cim(x_in())
    assert cim.cim_dynamic.calls == 0


def test_a_query_that_may_attend_to_nothing_gets_zeros_as_in_torch():
    q = k = v = torch.randn(1, 2, 4, 8)
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[1] = False  # query 1 sees no key

    class Sdpa(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    with torch.no_grad():
        y, ref = convert(Sdpa(), spec())(q, k, v), Sdpa()(q, k, v)
    assert torch.equal(y[:, :, 1], torch.zeros(1, 2, 8))
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-6)


def test_mm_addmm_and_linear_between_activations_run_on_arrays_and_out_warns():
    class Forms(nn.Module):
        def forward(self, a, b, c):
            return torch.mm(a, b) + torch.addmm(c, a, b, beta=0.5) + F.linear(a, b.t(), c[0])

    a, b, c = torch.randn(5, 8), torch.randn(8, 6), torch.randn(5, 6)
    cim = convert(Forms(), spec())
    with torch.no_grad():
        torch.testing.assert_close(cim(a, b, c), Forms()(a, b, c), rtol=1e-5, atol=1e-5)
    assert cim.cim_dynamic.calls == 3

    class Out(nn.Module):
        def forward(self, a, b):
            return torch.matmul(a, b, out=torch.empty(5, 6))

    with pytest.warns(UserWarning, match="with out="):
        convert(Out(), spec())(a, b)


def test_sites_keep_their_training_settings_and_their_read_time():
    torch.manual_seed(0)
    model = MatmulAttention()
    cim = convert(
        model,
        spec("pcm"),
        seed=0,
    )
    cim(x_in())  # the sites appear
    ck.sim.configure(cim, backward="chip", weight_range="fixed")
    site = next(iter(cim.cim_dynamic.sites.values()))
    assert site.backward_mode == "straight_through" and site.weight_range == "dynamic"
    assert cim.qkv.backward_mode == "chip"
    with pytest.raises(InputError, match="backward_mode 'chip' is not one"):
        site.backward_mode = "chip"
    ck.sim.set_time(cim, 86400.0)
    assert cim.qkv.t_inference_s == 86400.0 and site.t_inference_s == spec("pcm").device.drift_t0_s


def test_gradients_accumulate_over_two_sequence_lengths():
    torch.manual_seed(0)
    model = MatmulAttention()
    cim = convert(model, spec())
    loss = cim(x_in(l=10)).square().sum() + cim(x_in(b=3, l=7, seed=1)).square().sum()
    loss.backward()  # the sites are re-laid between the forwards: each backward uses its own layout
    ref = model(x_in(l=10)).square().sum() + model(x_in(b=3, l=7, seed=1)).square().sum()
    ref.backward()
    torch.testing.assert_close(cim.qkv.weight.grad, model.qkv.weight.grad, rtol=1e-4, atol=1e-4)


def test_a_chip_whose_only_arrays_are_attention_products_is_calibrated_for_simulate():
    from cimkit.sim.evaluate import _make_chip

    class OnlyAttention(nn.Module):  # no weights on arrays at all: only the two attention products
        def forward(self, x):
            h = x.reshape(-1, 8, 8)
            return (torch.softmax(h @ h.transpose(-1, -2), dim=-1) @ h).flatten(1)[:, :10]

    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
    chip = _make_chip(OnlyAttention(), ck.HardwareSpec.preset("rram-22nm").replace(routing=ON_ARRAYS), 0, x, 1, x[:1])
    assert len(chip.layers) == 2 and all(torch.isfinite(layer.input_range) for layer in chip.layers)
