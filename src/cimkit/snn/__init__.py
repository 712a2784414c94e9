"""Spiking-network oriented training tools. ``sigmoid_quant``: the sum-of-sigmoids low-bit weight
quantizer of Shymyrbay et al. (IJCNN 2023), with temperature annealing and baking to plain modules."""

from .sigmoid_quant import (BITS, SCHEDULE_KINDS, SigmoidSumQuantizer, anneal, bake, memory_saving,
                            prepare_sigmoid_quant, quantizers, temperature_schedule)

__all__ = ["BITS", "SCHEDULE_KINDS", "SigmoidSumQuantizer", "anneal", "bake", "memory_saving",
           "prepare_sigmoid_quant", "quantizers", "temperature_schedule"]
