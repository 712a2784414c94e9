"""The zoo's networks as torch modules, in plain torch (no torchvision): imported by ``zoo`` only when a
CNN workload or a model is asked for, so that ``import cimkit.workload`` does not import torch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def lenet() -> nn.Module:
    """LeNet-5 for 1x28x28 digits."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def vgg8() -> nn.Module:
    """VGG8 for CIFAR-10 (3x32x32), the network of DNN+NeuroSim's NetWork_VGG8.csv."""
    def block(cin, cout, pool):
        layers = [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
        return layers + ([nn.MaxPool2d(2)] if pool else [])
    return nn.Sequential(*block(3, 128, False), *block(128, 128, True), *block(128, 256, False), *block(256, 256, True),
                         *block(256, 512, False), *block(512, 512, True), nn.Flatten(), nn.Linear(8192, 1024),
                         nn.ReLU(), nn.Linear(1024, 10))


def vgg16(classes: int = 1000) -> nn.Module:
    """VGG16 for ImageNet (3x224x224), Simonyan & Zisserman 2015, configuration D."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, cin = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
            cin = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Linear(4096, 4096),
                         nn.ReLU(), nn.Linear(4096, classes))


def alexnet(classes: int = 1000) -> nn.Module:
    """AlexNet for ImageNet (3x224x224), the single-tower layout (Krizhevsky 2014)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.AdaptiveAvgPool2d(6), nn.Flatten(),
        nn.Linear(256 * 36, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, classes))


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + self.down(x))


def resnet18(classes: int = 1000) -> nn.Module:
    """ResNet-18 for ImageNet (He et al. 2016)."""
    layers, cin = [], 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [_Basic(cin, cout, stride), _Basic(cout, cout, 1)]
        cin = cout
    return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                         *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes))


def resnet20(classes: int = 10) -> nn.Module:
    """ResNet-20 for CIFAR-10 (He et al. 2016, section 4.2)."""
    layers, cin = [], 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        layers += [_Basic(cin, cout, stride), _Basic(cout, cout, 1), _Basic(cout, cout, 1)]
        cin = cout
    return nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), *layers,
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))


class _SE(nn.Module):
    def __init__(self, c: int, squeeze: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))


class _InvertedResidual(nn.Module):
    def __init__(self, cin, k, exp, cout, se, act, stride) -> None:
        super().__init__()
        act_layer = nn.Hardswish if act == "HS" else nn.ReLU
        layers: list[nn.Module] = []
        if exp != cin:
            layers += [nn.Conv2d(cin, exp, 1, bias=False), nn.BatchNorm2d(exp), act_layer()]
        layers += [nn.Conv2d(exp, exp, k, stride, k // 2, groups=exp, bias=False), nn.BatchNorm2d(exp), act_layer()]
        if se:
            layers.append(_SE(exp, _make_divisible(exp // 4)))
        layers += [nn.Conv2d(exp, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return y + x if self.residual else y


def _make_divisible(v: int, divisor: int = 8) -> int:
    return max(divisor, int(v + divisor / 2) // divisor * divisor)


def mobilenetv3(classes: int = 1000) -> nn.Module:
    """MobileNetV3-Large for ImageNet (Howard et al. 2019, Table 1)."""
    cfg = [  # kernel, expansion, out, SE, activation, stride
        (3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
        (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
        (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
        (3, 184, 80, False, "HS", 1), (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
        (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1),
    ]
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish()]
    cin = 16
    for k, exp, cout, se, act, s in cfg:
        layers.append(_InvertedResidual(cin, k, exp, cout, se, act, s))
        cin = cout
    layers += [nn.Conv2d(cin, 960, 1, bias=False), nn.BatchNorm2d(960), nn.Hardswish(), nn.AdaptiveAvgPool2d(1),
               nn.Flatten(), nn.Linear(960, 1280), nn.Hardswish(), nn.Linear(1280, classes)]
    return nn.Sequential(*layers)


class _EncoderLayer(nn.Module):
    """A BERT encoder layer (post-norm): attention with its own q, k, v and output projections and
    scaled dot-product attention, then a GELU feed-forward block."""

    def __init__(self, d: int, heads: int, ff: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.output = (nn.Linear(d, d) for _ in range(4))
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.intermediate, self.act, self.out = nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d)

    def forward(self, x):
        b, length, d = x.shape
        split = lambda t: t.view(b, length, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        a = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)))
        x = self.norm1(self.output(a.transpose(1, 2).reshape(b, length, d)) + x)
        return self.norm2(self.out(self.act(self.intermediate(x))) + x)


class BertEncoder(nn.Module):
    """A BERT encoder on token ids (batch, length): word, token-type and position embeddings, LayerNorm,
    ``layers`` encoder layers (no pooler)."""

    def __init__(self, layers: int = 12, d: int = 768, heads: int = 12, ff: int = 3072, vocab: int = 30522,
                 max_len: int = 512, types: int = 2) -> None:
        super().__init__()
        self.word, self.token_type, self.position = nn.Embedding(vocab, d), nn.Embedding(types, d), nn.Embedding(max_len, d)
        self.norm = nn.LayerNorm(d)
        self.layers = nn.ModuleList(_EncoderLayer(d, heads, ff) for _ in range(layers))

    def forward(self, ids):
        length = ids.shape[1]
        x = self.word(ids) + self.token_type(torch.zeros_like(ids))
        x = self.norm(x + self.position(torch.arange(length, device=ids.device)[None]))
        for layer in self.layers:
            x = layer(x)
        return x

