"""cimkit: co-design AI models and compute-in-memory hardware.

One chip description (``HardwareSpec``) answers both "how accurate is my model on it?" (``convert``,
the functional crossbar simulator) and, through the same mapping, "what does it cost?".

The public names are imported on first use, so that ``import cimkit.cost`` (numpy only) does not pay for
torch, which only the simulator and the torch importer need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import CimkitError, InputError, MappingError, MissingDependencyError, SpecError


def _installed_version() -> str:
    """The version pyproject.toml declares, as installed (one place for it); "unknown" from a bare source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cimkit")
    except PackageNotFoundError:
        return "unknown"


#: public name -> (module, attribute); None as the attribute means the module itself
_LAZY = {
    "HardwareSpec": (".spec", "HardwareSpec"),
    "convert": (".sim", "convert"),
    "calibrate": (".sim", "calibrate"),
    "set_time": (".sim", "set_time"),
    "register_converter": (".sim", "register_converter"),
    "simulate": (".sim", "simulate"),
    "SimulationResult": (".sim", "SimulationResult"),
    "summary": (".sim", "summary"),
    "ChipSummary": (".sim", "ChipSummary"),
    "map_matrix": (".mapping", "map_matrix"),
    "ArrayMapping": (".mapping", "ArrayMapping"),
    "Workload": (".workload", "Workload"),
    "Op": (".workload", "Op"),
    "zoo": (".zoo", None),
    "cam": (".cam", None),
    "estimate": (".cost", "estimate"),
    "estimate_many": (".cost", "estimate_many"),
    "Report": (".cost", "Report"),
}

__all__ = [
    "HardwareSpec",
    "convert",
    "calibrate",
    "set_time",
    "map_matrix",
    "ArrayMapping",
    "register_converter",
    "simulate",
    "SimulationResult",
    "summary",
    "ChipSummary",
    "Workload",
    "Op",
    "zoo",
    "cam",
    "estimate",
    "estimate_many",
    "Report",
    "CimkitError",
    "SpecError",
    "InputError",
    "MappingError",
    "MissingDependencyError",
    "__version__",
]


def __getattr__(name: str):
    if name == "__version__":  # read on first use: importlib.metadata costs ~60 ms at import
        globals()[name] = _installed_version()
        return globals()[name]
    if name not in _LAZY:
        raise AttributeError(f"module 'cimkit' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = importlib.import_module(module, __name__)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from . import cam, zoo

    # the functions whose names are also their modules' names are imported from those modules
    from .cost import Report, estimate_many
    from .cost.estimate import estimate
    from .mapping import ArrayMapping, map_matrix
    from .sim import ChipSummary, SimulationResult, calibrate, register_converter, set_time, simulate
    from .sim.convert import convert
    from .sim.summary import summary
    from .spec import HardwareSpec
    from .workload import Op, Workload
