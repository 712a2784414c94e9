"""Spiking neurons for networks on CIM: snnTorch's leaky integrate-and-fire where it does the job, and what it
lacks.

One call of a neuron is one time step; the crossbar in front of it delivers the input current ``W s`` of the
step's spikes ``s``. Three neuron models:

- ``LIF``: snnTorch 1.0's ``snn.Leaky`` (its reset semantics with ``reset_delay=True``: the reset a spike
  causes is applied at the next step), with ``reset`` in ``("subtract", "zero", "none")``, plus what a chip's
  neuron circuit adds: per-neuron threshold variation and leak mismatch (``set_variation``, drawn from a seed)
  and an adaptive threshold (``adaptation``: the threshold rises by ``adaptation`` per spike and decays back
  by ``adaptation_decay`` per step). With no variation and no adaptation its traces are ``snn.Leaky``'s.
- ``Synaptic``: snnTorch's ``snn.Synaptic`` (a first-order synaptic current feeding the membrane) with the
  same chip additions.
- ``FangNeuron``: the neuron of Fang et al. (DAC 2021, arXiv 2104.10712), which keeps its temporal state:
  a dual-exponential synaptic filter ``m <- m a_m + I``, ``k <- k a_s + I``, ``psp = v0 (m - k)`` with
  ``a = e^(-1/tau)`` and ``v0`` the factor that makes the kernel's peak exactly 1; membrane
  ``V = psp - r``; a spike when ``V > threshold``; no reset, but a self-inhibition ``r <- r a_m + spike``
  that raises the effective threshold after each spike and decays with the membrane constant. Fang et al.
  filter each input channel before the weights; the filter is linear, so filtering the crossbar's output
  current instead is the same network for decays shared by a layer's inputs (``FangNeuron`` filters the
  output current, so the crossbar still reads 1-bit spikes). Decays are learnable (``learn_decay``) as
  time constants, per layer or per neuron.

Surrogate gradients: any of snnTorch's (``snntorch.surrogate``), by function or by name (``SURROGATES``),
and ``gaussian(sigma)``, the Gaussian of Fang et al.'s code (sigma 0.4).
"""

from __future__ import annotations

import math
from typing import Callable

import snntorch as snn
import torch
from snntorch import surrogate as snn_surrogate
from torch import nn

from ..errors import InputError, check_real, short_repr
from ..workload.registry import NEURON_RESETS

RESETS = NEURON_RESETS  # ("subtract", "zero", "none"), as the cost model names them


# ---- surrogate gradients --------------------------------------------------------------------------------
class _GaussianSpike(torch.autograd.Function):
    """Heaviside step forward (a spike when x > 0); backward the Gaussian density of width ``sigma``."""

    @staticmethod
    def forward(ctx, x, sigma):
        ctx.save_for_backward(x)
        ctx.sigma = sigma
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = ctx.sigma
        return grad * torch.exp(-0.5 * (x / s) ** 2) / (s * math.sqrt(2 * math.pi)), None


def gaussian(sigma: float = 0.4) -> Callable[[torch.Tensor], torch.Tensor]:
    """The spike function with a Gaussian surrogate of standard deviation ``sigma`` (in units of the
    membrane potential; Fang et al. use 0.4): forward ``x > 0``, backward ``N(x; 0, sigma^2)``."""
    if not (isinstance(sigma, (int, float)) and not isinstance(sigma, bool) and math.isfinite(sigma) and sigma > 0):
        raise InputError(f"gaussian: sigma must be a positive number, got {short_repr(sigma)}")
    sigma = float(sigma)

    def spike(x: torch.Tensor) -> torch.Tensor:
        return _GaussianSpike.apply(x, sigma)

    spike.__name__ = f"gaussian(sigma={sigma:g})"
    return spike


#: surrogate gradients by name: snnTorch's with their default slopes, and Fang et al.'s Gaussian
SURROGATES: dict[str, Callable[[], Callable]] = {
    "atan": snn_surrogate.atan,
    "fast_sigmoid": snn_surrogate.fast_sigmoid,
    "sigmoid": snn_surrogate.sigmoid,
    "triangular": snn_surrogate.triangular,
    "straight_through": snn_surrogate.straight_through_estimator,
    "gaussian": gaussian,
}


