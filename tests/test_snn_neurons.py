"""Spiking neurons of ``cimkit.snn`` as a specification: LIF equals snnTorch 1.0's ``Leaky`` (reset_delay=True)
for every reset; closed-form firing rates; conservation under subtractive reset; Fang et al.'s kernel and
self-inhibition; chip mismatch and adaptation; gradients through every variant; bad input."""

from __future__ import annotations

import math

import pytest
import snntorch as snn
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from snntorch import surrogate

from cimkit.errors import InputError
from cimkit.snn import LIF, FangNeuron, Synaptic, gaussian, kernel_peak, neuron_cost_fn

FAST = settings(max_examples=30, deadline=None)


def _run(neuron, current, *state):
    spikes, mems = [], []
    for t in range(current.shape[0]):
        out = neuron(current[t], *state)
        spk, *state = out
        spikes.append(spk)
        mems.append(state[-1])
    return torch.stack(spikes), torch.stack(mems)


def _current(seed: int, steps=60, shape=(5, 40), scale=0.8, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(steps, *shape, generator=g, dtype=dtype) * scale


# ---- LIF against snnTorch ------------------------------------------------------------------------------
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@FAST
@given(seed=st.integers(0, 2**16), beta=st.floats(0.5, 1.0), threshold=st.floats(0.2, 2.0))
def test_lif_traces_equal_snntorch_leaky(reset, seed, beta, threshold):
    cur = _current(seed)
    ref_spk, ref_mem = _run(snn.Leaky(beta=beta, threshold=threshold, reset_mechanism=reset), cur, None)
    spk, mem = _run(LIF(beta, threshold, reset=reset), cur, None)
    assert float((mem - ref_mem).abs().max()) <= 1e-6
    assert torch.equal(spk, ref_spk)


def test_lif_from_snntorch_keeps_every_setting():
    m = snn.Leaky(beta=torch.tensor(0.8), threshold=0.7, reset_mechanism="zero", spike_grad=surrogate.fast_sigmoid())
    new = LIF.from_snntorch(m)
    assert new.reset_mechanism == "zero" and float(new.threshold) == pytest.approx(0.7)
    cur = _current(3, dtype=torch.float32)
    assert torch.equal(_run(new, cur, None)[0], _run(m, cur, None)[0])
    with pytest.warns(UserWarning), pytest.raises(InputError, match="inhibition"):
        LIF.from_snntorch(snn.Leaky(beta=0.9, inhibition=True))


def test_synaptic_equals_snntorch_synaptic():
    cur = _current(5)
    ref = snn.Synaptic(alpha=0.7, beta=0.9, reset_mechanism="zero")
    ours = Synaptic(0.7, 0.9, reset="zero")
    sa, sb = [], []
    syn_a = mem_a = syn_b = mem_b = None
    for t in range(cur.shape[0]):
        s1, syn_a, mem_a = ref(cur[t], syn_a, mem_a)
        s2, syn_b, mem_b = ours(cur[t], syn_b, mem_b)
        assert float((mem_a - mem_b).abs().max()) <= 1e-6
        sa.append(s1), sb.append(s2)
    assert torch.equal(torch.stack(sa), torch.stack(sb))


# ---- limiting cases and closed forms ---------------------------------------------------------------
@pytest.mark.parametrize(
    "neuron", [LIF(0.9, reset="zero"), LIF(0.9), LIF(0.9, reset="none"), Synaptic(0.5, 0.9), FangNeuron()]
)
def test_no_input_and_zero_state_is_silent(neuron):
    zeros = torch.zeros(50, 3, 8)
    if isinstance(neuron, FangNeuron):
        spikes = torch.stack([neuron(zeros[t]) for t in range(50)])
    elif isinstance(neuron, Synaptic):
        spikes = _run(neuron, zeros, None, None)[0]
    else:
        spikes = _run(neuron, zeros, None)[0]
    assert spikes.sum() == 0


@FAST
@given(beta=st.floats(0.6, 0.98), current=st.floats(0.05, 1.5), threshold=st.floats(0.3, 1.5))
def test_zero_reset_fires_at_the_closed_form_rate(beta, current, threshold):
    if current <= threshold * (1 - beta) * 1.001:
        return  # below rheobase the neuron never fires
    steps_per_spike = math.log(1 - threshold * (1 - beta) / current) / math.log(beta)
    if abs(steps_per_spike - round(steps_per_spike)) < 1e-3:
        return  # on a step boundary float rounding decides
    period = math.ceil(steps_per_spike)
    T = 40 * period
    spk, _ = _run(LIF(beta, threshold, reset="zero"), torch.full((T, 1, 1), current, dtype=torch.float64), None)
    times = torch.nonzero(spk.flatten()).flatten()
    assert int(times[0]) == period - 1  # the first spike at step index period - 1 (period steps)
    assert torch.all(times.diff() == period)


@FAST
@given(beta=st.floats(0.6, 0.99), current=st.floats(0.05, 1.5))
def test_subtract_reset_rate_matches_snntorch_on_constant_input(beta, current):
    cur = torch.full((300, 1, 1), current, dtype=torch.float64)
    assert torch.equal(_run(LIF(beta), cur, None)[0], _run(snn.Leaky(beta=beta), cur, None)[0])


@FAST
@given(seed=st.integers(0, 2**16), threshold=st.floats(0.2, 2.0))
def test_subtractive_reset_conserves_the_excess(seed, threshold):
    """Without leak, a subtractive reset removes exactly one threshold per spike: charge in = membrane +
    threshold x spikes already reset (the last step's spike is reset at the next step)."""
    cur = _current(seed, steps=80)
    neuron = LIF(1.0, threshold)
    threshold = float(neuron.threshold)  # as snnTorch stores it (float32)
    spk, mem = _run(neuron, cur, None)
    spk = spk.double()
    reset_so_far = torch.cumsum(spk, 0) - spk
    torch.testing.assert_close(mem + threshold * reset_so_far, torch.cumsum(cur, 0), rtol=0, atol=1e-9)


# ---- Fang et al.'s neuron ------------------------------------------------------------------------------
@pytest.mark.parametrize("tau_m,tau_s", [(8.0, 2.0), (20.0, 5.0), (4.0, 1.0), (3.0, 2.5)])
def test_fang_kernel_peaks_at_exactly_one(tau_m, tau_s):
    neuron = FangNeuron(tau_m, tau_s, threshold=1e9).double()
    T = 200
    impulse = torch.zeros(T, 1, 1, dtype=torch.float64)
    impulse[0] = 1.0
    psp = []
    for t in range(T):
        neuron(impulse[t])
        psp.append(float(neuron.last_v))
    psp = torch.tensor(psp, dtype=torch.float64)
    assert float(psp.max()) == pytest.approx(1.0, abs=1e-6)
    t_peak, _ = kernel_peak(torch.tensor(tau_m, dtype=torch.float64), torch.tensor(tau_s, dtype=torch.float64))
    assert int(psp.argmax()) == int(t_peak)
    # the psp is the dual exponential e^(-t/tau_m) - e^(-t/tau_s), scaled
    t = torch.arange(T, dtype=torch.float64)
    shape = torch.exp(-t / tau_m) - torch.exp(-t / tau_s)
    torch.testing.assert_close(psp, shape / shape.max(), rtol=0, atol=1e-9)


def test_fang_inhibition_decays_by_exp_minus_one_over_tau_m():
    neuron = FangNeuron(8.0, 2.0).double()
    drive = torch.zeros(40, 1, 1, dtype=torch.float64)
    drive[0] = 5.0  # one strong input: the neuron fires, then is silent
    r = []
    for t in range(40):
        neuron(drive[t])
        r.append(float(neuron.r))
    r = torch.tensor(r, dtype=torch.float64)
    last = int(torch.nonzero(r.diff() > 0).max()) + 1 if (r.diff() > 0).any() else 0
    tail = r[last + 1 :]
    assert r.max() >= 1.0
    torch.testing.assert_close(tail[1:] / tail[:-1], torch.full_like(tail[1:], math.exp(-1 / 8.0)), rtol=1e-12, atol=0)


def test_fang_has_no_reset_the_membrane_keeps_its_input():
    """After a spike the membrane is not wiped: V = psp - r, one threshold below the psp at the spike."""
    neuron = FangNeuron(8.0, 2.0, threshold=0.5).double()
    I = torch.full((1, 1), 2.0, dtype=torch.float64)
    s0 = neuron(I)
    psp_after = None
    v1 = None
    s1 = neuron(I)
    v1 = float(neuron.last_v)
    a_m, a_s, v0 = neuron.decays(I)
    psp_after = float(v0 * (neuron.m - neuron.k))
    assert float(s0) + float(s1) >= 1
    assert v1 == pytest.approx(psp_after - float(s0), abs=1e-12)


def test_fang_output_filter_equals_filtering_each_input():
    """Filtering the crossbar's output current equals Fang's per-input filter before the weights (linearity)."""
    g = torch.Generator().manual_seed(0)
    T, B, n_in, n_out = 30, 4, 12, 6
    s = (torch.rand(T, B, n_in, generator=g) < 0.3).double()
    W = torch.randn(n_out, n_in, generator=g, dtype=torch.float64)
    ours = FangNeuron(8.0, 2.0).double()
    v_ours = []
    for t in range(T):
        ours(s[t] @ W.T)
        v_ours.append(ours.last_v.clone())
    a_m, a_s = math.exp(-1 / 8), math.exp(-1 / 2)
    v0 = float(1 / kernel_peak(torch.tensor(8.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64))[1])
    m = k = torch.zeros(B, n_in, dtype=torch.float64)
    r = torch.zeros(B, n_out, dtype=torch.float64)
    for t in range(T):
        m, k = a_m * m + s[t], a_s * k + s[t]
        v = (v0 * (m - k)) @ W.T - r
        spk = (v > 1.0).double()
        r = a_m * r + spk
        torch.testing.assert_close(v, v_ours[t], rtol=0, atol=1e-10)


# ---- gradients -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: LIF(0.9),
        lambda: LIF(0.9, reset="zero"),
        lambda: LIF(0.9, reset="none"),
        lambda: LIF(0.9, adaptation=0.3),
        lambda: Synaptic(0.6, 0.9),
        lambda: FangNeuron(learn_decay=True),
        lambda: FangNeuron(spike_grad="atan"),
        lambda: LIF(0.9, spike_grad=gaussian(0.4), learn_beta=True, learn_threshold=True),
    ],
)
def test_gradients_flow_through_every_variant(make):
    neuron = make()
    x = _current(1, steps=20, shape=(3, 10), scale=1.2, dtype=torch.float32).requires_grad_()
    total = 0
    state = None
    for t in range(x.shape[0]):
        if isinstance(neuron, FangNeuron):
            spk = neuron(x[t])
        elif isinstance(neuron, Synaptic):
            spk, *state = neuron(x[t], *(state or (None, None)))
        else:
            spk, state = neuron(x[t], state)
        total = total + spk.sum()
    total.backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    for p in neuron.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and float(p.grad.abs().sum()) > 0


