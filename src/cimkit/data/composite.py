"""A CIFAR-shaped (3 x 32 x 32, 10 classes) offline image set built from real MNIST digits.

Why: adversarial-robustness studies on simulated chips want a colour 32x32 classification task that
runs offline and trains on a CPU in minutes, yet is not solved by a linear model on the pixels (as
MNIST nearly is: about 88% for logistic regression). CIFAR-10 itself cannot be downloaded here.

What each image is (all random draws from one seeded ``torch.Generator``, vectorized over images):

* a textured background: a random base colour blended towards a second random colour by a smooth
  random field (4x4 noise upsampled), plus a faint oriented sinusoidal grating of random frequency;
* a *distractor*: a smaller MNIST digit of a different class, in its own colour, at 30-55% opacity,
  anywhere in the frame;
* the *labelled digit*: an MNIST digit scaled to 65-100% of the frame, rotated by up to 15 degrees,
  at a random offset, in a random foreground colour at least 0.6 (RGB Euclidean distance) from the
  background colour, its colour modulated by a second smooth random field;
* Gaussian pixel noise (standard deviation 0.03), then clipped to [0, 1].

The foreground may be darker or brighter than the background, per image, so no fixed pixel weighting
separates the classes; the classifier has to find the high-contrast, large digit among texture and a
low-contrast distractor. Train and test images are rendered from disjoint MNIST digits (the 5,000
digits of ``digits.mnist`` split as it splits them), distractors from the same partition.

What it is not: CIFAR-10. There are no natural objects, no intra-class shape variation beyond
MNIST's, and only 5,000 images. Measured difficulty: see ``composite_digits``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import InputError
from .digits import Split, mnist

SIZE = 32  # output side in pixels
CHANNELS = 3
CLASSES = 10


def composite_digits(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """The composite 3 x 32 x 32 digit set (see the module docstring), float32 in [0, 1].

    ``test_fraction`` of the 5,000 MNIST digits go to the test partition (as in ``digits.mnist``);
    ``seed`` fixes both the split and every rendering draw, so one seed always gives the same tensors.

    Measured difficulty at the defaults (4,000 train / 1,000 test images, seed 0, one CPU thread,
    Adam lr 1e-3, batch 64; chance is 10%): logistic regression on the 3,072 pixels reaches 11-13%
    test accuracy (it reaches 88% on plain MNIST); after 15 epochs the models of
    ``cimkit.robust.models`` reach: small CNN 72% (97.5% on MNIST after 10 epochs),
    SpinalNet-style 76%, VGG-style (with BatchNorm) 89%; the CPU-sized CCT 63% after 20 epochs with a
    cosine schedule (lr 2e-3). All sit near chance for the first 2-8 epochs before the colour-invariant
    features form. So the task needs convolutional, colour-invariant spatial reasoning, with roughly
    CIFAR-10-like accuracies for small models, but it is far narrower than CIFAR-10.
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise InputError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer, got {seed!r}")
    digits = mnist(test_fraction=test_fraction, seed=seed)
    gen = torch.Generator().manual_seed(int(seed) + 0x5EED)
    x_train = _render(digits.x_train, digits.y_train, gen)
    x_test = _render(digits.x_test, digits.y_test, gen)
    return Split(x_train, digits.y_train.clone(), x_test, digits.y_test.clone(), "composite-digits-32")


def _uniform(shape: tuple[int, ...], lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=gen)


