"""The conversion registry, crossbar attention and functional products (issue 10, point 5).

* ``register_converter(type, factory)`` says which module replaces which: matched by isinstance,
  most specific class first; built-ins go through the same function; bad registrations and
  failing factories are refused with errors that name the layer and the factory.
* ``nn.MultiheadAttention`` runs its projections on crossbars and its attention digitally, exactly
  as PyTorch does (equal on the ``ideal`` chip), alone and inside transformer layers.
* ``F.linear(x, self.w)``, ``torch.matmul(x, self.w)`` and ``x @ self.w`` with a module's own
  parameters are rewritten (torch.fx) onto crossbars; what cannot be traced stays digital, named.
"""

import copy
import importlib
import io
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cimkit as ck
from cimkit.errors import InputError, MappingError
from cimkit.sim.attention import CIMMultiheadAttention
from cimkit.sim.convert import KeepDigital
from cimkit.sim.layers import CIMLayer, CIMLinear, layer_seed

from .helpers import quiet_convert, rel_err

convert_mod = importlib.import_module("cimkit.sim.convert")  # the module (cimkit.sim.convert is the function)


@pytest.fixture(autouse=True)
def _registry_restored():
    """Registrations made by a test end with it."""
    saved = dict(convert_mod._REGISTRY)
    yield
    convert_mod._REGISTRY.clear()
    convert_mod._REGISTRY.update(saved)


def convert_no_warning(model, spec="ideal", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may stay digital unannounced, nor be announced needlessly
        return ck.convert(model, spec, **kw)


# ---- the registry -------------------------------------------------------------------------------------


class Scale(nn.Module):
    """A module the built-ins do not know: y = x @ weight.T."""

    def __init__(self, n_in=6, n_out=4):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in))

    def forward(self, x):
        return x @ self.weight.T


class ScaleSub(Scale):
    pass


class ScaleOther(Scale):
    pass


def tagging_factory(tag, calls=None):
    """A factory that builds a crossbar from the module's weight and tags it."""

    def factory(module, spec, *, seed, name):
        if calls is not None:
            calls.append((type(module).__name__, seed, name))
        layer = CIMLinear.from_weight(module.weight, getattr(module, "bias", None), spec, seed=seed, name=name)
        layer.tag = tag
        return layer

    return factory


def test_register_converter_is_public_in_both_namespaces():
    assert ck.register_converter is ck.sim.register_converter is convert_mod.register_converter
    assert "register_converter" in ck.__all__ and "register_converter" in ck.sim.__all__


def test_a_custom_factory_replaces_its_module_with_the_seed_and_name_of_the_layer():
    calls = []
    ck.register_converter(Scale, tagging_factory("scale", calls))
    model = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), Scale())
    cim = convert_no_warning(model, seed=7)
    assert isinstance(cim[2], CIMLinear) and cim[2].tag == "scale"
    assert calls == [("Scale", layer_seed(7, "2"), "2")]
    assert [(n, t) for n, t, _, _ in cim.cim_summary.analog] == [("0", "Linear"), ("2", "Scale")]
    x = torch.randn(3, 5)
    assert rel_err(cim(x), model(x)) < 1e-5


def test_a_subclass_registration_wins_over_its_base_in_either_order():
    for order in ((Scale, ScaleSub), (ScaleSub, Scale)):
        for cls in order:
            ck.register_converter(cls, tagging_factory(cls.__name__))
        cim = convert_no_warning(nn.Sequential(Scale(), ScaleSub(), ScaleOther()))
        # ScaleOther has no registration of its own: isinstance finds its base's
        assert [cim[i].tag for i in range(3)] == ["Scale", "ScaleSub", "Scale"]


def test_registering_a_type_again_replaces_its_factory_and_returns_the_old_one():
    first, second = tagging_factory("first"), tagging_factory("second")
    assert ck.register_converter(Scale, first) is None
    assert ck.register_converter(Scale, second) is first
    assert convert_no_warning(nn.Sequential(Scale()))[0].tag == "second"


