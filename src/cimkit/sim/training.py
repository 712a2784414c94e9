"""Training settings of a converted model: which backward pass, when programming noise is redrawn,
whether the programmed weight range is frozen."""

from __future__ import annotations

from torch import nn

from .convert import required_cim_layers


def configure(
    model: nn.Module, *, backward: str | None = None, program_noise: str | None = None, weight_range: str | None = None
) -> nn.Module:
    """Set the training behaviour of every crossbar layer of ``model`` (None leaves a setting as
    it is; set a single layer's attribute of the same name to differ per layer):

    ``backward``: ``straight_through`` (gradients of the ideal product, zero where the DAC or the
    weight range clipped) or ``chip`` (input gradients from a transposed read of the programmed
    arrays, with their DAC, read noise and ADC);
    ``program_noise``: ``per_step`` (each reprogramming after a weight change draws a new
    programming-noise sample), ``per_epoch`` (a new sample at each ``new_epoch``) or ``fixed``;
    ``weight_range``: ``dynamic`` (the range follows the weights) or ``fixed`` (frozen at the
    current programming; weights beyond it clip).

    Every value is checked on every layer before any is changed. Layers written at every input
    (dynamic matmuls, ``cimkit.sim.dynamic``) keep their only settings (straight-through gradients, a new
    programming-noise sample per write, a range that follows the operand) and are left out. Returns the
    model."""
    layers = [layer for layer in required_cim_layers(model, "configure") if not layer.writes_per_input]
    given = {"backward_mode": backward, "program_noise": program_noise, "weight_range": weight_range}
    settings = {k: v for k, v in given.items() if v is not None}
    for layer in layers:  # validate first: a refused value leaves every layer as it was
        for attr, value in settings.items():
            layer.check_setting(attr, value)
    for layer in layers:
        for attr, value in settings.items():
            setattr(layer, attr, value)
    return model


def new_epoch(model: nn.Module) -> None:
    """Start a new epoch: layers with ``program_noise='per_epoch'`` program their next noise sample."""
    for layer in required_cim_layers(model, "new_epoch"):
        layer.new_epoch()