def _place(digits: torch.Tensor, zoom: torch.Tensor, angle: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Warp (n, 1, 28, 28) digits into (n, 1, 32, 32) frames: scaled so the 28x28 box spans ``zoom`` of
    the frame, rotated by ``angle`` radians, its centre at ``centre`` (normalized frame coordinates)."""
    n = digits.shape[0]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    rot = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)  # (n, 2, 2)
    shift = -(rot @ centre.unsqueeze(-1))  # input = rot @ (out - centre)
    theta = torch.cat([rot, shift], 2)
    grid = F.affine_grid(theta, [n, 1, SIZE, SIZE], align_corners=False)
    return F.grid_sample(digits, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp(0, 1)


def _smooth_field(n: int, gen: torch.Generator, cells: int = 4) -> torch.Tensor:
    """(n, 1, 32, 32) smooth random field in [0, 1]: ``cells`` x ``cells`` uniform noise, bicubic upsampled."""
    coarse = torch.rand((n, 1, cells, cells), generator=gen)
    return F.interpolate(coarse, size=(SIZE, SIZE), mode="bicubic", align_corners=False).clamp(0, 1)


def _colours_apart(reference: torch.Tensor, min_distance: float, gen: torch.Generator) -> torch.Tensor:
    """Random RGB colours (n, 3), each at least ``min_distance`` from the matching ``reference`` row
    (vectorized rejection sampling: redraw only the rows that are too close)."""
    colours = torch.rand(reference.shape, generator=gen)
    for _ in range(1000):
        close = (colours - reference).norm(dim=1) < min_distance
        if not close.any():
            return colours
        colours[close] = torch.rand((int(close.sum()), 3), generator=gen)
    raise RuntimeError("could not draw colours far enough apart")  # pragma: no cover - probability ~0


def _distractor_indices(y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """For each label, the index of a random digit of a *different* class in the same partition."""
    n = y.shape[0]
    other = (y + torch.randint(1, CLASSES, (n,), generator=gen)) % CLASSES
    order = torch.argsort(y, stable=True)
    counts = torch.bincount(y, minlength=CLASSES)
    if (counts == 0).any():  # a tiny partition may lack a class: fall back to any other digit
        pick = torch.randint(0, n, (n,), generator=gen)
        return torch.where(y[pick] != y, pick, (pick + 1) % n)
    starts = torch.cumsum(counts, 0) - counts
    offset = (torch.rand(n, generator=gen) * counts[other]).long().clamp(max=counts[other] - 1)
    return order[starts[other] + offset]


def _render(digits: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Render composite images (n, 3, 32, 32) for the (n, 1, 28, 28) MNIST ``digits``."""
    n = digits.shape[0]
    # background: base colour, blended to a second colour by a smooth field, plus a faint grating
    base = torch.rand((n, 3), generator=gen)
    second = torch.rand((n, 3), generator=gen)
    blend = _uniform((n, 1, 1, 1), 0.2, 0.6, gen) * _smooth_field(n, gen)
    image = base[:, :, None, None] + (second - base)[:, :, None, None] * blend
    coords = (torch.arange(SIZE, dtype=torch.float32) - SIZE / 2) / SIZE
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    orientation = _uniform((n,), 0.0, math.pi, gen)
    frequency = _uniform((n,), 3.0, 10.0, gen) * 2 * math.pi
    phase = _uniform((n,), 0.0, 2 * math.pi, gen)
    along = xx[None] * torch.cos(orientation)[:, None, None] + yy[None] * torch.sin(orientation)[:, None, None]
    grating = torch.sin(frequency[:, None, None] * along + phase[:, None, None])
    image = image + _uniform((n, 1, 1, 1), 0.03, 0.1, gen) * grating[:, None]

    # distractor: a smaller digit of another class, semi-transparent
    other = digits[_distractor_indices(labels, gen)]
    d_zoom = _uniform((n,), 0.35, 0.55, gen)
    d_centre = (torch.rand((n, 2), generator=gen) * 2 - 1) * (1 - d_zoom)[:, None]
    d_mask = _place(other, d_zoom, _uniform((n,), -0.3, 0.3, gen), d_centre)
    d_colour = _colours_apart(base, 0.4, gen)[:, :, None, None]
    d_alpha = _uniform((n, 1, 1, 1), 0.3, 0.55, gen) * d_mask
    image = image * (1 - d_alpha) + d_colour * d_alpha

    # labelled digit: large, rotated, offset, in a textured foreground colour far from the background
    zoom = _uniform((n,), 0.65, 1.0, gen)
    centre = (torch.rand((n, 2), generator=gen) * 2 - 1) * (1.05 - zoom)[:, None]
    mask = _place(digits, zoom, _uniform((n,), -math.radians(15), math.radians(15), gen), centre)
    fg = _colours_apart(base, 0.6, gen)[:, :, None, None]
    fg = fg * (1 + 0.25 * (_smooth_field(n, gen) - 0.5))
    image = image * (1 - mask) + fg * mask

    image = image + 0.03 * torch.randn(image.shape, generator=gen)
    return image.clamp_(0, 1).to(torch.float32).contiguous()