def test_the_builtins_are_registered_through_the_same_function():
    mine = tagging_factory("mine")
    assert ck.register_converter(nn.Linear, mine) == CIMLinear.from_module
    assert ck.register_converter(nn.MultiheadAttention, mine) == CIMMultiheadAttention.from_module
    assert convert_no_warning(nn.Sequential(nn.Linear(4, 3)))[0].tag == "mine"
    # a built-in can be put back with what registering returned
    ck.register_converter(nn.Linear, CIMLinear.from_module)
    assert not hasattr(convert_no_warning(nn.Sequential(nn.Linear(4, 3)))[0], "tag")


def test_a_subclass_with_its_own_forward_stays_digital_until_its_class_is_registered():
    class Gated(nn.Linear):
        def forward(self, x):
            return torch.sigmoid(super().forward(x))

    model = nn.Sequential(Gated(4, 4))
    with pytest.warns(UserWarning, match=r"0 \(Gated, a Linear subclass with its own forward"):
        cim = ck.convert(model, "ideal")
    assert type(cim[0]) is Gated and cim.cim_summary.analog == []
    assert cim.cim_summary.unsupported[0][0] == "0"

    class GatedCIM(nn.Module):
        def __init__(self, m, spec, *, seed, name):
            super().__init__()
            self.linear = CIMLinear.from_module(m, spec, seed=seed, name=name)

        def forward(self, x):
            return torch.sigmoid(self.linear(x))

    ck.register_converter(Gated, GatedCIM)  # a class with the factory's signature is a factory
    cim = convert_no_warning(model)
    assert isinstance(cim[0], GatedCIM) and cim.cim_summary.analog[0][:2] == ("0", "Gated")
    x = torch.randn(2, 4)
    assert rel_err(cim(x), model(x)) < 1e-5


def test_a_registration_overrides_the_kept_digital_list():
    class OneHotEmbedding(nn.Module):
        def __init__(self, emb, spec, *, seed, name):
            super().__init__()
            self.table = CIMLinear.from_weight(emb.weight.T, None, spec, seed=seed, name=name)

        def forward(self, idx):
            return self.table(F.one_hot(idx, self.table.mapping.in_features).float())

    model = nn.Sequential(nn.Embedding(10, 4))
    with pytest.warns(UserWarning, match=r"0 \(Embedding\)"):
        ck.convert(model, "ideal")
    ck.register_converter(nn.Embedding, OneHotEmbedding)
    cim = convert_no_warning(model)
    idx = torch.tensor([[1, 9, 3]])
    assert rel_err(cim(idx), model(idx)) < 1e-5


def test_a_shared_module_is_converted_once_by_its_factory():
    calls = []
    ck.register_converter(Scale, tagging_factory("s", calls))
    shared = Scale(4, 4)
    model = nn.Sequential()
    model.add_module("a", shared)
    model.add_module("b", nn.ReLU())
    model.add_module("c", shared)
    cim = convert_no_warning(model)
    assert len(calls) == 1 and cim.a is cim.c
    assert [a[0] for a in cim.cim_summary.analog] == ["a = c"]


@pytest.mark.parametrize(
    "module_type, message",
    [
        ("Linear", r"module_type must be a subclass of torch.nn.Module, got 'Linear' \(str\)"),
        (nn.Linear(2, 2), r"module_type must be a subclass of torch.nn.Module, got Linear\(in_features=2.*\(Linear\)"),
        (int, r"module_type must be a subclass of torch.nn.Module, got <class 'int'> \(type\)"),
        (nn.Module, r"not torch.nn.Module itself"),
        (CIMLinear, r"CIMLinear is already a crossbar layer"),
    ],
)
def test_bad_module_types_are_refused_by_name_and_value(module_type, message):
    with pytest.raises(InputError, match=message):
        ck.register_converter(module_type, tagging_factory("x"))


@pytest.mark.parametrize(
    "factory, message",
    [
        (None, r"factory for Scale must be callable as factory\(module, spec, \*, seed, name\), got None \(NoneType\)"),
        (3, r"factory for Scale must be callable .* got 3 \(int\)"),
        (
            lambda module: module,
            r"factory <lambda> for Scale must accept \(module, spec, \*, seed, name\); "
            r"its signature is \(module\)",
        ),
    ],
)
def test_bad_factories_are_refused_by_name_and_value(factory, message):
    with pytest.raises(InputError, match=message):
        ck.register_converter(Scale, factory)
    assert Scale not in convert_mod._REGISTRY  # nothing half-registered


