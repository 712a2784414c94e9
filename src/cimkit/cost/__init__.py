"""Analytical cost model: area, energy and latency of a CIM chip running a workload.

Events counted from the mapping (``cimkit.cost.events``) priced by component plug-ins
(``cimkit.cost.components``: ``COMPONENTS``, ``ADC_KINDS``). The public names are imported on first use,
so that ``cimkit.cost.components`` (which the spec reads to validate ``chip.adc_type``) loads without the
estimator, the spec or torch.
"""

from __future__ import annotations

import importlib

_PUBLIC = {"estimate": ".estimate", "estimate_many": ".estimate", "Report": ".report", "ManyReport": ".report",
           "COMPONENTS": ".components", "ADC_KINDS": ".components", "Component": ".components"}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
