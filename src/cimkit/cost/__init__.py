"""Analytical cost model: area, energy and latency of a CIM chip running a workload."""

from .estimate import ManyReport, Report, estimate, estimate_many
from .model import COMPONENTS

__all__ = ["estimate", "estimate_many", "Report", "ManyReport", "COMPONENTS"]
