"""Workloads (operations with shapes) for the cost model, and the reference network zoo."""

from . import zoo
from .core import Op, Workload

__all__ = ["Op", "Workload", "zoo"]
