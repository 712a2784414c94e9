"""Spiking networks on CIM. ``neurons``: LIF (snnTorch's ``Leaky`` with a chip's neuron circuit: hard, soft or
no reset, threshold variation, leak mismatch, adaptive threshold), ``Synaptic``, and Fang et al.'s neuron
(dual-exponential synaptic filter, self-inhibition instead of a reset); surrogate gradients. ``sigmoid_quant``:
the sum-of-sigmoids low-bit weight quantizer of Shymyrbay et al. (IJCNN 2023), with temperature annealing
and baking to plain modules. ``tasks``: offline tasks (rate- and latency-coded MNIST digits, DVS-like event
streams, Fang et al.'s temporal pattern association)."""

from .neurons import (
    LIF,
    NEURON_TYPES,
    RESETS,
    SURROGATES,
    FangNeuron,
    NeuronVariation,
    Synaptic,
    gaussian,
    kernel_peak,
    neuron_cost_fn,
    spike_function,
)

# cimkit.sim imports the neurons (its converter maps them); the quantizer imports cimkit.train, which imports
# cimkit.sim: so its names load on first use
_LAZY = {
    "sigmoid_quant": (
        "BITS",
        "SCHEDULE_KINDS",
        "SigmoidSumQuantizer",
        "anneal",
        "bake",
        "memory_saving",
        "prepare_sigmoid_quant",
        "quantizers",
        "temperature_schedule",
    ),
    "cost": ("snn_activity_report", "snn_workload", "SpikeActivity", "LayerActivity"),
    "tasks": (
        "encode_mnist",
        "encode_images",
        "dvs_events",
        "saccade_digits",
        "moving_bars",
        "pattern_association",
        "psp_filter",
        "psp_kernel",
        "association_mse",
    ),
}


def __getattr__(name: str):
    import importlib

    for module, names in _LAZY.items():
        if name in names:
            return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "snn_activity_report",
    "snn_workload",
    "SpikeActivity",
    "LayerActivity",
    "BITS",
    "LIF",
    "NEURON_TYPES",
    "RESETS",
    "SCHEDULE_KINDS",
    "SURROGATES",
    "FangNeuron",
    "NeuronVariation",
    "SigmoidSumQuantizer",
    "Synaptic",
    "anneal",
    "bake",
    "gaussian",
    "kernel_peak",
    "memory_saving",
    "neuron_cost_fn",
    "prepare_sigmoid_quant",
    "quantizers",
    "spike_function",
    "temperature_schedule",
    "encode_mnist",
    "encode_images",
    "dvs_events",
    "saccade_digits",
    "moving_bars",
    "pattern_association",
    "psp_filter",
    "psp_kernel",
    "association_mse",
]
