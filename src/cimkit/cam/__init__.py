"""Tree ensembles on analog CAM: compiler, search simulator, array layout and cost model."""

from .cost import COMPONENTS, SCHEMES, compare, estimate, matched_rows
from .extract import Ensemble, extract
from .layout import CamLayout, layout
from .program import CamProgram, compile
from .report import CamReport
from .spec import CamCircuit, CamSpec

__all__ = [
    "compile",
    "CamProgram",
    "extract",
    "Ensemble",
    "CamSpec",
    "CamCircuit",
    "layout",
    "CamLayout",
    "estimate",
    "compare",
    "matched_rows",
    "CamReport",
    "SCHEMES",
    "COMPONENTS",
]