def spike_function(spike_grad: str | Callable | None) -> Callable | None:
    """A surrogate spike function from a name of ``SURROGATES``, a callable (returned as is), or None (the
    neuron's default: snnTorch's arctan)."""
    if spike_grad is None or callable(spike_grad):
        return spike_grad
    if isinstance(spike_grad, str) and spike_grad in SURROGATES:
        return SURROGATES[spike_grad]()
    raise InputError(
        f"spike_grad must be a surrogate function (snntorch.surrogate, cimkit.snn.gaussian) or one of "
        f"{', '.join(SURROGATES)}; got {short_repr(spike_grad)}"
    )


# ---- chip variation shared by the neuron models ---------------------------------------------------------
class NeuronVariation(nn.Module):
    """Per-neuron mismatch of a neuron circuit: threshold ``theta_i = theta (1 + threshold_sigma_rel e_i)`` and
    leak rate ``1 - beta_i = (1 - beta)(1 + leak_sigma_rel e'_i)`` (beta clamped to [0, 1]), e ~ N(0, 1)
    drawn once per neuron from ``seed`` when the layer's neuron shape is first seen (the same seed gives the
    same chip). Gains are derived state (non-persistent buffers), rebuilt from the seed."""

    threshold_gain: torch.Tensor | None
    leak_gain: torch.Tensor | None

    def __init__(self) -> None:
        super().__init__()
        self.threshold_sigma_rel = 0.0
        self.leak_sigma_rel = 0.0
        self.variation_seed = 0
        self.register_buffer("threshold_gain", None, persistent=False)
        self.register_buffer("leak_gain", None, persistent=False)

    def set(self, threshold_sigma_rel: float = 0.0, leak_sigma_rel: float = 0.0, seed: int = 0) -> None:
        self.threshold_sigma_rel = check_real("set_variation", "threshold_sigma_rel", threshold_sigma_rel, 0.0, 1.0)
        self.leak_sigma_rel = check_real("set_variation", "leak_sigma_rel", leak_sigma_rel, 0.0, 10.0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise InputError(f"set_variation: seed must be a non-negative integer, got {short_repr(seed)}")
        self.variation_seed = seed
        self.threshold_gain = self.leak_gain = None

    @property
    def active(self) -> bool:
        return self.threshold_sigma_rel > 0 or self.leak_sigma_rel > 0

    def gains(self, shape: torch.Size, like: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(threshold gain, leak-rate gain) for neurons of ``shape`` (the input without its batch dim)."""
        if not self.active:
            return None, None
        g, lk = self.threshold_gain, self.leak_gain  # set together
        if g is None or lk is None or g.shape != shape:
            gen = torch.Generator().manual_seed(self.variation_seed)
            e_th = torch.randn(tuple(shape), generator=gen, dtype=torch.float64)
            e_lk = torch.randn(tuple(shape), generator=gen, dtype=torch.float64)
            g = self.threshold_gain = (1 + self.threshold_sigma_rel * e_th).clamp_min(0.0).to(like.device)
            lk = self.leak_gain = (1 + self.leak_sigma_rel * e_lk).clamp_min(0.0).to(like.device)
        return g.to(like.dtype), lk.to(like.dtype)


def _neuron_shape(x: torch.Tensor) -> torch.Size:
    """The neurons of an input: its shape without the batch dim (an unbatched 1-d input is one per element)."""
    return x.shape[1:] if x.dim() > 1 else x.shape


def _per_neuron_beta(beta: torch.Tensor, leak_gain: torch.Tensor | None) -> torch.Tensor:
    beta = beta.clamp(0, 1)
    return beta if leak_gain is None else (1 - (1 - beta) * leak_gain).clamp(0, 1)


class _ChipNeuron:
    """What ``LIF`` and ``Synaptic`` add to their snnTorch parents: variation and an adaptive threshold. The
    parents read ``self.threshold`` in ``fire`` and ``mem_reset``; here the effective threshold of each neuron
    (variation and adaptation included) stands in for it during a step."""

    # from the snnTorch parent (a torch Module) and the subclass
    mem: torch.Tensor
    threshold: torch.Tensor
    reset_mechanism: str
    _cost_base: str
    register_buffer: Callable[..., None]
    # the adaptation state (a non-persistent buffer)
    adapt: torch.Tensor

    def _chip_init(self, adaptation: float, adaptation_decay: float) -> None:
        where = type(self).__name__
        self.adaptation = check_real(where, "adaptation", adaptation, 0.0)
        self.adaptation_decay = check_real(where, "adaptation_decay", adaptation_decay, 0.0, 1.0)
        self.variation = NeuronVariation()
        self.register_buffer("adapt", torch.zeros(0), persistent=False)
        self._adapt_prev: torch.Tensor | None = None
        self._theta_reset: torch.Tensor | None = None
        self._last_mem: torch.Tensor | None = None
        self._leak_gain: torch.Tensor | None = None

    def set_variation(self, threshold_sigma_rel: float = 0.0, leak_sigma_rel: float = 0.0, seed: int = 0) -> None:
        """Per-neuron threshold variation and leak mismatch (relative standard deviations), drawn from ``seed``."""
        self.variation.set(threshold_sigma_rel, leak_sigma_rel, seed)

    @property
    def cost_fn(self) -> str:
        """The neuron update as the op registry names it (for the event-driven cost model)."""
        base = f"{self._cost_base}_{self.reset_mechanism}"
        return base + ("_adaptive" if self.adaptation > 0 else "")

    def _chip_step(self, step: Callable, x: torch.Tensor, mem_in: torch.Tensor | None):
        """One snnTorch step with this chip's effective thresholds and leaks. snnTorch reads ``self.threshold``
        in ``fire`` (this step's threshold) and in ``mem_reset`` and the subtractive reset (the threshold the
        previous step's membrane was compared with); without variation or adaptation nothing changes.

        The adaptation state follows the membrane: a membrane this neuron did not produce at its last step (a
        fresh one passed in, ``reset_mem``, ``snntorch.utils.reset``, another shape) starts a new sequence and
        clears it; a membrane detached in place (``detach_hidden``, truncated BPTT) detaches it."""
        th_gain, leak_gain = self.variation.gains(_neuron_shape(x), x)
        self._leak_gain = leak_gain
        if th_gain is None and self.adaptation == 0:
            return step()
        mem = self.mem if mem_in is None else mem_in
        if mem is not self._last_mem or self.adapt.shape != x.shape:
            self.adapt, self._adapt_prev = torch.zeros_like(x), None
        elif mem.grad_fn is None and self.adapt.grad_fn is not None:
            self.adapt = self.adapt.detach()
            self._adapt_prev = None if self._adapt_prev is None else self._adapt_prev.detach()
        base = self.threshold if th_gain is None else self.threshold * th_gain
        theta = base + self.adaptation * self.adapt if self.adaptation > 0 else base
        # the threshold the previous membrane was compared with: the adaptation of the step before
        self._theta_reset = base + self.adaptation * self._adapt_prev if self._adapt_prev is not None else theta
        self.__dict__["threshold"] = theta  # shadows the parameter / buffer for this step
        try:
            out = step()
        finally:
            del self.__dict__["threshold"]
        self._last_mem = self.mem
        if self.adaptation > 0:
            spk = out[0] if isinstance(out, tuple) else out
            self._adapt_prev = self.adapt
            self.adapt = self.adaptation_decay * self.adapt + spk
        return out

    def mem_reset(self, mem):
        theta = getattr(self, "_theta_reset", None) if "threshold" in self.__dict__ else None
        if theta is None:
            return super().mem_reset(mem)
        return self.spike_grad(mem - theta).clone().detach()

    def _base_sub(self, input_):
        theta = getattr(self, "_theta_reset", None) if "threshold" in self.__dict__ else None
        if theta is None:
            return super()._base_sub(input_)
        state = self._base_state_function(input_)
        if isinstance(state, tuple):  # Synaptic: (synaptic current, membrane)
            return (*state[:-1], state[-1] - self.reset * theta)
        return state - self.reset * theta

    def _clear_chip_state(self) -> None:
        self.adapt = torch.zeros(0, device=self.adapt.device)
        self._adapt_prev = self._theta_reset = self._last_mem = None


class LIF(_ChipNeuron, snn.Leaky):
    """snnTorch's ``snn.Leaky`` (snnTorch 1.0 semantics, ``reset_delay=True``) with a chip's neuron circuit:
    ``reset`` (``"subtract"``, ``"zero"``, ``"none"``; snnTorch's ``reset_mechanism``), per-neuron variation
    (``set_variation``) and an adaptive threshold (``adaptation`` added per spike, decaying by
    ``adaptation_decay`` per step). Call it as ``snn.Leaky``: ``spk, mem = lif(current, mem)``, or with
    ``init_hidden=True`` as ``spk = lif(current)``."""

    _cost_base = "lif"

    def __init__(
        self,
        beta,
        threshold: float = 1.0,
        *,
        reset: str = "subtract",
        spike_grad=None,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        init_hidden: bool = False,
        output: bool = False,
        adaptation: float = 0.0,
        adaptation_decay: float = 0.9,
    ) -> None:
        _check_neuron_args("LIF", beta, threshold, reset)
        super().__init__(
            beta,
            threshold=threshold,
            spike_grad=spike_function(spike_grad),
            init_hidden=init_hidden,
            learn_beta=learn_beta,
            learn_threshold=learn_threshold,
            reset_mechanism=reset,
            output=output,
            reset_delay=True,
        )
        self._chip_init(adaptation, adaptation_decay)

    @classmethod
    def from_snntorch(cls, m: snn.Leaky) -> "LIF":
        """The ``LIF`` computing what ``m`` computes (its beta, threshold, reset, surrogate, hidden-state mode);
        an ``InputError`` for settings it does not carry (inhibition, state quantization, no reset delay,
        graded spikes)."""
        _check_convertible(m)
        new = cls(
            m.beta.detach().clone(),
            float(m.threshold.detach()),
            reset=m.reset_mechanism,
            spike_grad=m.spike_grad,
            init_hidden=m.init_hidden,
            output=m.output,
            learn_beta=isinstance(m.beta, nn.Parameter),
            learn_threshold=isinstance(m.threshold, nn.Parameter),
        )
        new.beta.data, new.threshold.data = m.beta.detach().clone(), m.threshold.detach().clone()
        return new

    def reset_mem(self):
        self._clear_chip_state()
        return super().reset_mem()

    def forward(self, input_, mem=None):
        return self._chip_step(lambda: snn.Leaky.forward(self, input_, mem), input_, mem)

    def _base_state_function(self, input_):
        return _per_neuron_beta(self.beta, self._leak_gain) * self.mem + input_


class Synaptic(_ChipNeuron, snn.Synaptic):
    """snnTorch's ``snn.Synaptic`` (synaptic current ``syn <- alpha syn + I``, membrane ``mem <- beta mem +
    syn``, reset as ``LIF``) with the chip's variation (on the membrane leak) and adaptive threshold."""

    _cost_base = "synaptic"

    def __init__(
        self,
        alpha,
        beta,
        threshold: float = 1.0,
        *,
        reset: str = "subtract",
        spike_grad=None,
        learn_alpha: bool = False,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        init_hidden: bool = False,
        output: bool = False,
        adaptation: float = 0.0,
        adaptation_decay: float = 0.9,
    ) -> None:
        _check_neuron_args("Synaptic", beta, threshold, reset)
        _check_decay("Synaptic", "alpha", alpha)
        super().__init__(
            alpha,
            beta,
            threshold=threshold,
            spike_grad=spike_function(spike_grad),
            init_hidden=init_hidden,
            learn_alpha=learn_alpha,
            learn_beta=learn_beta,
            learn_threshold=learn_threshold,
            reset_mechanism=reset,
            output=output,
            reset_delay=True,
        )
        self._chip_init(adaptation, adaptation_decay)

    @classmethod
    def from_snntorch(cls, m: snn.Synaptic) -> "Synaptic":
        _check_convertible(m)
        new = cls(
            m.alpha.detach().clone(),
            m.beta.detach().clone(),
            float(m.threshold.detach()),
            reset=m.reset_mechanism,
            spike_grad=m.spike_grad,
            init_hidden=m.init_hidden,
            output=m.output,
            learn_alpha=isinstance(m.alpha, nn.Parameter),
            learn_beta=isinstance(m.beta, nn.Parameter),
            learn_threshold=isinstance(m.threshold, nn.Parameter),
        )
        new.alpha.data, new.beta.data = m.alpha.detach().clone(), m.beta.detach().clone()
        new.threshold.data = m.threshold.detach().clone()
        return new

    def reset_mem(self):
        self._clear_chip_state()
        return super().reset_mem()

    def forward(self, input_, syn=None, mem=None):
        return self._chip_step(lambda: snn.Synaptic.forward(self, input_, syn, mem), input_, mem)

    def _base_state_function(self, input_):
        base_fn_syn = self.alpha.clamp(0, 1) * self.syn + input_
        base_fn_mem = _per_neuron_beta(self.beta, self._leak_gain) * self.mem + base_fn_syn
        return base_fn_syn, base_fn_mem

    def _base_state_reset_zero(self, input_):
        return 0, self._base_state_function(input_)[1]


def _check_decay(where: str, name: str, value) -> None:
    v = value.detach() if isinstance(value, torch.Tensor) else value
    if isinstance(v, torch.Tensor):
        ok = v.is_floating_point() and bool(torch.isfinite(v).all()) and bool(((v >= 0) & (v <= 1)).all())
    else:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1
    if not ok:
        raise InputError(
            f"{where}: {name} must be a decay factor in [0, 1] (a number or a float tensor), got {short_repr(value)}"
        )


def _check_neuron_args(where: str, beta, threshold, reset) -> None:
    _check_decay(where, "beta", beta)
    check_real(where, "threshold", threshold, 0.0, lo_open=True)
    if reset not in RESETS:
        raise InputError(f"{where}: reset must be one of {', '.join(RESETS)}, got {short_repr(reset)}")


def _check_convertible(m) -> None:
    name = type(m).__name__
    problems = []
    if getattr(m, "inhibition", False):
        problems.append("inhibition=True (winner-take-all across the layer)")
    if getattr(m, "state_quant", False):
        problems.append("state_quant (a quantized membrane)")
    if not getattr(m, "reset_delay", True):
        problems.append("reset_delay=False")
    g = getattr(m, "graded_spikes_factor", 1.0)
    g = g.detach() if isinstance(g, torch.Tensor) else torch.tensor(float(g))
    if g.numel() != 1 or float(g) != 1.0:
        problems.append("graded spikes (graded_spikes_factor != 1)")
    if isinstance(m.threshold, torch.Tensor) and m.threshold.numel() != 1:
        problems.append("a per-neuron threshold tensor")
    if problems:
        raise InputError(
            f"snntorch.{name}: cimkit's neuron unit does not model {'; '.join(problems)}; keep the "
            "neuron digital (convert(..., neurons=False)) or use the default settings"
        )


# ---- Fang et al.'s neuron --------------------------------------------------------------------------------
def kernel_peak(tau_m: torch.Tensor, tau_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(peak step, peak value) of the discrete dual-exponential kernel ``e^(-n/tau_m) - e^(-n/tau_s)``
    (n = 0, 1, ... steps after a spike; tau in steps, tau_m > tau_s), differentiable in the taus. The
    continuous maximum is at ``n* = tau_m tau_s ln(tau_m / tau_s) / (tau_m - tau_s)`` and the kernel is
    unimodal, so the integer peak is ``floor(n*)`` or ``ceil(n*)``, the larger (``floor`` on a tie);
    ``v0 = 1 / peak value`` makes the kernel peak at exactly 1 on the step grid."""
    n_star = tau_m * tau_s * torch.log(tau_m / tau_s) / (tau_m - tau_s)
    lo = torch.floor(n_star).clamp_min(0)
    hi = lo + 1
    k = lambda n: torch.exp(-n / tau_m) - torch.exp(-n / tau_s)  # noqa: E731
    n_peak = torch.where(k(hi) > k(lo), hi, lo)
    return n_peak, k(n_peak)


class FangNeuron(nn.Module):
    """Fang et al.'s neuron (DAC 2021): dual-exponential synaptic filter of the input current, no reset, a
    decaying self-inhibition after each spike. Per step, with ``a_m = e^(-1/tau_m)``, ``a_s = e^(-1/tau_s)``:

        m <- a_m m + I;   k <- a_s k + I;   psp = v0 (m - k)          (v0: the kernel's peak is 1)
        V = psp - inhibition r;   spike = [V > threshold];   r <- a_m r + spike

    ``I`` is the crossbar's output current for the step's spikes. ``tau_m``, ``tau_s`` (steps, tau_m >
    tau_s) are learnable with ``learn_decay`` (``per_neuron``: one pair per output neuron, set ``size``);
    ``inhibition`` scales the self-inhibition (1 in Fang et al.). The state (m, k, r) is held between calls;
    ``reset_state()`` clears it. ``forward(current) -> spikes``; ``last_v`` is the last membrane potential."""

    cost_fn = "fang"

    def __init__(
        self,
        tau_m: float = 8.0,
        tau_s: float = 2.0,
        threshold: float = 1.0,
        *,
        inhibition: float = 1.0,
        learn_decay: bool = False,
        size: int | None = None,
        spike_grad="gaussian",
    ) -> None:
        super().__init__()
        tau_m = check_real("FangNeuron", "tau_m", tau_m, 0.0, lo_open=True)
        tau_s = check_real("FangNeuron", "tau_s", tau_s, 0.0, lo_open=True)
        if not tau_m > tau_s:
            raise InputError(
                f"FangNeuron: tau_m must exceed tau_s (a rising then falling kernel), got "
                f"tau_m={tau_m:g}, tau_s={tau_s:g}"
            )
        self.threshold = check_real("FangNeuron", "threshold", threshold, 0.0, lo_open=True)
        self.inhibition = check_real("FangNeuron", "inhibition", inhibition, 0.0)
        if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and size > 0):
            raise InputError(f"FangNeuron: size must be a positive neuron count or None, got {short_repr(size)}")
        shape = (size,) if size is not None else ()
        taus = torch.tensor([tau_m, tau_s], dtype=torch.float32).reshape(2, *([1] * len(shape))).expand(2, *shape)
        if learn_decay:
            self.tau = nn.Parameter(taus.clone())
        else:
            self.register_buffer("tau", taus.clone())
        self.spike_grad = spike_function(spike_grad) or snn_surrogate.atan()
        self.variation = NeuronVariation()
        # the filter state (membrane and synaptic kernels, refractory trace): all None or all tensors
        self.m: torch.Tensor | None = None
        self.k: torch.Tensor | None = None
        self.r: torch.Tensor | None = None
        self.last_v: torch.Tensor | None = None

    @property
    def tau_m(self) -> torch.Tensor:
        return self.tau[0]

    @property
    def tau_s(self) -> torch.Tensor:
        return self.tau[1]

    def set_variation(self, threshold_sigma_rel: float = 0.0, leak_sigma_rel: float = 0.0, seed: int = 0) -> None:
        """Per-neuron threshold variation and mismatch of both filter leak rates (relative standard deviations)."""
        self.variation.set(threshold_sigma_rel, leak_sigma_rel, seed)

    def reset_state(self) -> None:
        self.m = self.k = self.r = self.last_v = None

    def decays(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a_m, a_s, v0) for input ``like``, variation included."""
        tau = self.tau.clamp_min(1e-3).to(like.dtype)
        tau_m, tau_s = tau[0], torch.minimum(tau[1], tau[0] * (1 - 1e-4))
        v0 = 1.0 / kernel_peak(tau_m, tau_s)[1]
        a_m, a_s = torch.exp(-1.0 / tau_m), torch.exp(-1.0 / tau_s)
        _, leak_gain = self.variation.gains(_neuron_shape(like), like)
        if leak_gain is not None:
            a_m, a_s = _per_neuron_beta(a_m, leak_gain), _per_neuron_beta(a_s, leak_gain)
        return a_m, a_s, v0

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        if not isinstance(current, torch.Tensor) or not current.is_floating_point():
            raise InputError(f"FangNeuron: expected a floating-point current tensor, got {short_repr(current)}")
        if self.tau.dim() > 1 and (current.dim() != 2 or current.shape[-1] != self.tau.shape[1]):
            raise InputError(
                f"FangNeuron: the neuron has {self.tau.shape[1]} per-neuron time constants, which need "
                f"a (batch, {self.tau.shape[1]}) current; got shape {tuple(current.shape)} (use size=None "
                "for shared time constants, e.g. after a convolution)"
            )
        m, k, r = self.m, self.k, self.r
        if m is None or k is None or r is None or m.shape != current.shape:
            m = k = r = torch.zeros_like(current)
        a_m, a_s, v0 = self.decays(current)
        self.m = m = a_m * m + current
        self.k = k = a_s * k + current
        v = v0 * (m - k) - self.inhibition * r
        th_gain, _ = self.variation.gains(_neuron_shape(current), current)
        theta = self.threshold if th_gain is None else self.threshold * th_gain
        spk = self.spike_grad(v - theta)
        self.r = a_m * r + spk
        self.last_v = v
        return spk

    def extra_repr(self) -> str:
        return (
            f"tau_m={float(self.tau[0].mean()):g}, tau_s={float(self.tau[1].mean()):g}, "
            f"threshold={self.threshold:g}, inhibition={self.inhibition:g}, "
            f"learn_decay={isinstance(self.tau, nn.Parameter)}"
        )


#: the neuron modules the cost model and the converter recognize (snnTorch's and cimkit's)
NEURON_TYPES: tuple[type[nn.Module], ...] = (snn.SpikingNeuron, FangNeuron)


def neuron_cost_fn(m: nn.Module) -> str:
    """The op registry's name of ``m``'s per-step update: ``lif_<reset>`` / ``synaptic_<reset>`` (``_adaptive``
    with an adaptive threshold), ``fang``; snnTorch's ``Leaky`` / ``Synaptic`` by their reset mechanism."""
    fn = getattr(m, "cost_fn", None)
    if isinstance(fn, str):
        return fn
    if isinstance(m, snn.Synaptic):
        return f"synaptic_{m.reset_mechanism}"
    if isinstance(m, snn.Leaky):
        return f"lif_{m.reset_mechanism}"
    raise InputError(
        f"{type(m).__name__}: not a neuron the cost model knows; neurons: snntorch.Leaky, "
        "snntorch.Synaptic, cimkit.snn.LIF, Synaptic, FangNeuron"
    )


def on_chip(module: nn.Module, spec, *, seed: int, name: str) -> nn.Module:
    """The converter of neurons (``cimkit.convert``): ``module`` as the chip's neuron unit runs it, i.e. as a
    cimkit neuron (snnTorch's ``Leaky`` / ``Synaptic`` become ``LIF`` / ``Synaptic`` computing the same) with
    the per-neuron mismatch of ``spec.neuron`` drawn from ``seed``."""
    if isinstance(module, (LIF, Synaptic, FangNeuron)):
        new = module
    elif isinstance(module, snn.Synaptic):
        new = Synaptic.from_snntorch(module)
    elif isinstance(module, snn.Leaky):
        new = LIF.from_snntorch(module)
    else:
        raise InputError(
            f"{name}: {type(module).__name__} is not a neuron cimkit maps (snntorch.Leaky, "
            "snntorch.Synaptic, cimkit.snn.LIF, Synaptic, FangNeuron)"
        )
    new.set_variation(spec.neuron.threshold_sigma_rel, spec.neuron.leak_sigma_rel, int(seed))
    if isinstance(new, snn.SpikingNeuron) and not any(n is new for n in snn.SpikingNeuron.instances):
        snn.SpikingNeuron.instances.append(new)  # a deep copy is not listed: snntorch.utils.reset must see it
    return new
