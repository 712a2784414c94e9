"""Associative processor (AP): a functional bit-level simulator (``machine``), integer operations from
truth-table passes (``arith``), the integer softmax as an AP program (``softmax``), and its price against a
GPU roofline (``cost``)."""

from .machine import AP, PassStats, lut_passes
from .softmax import APSoftmaxResult, ap_softmax_codes

__all__ = ["AP", "PassStats", "lut_passes", "APSoftmaxResult", "ap_softmax_codes"]
