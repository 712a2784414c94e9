"""The result of pricing a tree ensemble on analog-CAM arrays (``cimkit.cam.estimate``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class CamReport:
    """Cost of one decision (one input sample through the whole ensemble), averaged over the inputs given.

    Units: J per decision, s, decisions per second, mm^2. ``energy_j`` and ``area_mm2`` are totals; their
    parts by component are ``energy_breakdown_j`` and ``area_breakdown_mm2`` (the names ``Report`` uses)."""

    scheme: str
    energy_j: float  # per decision, all components
    energy_breakdown_j: dict[str, float]  # per decision, by component
    latency_s: float
    throughput_per_s: float  # decisions per second, pipelined
    area_mm2: float
    area_breakdown_mm2: dict[str, float]
    arrays: int  # arrays that hold the program
    row_blocks: int
    feature_blocks: int
    rows: int  # program rows (root-to-leaf paths)
    sparsity: float  # fraction of don't-care cells among the program's cells
    evaluated_fraction: list[float] = field(default_factory=list)  # rows searched in each segment
    cell_evaluations: float = 0.0  # bound pairs (one per row and feature) searched per decision

    @property
    def energy_per_decision_j(self) -> float:
        """``energy_j`` (the older name)."""
        return self.energy_j

    @property
    def total_area_mm2(self) -> float:
        """``area_mm2`` (the older name)."""
        return self.area_mm2

    def summary(self) -> dict:
        return asdict(self)