def test_a_failing_factory_is_named_with_the_layer():
    def broken(module, spec, *, seed, name):
        raise RuntimeError("boom")

    ck.register_converter(Scale, broken)
    model = nn.Sequential(nn.Sequential(Scale()))
    with pytest.raises(
        InputError,
        match=r"converting layer '0.0' \(Scale\) with .*broken failed: "
        r"RuntimeError: boom",
    ) as info:
        ck.convert(model, "ideal")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_factory_error_of_cimkit_keeps_its_class_and_gains_the_layer():
    def unmappable(module, spec, *, seed, name):
        raise MappingError(f"{name}: does not fit")

    ck.register_converter(Scale, unmappable)
    with pytest.raises(MappingError, match=r"converting layer '0' \(Scale\) with .*unmappable failed: 0: does not fit"):
        ck.convert(nn.Sequential(Scale()), "ideal")


@pytest.mark.parametrize("returned", [None, torch.zeros(2), "layer"])
def test_a_factory_that_returns_no_module_is_refused(returned):
    def factory(module, spec, *, seed, name):
        return returned

    ck.register_converter(Scale, factory)
    with pytest.raises(
        InputError,
        match=r"converter .*factory for layer '0' \(Scale\) returned .* not a "
        r"torch.nn.Module",
    ):
        ck.convert(nn.Sequential(Scale()), "ideal")


def test_a_factory_can_keep_a_module_digital_with_a_reason():
    def picky(module, spec, *, seed, name):
        raise KeepDigital("only square weights")

    ck.register_converter(Scale, picky)
    model = nn.Sequential(Scale(), nn.Linear(4, 2))
    with pytest.warns(UserWarning, match=r"0 \(Scale, only square weights\)"):
        cim = ck.convert(model, "ideal")
    assert type(cim[0]) is Scale and cim.cim_summary.unsupported == [("0", "Scale, only square weights")]
    assert [a[0] for a in cim.cim_summary.analog] == ["1"]


def test_a_factory_may_return_a_digital_module_which_is_listed_digital():
    ck.register_converter(Scale, lambda module, spec, *, seed, name: nn.Identity())
    cim = convert_no_warning(nn.Sequential(Scale()))
    assert isinstance(cim[0], nn.Identity)
    assert cim.cim_summary.analog == [] and cim.cim_summary.digital == [("0", "Identity")]


def test_the_original_model_is_never_given_to_a_factory():
    seen = []
    ck.register_converter(Scale, lambda module, spec, *, seed, name: seen.append(module) or nn.Identity())
    model = Scale()
    convert_no_warning(model)
    assert seen and seen[0] is not model


# ---- multi-head attention -----------------------------------------------------------------------------

E, HEADS, N, L, S = 8, 2, 3, 4, 5


def _inputs(batch_first, kdim=E, vdim=E):
    def shaped(length, dim):
        return torch.randn(N, length, dim) if batch_first else torch.randn(length, N, dim)

    return shaped(L, E), shaped(S, kdim), shaped(S, vdim)


def _same(cim, mha, *args, **kwargs):
    """The converted attention gives the digital one's output and weights (float rounding)."""
    with torch.no_grad():
        out, weights = cim(*args, **kwargs)
        ref_out, ref_weights = mha(*args, **kwargs)
    assert out.shape == ref_out.shape and torch.allclose(out, ref_out, atol=1e-5), (out - ref_out).abs().max()
    assert (weights is None) == (ref_weights is None)
    if weights is not None:
        assert torch.allclose(weights, ref_weights, atol=1e-6)


