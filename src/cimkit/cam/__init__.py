"""Tree ensembles on analog CAM: compiler and search simulator."""

from .extract import Ensemble, extract
from .program import CamProgram, compile

__all__ = ["compile", "CamProgram", "extract", "Ensemble"]
