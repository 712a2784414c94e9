"""``convert``: a copy of a PyTorch model whose matrix products run on the chip a spec describes;
``calibrate``: input (DAC) and ADC ranges from data."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Iterable

import torch
from torch import nn

from ..errors import InputError
from ..spec import HardwareSpec
from .layers import CIMConv1d, CIMConv2d, CIMLayer, CIMLinear, layer_seed

_CONVERTERS: dict[type[nn.Module], type[CIMLayer]] = {
    nn.Linear: CIMLinear,
    nn.Conv2d: CIMConv2d,
    nn.Conv1d: CIMConv1d,
}
#: layers with weights that the crossbar could hold but this version keeps digital
_UNSUPPORTED_WEIGHTED = (
    nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Bilinear, nn.Embedding,
    nn.EmbeddingBag, nn.MultiheadAttention, nn.RNNBase, nn.LazyLinear,
)


@dataclass
class ConversionSummary:
    """What ``convert`` did: the layers now on crossbars, and the ones left digital."""

    spec_name: str
    seed: int
    analog: list[tuple[str, str, int, float]] = field(default_factory=list)  # name, type, arrays, util
    digital: list[tuple[str, str]] = field(default_factory=list)
    unsupported: list[tuple[str, str]] = field(default_factory=list)

    @property
    def arrays(self) -> int:
        return sum(a[2] for a in self.analog)

    def __str__(self) -> str:
        lines = [f"cimkit conversion on '{self.spec_name}' (seed {self.seed}): {len(self.analog)} layer(s) "
                 f"on {self.arrays} arrays"]
        lines += [f"  analog   {n:<28} {t:<10} {a:>5} arrays, utilization {u:.0%}" for n, t, a, u in self.analog]
        lines += [f"  digital  {n:<28} {t}" for n, t in self.digital]
        lines += [f"  UNSUPPORTED (kept digital)  {n:<28} {t}" for n, t in self.unsupported]
        return "\n".join(lines)


def convert(model: nn.Module, spec: HardwareSpec | str, *, seed: int = 0,
            t_inference_s: float | None = None) -> nn.Module:
    """Return a copy of ``model`` whose ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` run on
    crossbars described by ``spec`` (a HardwareSpec or a preset name). The original is untouched.

    Programming (noise, stuck cells, drift exponents) is sampled once from ``seed``, like a real
    chip; read noise is fresh at every forward (also seeded). ``t_inference_s``: seconds since
    programming at which the chip is read (drift); default the spec's ``device.drift_t0_s``.
    The returned model carries a ``ConversionSummary`` as ``model.cim_summary``.
    """
    if isinstance(spec, str):
        spec = HardwareSpec.preset(spec)
    if not isinstance(spec, HardwareSpec):
        raise InputError(f"spec must be a HardwareSpec or a preset name, got {type(spec).__name__}")
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(seed, int):
        raise InputError(f"seed must be an int, got {seed!r}")
    summary = ConversionSummary(spec.name, seed)
    root_cls = _CONVERTERS.get(type(model))
    if root_cls is not None:  # the model is itself one layer
        out = root_cls.from_module(model, spec, seed=layer_seed(seed, "layer"), name="layer")
        summary.analog.append(("layer", type(model).__name__, out.mapping.arrays, out.mapping.utilization))
    else:
        out = copy.deepcopy(model)
    for name, module in list(out.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            cls = _CONVERTERS.get(type(child))
            if cls is not None:
                layer = cls.from_module(child, spec, seed=layer_seed(seed, full), name=full)
                setattr(module, child_name, layer)
                summary.analog.append((full, type(child).__name__, layer.mapping.arrays, layer.mapping.utilization))
            elif isinstance(child, _UNSUPPORTED_WEIGHTED):
                summary.unsupported.append((full, type(child).__name__))
            elif not list(child.children()) and not isinstance(child, CIMLayer):
                summary.digital.append((full, type(child).__name__))
    if summary.unsupported:
        listed = ", ".join(f"{n} ({t})" for n, t in summary.unsupported)
        warnings.warn(f"cimkit.convert: these layers have no crossbar mapping yet and stay digital: {listed}",
                      stacklevel=2)
    if t_inference_s is not None:
        set_time(out, t_inference_s)
    out.cim_summary = summary
    return out


def cim_layers(model: nn.Module) -> list[CIMLayer]:
    return [m for m in model.modules() if isinstance(m, CIMLayer)]


def set_time(model: nn.Module, t_inference_s: float) -> None:
    """Read every crossbar of ``model`` at ``t_inference_s`` seconds after programming."""
    for layer in cim_layers(model):
        layer.set_time(t_inference_s)


def calibrate(model: nn.Module, loader: Iterable, *, num_batches: int = 8, percentile: float = 99.99) -> nn.Module:
    """Set each crossbar layer's input (DAC) range and, where the spec asks for calibrated ADCs,
    its ADC full scale per weight slice, from up to ``num_batches`` batches of ``loader``.

    ``loader`` yields inputs or (inputs, targets) pairs. Ranges are the ``percentile`` of the
    observed magnitudes. Two passes: inputs first (with dynamic ranges), then partial sums with the
    calibrated inputs. Returns the model.
    """
    layers = cim_layers(model)
    if not layers:
        raise InputError("calibrate: the model has no crossbar layers; call cimkit.convert first")
    if not 0 < percentile <= 100:
        raise InputError(f"percentile must be in (0, 100], got {percentile}")
    batches = []
    for i, batch in enumerate(loader):
        if i >= num_batches:
            break
        batches.append(batch[0] if isinstance(batch, (tuple, list)) else batch)
    if not batches:
        raise InputError("calibrate: the loader gave no batches")
    was_training = model.training
    model.eval()
    device = layers[0].signal_w.device
    for stage in ("input", "adc"):
        if stage == "adc" and not any(l.spec.periphery.adc_range == "calibrated" and l.spec.periphery.adc_bits
                                      for l in layers):
            break
        for layer in layers:
            layer.begin_calibration(stage)
        with torch.no_grad():
            for x in batches:
                model(x.to(device))
        for layer in layers:
            layer.end_calibration(percentile)
    model.train(was_training)
    return model
