"""Hardware-aware training (HWA): train a model with the chip in its forward pass, so that it survives the chip.

Each minibatch runs forward through ``cimkit.convert`` of the model (DAC and ADC quantization, weight
quantization to ``weight_bits``, programming and read noise, stuck cells, drift at the read time: whatever
the spec describes) and backward through the tiles' ``straight_through`` gradients (those of the ideal
product, zero where the DAC or a frozen weight range clipped). The chip is programmed anew after every
optimizer step with a fresh programming-noise sample (``program_noise="per_step"``), so the weights learn to
work on any chip sample, not on one. What comes back is the plain float model (the original architecture,
trained weights) to deploy onto any chip with ``cimkit.convert(model, spec, seed=s)`` and
``cimkit.calibrate``.

Per epoch ``e`` the trainer

1. builds the epoch's chip: ``cimkit.convert`` of the current weights onto the spec with its noise scaled by
   the schedule's ``noise_scale[e]`` (``noise_scaled_spec``), programmed with the seed
   ``step_seed(seed, e, -2)`` (so each epoch also sees other stuck cells), and shares the model's own
   ``nn.Parameter`` objects with it, so that one optimizer lives across epochs;
2. calibrates its DAC and ADC ranges (``cimkit.calibrate``) on ``calibration_samples`` training inputs drawn
   with the seed ``step_seed(seed, e, -3)`` (``calibrate_every_epoch=False``: only the first epoch's chip is
   calibrated, later ones inherit its ranges);
3. runs its minibatches (``cimkit.train.run_epochs``: checkpoint, resume, progress bar), each a seeded
   batch (``batch_indices``) with seeded dropout (``step_seed(seed, e, index)``), and after each optimizer step
   clips the float weights (``weight_clip_sigma``, and to the chip's frozen range with ``weight_range="fixed"``).

The noise schedule scales, per epoch (``noise_scaled_spec``): the programming noise
(``device.programming_noise_frac`` and every coefficient of ``device.programming_noise_poly``) and, with
``scale_read_noise``, the read noise where ``device.read_noise_frac`` is a linear scale of its std (the
``proportional`` and ``additive`` models). PCM's 1/f read noise (``read_noise_model: pcm``) keeps its own
level: its ``read_noise_frac`` is a cap, not a scale. Stuck cells, drift and the converters are never scaled.
The default ramp goes from the chip's own noise (``noise_start`` 1x) to ``noise_end`` 1.5x, a margin: in
``benchmarks/bench_hwa.py`` it did as well as a 0.5x -> 1x ramp on most chips and better on noisy RRAM (a
ramp from below 1x lets a model first fit the data on a mild chip, then harden).

Every random effect is seeded from ``seed``: the same seed gives the same weights bit for bit, and a run
resumed from its checkpoint gives the weights of an uninterrupted one.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import InputError, short_repr
from ..sim import calibrate, cim_layers, configure, convert
from ..spec import HardwareSpec
from ..spec.model import stored_content
from .loop import (
    Record,
    batch_indices,
    check_count,
    check_positive,
    fingerprint,
    run_epochs,
    step_seed,
    steps_per_epoch,
)

#: named noise schedules (a sequence of per-epoch scales is also accepted)
NOISE_SCHEDULES = ("constant", "linear", "cosine")
#: optimizers ``HardwareAwareTrainer`` builds
OPTIMIZERS = ("adam", "sgd")
#: the tiles' backward passes it can train with
BACKWARDS = ("straight_through", "chip")
#: ``weight_range`` settings of the chip's layers
WEIGHT_RANGES = ("dynamic", "fixed")
#: read-noise models whose std is linear in ``device.read_noise_frac`` (the ones a noise scale scales)
LINEAR_READ_NOISE = ("proportional", "additive")

_WHAT = "HardwareAwareTrainer"
#: a tile's calibrated ranges (what ``calibrate`` sets)
_RANGES = ("input_range", "input_signed", "adc_full_scale")


def noise_scaled_spec(spec: HardwareSpec, scale: float, *, read_noise: bool = True) -> HardwareSpec:
    """``spec`` with its noise multiplied by ``scale`` (>= 0): ``device.programming_noise_frac``, every
    coefficient of ``device.programming_noise_poly`` (the std polynomial scales as a whole) and, with
    ``read_noise``, ``device.read_noise_frac`` when the read-noise model is linear in it (``proportional``,
    ``additive``; PCM's 1/f model and plug-ins keep theirs). Everything else (quantization, stuck cells,
    drift, converters) is kept."""
    scale = check_positive("noise_scaled_spec", "scale", scale, zero=True, what="a multiple of the spec's noise")
    d = spec.device
    changes: dict[str, Any] = {"device.programming_noise_frac": d.programming_noise_frac * scale}
    if d.programming_noise_poly is not None:
        changes["device.programming_noise_poly"] = [c * scale for c in d.programming_noise_poly]
    if read_noise and d.read_noise_model in LINEAR_READ_NOISE:
        changes["device.read_noise_frac"] = d.read_noise_frac * scale
    return spec.replace(**changes)


def schedule_scales(schedule: str | Sequence[float], epochs: int, start: float, end: float) -> list[float]:
    """The noise scale of each of ``epochs`` epochs: ``constant`` (``end`` throughout), ``linear`` (from
    ``start`` at the first epoch to ``end`` at the last), ``cosine`` (the same ends, a half-cosine between:
    slow at both ends), or the given sequence (one scale >= 0 per epoch)."""
    if isinstance(schedule, str):
        if schedule not in NOISE_SCHEDULES:
            raise InputError(
                f"{_WHAT}: noise_schedule = {schedule!r} is not allowed; one of "
                f"{', '.join(NOISE_SCHEDULES)}, or a sequence of one noise scale (>= 0) per epoch"
            )
        if schedule == "constant" or epochs == 1:
            return [float(end)] * epochs
        ramp = [e / (epochs - 1) for e in range(epochs)]
        if schedule == "cosine":
            ramp = [(1 - math.cos(math.pi * r)) / 2 for r in ramp]
        return [float(start) + (float(end) - float(start)) * r for r in ramp]
    if isinstance(schedule, (np.ndarray, torch.Tensor)):
        scales = schedule.tolist() if schedule.ndim == 1 else None
    elif isinstance(schedule, Sequence) and not isinstance(schedule, bytes):
        scales = [
            v.item() if isinstance(v, np.generic) or (isinstance(v, torch.Tensor) and v.numel() == 1) else v
            for v in schedule
        ]
    else:
        scales = None
    if scales is None:
        raise InputError(
            f"{_WHAT}: noise_schedule = {short_repr(schedule)} is not allowed; one of "
            f"{', '.join(NOISE_SCHEDULES)}, or a sequence of one noise scale (>= 0) per epoch"
        )
    if len(scales) != epochs:
        raise InputError(
            f"{_WHAT}: noise_schedule has {len(scales)} scale(s) for {epochs} epoch(s); give one per epoch"
        )
    return [
        check_positive(_WHAT, f"noise_schedule[{i}]", v, zero=True, what="a multiple of the spec's noise")
        for i, v in enumerate(scales)
    ]


def _as_tensor(name: str, value, *, floating: bool) -> torch.Tensor:
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor) or value.is_complex() or value.dim() == 0:
        raise InputError(
            f"{_WHAT}.fit: {name} = {short_repr(value)} is not allowed; a real tensor or numpy array "
            "with one sample per row"
        )
    if floating:
        if not value.is_floating_point():
            value = value.float()
        elif value.dtype == torch.float64:
            value = value.float()
        if not bool(torch.isfinite(value).all()):
            raise InputError(f"{_WHAT}.fit: {name} has non-finite values (NaN or inf)")
    return value


class HardwareAwareTrainer:
    """Hardware-aware training on the chip ``spec`` describes (see the module docstring), used like an
    estimator: ``model = HardwareAwareTrainer(spec, epochs=5).fit(model, x, y)``; ``history_`` holds the
    records of the last fit (each step's ``loss`` and ``noise_scale``; at each epoch's end, with
    ``end_epoch: 1``, the epoch's ``noise_scale``, mean ``loss`` and, with ``validation``, the chip's
    ``val_accuracy``).

    ``spec``: a ``HardwareSpec`` or a preset name. ``epochs``: passes over the data; ``lr``: learning rate;
    ``batch_size``: samples per step; ``optimizer``: ``adam`` or ``sgd`` (with ``momentum``);
    ``weight_decay``: L2 decay of the optimizer. ``lr_schedule``: ``constant`` or ``cosine`` (per epoch, down
    to 0 after the last).
    ``noise_schedule``: ``constant`` (``noise_end`` throughout), ``linear`` or ``cosine`` (from
    ``noise_start`` at the first epoch to ``noise_end`` at the last), or one scale per epoch; a scale
    multiplies the spec's noise as ``noise_scaled_spec`` says (with ``scale_read_noise``, read noise too).
    ``calibrate_every_epoch``: recalibrate the DAC and ADC ranges on each epoch's chip (else only the first,
    whose ranges the later chips keep); ``calibration_samples``: the training inputs it sees (seeded).
    ``weight_clip_sigma``: after each step, clip each weight to ``weight_clip_sigma`` standard deviations of
    its output channel (``weight_scale: per_channel``) or of its tensor (``per_tensor``): outliers set the
    programmed range, so clipping them puts the other weights on more of the conductance window, above the
    noise (None: no clipping). ``weight_range``: the chip layers' ``weight_range`` (``dynamic``: the range
    follows the weights at each programming; ``fixed``: frozen at each epoch's first programming, weights
    beyond it clip on the chip and in the float model). ``backward``: the tiles' backward pass
    (``straight_through``, or ``chip``: input gradients read through the arrays, much slower).
    ``t_inference_s``: seconds after programming at which the training chips are read (drift; default the
    spec's ``device.drift_t0_s``). ``loss``: ``loss(outputs, targets)`` (default cross entropy on class
    indices). ``validation``: ``(x, y)`` whose accuracy on each epoch's chip goes into the history
    (classification). ``seed``: every random effect. ``checkpoint_every``: steps between checkpoints.
    """

    def __init__(
        self,
        spec: HardwareSpec | str,
        *,
        epochs: int = 5,
        lr: float = 1e-3,
        batch_size: int = 64,
        optimizer: str = "adam",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        noise_schedule: str | Sequence[float] = "linear",
        noise_start: float = 1.0,
        noise_end: float = 1.5,
        scale_read_noise: bool = True,
        calibrate_every_epoch: bool = True,
        calibration_samples: int = 256,
        weight_clip_sigma: float | None = None,
        weight_range: str = "dynamic",
        backward: str = "straight_through",
        t_inference_s: float | None = None,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        validation: tuple[Any, Any] | None = None,
        seed: int = 0,
        checkpoint_every: int = 100,
    ) -> None:
        if isinstance(spec, str):
            spec = HardwareSpec.preset(spec)
        if not isinstance(spec, HardwareSpec):
            raise InputError(f"{_WHAT}: spec = {short_repr(spec)} is not allowed; a HardwareSpec or a preset name")
        self.spec = spec
        self.epochs = check_count(_WHAT, "epochs", epochs, 1, "passes over the data")
        self.lr = check_positive(_WHAT, "lr", lr, what="the learning rate")
        self.batch_size = check_count(_WHAT, "batch_size", batch_size, 1, "samples per step")
        self.optimizer = self._choice("optimizer", optimizer, OPTIMIZERS)
        self.momentum = check_positive(_WHAT, "momentum", momentum, zero=True, what="SGD momentum")
        if self.momentum >= 1:
            raise InputError(f"{_WHAT}: momentum = {momentum!r} is not allowed; a number in [0, 1)")
        self.weight_decay = check_positive(_WHAT, "weight_decay", weight_decay, zero=True, what="L2 decay")
        self.lr_schedule = self._choice("lr_schedule", lr_schedule, ("constant", "cosine"))
        self.noise_start = check_positive(
            _WHAT, "noise_start", noise_start, zero=True, what="noise scale at the first epoch"
        )
        self.noise_end = check_positive(_WHAT, "noise_end", noise_end, zero=True, what="noise scale at the last epoch")
        self.noise_schedule = noise_schedule
        self.noise_scales = schedule_scales(noise_schedule, self.epochs, self.noise_start, self.noise_end)
        self.scale_read_noise = self._flag("scale_read_noise", scale_read_noise)
        self.calibrate_every_epoch = self._flag("calibrate_every_epoch", calibrate_every_epoch)
        self.calibration_samples = check_count(
            _WHAT, "calibration_samples", calibration_samples, 1, "training inputs each calibration sees"
        )
        self.weight_clip_sigma = (
            None
            if weight_clip_sigma is None
            else check_positive(
                _WHAT, "weight_clip_sigma", weight_clip_sigma, what="standard deviations, or None for no clipping"
            )
        )
        self.weight_range = self._choice("weight_range", weight_range, WEIGHT_RANGES)
        self.backward = self._choice("backward", backward, BACKWARDS)
        self.t_inference_s = (
            None
            if t_inference_s is None
            else check_positive(_WHAT, "t_inference_s", t_inference_s, what="seconds after programming, or None")
        )
        if loss is not None and not callable(loss):
            raise InputError(
                f"{_WHAT}: loss = {short_repr(loss)} is not allowed; a callable loss(outputs, targets) "
                "or None (cross entropy)"
            )
        self.loss = loss
        if validation is not None and not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            raise InputError(f"{_WHAT}: validation = {short_repr(validation)} is not allowed; an (x, y) pair or None")
        self.validation = validation
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise InputError(f"{_WHAT}: seed = {short_repr(seed)} is not allowed; an integer")
        self.seed: int = int(seed)
        self.checkpoint_every: int = check_count(
            _WHAT, "checkpoint_every", checkpoint_every, 1, "steps between checkpoints"
        )
        self.history_: list[Record] = []

    @staticmethod
    def _choice(name: str, value, allowed: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise InputError(f"{_WHAT}: {name} = {short_repr(value)} is not allowed; one of {', '.join(allowed)}")
        return value

    @staticmethod
    def _flag(name: str, value) -> bool:
        if not isinstance(value, bool):
            raise InputError(f"{_WHAT}: {name} = {short_repr(value)} is not allowed; True or False")
        return value

    def epoch_spec(self, epoch: int) -> HardwareSpec:
        """The spec of epoch ``epoch``'s training chip: the spec with its noise scaled by the schedule."""
        return noise_scaled_spec(self.spec, self.noise_scales[epoch], read_noise=self.scale_read_noise)

    def settings(self) -> dict:
        """What must match for a checkpoint to be resumed (everything that changes the numbers)."""
        return {
            "spec": stored_content(self.spec),
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "lr_schedule": self.lr_schedule,
            "noise_scales": self.noise_scales,
            "scale_read_noise": self.scale_read_noise,
            "calibrate_every_epoch": self.calibrate_every_epoch,
            "calibration_samples": self.calibration_samples,
            "weight_clip_sigma": self.weight_clip_sigma,
            "weight_range": self.weight_range,
            "backward": self.backward,
            "t_inference_s": self.t_inference_s,
            "loss": None if self.loss is None else getattr(self.loss, "__qualname__", type(self.loss).__name__),
            "seed": self.seed,
        }

    # ---- fit ---------------------------------------------------------------------------------
    def fit(
        self,
        model: nn.Module,
        x,
        y,
        *,
        checkpoint: str | None = None,
        progress: bool | Callable[[int, int], Any] = False,
    ) -> nn.Module:
        """Train a copy of ``model`` on ``(x, y)`` through the chip and return it as a plain float model (the
        original is untouched). ``x``: inputs, one sample per row (tensor or numpy array); ``y``: targets
        (class indices for the default loss). ``checkpoint``: a file to save to and, when it exists, resume
        from (made with the same settings, model and data); ``progress``: True for a bar, or
        ``progress(done_steps, total_steps)``."""
        if not isinstance(model, nn.Module):
            raise InputError(f"{_WHAT}.fit: model = {short_repr(model)} is not allowed; a torch.nn.Module")
        x = _as_tensor("x", x, floating=True)
        y = _as_tensor("y", y, floating=False)
        if len(x) != len(y):
            raise InputError(f"{_WHAT}.fit: x has {len(x)} samples and y has {len(y)}; give one target per sample")
        if len(x) == 0:
            raise InputError(f"{_WHAT}.fit: x has no samples")
        if self.loss is None and (y.is_floating_point() or y.dim() != 1):
            raise InputError(
                f"{_WHAT}.fit: y has dtype {y.dtype} and shape {tuple(y.shape)}; the default loss "
                "(cross entropy) takes one integer class index per sample (or pass loss=)"
            )
        if self.loss is None and bool((y < 0).any()):
            raise InputError(
                f"{_WHAT}.fit: y has negative class indices (min {int(y.min())}); cross entropy takes "
                "indices 0 .. classes-1"
            )
        validation = None
        if self.validation is not None:
            vx, vy = (
                _as_tensor("validation x", self.validation[0], floating=True),
                _as_tensor("validation y", self.validation[1], floating=False),
            )
            if len(vx) != len(vy) or len(vx) == 0:
                raise InputError(
                    f"{_WHAT}.fit: validation has {len(vx)} inputs and {len(vy)} targets; give one "
                    "target per input, at least one"
                )
            validation = (vx, vy)
        run = _Run(self, model, x, y, validation)
        self.history_ = run_epochs(
            run.step,
            epochs=self.epochs,
            steps_per_epoch=run.steps,
            state=run.state,
            load=run.load,
            settings={
                **self.settings(),
                "model": run.structure,
                "data": fingerprint(x, y),
                "start": fingerprint(*model.state_dict().values()),
            },
            checkpoint=checkpoint,
            checkpoint_every=self.checkpoint_every,
            end_epoch=run.end_epoch,
            progress=progress,
            description="hardware-aware training",
            what=f"{_WHAT}.fit",
        )
        return run.result()


