"""Specification tests of cimkit.snn.tasks: spike-encoded MNIST, DVS-like event streams and Fang et al.'s
temporal pattern association task (data small enough to run in seconds)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cimkit.errors import InputError
from cimkit.snn import tasks
from cimkit.snn.tasks import (
    association_mse,
    dvs_events,
    encode_images,
    encode_mnist,
    moving_bar_video,
    moving_bars,
    pattern_association,
    psp_filter,
    psp_kernel,
    psp_peak_step,
    psp_v0,
    saccade_digits,
)


def _binary(x: torch.Tensor) -> bool:
    return x.dtype == torch.float32 and bool(((x == 0) | (x == 1)).all())


# ---------------------------------------------------------------- rate / latency coding


def test_rate_code_shape_binary_and_equals_spikegen_for_the_same_seed():
    from snntorch import spikegen

    x = torch.rand(8, 20)
    before = torch.get_rng_state()
    spikes = encode_images(x, "rate", 12, seed=5, gain=0.8)
    assert torch.equal(torch.get_rng_state(), before), "the global RNG must not be touched"
    assert spikes.shape == (12, 8, 20) and _binary(spikes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        reference = spikegen.rate(x, num_steps=12, gain=0.8)
    assert torch.equal(spikes, reference)


def test_rate_code_fires_with_probability_equal_to_intensity():
    levels = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.75, 1.0])
    x = levels.repeat(200, 1)  # 200 samples x 6 levels
    spikes = encode_images(x, "rate", 100, seed=1)
    rate = spikes.mean(dim=(0, 1))  # 20,000 draws per level
    tol = 4 * torch.sqrt(levels * (1 - levels) / 20_000) + 1e-9
    assert torch.all((rate - levels).abs() <= tol), (rate, levels)


def test_rate_code_seeds_reproduce_and_differ():
    x = torch.rand(4, 50)
    assert torch.equal(encode_images(x, "rate", 10, seed=3), encode_images(x, "rate", 10, seed=3))
    assert not torch.equal(encode_images(x, "rate", 10, seed=3), encode_images(x, "rate", 10, seed=4))


def test_latency_code_brighter_fires_earlier_once_and_background_never():
    from snntorch import spikegen

    x = torch.tensor([[1.0, 0.9, 0.5, 0.2, 0.05, 0.005, 0.0]])
    spikes = encode_images(x, "latency", 20)
    assert spikes.shape == (20, 1, 7) and _binary(spikes)
    counts = spikes.sum(dim=0)[0]
    assert torch.equal(counts, torch.tensor([1.0, 1, 1, 1, 1, 0, 0]))  # below the 0.01 threshold: silent
    times = spikes[:, 0, :5].argmax(dim=0)
    assert times[0] == 0 and bool((times[1:] >= times[:-1]).all()) and times[-1] > times[0]
    assert torch.equal(times, torch.round(19 * (1 - x[0, :5])).long())  # linear, normalised to the window
    assert torch.equal(
        spikes, spikegen.latency(x, num_steps=20, threshold=0.01, normalize=True, linear=True, clip=True)
    )


def test_latency_code_on_random_images_is_monotone_and_at_most_once():
    x = torch.rand(16, 100)
    for code in ("linear", "log"):
        spikes = encode_images(x, "latency", 25, latency_code=code)
        assert bool((spikes.sum(dim=0) <= 1).all())
        fired = spikes.sum(dim=0) == 1
        t = spikes.argmax(dim=0)
        # the code is one monotone map of intensity to time: over all firing pixels, brighter -> no later
        xi, ti = x[fired], t[fired]
        order = torch.argsort(xi, descending=True)
        assert bool((ti[order][1:] >= ti[order][:-1]).all())
        assert bool((x[~fired] < 0.01).all())


def test_encode_mnist_shapes_labels_and_seeds():
    from cimkit.data.digits import mnist

    a = encode_mnist("rate", 6, n_train=32, n_test=16, seed=2)
    assert a.x_train.shape == (6, 32, 784) and a.x_test.shape == (6, 16, 784)
    assert _binary(a.x_train) and _binary(a.x_test)
    split = mnist(0.2, seed=2)
    assert torch.equal(a.y_train, split.y_train[:32]) and a.y_train.dtype == torch.int64
    assert torch.equal(a.y_test, split.y_test[:16])
    b = encode_mnist("rate", 6, n_train=32, n_test=16, seed=2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    c = encode_mnist("rate", 6, n_train=32, n_test=16, seed=3)
    assert not torch.equal(a.x_train, c.x_train)
    lat = encode_mnist("latency", 10, n_train=8, n_test=8, seed=2)
    assert lat.x_train.shape == (10, 8, 784) and bool((lat.x_train.sum(dim=0) <= 1).all())
    # mean firing rate of the rate code is the mean intensity
    assert abs(float(a.x_train.mean()) - float(split.x_train[:32].mean())) < 0.01


# ---------------------------------------------------------------- DVS events


def test_dvs_static_scene_fires_only_at_onset():
    img = torch.rand(3, 8, 8)
    video = img.expand(10, 3, 8, 8).contiguous()
    ev = dvs_events(video, reference="blank")
    assert ev.shape == (10, 3, 2, 8, 8) and _binary(ev)
    assert ev[0, :, 0].sum() > 0 and ev[0, :, 1].sum() == 0  # onset: ON only
    assert ev[1:].sum() == 0
    assert dvs_events(video, reference="first").sum() == 0


def test_dvs_polarity_and_reference_reset():
    c = 0.2
    # log intensity rising by 0.6 C per step: the reference is reset at each event, so events every 2nd step
    logs = math.log(0.1) + 0.6 * c * torch.arange(8, dtype=torch.float64)
    frames = (torch.exp(logs) - 0.1).float().clamp(0, 1).view(8, 1, 1, 1)
    ev = dvs_events(frames, contrast_threshold=c, log_eps=0.1)
    assert ev[:, 0, 1].sum() == 0  # brightening: no OFF
    assert ev[:, 0, 0, 0, 0].tolist() == [0, 0, 1, 0, 1, 0, 1, 0]
    down = dvs_events(frames.flip(0), contrast_threshold=c, log_eps=0.1)
    assert down[:, 0, 0].sum() == 0 and down[:, 0, 1].sum() == 3  # darkening: OFF only


def test_dvs_threshold_mismatch_is_seeded():
    video = torch.rand(6, 2, 5, 5)
    a = dvs_events(video, threshold_mismatch=0.3, seed=1)
    assert torch.equal(a, dvs_events(video, threshold_mismatch=0.3, seed=1))
    assert not torch.equal(a, dvs_events(video, threshold_mismatch=0.3, seed=2))


def test_moving_bars_shape_labels_and_seeds():
    a = moving_bars(40, directions=4, steps=20, size=12, seed=0)
    assert a.events.shape == (20, 40, 2, 12, 12) and _binary(a.events)
    assert a.labels.dtype == torch.int64 and torch.equal(torch.bincount(a.labels), torch.tensor([10] * 4))
    assert a.events[0].sum() == 0  # the sensor starts adapted: no onset flash
    assert torch.equal(a.events, moving_bars(40, directions=4, steps=20, size=12, seed=0).events)
    assert not torch.equal(a.events, moving_bars(40, directions=4, steps=20, size=12, seed=1).events)


def test_opposite_bar_directions_have_the_same_frames_in_reverse_order():
    angles = torch.tensor([0.3, 1.0])
    jit = torch.tensor([0.7, -1.2])
    fwd = moving_bar_video(angles, steps=15, size=10, jitter=jit)
    back = moving_bar_video(angles + math.pi, steps=15, size=10, jitter=-jit)
    assert torch.allclose(back, fwd.flip(0), atol=1e-6)


def _ons_velocity(events: torch.Tensor) -> torch.Tensor:
    """Least-squares velocity [N, 2] (px/step, x right, y down) of the centroid of the ON events over the
    steps that have any: a non-learning read-out of where the edges go."""
    on = events[:, :, 0]  # [T, N, H, W]
    t_steps, n, h, w = on.shape
    mass = on.sum(dim=(2, 3))
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w)
    ys = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1)
    cx = (on * xs).sum(dim=(2, 3)) / mass.clamp_min(1)
    cy = (on * ys).sum(dim=(2, 3)) / mass.clamp_min(1)
    valid = (mass > 0).float()
    t = torch.arange(t_steps, dtype=torch.float32).view(-1, 1)
    dt = (t - (t * valid).sum(0) / valid.sum(0)) * valid
    return torch.stack([(dt * cx).sum(0), (dt * cy).sum(0)], dim=1) / (dt**2).sum(0).view(-1, 1)


def _shuffle_time(events: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t_steps, n = events.shape[:2]
    perm = torch.stack([torch.randperm(t_steps, generator=g) for _ in range(n)], dim=1)  # per sample
    return torch.gather(events, 0, perm.view(t_steps, n, 1, 1, 1).expand_as(events))


@pytest.mark.parametrize("directions", [2, 4])
def test_bar_direction_is_in_the_event_order_and_lost_when_time_is_shuffled(directions):
    n = 128
    task = moving_bars(n, directions=directions, steps=24, size=16, seed=3)
    ang = task.labels.float() * 2 * math.pi / directions
    u = torch.stack([torch.cos(ang), torch.sin(ang)], dim=1)  # true direction per sample
    dirs = torch.arange(directions) * 2 * math.pi / directions
    units = torch.stack([torch.cos(dirs), torch.sin(dirs)], dim=1)

    v = _ons_velocity(task.events)
    assert bool(((v * u).sum(1) > 0.5).all())  # the ON centroid moves along the class direction
    assert bool(((v @ units.T).argmax(1) == task.labels).all())

    shuffled = _shuffle_time(task.events, seed=0)
    assert torch.equal(shuffled.sum(0), task.events.sum(0))  # the same events, the order lost
    vs = _ons_velocity(shuffled)
    sign_right = float(((vs * u).sum(1) > 0).float().mean())
    assert sign_right <= 0.65  # the sign of the motion is at chance (0.5)
    guess = (vs @ units.T).argmax(1)
    if directions == 2:
        assert float((guess == task.labels).float().mean()) <= 0.65  # chance: 0.5
    else:  # the bar's orientation still gives the axis: only opposite directions are confused
        assert bool(((guess - task.labels) % 2 == 0).all())


def test_saccade_digits_events():
    from cimkit.data.digits import mnist

    task = saccade_digits(12, steps=18, seed=4)
    assert task.events.shape == (18, 12, 2, 34, 34) and _binary(task.events)
    assert task.events[0].sum() == 0 and bool((task.events.sum(dim=(0, 2, 3, 4)) > 50).all())
    assert bool((task.events[:, :, 0].sum() > 0) and (task.events[:, :, 1].sum() > 0))
    assert set(task.labels.tolist()) <= set(mnist(0.2, 0).y_train.tolist())
    again = saccade_digits(12, steps=18, seed=4)
    assert torch.equal(task.events, again.events) and torch.equal(task.labels, again.labels)
    assert not torch.equal(task.labels, saccade_digits(12, steps=18, seed=5).labels)
    # events only near the digit's ink (the frame border stays quiet)
    assert task.events[:, :, :, :2].sum() == 0 and task.events[:, :, :, :, -2:].sum() == 0


# ---------------------------------------------------------------- PSP kernel, filter and MSE


@pytest.mark.parametrize("tau_m,tau_s", [(8.0, 2.0), (10.0, 2.5), (5.0, 1.0), (3.0, 2.9)])
def test_psp_kernel_peaks_at_exactly_one_at_the_closed_form_step(tau_m, tau_s):
    k = psp_kernel(60, tau_m, tau_s, dtype=torch.float64)
    peak = psp_peak_step(tau_m, tau_s)
    assert int(k.argmax()) == peak
    assert abs(float(k[peak]) - 1.0) < 1e-6 and k[0] == 0
    n_star = tau_m * tau_s * math.log(tau_m / tau_s) / (tau_m - tau_s)
    assert peak in (math.floor(n_star), math.ceil(n_star))


def test_psp_v0_values_and_fang_normalisation():
    assert psp_peak_step() == 4 and abs(psp_v0() - 1 / (math.exp(-0.5) - math.exp(-2))) < 1e-12
    eta = 4.0
    assert abs(psp_v0(normalization="continuous") - eta ** (eta / (eta - 1)) / (eta - 1)) < 1e-12
    assert 0.99 < float(psp_kernel(20, normalization="continuous").max()) < 1.0  # Fang's peaks just below 1


def test_psp_filter_recursion_equals_convolution_with_the_kernel():
    g = torch.Generator().manual_seed(0)
    trains = (torch.rand(50, 3, 4, generator=g, dtype=torch.float64) < 0.1).double()
    out = psp_filter(trains)
    kernel = psp_kernel(50, dtype=torch.float64)
    x = trains.permute(1, 2, 0).reshape(12, 1, 50)
    conv = F.conv1d(F.pad(x, (49, 0)), kernel.flip(0).view(1, 1, 50)).reshape(3, 4, 50).permute(2, 0, 1)
    assert out.shape == trains.shape and torch.allclose(out, conv, atol=1e-12)
    one = torch.zeros(30, 1)
    one[5] = 1
    assert torch.allclose(psp_filter(one)[5:, 0], psp_kernel(25), atol=1e-6)


def test_association_mse_zero_iff_same_and_differentiable():
    g = torch.Generator().manual_seed(1)
    a = (torch.rand(40, 2, 5, generator=g) < 0.1).float()
    b = a.clone()
    b[10, 0, 0] = 1 - b[10, 0, 0]
    assert float(association_mse(a, a)) == 0.0
    assert float(association_mse(a, b)) > 0
    out = a.clone().requires_grad_(True)
    loss = association_mse(out, b)
    loss.backward()
    assert out.grad is not None and float(out.grad.abs().sum()) > 0
    # manual: mean squared difference of the filtered trains
    assert torch.allclose(loss, ((psp_filter(a) - psp_filter(b)) ** 2).mean())


# ---------------------------------------------------------------- pattern association


def test_association_templates_are_sparse_lattice_images():
    pats, labels = tasks.association_templates(10, channels=60, steps=60, seed=0)
    assert pats.shape == (60, 10, 60) and _binary(pats)
    assert sorted(labels.tolist()) == list(range(10))
    active_steps = pats.sum(dim=(1, 2)).nonzero().flatten()
    assert bool((active_steps % 5 == 0).all())  # spikes only every 5th step
    col = pats[0]  # step 0: the lattice of channels 0, 3, 6, ...
    assert bool((col.sum(0).nonzero().flatten() % 3 == 0).all())
    col5 = pats[5]
    assert bool((col5.sum(0).nonzero().flatten() % 3 == 1).all())  # shifted by one channel


def test_pattern_association_shapes_targets_and_seeds():
    task = pattern_association(20, channels=60, steps=60, remove_rows=8, remove_block=(8, 8), seed=1)
    assert task.inputs.shape == (60, 20, 60) and task.targets.shape == (60, 20, 60)
    assert _binary(task.inputs) and _binary(task.targets)
    assert torch.equal(task.labels, torch.arange(20) % 10)
    clean = task.templates[:, task.labels]
    assert torch.equal(task.targets[4:], clean[:-4]) and task.targets[:4].sum() == 0
    again = pattern_association(20, channels=60, steps=60, remove_rows=8, remove_block=(8, 8), seed=1)
    assert torch.equal(task.inputs, again.inputs)
    other = pattern_association(20, channels=60, steps=60, remove_rows=8, remove_block=(8, 8), seed=2)
    assert not torch.equal(task.inputs, other.inputs)
    none = pattern_association(20, channels=60, steps=60, corruptions=(), seed=1)
    assert torch.equal(none.inputs, clean)  # no corruption kinds: the clean templates


def test_default_task_is_300_by_300():
    task = pattern_association(4, seed=0)
    assert task.inputs.shape == (300, 4, 300) and task.delay == 4


def test_corruption_rates_match_the_parameters():
    n = 4000
    task = pattern_association(n, templates=10, channels=20, steps=20, remove_rows=5, remove_block=(5, 5), seed=7)

    def close(measured, p):
        return abs(measured - p) <= 4 * math.sqrt(p * (1 - p) / n)

    assert close(float(task.mutated.float().mean()), 0.4 * 0.7)
    assert close(float((task.removed > 0).float().mean()), 0.4 * 0.5)
    assert close(float((task.removed == 1).float().mean()), 0.1)
    # noise alone: new spikes where the template has none, at 0.5 %
    noisy = pattern_association(n, channels=20, steps=20, corruptions=("noise",), seed=7)
    clean = noisy.templates[:, noisy.labels]
    added = (noisy.inputs > clean).float().sum() / (clean == 0).float().sum()
    cells = float((clean == 0).sum())
    assert abs(float(added) - 0.005) <= 4 * math.sqrt(0.005 * 0.995 / cells)
    assert bool((noisy.inputs >= clean).all())


def test_mutation_jitters_spike_times_by_rounded_unit_gaussian():
    task = pattern_association(
        400, channels=60, steps=60, corruptions=("mutate",), modify_prob=1.0, mutate_prob=1.0, seed=3
    )
    assert bool(task.mutated.all())
    clean = task.templates[:, task.labels]
    inner = slice(5, 55)  # away from the clipping at both ends
    kept = float((task.inputs[inner] * clean[inner]).sum() / clean[inner].sum())
    p0 = math.erf(0.5 / math.sqrt(2))  # P(round(N(0,1)) == 0) = 0.383
    assert abs(kept - p0) < 0.02
    assert abs(float(task.inputs.sum() / clean.sum()) - 1) < 0.01  # spikes move, are not added or lost


@pytest.mark.parametrize("kind,code", [("remove_rows", 1), ("remove_block", 2)])
def test_removal_zeroes_the_reported_region(kind, code):
    task = pattern_association(
        50,
        channels=60,
        steps=60,
        corruptions=(kind,),
        modify_prob=1.0,
        remove_prob=1.0,
        remove_rows=10,
        remove_block=(12, 9),
        seed=2,
    )
    assert bool((task.removed == code).all())
    clean = task.templates[:, task.labels]
    for i in range(50):
        c0, t0 = task.removed_at[i].tolist()
        region = torch.zeros(60, 60, dtype=torch.bool)
        if code == 1:
            region[:, c0 : c0 + 10] = True
        else:
            region[t0 : t0 + 9, c0 : c0 + 12] = True
        assert task.inputs[:, i][region].sum() == 0
        assert torch.equal(task.inputs[:, i][~region], clean[:, i][~region])


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: encode_images(torch.rand(2, 3), "phase", 5), "encoding"),
        (lambda: encode_images(torch.rand(2, 3), "rate", 0), "steps"),
        (lambda: encode_images(torch.rand(2, 3) + 1, "rate", 5), "images"),
        (lambda: encode_images(torch.rand(2, 3), "rate", 5, seed=-1), "seed"),
        (lambda: encode_images(torch.rand(2, 3), "latency", 5, latency_threshold=1.5), "latency_threshold"),
        (lambda: encode_images(torch.rand(2, 3), "latency", 5, latency_code="exp"), "latency_code"),
        (lambda: encode_mnist("rate", 5, test_fraction=1.0), "test_fraction"),
        (lambda: encode_mnist("rate", 5, n_train=0), "n_train"),
        (lambda: dvs_events(torch.rand(3, 4, 4), contrast_threshold=0.2), "frames"),
        (lambda: dvs_events(torch.rand(3, 1, 4, 4), contrast_threshold=0.0), "contrast_threshold"),
        (lambda: dvs_events(torch.rand(3, 1, 4, 4), reference="dark"), "reference"),
        (lambda: moving_bars(8, directions=1), "directions"),
        (lambda: moving_bars(8, width=-1.0), "width"),
        (lambda: saccade_digits(8, size=20), "size"),
        (lambda: saccade_digits(5000), "n"),
        (lambda: pattern_association(0), "n_samples"),
        (lambda: pattern_association(4, delay=300), "delay"),
        (lambda: pattern_association(4, corruptions=("blur",)), "corruptions"),
        (lambda: pattern_association(4, noise_prob=2.0), "noise_prob"),
        (lambda: pattern_association(4, channels=30, remove_rows=40), "remove_rows"),
        (lambda: pattern_association(4, remove_block=(40,)), "remove_block"),
        (lambda: psp_kernel(10, tau_m=2.0, tau_s=8.0), "tau_m"),
        (lambda: psp_filter(torch.zeros(5, 2), normalization="peak"), "normalization"),
        (lambda: psp_filter([0.0, 1.0]), "trains"),
        (lambda: association_mse(torch.zeros(5, 2), torch.zeros(5, 3)), "target_trains"),
    ],
)
def test_bad_arguments_raise_input_error_naming_the_argument(call, name):
    with pytest.raises(InputError, match=rf"\b{name}\b"):
        call()


def test_corruption_seed_gives_fresh_corruptions_of_the_same_templates():
    from cimkit.snn.tasks import pattern_association

    kw = dict(channels=40, steps=50, remove_rows=5, remove_block=(5, 5))
    a = pattern_association(6, seed=3, **kw)
    b = pattern_association(6, seed=3, corruption_seed=4, **kw)
    assert torch.equal(a.templates, b.templates) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, b.inputs)
    assert torch.equal(a.inputs, pattern_association(6, seed=3, corruption_seed=3, **kw).inputs)
