"""Image classifiers for adversarial-robustness studies on simulated compute-in-memory chips.

Four architectures of the adversarial-robustness literature, in plain torch (no torchvision), sized
by knobs whose defaults train on a CPU in well under a minute on 4,000 28x28 images:

* ``small_cnn``: the small MNIST CNN of Madry et al. (2 conv + 2 linear), scaled down;
* ``vgg_style``: blocks of 3x3 conv + BatchNorm + ReLU and max-pooling, narrow widths;
* ``spinalnet_style``: SpinalNet (Kabir et al. 2020): a conv feature extractor and a chain of small
  "spinal" linear layers that each read one half of the features and the previous spinal output;
* ``cct``: the Compact Convolutional Transformer (Hassani et al. 2021), CCT-7/3x1 at the defaults
  (``CCT_CPU`` holds the scaled-down settings of the CPU studies).

Every weight is a plain ``nn.Linear`` or ``nn.Conv2d``, so that ``cimkit.convert`` puts every weight
product on crossbars; the products of two activations (attention scores, attention-weighted values,
sequence pooling) are ``@`` between tensors and ``torch.softmax``, which stay digital, as on a chip.
No ``nn.MultiheadAttention``: its fused projection would hide the per-layer structure.

``build(name, ...)`` builds one of ``MODELS`` with seeded initial weights; ``train_classifier`` and
``accuracy`` train and score any of them (or a converted copy) reproducibly.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, short_repr

#: CCT-7/3x1 (Hassani et al. 2021, the CIFAR model): one 3x3 conv tokenizer layer, 7 encoder layers,
#: 4 heads, embedding dim 256, MLP ratio 2 (hidden 512); 3.76 M parameters on 32x32x3 inputs.
CCT_FULL: dict[str, Any] = {"layers": 7, "heads": 4, "dim": 256, "mlp_ratio": 2.0, "kernel": 3, "tokenizer_convs": 1}

#: The scaled-down CCT of the CPU studies (CCT-2/3x2-like): 4 heads, MLP ratio 2, 3x3 conv tokenizer,
#: sequence pooling, learnable positions and pre-norm as CCT-7/3x1, but 2 encoder layers instead of 7,
#: embedding dim 64 instead of 256, and two tokenizer conv layers instead of one (64 tokens on 32x32
#: inputs, 49 on 28x28, instead of 256 / 196: attention over 256 tokens costs ~100 s per epoch of 4,000
#: images on one CPU thread, mostly in the softmax backward). About 110 k parameters (1/34 of CCT-7/3x1).
#: Measured on one thread: 4,000 MNIST digits, 10 epochs (65 s): 92.6% test accuracy; the composite
#: 32x32 set, 20 epochs (166 s, lr 2e-3, cosine schedule, batch 64): 62.6%.
CCT_CPU: dict[str, Any] = {"layers": 2, "heads": 4, "dim": 64, "mlp_ratio": 2.0, "kernel": 3, "tokenizer_convs": 2}


# ---------------------------------------------------------------------------------------------------
# argument checks


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {short_repr(value)}")
    return int(value)


def _positive_ints(name: str, values: object) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise InputError(f"{name} must be a non-empty sequence of positive integers, got {short_repr(values)}")
    return tuple(_positive_int(f"{name}[{i}]", v) for i, v in enumerate(values))


def _positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive finite number, got {short_repr(value)}")
    return float(value)


def _shape(
    in_channels: object, image_size: object, num_classes: object, min_size: int, why: str
) -> tuple[int, int, int]:
    c = _positive_int("in_channels", in_channels)
    s = _positive_int("image_size", image_size)
    k = _positive_int("num_classes", num_classes)
    if s < min_size:
        raise InputError(f"image_size must be at least {min_size} {why}, got {s}")
    return c, s, k


# ---------------------------------------------------------------------------------------------------
# small CNN


def small_cnn(
    in_channels: int = 1,
    image_size: int = 28,
    num_classes: int = 10,
    *,
    channels: Sequence[int] = (16, 32),
    hidden: int = 128,
    kernel: int = 5,
) -> nn.Sequential:
    """The small MNIST CNN of the adversarial literature (Madry et al. 2018: conv 32 5x5, pool, conv 64
    5x5, pool, linear 1024, linear 10), scaled down to ``channels`` = (16, 32) and ``hidden`` = 128
    (about 215 k parameters on MNIST instead of 3.3 M) so that it trains on a CPU in seconds.

    Both convs are "same"-padded and followed by ReLU and 2x2 max-pooling, so the flattened size is
    ``channels[1] * (image_size // 4) ** 2``."""
    c, s, k = _shape(in_channels, image_size, num_classes, 4, "(two 2x2 max-pools)")
    c1, c2 = _pair("channels", channels)
    h = _positive_int("hidden", hidden)
    kk = _odd_kernel(kernel)
    side = s // 4
    return nn.Sequential(
        nn.Conv2d(c, c1, kk, padding=kk // 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, kk, padding=kk // 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * side * side, h),
        nn.ReLU(),
        nn.Linear(h, k),
    )


def _pair(name: str, values: object) -> tuple[int, int]:
    ints = _positive_ints(name, values)
    if len(ints) != 2:
        raise InputError(f"{name} must hold exactly 2 positive integers (one per conv layer), got {short_repr(values)}")
    return ints[0], ints[1]


def _odd_kernel(kernel: object, name: str = "kernel") -> int:
    kk = _positive_int(name, kernel)
    if kk % 2 == 0:
        raise InputError(f"{name} must be odd (so that 'same' padding keeps the image size), got {kk}")
    return kk


# ---------------------------------------------------------------------------------------------------
# VGG-style


def vgg_style(
    in_channels: int = 1,
    image_size: int = 28,
    num_classes: int = 10,
    *,
    widths: Sequence[int] = (16, 32, 64),
    convs_per_block: int = 2,
    hidden: int = 128,
) -> nn.Sequential:
    """A VGG-style network (Simonyan and Zisserman 2015), narrow: one block per entry of ``widths``, each
    ``convs_per_block`` x (3x3 conv without bias + BatchNorm2d + ReLU) and a 2x2 max-pool; then
    flatten, linear ``hidden`` + ReLU, linear ``num_classes``. About 150 k parameters at the
    defaults (VGG-16 has 15 M on CIFAR): narrow so that it trains on a CPU in under a minute."""
    width_list = _positive_ints("widths", widths)
    c, s, k = _shape(
        in_channels,
        image_size,
        num_classes,
        2 ** len(width_list),
        f"(one 2x2 max-pool per block, {len(width_list)} blocks)",
    )
    n_conv = _positive_int("convs_per_block", convs_per_block)
    h = _positive_int("hidden", hidden)
    layers: list[nn.Module] = []
    prev = c
    for w in width_list:
        for _ in range(n_conv):
            layers += [nn.Conv2d(prev, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            prev = w
        layers.append(nn.MaxPool2d(2))
    side = s // 2 ** len(width_list)
    layers += [nn.Flatten(), nn.Linear(prev * side * side, h), nn.ReLU(), nn.Linear(h, k)]
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------------------------------
# SpinalNet-style


class SpinalNet(nn.Module):
    """SpinalNet (Kabir et al. 2020): ``features`` (a conv extractor) gives a flat vector split in two
    halves; spinal layer i (Linear + ReLU) reads half ``i % 2`` concatenated with spinal layer i-1's
    output (layer 0 reads its half only); the outputs of all spinal layers, concatenated, feed the
    final linear classifier. The chain lets a narrow layer see all features over a few steps, the way
    the spinal cord gathers input along its length; it keeps the classifier head small."""

    def __init__(
        self, features: nn.Module, n_features: int, spinal_width: int, spinal_layers: int, num_classes: int
    ) -> None:
        super().__init__()
        if n_features < 2:
            raise InputError(f"the feature extractor gives {n_features} features; SpinalNet needs at least 2 to split")
        self.features = features
        self.half_features = n_features // 2  # not ``half``: that would hide nn.Module.half()
        halves = (self.half_features, n_features - self.half_features)
        self.spinal = nn.ModuleList(
            nn.Linear(halves[i % 2] + (spinal_width if i else 0), spinal_width) for i in range(spinal_layers)
        )
        self.classifier = nn.Linear(spinal_width * spinal_layers, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.flatten(self.features(x), 1)
        halves = (f[:, : self.half_features], f[:, self.half_features :])
        outs: list[torch.Tensor] = []
        for i, layer in enumerate(self.spinal):
            inp = halves[i % 2] if i == 0 else torch.cat([halves[i % 2], outs[-1]], dim=1)
            outs.append(F.relu(layer(inp)))
        return self.classifier(torch.cat(outs, dim=1))


def spinalnet_style(
    in_channels: int = 1,
    image_size: int = 28,
    num_classes: int = 10,
    *,
    channels: Sequence[int] = (16, 32),
    spinal_width: int = 32,
    spinal_layers: int = 4,
    kernel: int = 5,
) -> SpinalNet:
    """A SpinalNet-style classifier (see ``SpinalNet``): the MNIST extractor of Kabir et al. (two 5x5
    convs, each followed by 2x2 max-pool and ReLU; here "same"-padded and widened from (10, 20) to
    ``channels`` = (16, 32)), then ``spinal_layers`` = 4 spinal layers of width ``spinal_width`` = 32
    (the paper's MNIST model: 4 layers of 50) and a linear classifier. About 120 k parameters on MNIST."""
    c, s, k = _shape(in_channels, image_size, num_classes, 4, "(two 2x2 max-pools)")
    c1, c2 = _pair("channels", channels)
    width = _positive_int("spinal_width", spinal_width)
    n_layers = _positive_int("spinal_layers", spinal_layers)
    kk = _odd_kernel(kernel)
    features = nn.Sequential(
        nn.Conv2d(c, c1, kk, padding=kk // 2),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(c1, c2, kk, padding=kk // 2),
        nn.MaxPool2d(2),
        nn.ReLU(),
    )
    side = s // 4
    return SpinalNet(features, c2 * side * side, width, n_layers, k)


# ---------------------------------------------------------------------------------------------------
# Compact Convolutional Transformer


class SelfAttention(nn.Module):
    """Multi-head self-attention with its weights as plain ``nn.Linear`` layers (fused ``qkv`` without
    bias, as in CCT, and the output projection ``proj``), so that they map onto crossbars; the scores
    ``q @ k^T``, their softmax and the weighted sum of values are activation products (digital)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (b, heads, t, head_dim)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    """A pre-norm transformer encoder layer: ``x + attn(LN(x))``, then ``x + mlp(LN(x))`` with the MLP
    Linear(dim, hidden) + GELU + Linear(hidden, dim)."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class SequencePooling(nn.Module):
    """CCT's sequence pooling (instead of a class token): a linear layer gives each token a score, a
    softmax over the tokens turns the scores into weights, and the output is the weighted sum of the
    tokens, (b, t, d) -> (b, d)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.score(x), dim=1)  # (b, t, 1)
        return (weights.transpose(1, 2) @ x).squeeze(1)


def _sinusoidal(tokens: int, dim: int) -> torch.Tensor:
    position = torch.arange(tokens, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(tokens, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table[None]


class CCT(nn.Module):
    """Compact Convolutional Transformer (Hassani et al. 2021, "Escaping the Big Data Paradigm with
    Compact Transformers"): a conv tokenizer (``tokenizer_convs`` x [conv k x k, stride 1, no bias;
    ReLU; 3x3 max-pool, stride 2]) turns the image into a grid of tokens, flattened to a sequence;
    a positional embedding is added; ``layers`` pre-norm encoder layers follow, then a LayerNorm,
    sequence pooling and a linear classifier. No class token."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        num_classes: int,
        *,
        layers: int,
        heads: int,
        dim: int,
        mlp_ratio: float,
        kernel: int,
        tokenizer_convs: int,
        positional: str,
    ) -> None:
        super().__init__()
        convs: list[nn.Module] = []
        side, prev = image_size, in_channels
        for i in range(tokenizer_convs):
            out = dim if i == tokenizer_convs - 1 else 64  # CCT's intermediate tokenizer width
            convs += [
                nn.Conv2d(prev, out, kernel, stride=1, padding=kernel // 2, bias=False),
                nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            ]
            side, prev = (side - 1) // 2 + 1, out
        self.tokenizer = nn.Sequential(*convs)
        self.tokens = side * side
        self.positional = positional
        if positional == "learnable":
            self.pos_embedding = nn.Parameter(torch.zeros(1, self.tokens, dim))
            nn.init.trunc_normal_(self.pos_embedding, std=0.2)
        else:
            self.register_buffer("pos_embedding", _sinusoidal(self.tokens, dim), persistent=False)
        hidden = int(dim * mlp_ratio)
        self.encoder = nn.ModuleList(EncoderLayer(dim, heads, hidden) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.pool = SequencePooling(dim)
        self.head = nn.Linear(dim, num_classes)
        self.apply(_cct_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tokenizer(x).flatten(2).transpose(1, 2)  # (b, tokens, dim)
        x = x + self.pos_embedding
        for layer in self.encoder:
            x = layer(x)
        return self.head(self.pool(self.norm(x)))


def _cct_init(m: nn.Module) -> None:
    """CCT's initialization: truncated normal (std 0.02) linear weights, zero biases, LayerNorm (1, 0),
    Kaiming-normal conv weights."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight)


def cct(
    in_channels: int = 3,
    image_size: int = 32,
    num_classes: int = 10,
    *,
    layers: int = 7,
    heads: int = 4,
    dim: int = 256,
    mlp_ratio: float = 2.0,
    kernel: int = 3,
    tokenizer_convs: int = 1,
    positional: str = "learnable",
) -> CCT:
    """A Compact Convolutional Transformer (see ``CCT``). The defaults are CCT-7/3x1 (``CCT_FULL``:
    7 layers, 4 heads, dim 256, MLP hidden 512, one 3x3 conv tokenizer layer; 3.76 M parameters and
    256 tokens on 32x32 inputs, 196 on 28x28); pass ``**CCT_CPU`` (2 layers, dim 64,
    two tokenizer convs) to train on a CPU. With ``tokenizer_convs`` > 1 the inner convs have CCT's 64 channels.

    ``positional``: "learnable" (CCT's default, truncated normal std 0.2) or "sinusoidal" (fixed)."""
    c, s, k = _shape(in_channels, image_size, num_classes, 1, "")
    n_layers = _positive_int("layers", layers)
    n_heads = _positive_int("heads", heads)
    d = _positive_int("dim", dim)
    if d % n_heads:
        raise InputError(f"heads must divide dim: dim {d} is not a multiple of heads {n_heads}")
    ratio = _positive_float("mlp_ratio", mlp_ratio)
    if int(d * ratio) < 1:
        raise InputError(f"mlp_ratio {ratio} gives an MLP hidden size of 0 at dim {d}")
    kk = _odd_kernel(kernel)
    n_convs = _positive_int("tokenizer_convs", tokenizer_convs)
    if positional not in ("learnable", "sinusoidal"):
        raise InputError(f"positional must be 'learnable' or 'sinusoidal', got {short_repr(positional)}")
    return CCT(
        c,
        s,
        k,
        layers=n_layers,
        heads=n_heads,
        dim=d,
        mlp_ratio=ratio,
        kernel=kk,
        tokenizer_convs=n_convs,
        positional=positional,
    )


# ---------------------------------------------------------------------------------------------------
# registry, training, scoring


#: name -> builder ``f(in_channels, image_size, num_classes, **knobs) -> nn.Module``
def demo_cnn(in_channels: int = 1, image_size: int = 28, num_classes: int = 10) -> nn.Module:
    """The CNN of ``cimkit demo`` (``cimkit.demo.small_cnn``: LeNet-style, about 44k weights), for 1 x 28 x 28
    inputs only."""
    from ..demo import small_cnn as demo_small_cnn

    if (in_channels, image_size) != (1, 28):
        raise InputError(
            f"model 'demo_cnn' takes 1 x 28 x 28 inputs (the demo's MNIST digits), got in_channels="
            f"{short_repr(in_channels)}, image_size={short_repr(image_size)}"
        )
    return demo_small_cnn(num_classes)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "demo_cnn": demo_cnn,
    "small_cnn": small_cnn,
    "vgg_style": vgg_style,
    "spinalnet_style": spinalnet_style,
    "cct": cct,
}


def build(name: str, *, in_channels: int, image_size: int, num_classes: int, seed: int = 0, **kwargs: Any) -> nn.Module:
    """Build ``MODELS[name]`` with initial weights drawn from ``seed`` (same seed, same weights),
    without touching torch's global random state. ``kwargs`` are the builder's size knobs (e.g.
    ``build("cct", ..., **CCT_CPU)``). The model comes back in training mode."""
    if not isinstance(name, str) or name not in MODELS:
        raise InputError(f"unknown model {short_repr(name)}; available: {', '.join(MODELS)}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputError(f"seed must be an integer, got {short_repr(seed)}")
    builder = MODELS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        try:
            return builder(in_channels, image_size, num_classes, **kwargs)
        except TypeError as exc:  # an unknown knob
            raise InputError(f"model {name!r}: {exc}") from None


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _check_xy(x: object, y: object) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise InputError(
            f"x must be a float tensor (N, C, H, W), got "
            f"{type(x).__name__ if not isinstance(x, torch.Tensor) else f'{x.dtype} {tuple(x.shape)}'}"
        )
    if (
        not isinstance(y, torch.Tensor)
        or y.dim() != 1
        or y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8)
    ):
        raise InputError(
            f"y must be an integer tensor (N,) of class labels, got "
            f"{type(y).__name__ if not isinstance(y, torch.Tensor) else f'{y.dtype} {tuple(y.shape)}'}"
        )
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise InputError(f"x and y must hold the same, non-zero number of examples, got {x.shape[0]} and {y.shape[0]}")
    return x, y.long()


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    weight_decay: float = 0.0,
    optimizer: str = "adam",
    schedule: str = "constant",
) -> list[float]:
    """Train ``model`` in place on (``x``, ``y``) with cross-entropy; return the mean loss of each epoch.

    ``optimizer``: "adam" (Adam, ``weight_decay`` as L2; "adamw" for decoupled decay) or "sgd" (momentum
    0.9, Nesterov). ``schedule``: "constant" or "cosine" (the learning rate decays to 0 over the run,
    per batch; it helps transformers). The batch order is drawn from a local generator seeded with
    ``seed``, so the same model, data and seed give the same weights (torch's global random state is
    neither used nor changed). The model is left in eval mode."""
    x, y = _check_xy(x, y)
    n_epochs = _positive_int("epochs", epochs)
    bs = _positive_int("batch_size", batch_size)
    rate = _positive_float("lr", lr)
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real) or not weight_decay >= 0:
        raise InputError(f"weight_decay must be a number >= 0, got {short_repr(weight_decay)}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputError(f"seed must be an integer, got {short_repr(seed)}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InputError("model has no trainable parameters")
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=rate, weight_decay=float(weight_decay))
    elif optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=rate, weight_decay=float(weight_decay))
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=rate, momentum=0.9, nesterov=True, weight_decay=float(weight_decay))
    else:
        raise InputError(f"optimizer must be 'adam', 'adamw' or 'sgd', got {short_repr(optimizer)}")
    if schedule not in ("constant", "cosine"):
        raise InputError(f"schedule must be 'constant' or 'cosine', got {short_repr(schedule)}")
    steps_per_epoch = math.ceil(x.shape[0] / bs)
    total = n_epochs * steps_per_epoch

    def factor(step: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * step / total)) if schedule == "cosine" else 1.0

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    gen = torch.Generator().manual_seed(int(seed))
    device = _device(model)
    losses: list[float] = []
    model.train()
    try:
        for _ in range(n_epochs):
            order = torch.randperm(x.shape[0], generator=gen)
            total_loss = 0.0
            for start in range(0, x.shape[0], bs):
                idx = order[start : start + bs]
                xb, yb = x[idx].to(device), y[idx].to(device)
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total_loss += float(loss.detach()) * idx.numel()
            losses.append(total_loss / x.shape[0])
    finally:
        model.eval()
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Fraction of ``x`` that ``model`` (put in eval mode) classifies as ``y``, in batches of ``batch_size``."""
    x, y = _check_xy(x, y)
    bs = _positive_int("batch_size", batch_size)
    model.eval()
    device = _device(model)
    correct = 0
    for start in range(0, x.shape[0], bs):
        pred = model(x[start : start + bs].to(device)).argmax(dim=1).cpu()
        correct += int((pred == y[start : start + bs]).sum())
    return correct / x.shape[0]
