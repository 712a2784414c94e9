"""Training for and on the hardware.

- ``hwa``: hardware-aware training (the chip's noise, converters and weight clipping in the forward pass);
- ``quant``: post-training and quantization-aware quantization, per layer or per channel, (a)symmetric;
- ``insitu``: learning on the crossbars (forward read, transposed read or DFA feedback read, pulse updates
  through a device update model, ``cimkit.spec.update``), with BP and DFA as rules; ``cost`` prices its steps;
- ``hero``: SAM and HERO optimizers and the Hessian's top eigenvalue;
- ``loop``: the seeded, checkpointed training loop they share.
"""

from ..spec.update import UPDATE_DEVICES, UpdateDevice, update_device
from .cost import StepCost, backward_latency_s, step_cost
from .hero import HERO, SAM, hessian_top_eigenvalue
from .hwa import HardwareAwareTrainer, noise_scaled_spec, train_hardware_aware
from .insitu import InSituTrainer, mlp, small_cnn
from .loop import batch_indices, run_epochs, step_seed, steps_per_epoch
from .quant import (
    QuantConfig,
    convert_qat,
    fake_quantize,
    prepare_qat,
    quant_params,
    quantization_error,
    quantize_weights,
)

__all__ = [
    "HardwareAwareTrainer",
    "train_hardware_aware",
    "noise_scaled_spec",
    "QuantConfig",
    "quant_params",
    "fake_quantize",
    "quantize_weights",
    "prepare_qat",
    "convert_qat",
    "quantization_error",
    "InSituTrainer",
    "mlp",
    "small_cnn",
    "UpdateDevice",
    "UPDATE_DEVICES",
    "update_device",
    "StepCost",
    "step_cost",
    "backward_latency_s",
    "HERO",
    "SAM",
    "hessian_top_eigenvalue",
    "run_epochs",
    "batch_indices",
    "step_seed",
    "steps_per_epoch",
]