def test_gaussian_surrogate_is_the_normal_density():
    x = torch.linspace(-2, 2, 101, requires_grad=True)
    gaussian(0.4)(x).sum().backward()
    expected = torch.exp(-0.5 * (x.detach() / 0.4) ** 2) / (0.4 * math.sqrt(2 * math.pi))
    torch.testing.assert_close(x.grad, expected)


# ---- chip mismatch and adaptation ----------------------------------------------------------------------
def test_variation_is_seeded_and_changes_firing():
    cur = _current(2, shape=(4, 200), dtype=torch.float32)
    plain = _run(LIF(0.9), cur, None)[0]
    runs = []
    for seed in (0, 0, 1):
        n = LIF(0.9)
        n.set_variation(threshold_sigma_rel=0.1, leak_sigma_rel=0.3, seed=seed)
        runs.append(_run(n, cur, None)[0])
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    assert not torch.equal(runs[0], plain)
    n = LIF(0.9)
    n.set_variation(0.1, 0.0, seed=4)
    _run(n, cur, None)
    th = n.variation.threshold_gain
    assert th.shape == (200,) and float(th.std()) == pytest.approx(0.1, rel=0.25)


def test_adaptive_threshold_slows_firing_under_constant_drive():
    cur = torch.full((200, 1, 1), 0.5)
    plain = _run(LIF(0.95), cur, None)[0].sum()
    adapted = _run(LIF(0.95, adaptation=0.5, adaptation_decay=0.95), cur, None)[0].sum()
    assert 0 < adapted < plain