def test_attention_is_converted_and_listed_with_its_projections_on_crossbars():
    mha = nn.MultiheadAttention(E, HEADS, batch_first=True)
    cim = convert_no_warning(nn.Sequential(mha))
    att = cim[0]
    assert isinstance(att, CIMMultiheadAttention)
    assert isinstance(att.in_proj, CIMLinear) and isinstance(att.out_proj, CIMLinear)
    assert att.in_proj.mapping.out_features == 3 * E and att.in_proj.mapping.in_features == E
    ((name, kind, arrays, util),) = cim.cim_summary.analog
    assert (name, kind) == ("0", "MultiheadAttention")
    assert arrays == att.in_proj.mapping.arrays + att.out_proj.mapping.arrays and 0 < util <= 1
    # the weights the crossbars hold, where PyTorch keeps them
    assert torch.equal(att.in_proj_weight, mha.in_proj_weight.detach())
    assert torch.equal(att.in_proj_bias, mha.in_proj_bias.detach())
    assert torch.equal(att.out_proj.weight, mha.out_proj.weight.detach())
    assert att.q_proj_weight is None and att.batch_first and att._qkv_same_embed_dim


def _causal_bool():
    return torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)


MASKS = {
    "none": lambda: {},
    "no weights": lambda: {"need_weights": False},
    "per-head weights": lambda: {"average_attn_weights": False},
    "key padding": lambda: {
        "key_padding_mask": torch.tensor([[False] * S, [False] * 3 + [True] * 2, [False] * 4 + [True]])
    },
    "causal bool": lambda: {"attn_mask": _causal_bool()},
    "causal hint": lambda: {"attn_mask": _causal_bool(), "is_causal": True, "need_weights": False},
    "float 3-d": lambda: {"attn_mask": torch.randn(N * HEADS, L, L)},
    "padding + causal": lambda: {
        "attn_mask": _causal_bool(),
        "key_padding_mask": torch.tensor([[False] * 3 + [True]] * N),
    },
}


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("mask", list(MASKS))
def test_self_attention_matches_pytorch_on_ideal(batch_first, mask):
    mha = nn.MultiheadAttention(E, HEADS, batch_first=batch_first).eval()
    cim = convert_no_warning(nn.Sequential(mha))[0].eval()
    kwargs = MASKS[mask]()
    if mask == "key padding":  # self-attention: the keys are the queries
        kwargs["key_padding_mask"] = kwargs["key_padding_mask"][:, :L]
    x = _inputs(batch_first)[0]
    _same(cim, mha, x, x, x, **kwargs)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"kdim": 5, "vdim": 6},
        {"bias": False},
        {"add_bias_kv": True},
        {"add_zero_attn": True},
    ],
)
def test_attention_variants_match_pytorch_on_ideal(batch_first, options):
    mha = nn.MultiheadAttention(E, HEADS, batch_first=batch_first, **options).eval()
    cim = convert_no_warning(nn.Sequential(mha))[0].eval()
    q, k, v = _inputs(batch_first, options.get("kdim", E), options.get("vdim", E))
    padding = torch.zeros(N, S, dtype=torch.bool)
    padding[1, -2:] = True
    _same(cim, mha, q, k, v, key_padding_mask=padding)  # cross-attention, three inputs
    _same(cim, mha, q, k, v, need_weights=False)
    unbatched = (t[0] if batch_first else t[:, 0] for t in (q, k, v))
    _same(cim, mha, *unbatched)
    if "kdim" in options:  # three matrices, one per input
        assert all(isinstance(getattr(cim, p), CIMLinear) for p in ("q_proj", "k_proj", "v_proj"))
        assert cim.in_proj_weight is None and torch.equal(cim.k_proj_weight, mha.k_proj_weight.detach())
    else:
        _same(cim, mha, q, k, k, attn_mask=torch.zeros(L, S))  # key is value: read once


def test_attention_dropout_in_training_follows_pytorch():
    mha = nn.MultiheadAttention(E, HEADS, dropout=0.5, batch_first=True)
    cim = convert_no_warning(nn.Sequential(mha))[0]
    x = _inputs(True)[0]
    mha.train(), cim.train()
    torch.manual_seed(3)
    out, weights = cim(x, x, x)
    torch.manual_seed(3)
    ref_out, ref_weights = mha(x, x, x)
    assert torch.allclose(out, ref_out, atol=1e-5) and torch.allclose(weights, ref_weights, atol=1e-6)
    assert not torch.allclose(out, cim.eval()(x, x, x)[0], atol=1e-3)  # dropout was applied


