"""Functional crossbar simulator (torch, CPU or CUDA)."""

from .convert import ConversionSummary, calibrate, cim_layers, convert, set_time
from .convert import register_converter
from .irdrop import first_order_ir_drop, ir_drop_transfer, solve_ir_drop
from .layers import CIMConv1d, CIMConv2d, CIMLayer, CIMLinear

__all__ = [
    "convert", "calibrate", "set_time", "cim_layers", "ConversionSummary",
    "register_converter",
    "CIMLayer", "CIMLinear", "CIMConv1d", "CIMConv2d",
    "solve_ir_drop", "ir_drop_transfer", "first_order_ir_drop",
]