def test_cost_names():
    assert neuron_cost_fn(snn.Leaky(beta=0.9, reset_mechanism="zero")) == "lif_zero"
    assert neuron_cost_fn(LIF(0.9, adaptation=0.1)) == "lif_subtract_adaptive"
    assert neuron_cost_fn(FangNeuron()) == "fang"
    assert neuron_cost_fn(snn.Synaptic(alpha=0.5, beta=0.9, reset_mechanism="none")) == "synaptic_none"


# ---- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: LIF(1.5), "beta"),
        (lambda: LIF(0.9, reset="hard"), "reset"),
        (lambda: LIF(0.9, threshold=0), "threshold"),
        (lambda: LIF(0.9, spike_grad="tanh"), "spike_grad"),
        (lambda: LIF(0.9, adaptation=-1), "adaptation"),
        (lambda: FangNeuron(2.0, 8.0), "tau_m must exceed tau_s"),
        (lambda: FangNeuron(size=0), "size"),
        (lambda: gaussian(0), "sigma"),
        (lambda: LIF(0.9).set_variation(threshold_sigma_rel=-0.1), "threshold_sigma_rel"),
        (lambda: FangNeuron(size=4)(torch.zeros(2, 5)), "4 per-neuron"),
        (lambda: FangNeuron()(torch.zeros(2, 5, dtype=torch.int64)), "floating-point"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(InputError, match=match):
        call()


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_synaptic_with_adaptation_and_variation_runs_every_reset(reset):
    n = Synaptic(0.6, 0.9, reset=reset, adaptation=0.3)
    n.set_variation(0.1, 0.1, seed=2)
    spk, syn, mem = None, None, None
    cur = _current(4, steps=30)
    total = 0
    for t in range(30):
        spk, syn, mem = n(cur[t], syn, mem)
        total += float(spk.sum())
    assert total > 0


def test_synaptic_zero_reset_reaches_zero_under_leak_mismatch():
    n = Synaptic(0.5, 0.9, reset="zero")
    n.set_variation(leak_sigma_rel=2.0, seed=1)
    cur = torch.cat([torch.full((2, 1, 64), 0.8), torch.zeros(6, 1, 64)])
    syn = mem = None
    prev = None
    for t in range(cur.shape[0]):
        spk, syn, mem = n(cur[t], syn, mem)
        if prev is not None:
            assert torch.all(mem[prev.bool()] == 0)
        prev = spk


def test_adaptation_starts_afresh_with_each_sequence_and_keeps_no_graph():
    from snntorch import utils

    net = torch.nn.Sequential(LIF(0.9, adaptation=0.5, init_hidden=True))
    x = _current(7, steps=40, shape=(2, 16), scale=0.5, dtype=torch.float32)

    def run():
        utils.reset(net)
        return torch.stack([net(x[t]) for t in range(x.shape[0])])

    first, second = run(), run()
    assert torch.equal(first, second)
    lif = LIF(0.9, adaptation=0.5)  # a fresh membrane passed in starts a new sequence too
    seqs = []
    for _ in range(2):
        mem, out = torch.zeros(2, 16), []
        for t in range(x.shape[0]):
            spk, mem = lif(x[t], mem)
            out.append(spk)
        seqs.append(torch.stack(out))
    assert torch.equal(seqs[0], seqs[1])
    w = torch.ones(16, requires_grad=True)  # truncated BPTT: one backward per batch, no graph kept
    for _ in range(2):
        utils.reset(net)
        sum(net(x[t] * w).sum() for t in range(10)).backward()


def test_learnable_threshold_gets_snntorchs_gradient_with_adaptation():
    cur = _current(5, steps=30, shape=(2, 8), scale=0.6, dtype=torch.float32)
    grads = []
    for make in (
        lambda: snn.Leaky(beta=0.9, learn_threshold=True),
        lambda: LIF(0.9, learn_threshold=True, adaptation=1e-30),
    ):
        n = make()
        mem, total = None, 0
        for t in range(cur.shape[0]):
            spk, mem = n(cur[t], mem)
            total = total + mem.sum()
        total.backward()
        grads.append(float(n.threshold.grad))
    assert grads[1] == pytest.approx(grads[0], rel=1e-5)


def test_learnable_settings_survive_conversion():
    m = snn.Leaky(beta=0.8, learn_beta=True, learn_threshold=True)
    new = LIF.from_snntorch(m)
    assert isinstance(new.beta, torch.nn.Parameter) and isinstance(new.threshold, torch.nn.Parameter)
    s = Synaptic.from_snntorch(snn.Synaptic(alpha=0.5, beta=0.8, learn_alpha=True))
    assert isinstance(s.alpha, torch.nn.Parameter) and not isinstance(s.beta, torch.nn.Parameter)


def test_unbatched_input_gets_one_gain_per_neuron():
    n = LIF(0.9)
    n.set_variation(0.1, 0.0, seed=0)
    n(torch.rand(32), None)
    assert n.variation.threshold_gain.shape == (32,)


def test_per_neuron_fang_time_constants_need_a_matrix_current():
    with pytest.raises(InputError, match="size=None"):
        FangNeuron(size=4)(torch.zeros(2, 3, 4, 4))
