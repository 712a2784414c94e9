"""Time and energy of one in-situ training step, priced by the cost model from the step's events.

A step on a batch of ``B`` samples has three phases:

- **forward**: every sample read through the network, as inference (``cimkit.estimate`` of the model);
- **error**: each hidden layer's error read off arrays, per sample. Backpropagation reads layer ``l+1``'s
  arrays transposed (``d W``), so the error crosses the layers one after another, from the output down;
  DFA reads each hidden block's own feedback array (``B_l e``), all at once (they do not wait on each other);
- **update**: each layer's cells written with pulses (``WriteCounts``: ``V^2 G t`` per pulse; rows one after
  another in each array, arrays in parallel). With BP a layer is written after its error is known, one layer
  after another; DFA's layers are written in parallel.

So with ``N`` crossbar layers, per-layer error reads ``r_l`` and writes ``u_l``, the error-and-update
("backward") latency is ``B * sum(r) + sum(u)`` for BP and ``B * max(r) + max(u)`` for DFA: for ``N``
equal layers the ratio is ``N - B r / (B r + u)``, between ``N - 1`` and ``N``, approaching ``N`` when writes
dominate (Wolters et al., arXiv 2212.14337: "a factor approaching N for N-layered networks").

Reads are priced per vector by the cost model at batch 1: a transposed read of a ``K x N`` layer as the read
of an ``N x K`` matrix (an approximation: the cost model tiles that matrix afresh, while the chip drives the
columns of its ``K x N`` tiling and senses its rows, so array and conversion counts can differ), with the
layer's vectors per sample (output positions of a convolution).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ..errors import InputError
from ..sim.update import WriteCounts
from ..spec import HardwareSpec
from ..spec.update import UpdateDevice
from .insitu import RULES


def backward_latency_s(rule: str, error_read_s: Sequence[float], update_s: Sequence[float], batch: int = 1) -> float:
    """Latency of the error and update phases of one step (module docstring): ``error_read_s`` one
    sample's error read for each hidden layer (``N - 1`` values), ``update_s`` each layer's write (``N``)."""
    if rule not in RULES:
        raise InputError(f"backward_latency_s: rule {rule!r} is unknown; choose from {', '.join(RULES)}")
    if len(update_s) != len(error_read_s) + 1:
        raise InputError(
            f"backward_latency_s: {len(update_s)} update times for {len(error_read_s)} error reads; "
            "give one error read per hidden layer and one update per layer (N - 1 and N)"
        )
    return sum(_phases(rule, error_read_s, update_s, batch))


def _phases(rule: str, error_read_s: Sequence[float], update_s: Sequence[float], batch: int) -> tuple[float, float]:
    """The error-read and update latencies of one step: layer after layer (BP, a sum) or all layers at once
    (DFA, the slowest one)."""
    combine = sum if rule == "bp" else (lambda values: max(values, default=0.0))
    return batch * combine(float(r) for r in error_read_s), combine(float(u) for u in update_s)


@dataclass
class StepCost:
    """One training step's time (s) and energy (J) per phase; ``layers`` per crossbar layer."""

    rule: str
    batch: int
    forward_latency_s: float
    forward_energy_j: float
    error_latency_s: float
    error_energy_j: float
    update_latency_s: float
    update_energy_j: float
    backward_latency_s: float
    layers: list[dict] = field(default_factory=list)

    @property
    def latency_s(self) -> float:
        """The step: forward, then errors and updates."""
        return self.forward_latency_s + self.backward_latency_s

    @property
    def energy_j(self) -> float:
        return self.forward_energy_j + self.error_energy_j + self.update_energy_j

    def to_dict(self) -> dict:
        out = {k: v for k, v in vars(self).items() if k != "layers"}
        out.update(latency_s=self.latency_s, energy_j=self.energy_j, layers=self.layers)
        return out


def _read_cost(name: str, k: int, n: int, spec: HardwareSpec) -> tuple[float, float]:
    """Energy (J) and latency (s) of one vector read through a ``k x n`` matrix on ``spec``'s arrays."""
    from ..cost import estimate
    from ..workload import Op, Workload

    single = Op(
        name=name, kind="linear", in_features=k, out_features=n, in_shape=(k,), out_shape=(n,), vectors=1, macs=k * n
    )
    rep = estimate(Workload(name="read", input_shape=(1, k), ops=[single]), spec)
    return float(rep.total.energy_j), float(rep.total.latency_s)


def step_cost(
    workload,
    spec: HardwareSpec,
    rule: str,
    *,
    batch: int,
    writes: Mapping[str, WriteCounts] | Sequence[WriteCounts],
    device: UpdateDevice | None,
    feedback_sizes: Sequence[int] = (),
    classes: int | None = None,
) -> StepCost:
    """Price one training step of ``workload`` (the network at batch 1, e.g. ``Workload.from_torch``) on
    ``spec`` by ``rule`` for ``batch`` samples: ``writes`` the ``WriteCounts`` of one step per crossbar layer,
    by layer name (the workload's op names; a sequence is taken in the workload's order of weighted ops), e.g.
    a trainer's writes divided by its steps, priced with ``device`` (None: writes cost nothing, an ideal
    device); DFA's feedback reads are of ``classes x feedback_sizes[l]`` arrays, hidden blocks in order."""
    from ..cost import estimate

    if rule not in RULES:
        raise InputError(f"step_cost: rule {rule!r} is unknown; choose from {', '.join(RULES)}")
    ops = workload.weighted_ops
    if isinstance(writes, Mapping):
        missing = [op.name for op in ops if op.name not in writes]
        if missing or len(writes) != len(ops):
            raise InputError(
                f"step_cost: write counts for layers {sorted(writes)}, but the workload's crossbar layers "
                f"are {[op.name for op in ops]}; give one per layer, by name"
            )
        writes = [writes[op.name] for op in ops]
    if len(writes) != len(ops):
        raise InputError(f"step_cost: {len(writes)} write counts for {len(ops)} crossbar layers; give one per layer")
    if rule == "dfa" and (len(feedback_sizes) != len(ops) - 1 or classes is None):
        raise InputError(f"step_cost: rule 'dfa' needs feedback_sizes for the {len(ops) - 1} hidden blocks and classes")
    fwd = estimate(workload, spec)
    layers, reads_s, reads_j = [], [], []
    for i, op in enumerate(ops[1:]):
        if rule == "bp":  # the transposed read of the next layer, at each of its vectors
            e, t = _read_cost(op.name, op.out_features, op.in_features, spec)
            e, t = e * op.vectors, t * op.vectors
        else:
            assert classes is not None  # rule "dfa": checked above
            e, t = _read_cost(f"feedback.{i}", classes, int(feedback_sizes[i]), spec)
        reads_j.append(e)
        reads_s.append(t)
    upd_s = [0.0 if device is None else w.latency_s(device) for w in writes]
    upd_j = [0.0 if device is None else w.energy_j(device) for w in writes]
    for i, op in enumerate(ops):
        layers.append(
            {
                "name": op.name,
                "error_read_s": reads_s[i - 1] if i else 0.0,
                "error_read_j": reads_j[i - 1] if i else 0.0,
                "update_s": upd_s[i],
                "update_j": upd_j[i],
            }
        )
    err_t, upd_t = _phases(rule, reads_s, upd_s, batch)
    return StepCost(
        rule,
        batch,
        batch * float(fwd.total.latency_s),
        batch * float(fwd.total.energy_j),
        err_t,
        batch * sum(reads_j),
        upd_t,
        sum(upd_j),
        err_t + upd_t,
        layers,
    )