def test_attention_subclass_with_its_own_forward_stays_digital():
    class Scaled(nn.MultiheadAttention):
        def forward(self, q, k, v, **kw):
            out, w = super().forward(q, k, v, **kw)
            return 2 * out, w

    with pytest.warns(UserWarning, match=r"0 \(Scaled, a MultiheadAttention subclass with its own forward"):
        cim = ck.convert(nn.Sequential(Scaled(E, HEADS)), "ideal")
    assert type(cim[0]) is Scaled and not isinstance(cim[0].out_proj, CIMLayer)


def _crossbar_calls(monkeypatch):
    calls = []
    forward = CIMLinear.forward
    monkeypatch.setattr(CIMLinear, "forward", lambda self, x: calls.append(self.layer_name) or forward(self, x))
    return calls


@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_encoder_layer_runs_attention_on_crossbars_and_matches_on_ideal(batch_first, monkeypatch):
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=batch_first).eval()
    cim = convert_no_warning(layer).eval()
    assert isinstance(cim.self_attn, CIMMultiheadAttention)
    assert [a[0] for a in cim.cim_summary.analog] == ["self_attn", "linear1", "linear2"]
    x = torch.randn(2, 5, 16) if batch_first else torch.randn(5, 2, 16)
    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    calls = _crossbar_calls(monkeypatch)
    with torch.no_grad():  # where torch takes its fused fast path: it must stand aside
        y = cim(x, src_key_padding_mask=padding)
        ref = layer(x, src_key_padding_mask=padding)
    assert calls == ["self_attn.in_proj", "self_attn.out_proj", "linear1", "linear2"]
    assert torch.allclose(y, ref, atol=1e-5)
    noisy = quiet_convert(layer, "rram-22nm", seed=0).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # uncalibrated ADC ranges
        assert rel_err(noisy(x, src_key_padding_mask=padding), ref) > 1e-3  # the chip is in the loop


def test_transformer_encoder_with_padding_keeps_dense_tensors_for_the_crossbars():
    enc = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True), 2, enable_nested_tensor=True
    ).eval()
    cim = convert_no_warning(enc).eval()
    x = torch.randn(2, 5, 16)
    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's prototype-nested-tensor notice for the digital model
        with torch.no_grad():
            y, ref = cim(x, src_key_padding_mask=padding), enc(x, src_key_padding_mask=padding)
    kept = ~padding  # the digital model's nested path returns zeros at padded positions
    assert torch.allclose(y[kept], ref[kept], atol=1e-5)
    assert enc.use_nested_tensor and not cim.use_nested_tensor


# ---- functional products -------------------------------------------------------------------------------


