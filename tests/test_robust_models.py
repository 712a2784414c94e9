"""The robustness-study classifiers (cimkit.robust.models) and the composite 32x32 digit set."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cimkit
from cimkit.data.composite import composite_digits
from cimkit.errors import InputError
from cimkit.robust import models as rm

# small knobs so that every test runs in well under a second per model
TINY = {
    "small_cnn": {"channels": (4, 8), "hidden": 16},
    "vgg_style": {"widths": (4, 8), "convs_per_block": 1, "hidden": 16},
    "spinalnet_style": {"channels": (4, 8), "spinal_width": 8},
    "cct": {"layers": 1, "dim": 16, "heads": 4},
}
SHAPES = [(1, 28), (3, 32)]


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _crossbar_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if type(m) in (nn.Linear, nn.Conv2d)]


#: the builders that take any input shape (demo_cnn is the demo's 1 x 28 x 28 network)
SIZED = [n for n in rm.MODELS if n != "demo_cnn"]


def test_registry_names():
    assert set(rm.MODELS) == {"demo_cnn", "small_cnn", "vgg_style", "spinalnet_style", "cct"}


def test_the_demo_cnn_is_the_demos_network_and_takes_mnist_only():
    from cimkit.demo import small_cnn

    model = rm.build("demo_cnn", in_channels=1, image_size=28, num_classes=10, seed=0)
    assert [tuple(p.shape) for p in model.parameters()] == [tuple(p.shape) for p in small_cnn().parameters()]
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(InputError, match="takes 1 x 28 x 28 inputs"):
        rm.build("demo_cnn", in_channels=3, image_size=32, num_classes=10)


@pytest.mark.parametrize("name", SIZED)
@pytest.mark.parametrize("channels,size", SHAPES)
def test_output_shape_at_defaults(name, channels, size):
    kwargs = rm.CCT_CPU if name == "cct" else {}
    model = rm.build(name, in_channels=channels, image_size=size, num_classes=10, seed=0, **kwargs).eval()
    with torch.no_grad():
        out = model(torch.rand(2, channels, size, size))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", SIZED)
def test_other_class_counts_and_odd_sizes(name):
    model = rm.build(name, in_channels=2, image_size=19, num_classes=7, seed=0, **TINY[name]).eval()
    with torch.no_grad():
        assert model(torch.rand(3, 2, 19, 19)).shape == (3, 7)


@pytest.mark.parametrize("name", SIZED)
def test_seeded_initialization(name):
    def make(seed):
        return rm.build(name, in_channels=3, image_size=32, num_classes=10, seed=seed, **TINY[name])

    a, b, c = _weights(make(1)), _weights(make(1)), _weights(make(2))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert any(not torch.equal(x, z) for x, z in zip(a, c))


def test_build_leaves_global_rng_alone():
    state = torch.get_rng_state()
    rm.build("small_cnn", in_channels=1, image_size=28, num_classes=10, seed=3)
    assert torch.equal(state, torch.get_rng_state())


def test_cct_full_size_structure():
    model = rm.build("cct", in_channels=3, image_size=32, num_classes=10, seed=0)
    assert rm.CCT_FULL == {"layers": 7, "heads": 4, "dim": 256, "mlp_ratio": 2.0, "kernel": 3, "tokenizer_convs": 1}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1  # one conv tokenizer layer
    assert convs[0].weight.shape == (256, 3, 3, 3) and convs[0].stride == (1, 1)
    assert any(isinstance(m, nn.MaxPool2d) for m in model.tokenizer)
    assert len(model.encoder) == 7
    for layer in model.encoder:
        assert isinstance(layer, rm.EncoderLayer)
        assert layer.attn.heads == 4 and layer.attn.head_dim == 64
        assert layer.attn.qkv.weight.shape == (3 * 256, 256)
        assert layer.attn.proj.weight.shape == (256, 256)
        assert layer.fc1.weight.shape == (512, 256) and layer.fc2.weight.shape == (256, 512)
        assert isinstance(layer.norm1, nn.LayerNorm) and isinstance(layer.norm2, nn.LayerNorm)
    assert not any(isinstance(m, nn.MultiheadAttention) for m in model.modules())
    assert isinstance(model.pool, rm.SequencePooling) and model.pool.score.weight.shape == (1, 256)
    assert model.head.weight.shape == (10, 256)
    # no class token: the only non-layer parameter is the positional embedding, one row per image token
    assert model.tokens == 16 * 16
    loose = {n: p.shape for n, p in model.named_parameters() if "." not in n}
    assert loose == {"pos_embedding": torch.Size([1, 256, 256])}
    assert 3.7e6 < rm.parameter_count(model) < 3.8e6  # the paper's 3.76 M


def test_cct_cpu_settings_and_sinusoidal_positions():
    assert rm.CCT_CPU["heads"] == 4 and rm.CCT_CPU["dim"] < 256 and rm.CCT_CPU["layers"] <= 7
    model = rm.build(
        "cct", in_channels=1, image_size=28, num_classes=10, seed=0, positional="sinusoidal", **TINY["cct"]
    )
    assert "pos_embedding" not in dict(model.named_parameters())
    assert model.pos_embedding.shape == (1, 14 * 14, 16)


@pytest.mark.parametrize("name", SIZED)
def test_ideal_chip_reproduces_float_model(name):
    assert "ideal" in cimkit.HardwareSpec.presets()
    model = rm.build(name, in_channels=3, image_size=16, num_classes=10, seed=0, **TINY[name]).eval()
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
        chip = cimkit.convert(model, cimkit.HardwareSpec.preset("ideal"), seed=0).eval()
        got = chip(x)
    summary = chip.cim_summary
    # every weight is a plain Linear / Conv2d, and every one of them went onto crossbars
    assert len(summary.analog) == len(_crossbar_layers(model)) and not summary.unsupported
    assert not _crossbar_layers(chip)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-3), (got - expected).abs().max()


def test_train_and_accuracy_are_seeded():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, 1, 12, 12, generator=g)
    y = (x[:, 0, :6].mean((1, 2)) > x[:, 0, 6:].mean((1, 2))).long()

    def run():
        model = rm.build("small_cnn", in_channels=1, image_size=12, num_classes=2, seed=0, **TINY["small_cnn"])
        losses = rm.train_classifier(model, x, y, epochs=3, batch_size=32, lr=1e-2, seed=5)
        return model, losses

    (m1, l1), (m2, l2) = run(), run()
    assert len(l1) == 3 and l1 == l2 and l1[-1] < l1[0]
    assert all(torch.equal(a, b) for a, b in zip(_weights(m1), _weights(m2)))
    assert not m1.training
    acc = rm.accuracy(m1, x, y, batch_size=40)
    assert 0.0 <= acc <= 1.0 and acc == rm.accuracy(m2, x, y)


def test_train_other_optimizers():
    x, y = torch.rand(20, 1, 8, 8), torch.arange(20) % 2
    for optimizer in ("sgd", "adamw"):
        model = rm.build("small_cnn", in_channels=1, image_size=8, num_classes=2, seed=0, **TINY["small_cnn"])
        losses = rm.train_classifier(
            model, x, y, epochs=1, batch_size=8, lr=1e-2, optimizer=optimizer, schedule="cosine", weight_decay=1e-4
        )
        assert len(losses) == 1


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: rm.build("resnet", in_channels=1, image_size=28, num_classes=10, seed=0),
            "unknown model 'resnet'.*small_cnn",
        ),
        (lambda: rm.build("cct", in_channels=0, image_size=28, num_classes=10, seed=0), "in_channels.*positive.*0"),
        (lambda: rm.build("small_cnn", in_channels=1, image_size=-3, num_classes=10, seed=0), "image_size.*-3"),
        (lambda: rm.build("vgg_style", in_channels=1, image_size=28, num_classes=0, seed=0), "num_classes.*0"),
        (
            lambda: rm.build("vgg_style", in_channels=1, image_size=4, num_classes=10, seed=0),
            "image_size must be at least 8",
        ),
        (
            lambda: rm.build("vgg_style", in_channels=1, image_size=28, num_classes=10, seed=0, widths=(8, 0)),
            r"widths\[1\].*0",
        ),
        (
            lambda: rm.build("small_cnn", in_channels=1, image_size=28, num_classes=10, seed=0, channels=(8,)),
            "channels must hold exactly 2",
        ),
        (
            lambda: rm.build("cct", in_channels=1, image_size=28, num_classes=10, seed=0, dim=30, heads=4),
            "heads must divide dim.*30.*4",
        ),
        (lambda: rm.build("cct", in_channels=1, image_size=28, num_classes=10, seed=0, kernel=4), "kernel must be odd"),
        (
            lambda: rm.build("cct", in_channels=1, image_size=28, num_classes=10, seed=0, positional="rope"),
            "positional",
        ),
        (lambda: rm.build("cct", in_channels=1, image_size=28, num_classes=10, seed=0, depth=3), "model 'cct'.*depth"),
        (lambda: rm.build("cct", in_channels=1, image_size=28, num_classes=10, seed=1.5), "seed must be an integer"),
    ],
)
def test_bad_model_arguments(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_bad_training_arguments():
    model = rm.build("small_cnn", in_channels=1, image_size=8, num_classes=2, seed=0, **TINY["small_cnn"])
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 0, 1])
    with pytest.raises(InputError, match="epochs.*0"):
        rm.train_classifier(model, x, y, epochs=0)
    with pytest.raises(InputError, match="lr"):
        rm.train_classifier(model, x, y, epochs=1, lr=-1.0)
    with pytest.raises(InputError, match="same, non-zero number"):
        rm.train_classifier(model, x, y[:3], epochs=1)
    with pytest.raises(InputError, match="x must be a float tensor"):
        rm.accuracy(model, x[:, 0], y)
    with pytest.raises(InputError, match="optimizer must be"):
        rm.train_classifier(model, x, y, epochs=1, optimizer="lbfgs")


# ------------------------------------------------------------------------------------------------
# the composite data set


@pytest.fixture(scope="module")
def composite():
    return composite_digits()


def test_composite_shapes_range_and_balance(composite):
    s = composite
    assert s.x_train.shape == (4000, 3, 32, 32) and s.x_test.shape == (1000, 3, 32, 32)
    assert s.x_train.dtype == torch.float32 and s.y_train.dtype == torch.int64
    for x in (s.x_train, s.x_test):
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        assert float(x.std()) > 0.1  # not blank
    for y, n in ((s.y_train, 4000), (s.y_test, 1000)):
        counts = torch.bincount(y, minlength=10)
        assert counts.sum() == n and len(counts) == 10
        assert counts.min() >= 0.08 * n and counts.max() <= 0.12 * n
    # colour: the three channels differ (a grey image would have equal channels)
    assert float((s.x_train[:, 0] - s.x_train[:, 1]).abs().mean()) > 0.1
    assert s.name == "composite-digits-32"


def test_composite_is_deterministic_per_seed(composite):
    again = composite_digits(seed=0)
    assert torch.equal(composite.x_train, again.x_train) and torch.equal(composite.y_test, again.y_test)
    other = composite_digits(seed=1)
    assert not torch.equal(composite.x_train[:100], other.x_train[:100])


def test_composite_bad_arguments():
    with pytest.raises(InputError, match="test_fraction"):
        composite_digits(test_fraction=1.5)
    with pytest.raises(InputError, match="seed"):
        composite_digits(seed="zero")
