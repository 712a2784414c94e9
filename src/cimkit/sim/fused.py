"""The per-read chain (read noise, ADC, shift-and-add) of one block of partial sums, fused.

A block has dims (O, R, M, S, Z): R input passes and S weight slices are summed into an accumulator
(O, M, Z). Per element the chain is ``v = c + z sqrt(var)``, ``v = clamp(round(v * inv[s]), lo, hi)``,
``acc += v * f[r, s]``, over r then s in increasing order; ``z`` is the block's draw of the tile's
``CounterNormal``. Two implementations give the same numbers (every step one IEEE float32 operation,
in the same order):

- native: ``_readchain.c``, compiled at first use with the system's C compiler into a cache folder
  (``CIMKIT_CACHE``, default ``~/.cache/cimkit``) and run through ctypes on torch's OpenMP threads;
  memory is read once instead of once per torch op, and zero-variance elements (all-zero
  input rows or bit planes) skip their noise sample;
- torch: the same chain as torch operations, for CUDA tensors, float64, machines without a compiler,
  and ``CIMKIT_NATIVE=0``.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..io import cache_root
from . import quant
from .intmm import IntTerms
from .rng import CounterNormal, quantile_table

_SOURCE = Path(__file__).with_name("_readchain.c")
#: -ffp-contract=off: no fused multiply-add, so each step rounds as torch's separate ops do;
#: -fno-math-errno lets sqrtf vectorize (results unchanged)
_FLAGS = [
    "-O3",
    "-march=native",
    "-mprefer-vector-width=512",
    "-ffp-contract=off",
    "-fno-math-errno",
    "-shared",
    "-fPIC",
]


def _cache_dir() -> Path:
    return cache_root() / "native"


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def _build(cc: str) -> Path:
    """Compile the kernel (once per source, flags, compiler and CPU) and return the library's path."""
    from .intmm import cpu_flags

    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256(
        "\n".join(
            [_SOURCE.read_text(), " ".join(_FLAGS), version, " ".join(sorted(cpu_flags())), sys.platform]
        ).encode()
    ).hexdigest()[:16]
    lib = _cache_dir() / f"readchain-{key}.so"
    if lib.exists():
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=lib.parent)
    os.close(fd)
    try:
        try:
            subprocess.run(
                [cc, *_FLAGS, "-fopenmp", str(_SOURCE), "-o", tmp, "-lm"],
                check=True,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.CalledProcessError:  # no OpenMP here: one thread
            subprocess.run(
                [cc, *_FLAGS, str(_SOURCE), "-o", tmp, "-lm"], check=True, capture_output=True, text=True, timeout=300
            )
        os.replace(tmp, lib)  # atomic: processes building at once each get a whole library
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    if os.environ.get("CIMKIT_NATIVE", "1") == "0":
        return None
    cc = _compiler()
    if cc is None:
        return None
    try:
        lib = ctypes.CDLL(str(_build(cc)))
    except (OSError, subprocess.SubprocessError) as exc:
        import warnings

        warnings.warn(
            f"cimkit: the fused read kernel did not build ({exc}); the simulator uses its torch path "
            "(same numbers, slower)",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    fn = lib.cim_read_chain
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [
        ptr,
        ptr,
        ctypes.c_int,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        ctypes.c_uint64,
        ptr,
        ptr,
        i64,
        ctypes.c_float,
        ctypes.c_float,
        ptr,
        ptr,
        ptr,
        i64,
        i64,
        i64,
        ptr,
        ptr,
        ctypes.c_double,
    ]
    fn.restype = None
    return lib


#: set False to run the torch chain everywhere (tests compare the two)
enabled = True


def native_available() -> bool:
    """Whether the compiled kernel runs here (a C compiler was found and ``CIMKIT_NATIVE`` is not 0)."""
    return _library() is not None


def _use_native(c: torch.Tensor | IntTerms, var: torch.Tensor | None, acc: torch.Tensor | None) -> bool:
    """Whether the kernel takes these tensors (``acc`` None: the chunk's values are written back)."""
    ok_var = var is None or (var.dtype in (torch.float32, torch.bfloat16) and var.is_contiguous())
    ok_acc = acc is None or (acc.is_contiguous() and acc.dtype == torch.float32)
    if isinstance(c, IntTerms):
        cs = c.col_sums
        ok_c = (
            acc is not None
            and c.values.device.type == "cpu"
            and c.values.dtype == torch.int32
            and c.values.is_contiguous()
            and (cs is None or (cs.dtype == torch.float32 and cs.is_contiguous()))
            and (var is None or c.n_variance == 0)
        )
    else:
        ok_c = c.device.type == "cpu" and c.dtype == torch.float32 and c.is_contiguous()
    return ok_c and ok_acc and ok_var and enabled and native_available()


@dataclass(frozen=True)
class Place:
    """Where a chunk (O, Rc, Mc, S, Z) sits in its block (O, R, M, S, Z): passes ``r0 + [0, Rc)`` and rows
    ``m0 + [0, Mc)``; ``counter``: the block's noise draw (``CounterNormal.next_counter``)."""

    passes: int
    rows: int
    r0: int = 0
    m0: int = 0
    counter: int = 0


def read_chain(
    c: torch.Tensor | IntTerms,
    var: torch.Tensor | None,
    rng: CounterNormal,
    where: Place,
    inv_step: torch.Tensor | None,
    lo: float,
    hi: float,
    f: torch.Tensor,
    acc: torch.Tensor,
    native: bool | None = None,
) -> None:
    """Run the chain on chunk ``c`` (O, Rc, Mc, S, Z) of a block into the block's ``acc`` (O, M, Z), in
    place; ``c`` is consumed.

    ``c`` may come as exact integer products (``IntTerms``, which may carry the variances too).
    ``var``: read-noise variances like ``c`` (None: no read noise); each element's sample is the one
    its place in the block draws (``where``), so any chunking of a block gives the same numbers;
    ``inv_step``: inverse ADC steps, (S,) per slice or (R, S) per pass and slice of the block (None: no
    ADC), codes clamped to [lo, hi]; ``f``: (R, S) weights
    of the shift-and-add. ``native=None`` picks the compiled kernel when it applies, False forces the
    torch chain."""
    f = f.to(acc.device, acc.dtype).contiguous()
    if native is not False and _use_native(c, var, acc):
        _native(c, var, where, inv_step, lo, hi, f, acc)
        return
    if isinstance(c, IntTerms):
        var = c.variance() if c.n_variance else var
        c = c.signal()
    if var is not None:
        add_read_noise(c, var, rng, where)
    if inv_step is not None:
        convert(c, inv_step, lo, hi, where)
    shift_add(c, f, acc, where)


def block_indices(shape: torch.Size, where: Place, device: torch.device) -> torch.Tensor:
    """Flat indices (int64, ``shape``) in the block of the elements of a chunk of ``shape``."""
    o, rc, mc, s, z = shape
    ar = functools.partial(torch.arange, device=device, dtype=torch.int64)
    idx = ar(o).view(-1, 1, 1, 1, 1) * where.passes + (where.r0 + ar(rc)).view(1, -1, 1, 1, 1)
    idx = idx * where.rows + (where.m0 + ar(mc)).view(1, 1, -1, 1, 1)
    return (idx * s + ar(s).view(1, 1, 1, -1, 1)) * z + ar(z).view(1, 1, 1, 1, -1)


def add_read_noise(c: torch.Tensor, var: torch.Tensor, rng: CounterNormal, where: Place) -> None:
    """``c += z * sqrt(var)`` in place on a chunk, ``z`` the samples of its place in its block."""
    if _use_native(c, var, None):
        _native(c, var, where, None, 0.0, 0.0, None, None)
        return
    o, _, _, s, z = c.shape
    n = o * where.passes * where.rows * s * z
    if c.numel() == n:
        noise = rng.fill(where.counter, c.shape, c.device)
    else:
        noise = rng.at(where.counter, n, block_indices(c.shape, where, c.device))
    # torch's float32 sqrt is not always correctly rounded (C's sqrtf is); a float64 sqrt rounded to
    # float32 is, so both chains add the same noise
    noise = noise.to(c.dtype).mul_(torch.sqrt(var.double()).to(c.dtype))
    c.add_(noise)


def convert(c: torch.Tensor, inv_step: torch.Tensor, lo: float, hi: float, where: Place) -> None:
    """The ADC in place on a chunk (O, Rc, Mc, S, Z): ``clamp(round(c * inv_step[s]), lo, hi)``, or with
    ``inv_step[r0 + r, s]`` when the steps are per pass (R, S)."""
    inv = inv_step.to(c.dtype)
    inv = (
        inv.view(1, 1, 1, -1, 1)
        if inv.dim() == 1
        else inv[where.r0 : where.r0 + c.shape[1]].reshape(1, c.shape[1], 1, -1, 1)
    )
    quant.codes_(c, inv, lo, hi)


def shift_add(c: torch.Tensor, f: torch.Tensor, acc: torch.Tensor, where: Place) -> None:
    """``acc[:, m0 + m] += c[:, r, m, s] * f[r0 + r, s]`` over r, then s, in increasing order (the native
    order)."""
    f = f.to(c.device, c.dtype)
    rows = acc[:, where.m0 : where.m0 + c.shape[2]]
    for ri in range(c.shape[1]):
        for si in range(c.shape[3]):
            rows.add_(c[:, ri, :, si, :] * f[where.r0 + ri, si])


def _native(c, var, where, inv_step, lo, hi, f, acc) -> None:
    lib = _library()
    assert lib is not None  # _use_native() checked native_available()
    fn = lib.cim_read_chain
    o, rc, mc, s, z = c.shape
    terms, tw = (c, torch.tensor(c.weights, dtype=torch.float64)) if isinstance(c, IntTerms) else (None, None)
    table = quantile_table(torch.device("cpu"))
    inv = None if inv_step is None else inv_step.to(torch.float32).contiguous()
    kind = 0 if var is None else (1 if var.dtype == torch.float32 else 2)
    cs = None if terms is None or not terms.shift else terms.col_sums
    inv_rs = 0 if inv is None or inv.dim() == 1 else s
    args = (
        None if terms is not None else c.data_ptr(),
        None if var is None else var.data_ptr(),
        kind,
        o,
        rc,
        mc,
        s,
        z,
        where.passes,
        where.r0,
        where.rows,
        where.m0,
        where.counter,
        table.data_ptr(),
        None if inv is None else inv.data_ptr(),
        inv_rs,
        float(lo),
        float(hi),
        None if f is None else f.data_ptr(),
        None if acc is None else acc.data_ptr(),
        None if terms is None else terms.values.data_ptr(),
        0 if terms is None else terms.values.shape[3],
        0 if terms is None else terms.n_signal,
        0 if terms is None else terms.n_variance,
        None if tw is None else tw.data_ptr(),
        None if cs is None else cs.data_ptr(),
        0.0 if terms is None else float(terms.shift),
    )
    fn(*args)  # ctypes releases the GIL; the kernel spreads its work over torch's OpenMP threads
