"""Workloads (operations with shapes) for the cost model, and the reference network zoo."""

from . import zoo
from .core import Op, Workload


def load_workload(name: str) -> Workload:
    """A workload from a zoo name, a NeuroSim network ``.csv`` or an ``.onnx`` file."""
    if name.endswith(".onnx"):
        return Workload.from_onnx(name)
    if name.endswith(".csv"):
        return Workload.from_neurosim_csv(name)
    return zoo.workload(name)


__all__ = ["Op", "Workload", "zoo", "load_workload"]
