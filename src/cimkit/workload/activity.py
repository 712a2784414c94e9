"""Input activity measured from real activations: the fraction of 1 bits the crossbar's rows are driven with.

A crossbar's read energy (cells conducting, column currents the converters sense, word lines switched)
follows how many input bits are 1, so the cost model prices each weighted op at its ``Op.activity``
(``chip.input_activity`` where an op gives none). ``measure_activity`` runs a torch model on data,
quantizes every weighted layer's input with the chip's DAC (``periphery.input_bits`` bits, signed as two's
complement when the input has negative values, as the simulator drives bit planes) and counts the 1 bits
over the vectors the arrays read: a convolution's unfolded windows, padding zeros included.

For reference, DNN+NeuroSim's traces (activations ReLU(N(0, 0.35)) quantized to k / 2^(b-1)) have 0.182 of
their input bits at 1 with 8-bit inputs and 0.143 with 4-bit inputs (shared/reference/neurosim.md).
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, short_repr

#: the modules whose inputs drive crossbar rows (the op registry maps them to weighted ops of their name)
_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _ones_per_element(x: torch.Tensor, bits: int, x_range: float, signed: bool) -> torch.Tensor:
    """The number of 1 bits of every element's DAC code (the simulator's DAC, its top code at ``x_range``; two's
    complement when signed), as float32 (one bit plane at a time: no tensor bits x the input's size)."""
    from ..sim.kernel import dac

    codes = dac(x.double(), bits, x_range, signed)[0].to(torch.int32)
    if signed:
        codes = torch.remainder(codes, 2**bits)
    ones = torch.zeros(codes.shape, dtype=torch.float32)
    for k in range(bits):
        ones += ((codes >> k) & 1).to(torch.float32)
    return ones


def _window_ones(module: nn.Module, ones: torch.Tensor) -> tuple[float, float]:
    """(1 bits, bits / input bits) over the input vectors ``module`` reads, from its input's per-element 1-bit
    counts ``ones``: a convolution counts each element once per window it falls in, its padding included
    (zeros, or the values ``padding_mode`` repeats)."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        dims = 1 if isinstance(module, nn.Conv1d) else 2
        if ones.dim() == dims + 1:  # an unbatched input
            ones = ones.unsqueeze(0)
        conv = F.conv1d if dims == 1 else F.conv2d
        per_pos = ones.double().sum(dim=1, keepdim=True)  # every channel reaches its group's rows once per window
        kernel = torch.ones((1, 1, *module.kernel_size), dtype=per_pos.dtype)
        padding: int | str | tuple[int, ...]
        if module.padding_mode != "zeros":
            per_pos = F.pad(per_pos, module._reversed_padding_repeated_twice, mode=module.padding_mode)
            padding = 0
        elif isinstance(module.padding, str):
            padding = module.padding  # "same" (stride 1) or "valid"
        else:
            padding = module.padding
        window_sums = conv(per_pos, kernel, stride=module.stride, padding=padding, dilation=module.dilation)
        rows_per_vector = ones.shape[1] * math.prod(module.kernel_size)
        return float(window_sums.sum()), float(window_sums.numel() * rows_per_vector)
    return float(ones.double().sum()), float(ones.numel())


def input_batches(model: nn.Module, loader, num_batches: int, what: str) -> list[torch.Tensor]:
    """Up to ``num_batches`` input batches of ``loader`` (read once), floating batches in the model's
    parameter dtype (numpy float64 batches for a float32 model)."""
    from ..sim.convert import _calibration_batches

    batches = _calibration_batches(loader, num_batches, what)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    if dtype is not None:
        batches = [x.to(dtype) if x.is_floating_point() else x for x in batches]
    return batches


def _check_range(input_range, names: list[str]) -> dict[str, float] | float | None:
    if input_range is None:
        return None
    if isinstance(input_range, Mapping):
        unknown = [k for k in input_range if k not in names]
        if unknown:
            raise InputError(
                f"measure_activity: input_range names {short_repr(unknown[0])}, which is no weighted layer "
                f"of the model; its weighted layers: {', '.join(names[:8])}"
            )
        for k, v in input_range.items():
            if isinstance(v, Mapping):
                raise InputError(f"measure_activity: input_range[{k!r}] = {short_repr(v)}: give a number per layer")
            _check_range(v, names)
        return {k: float(v) for k, v in input_range.items()}
    if (
        isinstance(input_range, bool)
        or not isinstance(input_range, numbers.Real)
        or not (math.isfinite(input_range) and float(input_range) > 0)
    ):
        raise InputError(
            f"measure_activity: input_range = {short_repr(input_range)}: give the input value the DAC's "
            "top code stands for, a finite number > 0 (or a dict of them by layer name, or None to "
            "calibrate it as the simulator does)"
        )
    return float(input_range)


def measure_activity(
    model: nn.Module,
    loader: Iterable,
    spec,
    *,
    num_batches: int = 8,
    percentile: float = 99.99,
    input_range: float | Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The fraction of 1 bits in every weighted layer's input bit streams, by layer (op) name.

    ``loader`` yields input batches (or (inputs, targets) pairs); up to ``num_batches`` are run through
    ``model`` in eval mode. Each ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` input is quantized with
    ``spec.periphery.input_bits`` bits: the DAC's top code stands for the ``percentile`` of the observed
    magnitudes (the range the simulator's ``calibrate`` sets, on the same subsample), or for ``input_range`` (one value, or a dict by layer name)
    when given. Signed inputs are counted in two's complement. Layers a batch never reaches are left out; a
    module called several times gets one fraction over all its calls (every op of its name takes it). The
    inputs of every weighted layer for the batches read are held on the CPU until counted.
    """
    from ..cost.estimate import _resolve_spec
    from ..sim.convert import check_calibration_options
    from ..sim.layers import magnitude_percentile

    spec = _resolve_spec(spec, "measure_activity: spec")
    bits = spec.periphery.input_bits
    if bits is None:
        raise InputError(
            f"measure_activity: spec {spec.name!r} has no input DAC (periphery.input_bits is null): "
            "input activity counts the 1 bits of DAC codes; give periphery.input_bits"
        )
    if not isinstance(model, nn.Module):
        raise InputError(f"measure_activity: model must be a torch.nn.Module, got {type(model).__name__}")
    check_calibration_options("measure_activity", num_batches, percentile)
    layers = {name: m for name, m in model.named_modules() if isinstance(m, _WEIGHTED)}
    if not layers:
        raise InputError(
            f"measure_activity: {type(model).__name__} has no nn.Linear or nn.Conv1d/2d layer whose "
            "inputs drive crossbar rows"
        )
    ranges = _check_range(input_range, list(layers))
    batches = input_batches(model, loader, num_batches, "measure_activity")

    seen: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    hooks = [
        m.register_forward_pre_hook(lambda mod, args, name=name: seen[name].append(args[0].detach().cpu()))
        for name, m in layers.items()
    ]
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        with torch.no_grad():
            for x in batches:
                model(x.to(device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)

    activity = {}
    for name, xs in seen.items():
        if not xs:
            continue
        if isinstance(ranges, dict) and name in ranges:
            top = ranges[name]
        elif isinstance(ranges, float):
            top = ranges
        else:
            top = magnitude_percentile(torch.cat([x.abs().flatten() for x in xs]), percentile)
        signed = any(float(x.min()) < 0 for x in xs)
        ones = total = 0.0
        for x in xs:
            o, t = _window_ones(layers[name], _ones_per_element(x, bits, top, signed))
            ones, total = ones + o, total + t
        activity[name] = ones / (total * bits) if total else 0.0
    return activity