def train_hardware_aware(
    model: nn.Module,
    spec: HardwareSpec | str,
    x,
    y,
    *,
    checkpoint: str | None = None,
    progress: bool | Callable[[int, int], Any] = False,
    **options,
) -> nn.Module:
    """``HardwareAwareTrainer(spec, **options).fit(model, x, y, checkpoint=..., progress=...)``: the trained
    float model."""
    return HardwareAwareTrainer(spec, **options).fit(model, x, y, checkpoint=checkpoint, progress=progress)


class _Run:
    """One fit: the float model whose parameters the optimizer owns, and the chip of the current epoch,
    which holds those same parameter objects."""

    def __init__(
        self,
        trainer: HardwareAwareTrainer,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        validation: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> None:
        self.t = trainer
        self.x, self.y, self.validation = x, y, validation
        self.work = copy.deepcopy(model)
        self.was_training = model.training
        self.params = dict(self.work.named_parameters())
        # every name a parameter goes by: a tied parameter is shared by each of its owners on the chip too
        self.param_names = list(self.work.named_parameters(remove_duplicate=False))
        self.buffer_names = [n for n, _ in self.work.named_buffers()]
        self.structure = {k: list(v.shape) for k, v in self.work.state_dict().items()}
        self.device = next(iter(self.params.values())).device if self.params else torch.device("cpu")
        self.steps = steps_per_epoch(len(x), trainer.batch_size)
        self.chip: nn.Module | None = None
        self.chip_epoch = -1
        self.epoch_loss = [0.0, 0]  # the current epoch's summed step losses and steps (saved: survives a resume)
        self._check_model()
        if trainer.optimizer == "adam":
            self.opt: torch.optim.Optimizer = torch.optim.Adam(
                self.params.values(), lr=trainer.lr, weight_decay=trainer.weight_decay
            )
        else:
            self.opt = torch.optim.SGD(
                self.params.values(), lr=trainer.lr, momentum=trainer.momentum, weight_decay=trainer.weight_decay
            )

    # ---- the chip ----------------------------------------------------------------------------
    def _convert(self, spec: HardwareSpec, seed: int, *, quiet: bool) -> nn.Module:
        with warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore")  # said once, at the check
            return convert(self.work, spec, seed=seed, t_inference_s=self.t.t_inference_s)

    def _check_model(self) -> None:
        """Convert once (with warnings for layers that stay digital): the model must have a layer the chip can
        take, and its converted form must keep each parameter under its name and shape (so that chip and model
        share them)."""
        if not self.params:
            raise InputError(f"{_WHAT}.fit: the model has no parameters to train")
        chip = self._convert(self.t.epoch_spec(0), 0, quiet=False)
        layers = cim_layers(chip)
        if not layers:
            raise InputError(
                f"{_WHAT}.fit: the model has no layer the chip can take (nn.Linear, nn.Conv1d, "
                f"nn.Conv2d, ... see cimkit.register_converter); its summary:\n{chip.cim_summary}"
            )
        chip_params = dict(chip.named_parameters(remove_duplicate=False))
        for name, p in self.param_names:
            if name not in chip_params or chip_params[name].shape != p.shape:
                raise InputError(
                    f"{_WHAT}.fit: the converted model holds the parameter {name!r} under another name "
                    "or shape; hardware-aware training takes models whose crossbar layers keep their "
                    "parameters (nn.Linear, nn.Conv1d, nn.Conv2d)"
                )
        chip_buffers = dict(chip.named_buffers())
        missing = [n for n in self.buffer_names if n not in chip_buffers]
        if missing:
            raise InputError(f"{_WHAT}.fit: the converted model lost the buffer(s) {', '.join(missing)}")

    def _share_parameters(self, chip: nn.Module) -> None:
        """Make ``chip`` hold the model's own parameter objects (one optimizer across epochs' chips; a tied
        parameter in each layer that holds it)."""
        for name, p in self.param_names:
            owner, _, attr = name.rpartition(".")
            setattr(chip.get_submodule(owner) if owner else chip, attr, p)

    def _build_chip(self, epoch: int, *, calibrated: bool) -> nn.Module:
        """Epoch ``epoch``'s chip (also made ``self.chip``): the current weights on the noise-scaled spec,
        programmed with the epoch's seed, the straight-through (or chip) backward and a new programming-noise
        sample per step; calibrated when ``calibrated`` (else the caller loads its state)."""
        self._sync_buffers()
        previous = self.chip
        chip = self._convert(self.t.epoch_spec(epoch), step_seed(self.t.seed, epoch, -2), quiet=True)
        self._share_parameters(chip)
        configure(chip, backward=self.t.backward, program_noise="per_step", weight_range="dynamic")
        if calibrated:
            if self.t.calibrate_every_epoch or previous is None:
                gen = torch.Generator().manual_seed(step_seed(self.t.seed, epoch, -3))
                idx = torch.randperm(len(self.x), generator=gen)[: self.t.calibration_samples]
                calibrate(chip, [self.x[idx].to(self.device)], num_batches=1)
            else:  # the first chip's ranges, carried over (a partial load: the chip rebuilds what depends on them)
                for new, old in zip(cim_layers(chip), cim_layers(previous)):
                    new.tile.load_state_dict({k: getattr(old.tile, k) for k in _RANGES}, strict=False)
        if self.t.weight_range == "fixed":  # frozen at this programming: the epoch's range
            configure(chip, weight_range="fixed")
        chip.train()
        self.chip, self.chip_epoch = chip, epoch
        self.epoch_loss = [0.0, 0]
        for group in self.opt.param_groups:
            group["lr"] = self._lr(epoch)
        return chip

    def _lr(self, epoch: int) -> float:
        if self.t.lr_schedule == "cosine":
            return self.t.lr * (1 + math.cos(math.pi * epoch / self.t.epochs)) / 2
        return self.t.lr

    def _sync_buffers(self) -> None:
        """Copy the chip's buffers (e.g. batch-norm running statistics, digital layers) into the model."""
        if self.chip is None or not self.buffer_names:
            return
        chip_buffers = dict(self.chip.named_buffers())
        with torch.no_grad():
            for name, b in self.work.named_buffers():
                b.copy_(chip_buffers[name])

    def _chip(self) -> nn.Module:
        """The current epoch's chip (built by the epoch's first step, or by ``load``)."""
        assert self.chip is not None, "no chip yet: an epoch's first step builds it"
        return self.chip

    # ---- steps -------------------------------------------------------------------------------
    def step(self, epoch: int, index: int) -> Record:
        chip = self._build_chip(epoch, calibrated=True) if self.chip_epoch != epoch else self._chip()
        idx = batch_indices(len(self.x), self.t.batch_size, self.t.seed, epoch, index)
        xb, yb = self.x[idx].to(self.device), self.y[idx].to(self.device)
        # dropout and the like: seeded per step; the caller's random state is kept
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(step_seed(self.t.seed, epoch, index))
            self.opt.zero_grad(set_to_none=True)
            out = chip(xb)
            loss = self.t.loss(out, yb) if self.t.loss is not None else nn.functional.cross_entropy(out, yb)
            if not bool(torch.isfinite(loss)):
                raise InputError(
                    f"{_WHAT}.fit: the loss became {float(loss)} at epoch {epoch}, step {index}; lower "
                    f"lr (now {self.t.lr}) or check the data"
                )
            loss.backward()
        self.opt.step()
        self._clip()
        value = float(loss.detach())
        self.epoch_loss[0] += value
        self.epoch_loss[1] += 1
        return {"loss": value, "noise_scale": self.t.noise_scales[epoch]}

    def _clip(self) -> None:
        """After a step: weights to ``weight_clip_sigma`` standard deviations (per output channel or per
        tensor, as the spec scales weights) and, with a frozen range, to the range the chip holds."""
        sigma, fixed = self.t.weight_clip_sigma, self.t.weight_range == "fixed"
        if sigma is None and not fixed:
            return
        per_channel = self.t.spec.weight_scale == "per_channel"
        with torch.no_grad():
            for layer in cim_layers(self._chip()):
                w = layer.weight
                rows = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
                if sigma is not None and rows.shape[1] > 1:
                    bound = sigma * rows.std(dim=1, keepdim=True)
                    rows.copy_(torch.maximum(torch.minimum(rows, bound), -bound))
                if fixed:
                    top = (layer.w_scale * layer.coding.max_weight_code).reshape(-1, 1).to(w.device, w.dtype)
                    per_out = w.reshape(top.shape[0], -1)
                    per_out.copy_(torch.maximum(torch.minimum(per_out, top), -top))

    def end_epoch(self, epoch: int) -> Record:
        record: Record = {
            "noise_scale": self.t.noise_scales[epoch],
            "loss": self.epoch_loss[0] / max(self.epoch_loss[1], 1),
        }
        if self.validation is not None:
            vx, vy = self.validation
            chip = self._chip()
            chip.eval()
            with torch.no_grad():
                hits = sum(
                    int((chip(vx[i : i + 500].to(self.device)).argmax(-1).cpu() == vy[i : i + 500]).sum())
                    for i in range(0, len(vy), 500)
                )
            chip.train()
            record["val_accuracy"] = hits / len(vy)
        return record

    # ---- checkpoint --------------------------------------------------------------------------
    def state(self) -> dict:
        self._sync_buffers()
        return {
            "model": self.work.state_dict(),
            "optimizer": self.opt.state_dict(),
            "chip": None if self.chip is None else self.chip.state_dict(),
            "chip_epoch": self.chip_epoch,
            "epoch_loss": list(self.epoch_loss),
        }

    def load(self, state: dict) -> None:
        self.work.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if state["chip"] is not None:
            self._build_chip(int(state["chip_epoch"]), calibrated=False).load_state_dict(state["chip"])
        self.epoch_loss = list(state["epoch_loss"])

    def result(self) -> nn.Module:
        """The trained float model: the original architecture with the trained weights and buffers."""
        self._sync_buffers()
        self.work.train(self.was_training)
        return self.work
