"""Functional crossbar simulator (torch, CPU or CUDA)."""

from .convert import ConversionSummary, calibrate, cim_layers, convert, register_converter, set_time
from .evaluate import SimulationInterrupted, SimulationResult, simulate
from .irdrop import first_order_ir_drop, ir_drop_transfer, solve_ir_drop
from .kernel import STAGES, StageInfo
from .layers import CIMConv1d, CIMConv2d, CIMLayer, CIMLinear
from .summary import ChipSummary, summary
from .tile import CrossbarTile
from .training import configure, new_epoch

__all__ = [
    "convert",
    "calibrate",
    "set_time",
    "cim_layers",
    "ConversionSummary",
    "summary",
    "ChipSummary",
    "simulate",
    "SimulationResult",
    "SimulationInterrupted",
    "register_converter",
    "configure",
    "new_epoch",
    "CIMLayer",
    "CIMLinear",
    "CIMConv1d",
    "CIMConv2d",
    "CrossbarTile",
    "STAGES",
    "StageInfo",
    "solve_ir_drop",
    "ir_drop_transfer",
    "first_order_ir_drop",
]
