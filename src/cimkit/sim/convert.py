"""``convert``: a copy of a PyTorch model whose matrix products run on the chip a spec describes;
``calibrate``: input (DAC) and ADC ranges from data."""

from __future__ import annotations

import copy
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
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
        lines += [f"  KEPT DIGITAL  {n:<28} {t}" for n, t in self.unsupported]
        return "\n".join(lines)


_NO_MAPPING = "no crossbar mapping yet"


def _converter(module: nn.Module) -> tuple[type[CIMLayer] | None, str]:
    """The crossbar layer class for ``module`` (matched by ``isinstance``, so subclasses such as
    weight-normalized layers convert too), or None and why it stays digital."""
    if isinstance(module, CIMLayer):
        return None, ""
    if isinstance(module, _UNSUPPORTED_WEIGHTED):
        return None, _NO_MAPPING
    for base, cls in _CONVERTERS.items():
        if isinstance(module, base):
            if type(module).forward is not base.forward:
                return None, f"a {base.__name__} subclass with its own forward (what it computes is unknown)"
            return cls, ""
    return None, ""


def convert(model: nn.Module, spec: HardwareSpec | str, *, seed: int = 0,
            t_inference_s: float | None = None) -> nn.Module:
    """Return a copy of ``model`` whose ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` layers (and
    subclasses that keep their forward, e.g. weight-normalized ones) run on crossbars described by
    ``spec`` (a HardwareSpec or a preset name). The original is untouched.

    Programming (noise, stuck cells, drift exponents) is sampled once from ``seed``, like a real
    chip; read noise is fresh at every forward (also seeded). ``t_inference_s``: seconds since
    programming at which the chip is read (drift); default the spec's ``device.drift_t0_s``.
    A module registered under several names is converted once and shared, as in the original.
    Layers with weights that cannot be mapped stay digital and are named in a warning; the layers
    inside them (e.g. ``MultiheadAttention.out_proj``, whose weight the attention reads directly)
    stay digital with them. The returned model carries a ``ConversionSummary`` as ``model.cim_summary``.
    """
    if isinstance(spec, str):
        spec = HardwareSpec.preset(spec)
    if not isinstance(spec, HardwareSpec):
        raise InputError(f"spec must be a HardwareSpec or a preset name, got {type(spec).__name__}")
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputError(f"seed must be an integer, got {seed!r}")
    seed = int(seed)
    summary = ConversionSummary(spec.name, seed)
    converted: dict[int, tuple[CIMLayer, int]] = {}  # id of an original module -> its layer, summary row
    seen_digital: set[int] = set()

    def to_cim(module: nn.Module, name: str) -> tuple[nn.Module | None, bool]:
        """The crossbar layer for ``module`` (or None), and whether it stays digital as a whole."""
        cls, why = _converter(module)
        if cls is None:
            if why:
                summary.unsupported.append((name, type(module).__name__ + (f", {why}" if why != _NO_MAPPING else "")))
            return None, bool(why)
        if id(module) in converted:  # shared: one layer, listed under every name
            layer, row = converted[id(module)]
            n, t, a, u = summary.analog[row]
            summary.analog[row] = (f"{n} = {name}", t, a, u)
            return layer, False
        layer = cls.from_module(module, spec, seed=layer_seed(seed, name), name=name)
        converted[id(module)] = (layer, len(summary.analog))
        summary.analog.append((name, type(module).__name__, layer.mapping.arrays, layer.mapping.utilization))
        return layer, False

    def walk(module: nn.Module, prefix: str) -> None:
        # _modules, not named_children(): a child registered under two names must be seen under both
        for child_name, child in list(module._modules.items()):
            if child is None or isinstance(child, CIMLayer):
                continue
            full = f"{prefix}.{child_name}" if prefix else child_name
            layer, whole = to_cim(child, full)
            if layer is not None:
                setattr(module, child_name, layer)
            elif whole:
                continue  # its sub-layers compute inside it, digitally
            elif child._modules:
                walk(child, full)
            elif id(child) not in seen_digital:
                seen_digital.add(id(child))
                summary.digital.append((full, type(child).__name__))

    out, whole = to_cim(model, "layer")
    if out is None:  # unless the model is itself one layer
        out = copy.deepcopy(model)
        if not whole:
            walk(out, "")
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
    if isinstance(percentile, bool) or not isinstance(percentile, numbers.Real) or not 0 < percentile <= 100:
        raise InputError(f"calibrate: percentile must be a number in (0, 100], got {percentile!r}")
    if isinstance(num_batches, bool) or not isinstance(num_batches, numbers.Integral) or num_batches < 1:
        raise InputError(f"calibrate: num_batches must be a positive integer, got {num_batches!r}")
    batches = _calibration_batches(loader, num_batches)
    if all(float(x.abs().max()) == 0 for x in batches):
        warnings.warn("calibrate: every calibration input is zero; the input ranges it sets are degenerate "
                      "(calibrate on real data)", stacklevel=2)
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


def _calibration_batches(loader, num_batches: int) -> list[torch.Tensor]:
    """Up to ``num_batches`` input batches of ``loader``: an iterable of tensors (or numpy arrays) or of
    (inputs, targets) pairs, or one tensor or array taken as a single batch."""
    if isinstance(loader, (torch.Tensor, np.ndarray)):
        loader = [loader]
    if loader is None or isinstance(loader, (str, bytes, dict)) or not isinstance(loader, Iterable):
        raise InputError(f"calibrate: loader must be an iterable of input batches (tensors, or (inputs, targets) "
                         f"pairs), or one batch tensor; got {type(loader).__name__}")
    batches = []
    for i, batch in enumerate(loader):
        if i >= num_batches:
            break
        x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
        if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
            x = torch.from_numpy(x)
        if not isinstance(x, torch.Tensor) or x.is_complex():
            raise InputError(f"calibrate: batch {i} of the loader is {type(x).__name__}, not a real tensor of inputs "
                             "(expected tensors or (inputs, targets) pairs)")
        if x.dim() == 0 or x.shape[0] == 0:
            raise InputError(f"calibrate: batch {i} has no samples (shape {tuple(x.shape)})")
        if not torch.isfinite(x).all():
            raise InputError(f"calibrate: batch {i} has non-finite values (NaN or inf)")
        batches.append(x)
    if not batches:
        raise InputError("calibrate: the loader gave no batches")
    return batches
