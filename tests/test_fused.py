"""The fused read chain: the compiled kernel and the torch chain give the same numbers, any chunking
of a block gives the numbers of the whole block, and whole networks read the same with either."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import cimkit as ck
from cimkit.sim import fused
from cimkit.sim import layout as layout_module
from cimkit.sim.rng import CounterNormal

needs_native = pytest.mark.skipif(not fused.native_available(), reason="no C compiler: only the torch chain runs")


def _block(seed: int, shape, zero_rows: bool, bf16: bool):
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(shape, generator=g) * 30
    var = torch.rand(shape, generator=g) * 4
    if zero_rows:  # rows that read no current: zero partial sum and zero variance
        dead = torch.rand(shape[:3], generator=g) < 0.3
        c[dead] = 0
        var[dead] = 0
    return c, var.to(torch.bfloat16) if bf16 else var


def _steps(s: int, passes: int, per_pass: bool) -> torch.Tensor:
    """Inverse ADC steps per slice (S,), or per pass and slice (R, S)."""
    inv = torch.tensor([0.5, 0.25, 1.0, 0.125, 2.0, 0.3][:s])
    return inv * torch.arange(1, passes + 1).view(-1, 1) if per_pass else inv


def _run(c, var, where, *, native, adc=True, signed=False, per_pass=False):
    o, _, _, s, z = c.shape
    inv = _steps(s, where.passes, per_pass) if adc else None
    lo, hi = (-16, 15) if signed else (0, 31)
    f = torch.linspace(0.1, 3.0, where.passes * s).view(where.passes, s)
    acc = torch.zeros(o, where.rows, z)
    fused.read_chain(c.clone(), var, CounterNormal(0), where, inv, lo, hi, f, acc, native=native)
    return acc


@needs_native
@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 40),
    st.integers(1, 4),
    st.integers(1, 600),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_the_kernel_and_the_torch_chain_give_the_same_numbers(
    o, r, m, s, z, zero_rows, bf16, adc, noisy, per_pass, seed
):
    c, var = _block(seed, (o, r, m, s, z), zero_rows, bf16)
    var = var if noisy else None
    where = fused.Place(r, m, counter=CounterNormal(seed).next_counter())
    a = _run(c, var, where, native=None, adc=adc, per_pass=per_pass)
    b = _run(c, var, where, native=False, adc=adc, per_pass=per_pass)
    assert torch.equal(a, b)


@pytest.mark.parametrize("native", [False, pytest.param(None, marks=needs_native)])
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 2), st.integers(1, 4), st.integers(2, 30), st.integers(1, 3), st.integers(1, 300), st.data())
def test_any_chunking_of_a_block_gives_the_whole_blocks_numbers(native, o, r, m, s, z, data):
    c, var = _block(data.draw(st.integers(0, 1000)), (o, r, m, s, z), True, False)
    where = fused.Place(r, m, counter=7 << 40)
    per_pass = data.draw(st.booleans())
    whole = _run(c, var, where, native=native, per_pass=per_pass)
    r_cut, m_cut = data.draw(st.integers(1, r)), data.draw(st.integers(1, m))
    acc = torch.zeros(o, m, z)
    inv = _steps(s, r, per_pass)
    f = torch.linspace(0.1, 3.0, r * s).view(r, s)
    for r0 in range(0, r, r_cut):
        for m0 in range(0, m, m_cut):
            part = (slice(None), slice(r0, r0 + r_cut), slice(m0, m0 + m_cut))
            chunk = fused.Place(r, m, r0, m0, where.counter)
            fused.read_chain(
                c[part].contiguous(), var[part].contiguous(), CounterNormal(0), chunk, inv, 0, 31, f, acc, native=native
            )
    assert torch.equal(acc, whole)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5000), st.integers(0, 2**20), st.integers(0, 2**31 - 1))
def test_samples_at_indices_are_the_draws_samples(n, draw, seed):
    rng = CounterNormal(seed)
    counter = (draw % 1000) << 40
    whole = rng.fill(counter, (n,))
    index = torch.randint(0, n, (min(n, 300),), generator=torch.Generator().manual_seed(seed))
    assert torch.equal(rng.at(counter, n, index), whole[index])


def test_read_noise_has_the_variance_it_was_given():
    """Elements whose variances are v read c + N(0, v): the noise is zero-mean with variance v, and
    zero variance reads exactly c."""
    n = 200_000
    c = torch.full((1, 1, 1, 2, n // 2), 3.0)
    var = torch.tensor([0.0, 4.0]).view(1, 1, 1, 2, 1).expand(1, 1, 1, 2, n // 2).contiguous()
    acc = torch.zeros(1, 1, n // 2)
    f = torch.tensor([[1.0, 0.0]])  # keep slice 0 (variance 0)
    fused.read_chain(c.clone(), var, CounterNormal(1), fused.Place(1, 1, counter=1 << 40), None, 0, 0, f, acc)
    assert torch.equal(acc, torch.full_like(acc, 3.0))
    acc.zero_()
    f = torch.tensor([[0.0, 1.0]])  # keep slice 1 (variance 4)
    fused.read_chain(c.clone(), var, CounterNormal(1), fused.Place(1, 1, counter=1 << 40), None, 0, 0, f, acc)
    noise = acc - 3.0
    assert abs(float(noise.mean())) < 0.03 and abs(float(noise.var()) / 4.0 - 1) < 0.02


def _net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 24, 3, stride=2, groups=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(24 * 7 * 7, 10),
    ).eval()


@pytest.mark.parametrize("preset", ["rram-22nm", "pcm"])
def test_a_network_reads_the_same_with_the_kernel_the_torch_chain_and_any_chunk_size(preset, monkeypatch):
    x = torch.relu(torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(3)))
    outs = []
    for native, chunk in ((True, layout_module.CHUNK), (False, layout_module.CHUNK), (True, 777), (False, 5000)):
        monkeypatch.setattr(fused, "enabled", native)
        monkeypatch.setattr(layout_module, "CHUNK", chunk)
        cim = ck.convert(_net(), preset, seed=4)
        with torch.no_grad():
            ck.calibrate(cim, [x[:2]], num_batches=1)
            outs.append(cim(x))
    for other in outs[1:]:
        assert torch.equal(other, outs[0])


def test_the_same_seed_gives_the_same_network_outputs_and_another_seed_others():
    x = torch.relu(torch.randn(2, 3, 16, 16))
    with torch.no_grad():
        a, b, c = (ck.convert(_net(), "rram-22nm", seed=s)(x) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


@needs_native
@pytest.mark.parametrize("bf16", [False, True])
def test_noise_alone_in_place_is_the_same_with_the_kernel_and_torch(bf16, monkeypatch):
    """With stage hooks between noise and sum, the noise runs alone, in place: the same numbers."""
    c, var = _block(5, (2, 3, 7, 2, 45), True, bf16)
    where = fused.Place(4, 9, 1, 2, 3 << 40)
    a, b = c.clone(), c.clone()
    fused.add_read_noise(a, var, CounterNormal(0), where)
    monkeypatch.setattr(fused, "enabled", False)
    fused.add_read_noise(b, var, CounterNormal(0), where)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_chunk_buffers_are_shared_by_layers_and_not_by_threads():
    """Chunk scratch is one buffer per name (layers read one after another, so memory does not grow with
    their number), grown to the largest chunk, and per thread (models read in parallel never share)."""
    import threading

    from cimkit.sim.kernel import chunk_scratch

    cpu = torch.device("cpu")
    a = chunk_scratch("t-signal", (4, 8), cpu, torch.float32)
    b = chunk_scratch("t-signal", (2, 3), cpu, torch.float32)
    assert b.data_ptr() == a.data_ptr() and b.shape == (2, 3)
    c = chunk_scratch("t-signal", (64, 64), cpu, torch.float32)  # larger: a new, larger buffer
    assert c.shape == (64, 64) and chunk_scratch("t-signal", (4, 8), cpu, torch.float32).data_ptr() == c.data_ptr()
    other = []
    t = threading.Thread(target=lambda: other.append(chunk_scratch("t-signal", (4, 8), cpu, torch.float32)))
    t.start()
    t.join()
    assert other[0].data_ptr() != c.data_ptr()


@pytest.mark.parametrize(
    "kernel, stride, dilation, groups",
    [
        ((3, 3), (1, 1), (1, 1), 1),
        ((7, 7), (2, 2), (1, 1), 1),
        ((1, 1), (1, 2), (1, 1), 2),
        ((1, 5), (1, 1), (1, 2), 1),
        ((3, 3), (2, 1), (2, 1), 4),
    ],
)
def test_the_windowed_unfold_is_im2col_in_the_arrays_row_order(kernel, stride, dilation, groups):
    """The convolution's rows come from a strided window view in one copy: exactly torch's im2col
    (channel, kh, kw order), arranged (groups, images x positions, rows)."""
    import torch.nn.functional as F

    conv = nn.Conv2d(8, 4 * groups, kernel, stride=stride, dilation=dilation, groups=groups)
    layer = ck.convert(nn.Sequential(conv), "ideal")[0]
    lay = layer.layout
    x = torch.randn(3, 8, 21, 19)
    lay.place(x)
    cols = F.unfold(x, kernel, dilation=dilation, stride=stride)
    n, _, l = cols.shape
    want = cols.view(n, groups, 8 // groups * kernel[0] * kernel[1], l).permute(1, 0, 3, 2).reshape(groups, n * l, -1)
    assert torch.equal(lay._unfolded(x), want)