class Block(nn.Module):
    """Weights as bare parameters, multiplied in forward, plus products that must stay digital."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 8))  # F.linear: (out, in)
        self.b = nn.Parameter(torch.randn(6))
        self.u = nn.Parameter(torch.randn(6, 5))  # matmul: (in, out)
        self.v = nn.Parameter(torch.randn(5, 4))  # @
        self.norm = nn.LayerNorm(4)

    def forward(self, x):
        h = torch.relu(F.linear(x, self.w, self.b))
        h = torch.matmul(h, self.u)
        a = self.norm(h @ self.v)
        return a @ a.transpose(-1, -2)  # two activations: digital


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.block(x))


def test_functional_products_with_own_parameters_run_on_crossbars():
    model = Net()
    cim = convert_no_warning(model)
    names = [(n, t) for n, t, _, _ in cim.cim_summary.analog]
    assert names == [
        ("block.w (F.linear)", "Parameter"),
        ("block.u (matmul)", "Parameter"),
        ("block.v (@)", "Parameter"),
        ("head", "Linear"),
    ]
    block = cim.block
    assert isinstance(block, Block) and isinstance(block.w_cim, CIMLinear)
    assert torch.equal(block.w_cim.weight, model.block.w.detach())  # F.linear holds W
    assert torch.equal(block.u_t_cim.weight, model.block.u.detach().T)  # x @ U holds U.T
    x = torch.randn(3, 8)
    assert rel_err(cim(x), model(x)) < 1e-5
    noisy = quiet_convert(model, "rram-22nm", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # uncalibrated ADC ranges
        assert rel_err(noisy(x), model(x)) > 1e-3


def test_one_crossbar_per_parameter_orientation():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 4))

        def forward(self, x):
            return F.linear(x, self.w) + x @ self.w.t() + x.matmul(self.w)

    model = Twice()
    cim = convert_no_warning(model)
    assert [a[0] for a in cim.cim_summary.analog] == ["w (F.linear)", "w (matmul)"]  # the model itself
    assert sorted(n for n, _ in cim.named_children()) == ["w_cim", "w_t_cim"]
    x = torch.randn(2, 4)
    assert rel_err(cim(x), model(x)) < 1e-5


def test_parameter_as_left_operand_is_reported_and_kept_digital():
    class Left(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(3, 4))

        def forward(self, x):
            return self.w @ x

    model = nn.Sequential(Left())
    with pytest.warns(UserWarning, match=r"0.w \(@\) \(parameter as the left operand"):
        cim = ck.convert(model, "ideal")
    assert cim.cim_summary.analog == []
    x = torch.randn(4, 2)
    assert torch.equal(cim(x), model(x))


def test_an_untraceable_module_stays_digital_and_is_named_in_the_warning():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 4))

        def forward(self, x):
            if x.sum() > 0:  # control flow on values: torch.fx cannot trace it
                return F.linear(x, self.w)
            return x

    model = nn.Sequential(Branchy(), nn.Linear(4, 2))
    with pytest.warns(UserWarning, match=r"0 \(Branchy, its forward does not trace with torch.fx.*TraceError"):
        cim = ck.convert(model, "ideal")
    assert type(cim[0]) is Branchy and [a[0] for a in cim.cim_summary.analog] == ["1"]
    x = torch.randn(2, 4).abs()
    assert rel_err(cim(x), model(x)) < 1e-5


def test_a_forward_reading_the_training_flag_keeps_both_modes():
    class Dropping(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(16, 16))

        def forward(self, x):
            return F.dropout(F.linear(x, self.w), 0.5, self.training)

    model = nn.Sequential(Dropping()).eval()
    cim = convert_no_warning(model.train()).eval()  # converted in training mode, run in eval mode
    x = torch.randn(4, 16)
    assert rel_err(cim(x), model.eval()(x)) < 1e-5
    assert (cim.train()(x) == 0).any()  # and training mode still drops


def test_a_shared_module_with_functional_products_is_rewritten_once():
    shared = Block()
    model = nn.Sequential()
    model.add_module("a", shared)
    model.add_module("c", shared)
    cim = convert_no_warning(model)
    assert cim.a is cim.c
    assert [a[0] for a in cim.cim_summary.analog][0] == "a.w (F.linear) = c.w (F.linear)"
    assert len(cim.cim_summary.analog) == 3


def test_optional_arguments_take_the_branch_of_each_call():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 4))

        def forward(self, x, mask=None, *, scale=1.0):
            h = F.linear(x, self.w) * scale
            if mask is None:  # fx alone would trace this as "given" for every call
                return h
            return h.masked_fill(mask, 0.0)

    model = Masked()
    cim = convert_no_warning(model)
    assert [a[0] for a in cim.cim_summary.analog] == ["w (F.linear)"]
    x, mask = torch.randn(3, 4), torch.rand(3, 4) > 0.5
    calls = [((x,), {}), ((x, mask), {}), ((x,), {"mask": mask, "scale": 2.0}), ((x, None), {"scale": 3.0})]
    for args, kwargs in calls:
        assert rel_err(cim(*args, **kwargs), model(*args, **kwargs)) < 1e-5


def test_rewritten_modules_pickle_and_deep_copy():
    model = Net()
    cim = convert_no_warning(model)
    buffer = io.BytesIO()
    torch.save(cim, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    x = torch.randn(3, 8)
    for copy_ in (loaded, copy.deepcopy(cim)):
        assert isinstance(copy_.block, Block) and isinstance(copy_.block.w_cim, CIMLinear)
        assert torch.allclose(copy_(x), cim(x), atol=1e-6)
