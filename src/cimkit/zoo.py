"""Reference networks: ``cimkit.zoo.workload(name)`` (shapes, for cost) and ``cimkit.zoo.model(name)``."""

from .workload.zoo import ZOO, model, names, workload

__all__ = ["workload", "model", "names", "ZOO"]
