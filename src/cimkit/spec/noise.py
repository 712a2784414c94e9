"""Per-read noise models of a cell: ``device.read_noise_model`` names one entry of ``READ_NOISE``.

A model is a small object with a docstring and two functions of the cells' conductances:

- ``std(g, g_max, device, t_s)``: the standard deviation of one read of each cell (its definition);
- ``variance(g, g_max, device, t_s, out=None)``: the variance of one read summed over the leading axis of
  ``g`` (the polarities: the two cells of a differential pair add their noise), written into ``out``
  when given (a reused buffer). The default is the sum of ``std**2``; a model may compute it faster.

``g`` and ``g_max`` are in one unit of the caller's choice (the simulator uses level units), ``device``
is the ``DeviceSpec`` (the model reads its own parameters from it: ``read_noise_frac``, ``read_time_s``,
``drift_t0_s``) and ``t_s`` the seconds since programming. The functions take numpy arrays or torch
tensors alike and import neither: they use arithmetic, methods both have, or the array's own module
(``array_module``). ``active(device)`` says whether the model adds noise at all (read_noise_frac = 0
switches every built-in model off).

A plug-in registers an instance::

    from cimkit.spec.noise import READ_NOISE, ReadNoiseModel

    class Telegraph(ReadNoiseModel):
        '''Random telegraph noise: std = read_noise_frac * sqrt(g * g_max).'''
        def std(self, g, g_max, device, t_s):
            return device.read_noise_frac * (g * g_max) ** 0.5

    READ_NOISE.register("telegraph", Telegraph())

after which ``device: {read_noise_model: telegraph}`` is a valid spec and the simulator uses it.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from ..registry import Registry


def array_module(a: Any):
    """The module of array ``a`` (``numpy`` or ``torch``), already imported since ``a`` exists."""
    return sys.modules[type(a).__module__.partition(".")[0]]


class ReadNoiseModel:
    """Base of a read-noise model (see the module docstring); subclasses define ``std``."""

    def active(self, device) -> bool:
        """Whether reads of ``device`` are noisy at all."""
        return device.read_noise_frac > 0

    def std(self, g, g_max, device, t_s: float):
        """Standard deviation of one read of each cell of ``g``."""
        raise NotImplementedError

    def variance(self, g, g_max, device, t_s: float, out=None):
        """Read variance summed over the leading (polarity) axis of ``g``."""
        s = self.std(g, g_max, device, t_s)
        var = (s * s).sum(0)
        if out is None:
            return var
        out[...] = var
        return out

    @property
    def description(self) -> str:
        return (type(self).__doc__ or "").strip().split("\n")[0]


class NoReadNoise(ReadNoiseModel):
    """No read noise: every read returns the programmed conductance."""

    def active(self, device) -> bool:
        return False

    def std(self, g, g_max, device, t_s: float):
        return g * 0


class ProportionalReadNoise(ReadNoiseModel):
    """Noise proportional to the conductance: std = read_noise_frac * g."""

    def std(self, g, g_max, device, t_s: float):
        return device.read_noise_frac * g

    def variance(self, g, g_max, device, t_s: float, out=None):
        # frac^2 * sum over polarities of g^2, one polarity at a time; the squares are added with a fused
        # multiply-add where the array has one (torch's addcmul_), as the simulator always did
        xp = array_module(g)
        var = xp.multiply(g[0], g[0], out=out) if out is not None else g[0] * g[0]
        for pol in g[1:]:
            if hasattr(var, "addcmul_"):
                var.addcmul_(pol, pol)
            else:
                var += pol * pol
        var *= device.read_noise_frac**2
        return var


class AdditiveReadNoise(ReadNoiseModel):
    """State-independent noise: std = read_noise_frac * g_max for every cell."""

    def std(self, g, g_max, device, t_s: float):
        return array_module(g).full_like(g, device.read_noise_frac * g_max)

    def variance(self, g, g_max, device, t_s: float, out=None):
        value = g.shape[0] * (device.read_noise_frac * g_max) ** 2
        if out is None:
            return array_module(g).full_like(g[0], value)
        out[...] = value
        return out


class PcmReadNoise(ReadNoiseModel):
    """1/f read noise of PCM (Nandakumar et al., ICECS 2019), accumulated over the time since programming.

    std = g * Q_s * sqrt(ln((t + t_read) / (2 t_read))), Q_s = min(Q0 / x^a, read_noise_frac), x = g / g_max
    (at least ``min_relative_g``), t = max(t_s, device.drift_t0_s), t_read = device.read_time_s. Q0 = 0.0088
    and a = 0.65 are the fit of IBM's PCM devices used by aihwkit's PCMLikeNoiseModel (Nandakumar et al.;
    Joshi et al., Nat. Commun. 11, 2473, 2020); read_noise_frac is the cap of Q_s (0.2 in that fit)."""

    q0: float = 0.0088
    exponent: float = 0.65
    min_relative_g: float = 1e-3

    def std(self, g, g_max, device, t_s: float):
        xp = array_module(g)
        t = max(t_s, device.drift_t0_s)
        q_s = xp.clip(
            self.q0 / xp.clip(g / g_max, self.min_relative_g, None) ** self.exponent, None, device.read_noise_frac
        )
        return g * q_s * math.sqrt(math.log((t + device.read_time_s) / (2 * device.read_time_s)))


#: read-noise models by name (``device.read_noise_model``)
READ_NOISE: Registry[ReadNoiseModel] = Registry("read-noise model")
READ_NOISE.register("none", NoReadNoise())
READ_NOISE.register("proportional", ProportionalReadNoise())
READ_NOISE.register("additive", AdditiveReadNoise())
READ_NOISE.register("pcm", PcmReadNoise())
