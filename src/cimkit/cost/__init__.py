"""Analytical cost model: area, energy and latency of a CIM chip running a workload.

Events counted from the mapping (``cimkit.cost.events``) priced by component plug-ins
(``cimkit.cost.components``: ``COMPONENTS``, ``ADC_KINDS``; that module imports numpy and light cimkit
modules only).
"""

from .components import ADC_KINDS, COMPONENTS, Component
from .estimate import ManyReport, Report, estimate, estimate_many

__all__ = ["estimate", "estimate_many", "Report", "ManyReport", "COMPONENTS", "ADC_KINDS", "Component"]
