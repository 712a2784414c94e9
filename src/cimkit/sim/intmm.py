"""Exact, fast partial sums on CPUs: integer codes times conductances split into int8 terms.

DAC codes are small integers and ideal cell levels are integers, so the crossbar product is integer
arithmetic that CPUs with VNNI run about 8x faster than float32 (``torch._int_mm``: int8 x int8 with
int32 accumulation, exact). Real conductances are not integers (baseline, programming noise, drift,
IR drop), so a matrix is stored as up to three int8 terms, ``scale * (A + B/254 + C/254**2)``: exact
when the matrix holds integers of magnitude <= 127, and within 6e-8 of its largest entry otherwise (on
par with float32 rounding). Unsigned 8-bit codes are shifted by -128 into int8 and the shift is undone
with the matrix's column sums. Linear and convolution layouts run every row tile's product this way where
it pays (``int8_is_fast``); their int32 results (``IntTerms``) are weighted and summed inside the read chain,
and binary passes (bit planes, whose squares are themselves) read their read-noise variances from two more
int8 terms in the same product.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch

from ..errors import InputError

_RADIX = 254.0  # |residual| <= 0.5 before scaling, so residual * 254 stays within int8
MAX_TERMS = 3


@functools.lru_cache(maxsize=1)
def int_mm_available() -> bool:
    """Whether ``torch._int_mm`` runs and is exact on this CPU build (probed once)."""
    try:
        a = torch.tensor([[127, -128, 3]], dtype=torch.int8)
        b = torch.tensor([[127], [-128], [5]], dtype=torch.int8)
        return int(torch._int_mm(a, b)[0, 0]) == 127 * 127 + 128 * 128 + 15
    except Exception:  # noqa: BLE001 - any failure means: use float32
        return False


def _cpuinfo(field: str) -> str:
    """The value of ``field`` in Linux's ``/proc/cpuinfo`` (its first CPU; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """Instruction-set flags of this CPU (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    return frozenset(_cpuinfo("flags").split())


@functools.lru_cache(maxsize=1)
def int8_is_fast() -> bool:
    """Whether int8 products beat float32 here, so that the exact integer path pays: ``torch._int_mm``
    runs, the CPU has VNNI or AMX int8 instructions, and, measured once per machine, one int8 product
    of 256x128 @ 128x1024 takes under a third of the float32 one (the integer path needs up to three).
    Flags alone do not tell: an AVX512-VNNI EPYC ran it ~8x faster than float32, a Sapphire Rapids VM
    with AMX 1.5x slower; AVX2 alone falls back to a kernel ~30x slower. The measurement is kept in
    ``CIMKIT_CACHE`` (keyed by CPU and torch), so a machine keeps its choice (and its numbers) from run to
    run. ``CIMKIT_INT8=1`` or ``0`` forces the choice."""
    forced = os.environ.get("CIMKIT_INT8")
    if forced in ("0", "1"):
        return forced == "1" and int_mm_available()
    if not (int_mm_available() and bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})):
        return False
    return _remembered("int8_3x_faster_than_float32", _int8_three_times_faster)


def _int8_three_times_faster() -> bool:
    import time

    a8 = torch.randint(-127, 128, (256, 128), dtype=torch.int8)
    b8 = torch.randint(-127, 128, (128, 1024), dtype=torch.int8)
    af, bf = a8.float(), b8.float()
    out8, outf = torch.empty(256, 1024, dtype=torch.int32), torch.empty(256, 1024)

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    return 3 * best(lambda: torch._int_mm(a8, b8, out=out8)) < best(lambda: torch.mm(af, bf, out=outf))


def _remembered(name: str, measure) -> bool:
    """``measure()``, measured once per machine (CPU model and flags, torch version) and kept on disk."""
    import hashlib
    import json
    import platform

    from ..io import atomic_write, cache_root

    key = hashlib.sha256(
        " ".join(
            [name, platform.machine(), _cpuinfo("model name"), " ".join(sorted(cpu_flags())), torch.__version__]
        ).encode()
    ).hexdigest()[:16]
    path = cache_root() / "cpu" / f"{name}-{key}.json"
    try:
        return bool(json.loads(path.read_text())["value"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = bool(measure())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"value": value}))
    except OSError:
        pass  # a read-only cache: measured again next time
    return value


