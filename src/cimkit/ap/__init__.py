"""Associative processor (AP): a functional bit-level simulator (``machine``), integer operations from
truth-table passes (``arith``), the integer softmax as an AP program (``softmax``), its price list
(``figures``: torch-free, read by the spec and the cost model's ``ap`` unit) and its price against a GPU
roofline (``cost``).

The public names are imported on first use, so that ``cimkit.ap.figures`` loads without torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_LAZY = {
    "AP": ".machine",
    "PassStats": ".machine",
    "lut_passes": ".machine",
    "APSoftmaxResult": ".softmax",
    "ap_softmax_codes": ".softmax",
}

__all__ = ["AP", "PassStats", "lut_passes", "APSoftmaxResult", "ap_softmax_codes"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'cimkit.ap' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .machine import AP, PassStats, lut_passes
    from .softmax import APSoftmaxResult, ap_softmax_codes
