"""Helpers shared by the tests."""

import warnings

import torch

import cimkit as ck


def spec_with(base: str = "ideal", **changes) -> ck.HardwareSpec:
    """A preset with dotted-path changes, e.g. spec_with("rram-22nm", **{"periphery.adc_bits": 6})."""
    return ck.HardwareSpec.preset(base).replace(**changes)


def quiet_convert(model, spec, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ck.convert(model, spec, **kw)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())