def bf16_is_fast() -> bool:
    """Whether bf16 matrix products beat float32 on this CPU (AVX512-BF16 or AMX-BF16); without them
    bf16 products run ~70x slower than float32."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


@dataclass
class Int8Split:
    """A float matrix batch (T, K, N) as int8 terms with their weights."""

    terms: torch.Tensor  # (n_terms, T, K, N) int8
    weights: tuple[float, ...]

    def to(self, device: torch.device) -> "Int8Split":
        return Int8Split(self.terms.to(device), self.weights)

    def column_sums(self, rows_used: torch.Tensor | None = None) -> torch.Tensor:
        """Per matrix, the column sums (T, N) float32 of what the terms represent, over its first
        ``rows_used[t]`` rows (all rows: None); shifted codes are undone with them."""
        represented = sum(t.double() * w for t, w in zip(self.terms, self.weights))  # (T, K, N), >= 1 term
        assert isinstance(represented, torch.Tensor)
        if rows_used is not None:
            represented = represented * (torch.arange(represented.shape[1]).view(1, -1, 1) < rows_used.view(-1, 1, 1))
        return represented.sum(1).float()


def split_int8(m: torch.Tensor, max_terms: int = MAX_TERMS) -> Int8Split:
    """Decompose ``m`` (T, K, N) into int8 terms (exact for small integers): at most ``max_terms`` terms
    (``n_terms, T, K, N``) and their float weights."""
    if max_terms < 1:
        raise InputError(f"split_int8: max_terms must be at least 1, got {max_terms}")
    m64 = m.double()
    peak = float(m64.abs().max()) if m64.numel() else 0.0
    integral = bool(torch.equal(m64, m64.round())) and peak <= 127
    scale = 1.0 if integral or peak == 0 else peak / 127.0
    r = m64 / scale
    terms, weights = [], []
    w = scale
    for _ in range(max_terms):
        a = torch.round(r).clamp(-127, 127)
        terms.append(a.to(torch.int8))
        weights.append(w)
        r = (r - a) * _RADIX
        w /= _RADIX
        if not bool(r.abs().max() > 0):
            break
    return Int8Split(torch.stack(terms), tuple(weights))


@dataclass
class IntTerms:
    """One chunk of partial sums (O, Rc, Mc, S, Z) as exact integer products: ``values`` (O, Rc, Mc, J, S, Z)
    int32 holds, per element, J products of int8 codes with int8 matrix terms. The first ``n_signal``
    weighted by ``weights`` and summed, plus ``shift * col_sums`` (O, S*Z) when codes were shifted, are the
    partial sum; the remaining terms (if any) its read-noise variance. Sums run in float32 (the terms are
    exact in it up to 2**24, tiles of up to 1,032 rows), one IEEE operation at a time in increasing term
    order, so the compiled read chain and :meth:`signal` / :meth:`variance` give the same numbers."""

    values: torch.Tensor
    weights: tuple[float, ...]
    n_signal: int
    col_sums: torch.Tensor | None = None
    shift: float = 0.0

    @property
    def shape(self) -> torch.Size:
        """The chunk's dims (O, Rc, Mc, S, Z)."""
        o, r, m, _, s, z = self.values.shape
        return torch.Size((o, r, m, s, z))

    @property
    def n_variance(self) -> int:
        """How many of the terms are the variance's (0: the chunk carries no variance)."""
        return len(self.weights) - self.n_signal

    def _combine(self, first: int, count: int, shifted: bool) -> torch.Tensor:
        t = self.values
        w = torch.tensor(self.weights, dtype=torch.float32, device=t.device)
        v = t[:, :, :, first].float() * w[first]
        for k in range(first + 1, first + count):
            v = v + t[:, :, :, k].float() * w[k]
        if shifted and self.shift and self.col_sums is not None:
            o, _, _, s, z = v.shape
            v = v + self.col_sums.view(o, 1, 1, s, z) * torch.tensor(self.shift, dtype=torch.float32)
        return v

    def signal(self) -> torch.Tensor:
        """The partial sums (O, Rc, Mc, S, Z), float32."""
        return self._combine(0, self.n_signal, True)

    def variance(self) -> torch.Tensor | None:
        """Their read-noise variances (O, Rc, Mc, S, Z), float32; None without variance terms."""
        return self._combine(self.n_signal, self.n_variance, False) if self.n_variance else None


def codes_to_int8(codes: torch.Tensor, max_code: float) -> tuple[torch.Tensor, float] | None:
    """Integer codes as int8, with the shift applied (-128 for unsigned codes above 127), or None
    when they do not fit."""
    if max_code <= 127:
        return codes.to(torch.int8), 0.0
    if max_code <= 255:
        return (codes - 128).to(torch.int8), 128.0
    return None
