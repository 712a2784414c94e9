"""cimkit: co-design AI models and compute-in-memory hardware.

One chip description (``HardwareSpec``) answers both "how accurate is my model on it?" (``convert``,
the functional crossbar simulator) and, through the same mapping, "what does it cost?".
"""

from . import cam, zoo
from .cost import Report, estimate, estimate_many
from .errors import CimkitError, InputError, MappingError, SpecError
from .mapping import ArrayMapping, map_matrix
from .sim import calibrate, convert, set_time
from .sim import register_converter
from .spec import HardwareSpec
from .workload import Op, Workload

__version__ = "0.1.0"

__all__ = [
    "HardwareSpec", "convert", "calibrate", "set_time", "map_matrix", "ArrayMapping",
    "register_converter",
    "Workload", "Op", "zoo", "cam", "estimate", "estimate_many", "Report",
    "CimkitError", "SpecError", "InputError", "MappingError", "__version__",
]
