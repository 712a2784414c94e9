"""In-situ training on the crossbars: each step reads the programmed arrays forward, sends the error back,
and writes the outer-product update into the cells with a device's write pulses.

Two learning rules share the chip:

- ``"bp"`` (backpropagation): each layer's error is a transposed read of the next layer's arrays (DAC, read
  noise and ADC included: the layers' ``chip`` backward), so the error crosses the layers one after another;
- ``"dfa"`` (direct feedback alignment, Nøkland 2016): the output error ``e`` reaches every hidden block
  through its own fixed random matrix ``B_l``, itself programmed on arrays and read forward (``B_l e``), so
  all layers can update at once. ``B_l e`` stands for the gradient at the block's output; the block's own
  digital operations (activation, pooling) turn it into the error at its crossbar layer.

Each layer's weight change ``-lr * dL/dW`` (the outer product of its error and the input its DAC saw) goes to
``CrossbarTile.apply_delta``: with an ``UpdateDevice`` (``cimkit.spec.update``: NeuroSim's nonlinear curves,
finite levels, cycle-to-cycle noise) as whole pulses, counted for the cost model; ``device=None`` moves the
cells exactly (an ideal device). Biases and any other parameter off the arrays (a norm's affine weights) live in
the digital periphery and take plain SGD steps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..errors import InputError, short_repr
from ..sim.update import WriteCounts
from ..spec import HardwareSpec
from ..spec.model import stored_content
from ..spec.update import UpdateDevice, update_device
from .loop import batch_indices, check_count, check_positive, fingerprint, run_epochs, step_seed, steps_per_epoch

RULES = ("bp", "dfa")
LOSSES = ("cross_entropy", "mse")
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


def mlp(sizes: list[int] | tuple[int, ...], activation: str = "tanh", *, seed: int = 0) -> nn.Sequential:
    """A multilayer perceptron ``sizes[0] -> ... -> sizes[-1]`` with ``activation`` between layers (none after
    the last), its weights drawn from ``seed``."""
    if activation not in ACTIVATIONS:
        raise InputError(f"mlp: activation {short_repr(activation)} is unknown; choose from {', '.join(ACTIVATIONS)}")
    if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise InputError(f"mlp: sizes = {short_repr(sizes)}; give two or more positive layer widths")
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG is left as it was
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        return nn.Sequential(*layers)


def small_cnn(side: int = 8, classes: int = 10, activation: str = "tanh", *, seed: int = 0) -> nn.Sequential:
    """Two 3x3 convolutions (8 and 16 channels, each followed by ``activation`` and 2x2 max pooling) and a
    linear classifier, for ``side`` x ``side`` single-channel images; weights drawn from ``seed``."""
    if activation not in ACTIVATIONS:
        raise InputError(
            f"small_cnn: activation {short_repr(activation)} is unknown; choose from {', '.join(ACTIVATIONS)}"
        )
    act = ACTIVATIONS[activation]
    after = (side // 2) // 2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            act(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            act(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * after * after, classes),
        )


def _blocks(chip: nn.Module, layers: list, what: str) -> list[nn.Sequential]:
    """The DFA blocks of a converted Sequential: each crossbar layer with the digital modules after it."""
    if not isinstance(chip, nn.Sequential):
        raise InputError(
            f"{what}: rule 'dfa' needs an nn.Sequential model (the output error reaches the output "
            f"of each layer's block through its feedback matrix); got a {type(chip).__name__}"
        )
    ids = {id(layer) for layer in layers}
    mods = list(chip)
    if any(id(m) not in ids and any(id(s) in ids for s in m.modules()) for m in mods):
        raise InputError(
            f"{what}: rule 'dfa' needs the crossbar layers at the top level of the Sequential; nest "
            "no Linear or Conv inside a submodule"
        )
    if id(mods[0]) not in ids:
        raise InputError(
            f"{what}: rule 'dfa' needs the Sequential to start with a Linear or Conv layer; it "
            f"starts with {type(mods[0]).__name__}"
        )
    blocks: list[list[nn.Module]] = []
    for m in mods:
        if id(m) in ids:
            blocks.append([m])
        else:
            blocks[-1].append(m)
    return [nn.Sequential(*b) for b in blocks]


class InSituTrainer:
    """Train a network on the crossbars it runs on (module docstring).

    ``spec``: the chip (a HardwareSpec or preset name); its cells must hold one weight each (analog
    weights, ``weight_bits: null``, or ``weight_bits`` within ``device.bits_per_cell``). ``rule``: ``"bp"`` or
    ``"dfa"``. ``device``: an ``UpdateDevice`` or the name of a preset (``cimkit.spec.update.UPDATE_DEVICES``)
    whose conductance window replaces the spec's; None for an ideal device. ``lr``: the SGD step. ``epochs``,
    ``batch_size``: passes over the data and samples per update (1: online learning, as NeuroSim's MLP).
    ``weight_max``: the weight each layer's largest conductance stands for (weight units; the range is
    ``[-weight_max, weight_max]``; None: twice each layer's largest initial weight). ``loss``:
    ``"cross_entropy"`` on the logits or ``"mse"`` against one-hot targets. ``feedback_scale``: DFA's random
    matrices are uniform in ``[-1, 1] * feedback_scale / sqrt(classes)``. ``calibration_samples``: training
    samples the input and ADC ranges are calibrated on, before training and after each epoch. ``seed``:
    the chip's and the feedback matrices' randomness, the batch order and the write noise.

    After ``fit``: ``chip_`` (the trained converted model), ``feedback_`` (DFA's feedback layers),
    ``history_`` (one record per step, and per epoch its test accuracy when ``fit`` got test data), and
    ``writes_`` (per crossbar layer, the ``WriteCounts`` of every update, summed).
    """

    def __init__(
        self,
        spec: HardwareSpec | str,
        *,
        rule: str = "bp",
        device: str | UpdateDevice | None = None,
        lr: float = 0.05,
        epochs: int = 1,
        batch_size: int = 1,
        weight_max: float | None = None,
        loss: str = "cross_entropy",
        feedback_scale: float = 1.0,
        calibration_samples: int = 256,
        seed: int = 0,
    ) -> None:
        what = "InSituTrainer"
        if isinstance(spec, str):
            spec = HardwareSpec.preset(spec)
        if not isinstance(spec, HardwareSpec):
            raise InputError(f"{what}: spec must be a HardwareSpec or a preset name, got {type(spec).__name__}")
        if rule not in RULES:
            raise InputError(f"{what}: rule {short_repr(rule)} is unknown; choose from {', '.join(RULES)}")
        if loss not in LOSSES:
            raise InputError(f"{what}: loss {short_repr(loss)} is unknown; choose from {', '.join(LOSSES)}")
        bits = spec.periphery.input_bits
        if bits is not None and bits < 2:
            raise InputError(
                f"{what}: spec '{spec.name}' has periphery.input_bits = {bits}; the errors a training "
                "step reads through the arrays (transposed reads, DFA's feedback reads) are signed and "
                "need input_bits >= 2"
            )
        self.device = None if device is None else update_device(device)
        self.spec = spec if self.device is None else spec.replace(**self.device.hardware_fields())
        self.rule, self.loss = rule, loss
        self.lr = check_positive(what, "lr", lr, what="the SGD step")
        self.epochs = check_count(what, "epochs", epochs)
        self.batch_size = check_count(what, "batch_size", batch_size)
        self.weight_max = None if weight_max is None else check_positive(what, "weight_max", weight_max)
        self.feedback_scale = check_positive(what, "feedback_scale", feedback_scale)
        self.calibration_samples = check_count(what, "calibration_samples", calibration_samples)
        self.seed = check_count(what, "seed", seed, 0)

    # ---- setup -----------------------------------------------------------------------------------
    def _settings(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
        return {
            "spec": stored_content(self.spec),
            "rule": self.rule,
            "lr": self.lr,
            "device": None if self.device is None else self.device.model_dump(mode="json"),
            "batch_size": self.batch_size,
            "weight_max": self.weight_max,
            "loss": self.loss,
            "feedback_scale": self.feedback_scale,
            "calibration_samples": self.calibration_samples,
            "seed": self.seed,
            "data": fingerprint(x, y),
            "model": {k: list(v.shape) for k, v in model.state_dict().items()},
            "start": fingerprint(*model.state_dict().values()),
        }

    def _build(self, model: nn.Module, x: torch.Tensor, classes: int, what: str) -> None:
        from ..sim import configure, convert
        from ..sim.convert import cim_layers
        from ..sim.layers import CIMLinear, layer_seed

        chip = convert(model, self.spec, seed=self.seed)
        layers = cim_layers(chip)
        if not layers:
            raise InputError(f"{what}: the model has no Linear or Conv layer to put on crossbars")
        for layer in layers:
            m = layer.mapping
            if m.slices != 1 or m.groups != 1:
                raise InputError(
                    f"{what}: layer {layer.layer_name!r} spreads each weight over {m.slices} cells and {m.groups} "
                    f"group(s); in-situ updates need one cell per weight and one group: set weight_bits: null "
                    f"(analog) or weight_bits <= device.bits_per_cell (now weight_bits {self.spec.weight_bits}, "
                    f"bits_per_cell {self.spec.device.bits_per_cell})"
                )
        configure(chip, backward="chip", program_noise="fixed", weight_range="fixed")
        for layer in layers:
            top = float(layer.weight.detach().abs().max())
            w_max = self.weight_max if self.weight_max is not None else 2.0 * top
            if top > w_max:
                raise InputError(
                    f"{what}: layer {layer.layer_name!r} has initial weights up to {top:.4g}, beyond "
                    f"weight_max = {w_max:.4g}; raise weight_max or start from smaller weights"
                )
            layer.tile.w_scale.fill_(w_max / layer.coding.max_weight_code)
            layer._program(next_sample=False)
            # the tile takes a mode name or an UpdateDevice (sim/tile.py annotates it as str only)
            layer.tile.update_model = "ideal" if self.device is None else self.device  # type: ignore[assignment]
            self._sync(layer)
        self.blocks_ = None
        self.feedback_ = []
        if self.rule == "dfa":
            self.blocks_ = _blocks(chip, layers, what)
            # the block output shapes, from the float model (the chip's read-noise stream is not drawn)
            h, shapes, start = x[:1], [], 0
            if not isinstance(model, nn.Sequential):  # a converter plug-in may have made one of another model
                raise InputError(f"{what}: rule 'dfa' needs an nn.Sequential model; got a {type(model).__name__}")
            originals = list(model)
            with torch.no_grad():
                for block in self.blocks_:
                    h = nn.Sequential(*originals[start : start + len(block)])(h)
                    start += len(block)
                    shapes.append(tuple(h.shape[1:]))
            out, shapes = h, shapes[:-1]
            if out.dim() != 2 or out.shape[1] != classes:
                raise InputError(
                    f"{what}: rule 'dfa' needs a defined output error: the model's output per sample "
                    f"must be a vector of {classes} class scores, got shape {tuple(out.shape[1:])}"
                )
            gen = torch.Generator().manual_seed(self.seed * 7 + 3)
            for i, shape in enumerate(shapes):
                size = math.prod(shape)
                b = (torch.rand(size, classes, generator=gen) * 2 - 1) * self.feedback_scale / math.sqrt(classes)
                name = f"feedback.{i}"
                self.feedback_.append(
                    CIMLinear.from_weight(b, None, self.spec, seed=layer_seed(self.seed, name), name=name)
                )
            self.feedback_shapes_ = shapes
        self.chip_, self.layers_ = chip, layers
        on_arrays = {id(layer.weight) for layer in layers}
        #: parameters of the digital periphery (biases, norms' affine weights): plain SGD steps
        self.digital_params_ = [p for p in chip.parameters() if id(p) not in on_arrays and p.requires_grad]
        self._random_modules = any(isinstance(m, nn.modules.dropout._DropoutNd) for m in chip.modules())

    def _calibrate(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Input and ADC ranges from the first ``calibration_samples``: the network's on its inputs, DFA's
        feedback arrays' on the output errors of those samples, at the scale of a step's (a mean over
        ``batch_size``)."""
        from ..sim import calibrate

        xc, yc = x[: self.calibration_samples], y[: self.calibration_samples]
        self._calibration = (xc, yc)
        calibrate(self.chip_, [xc])
        if self.feedback_:
            self.chip_.eval()
            with torch.enable_grad():
                out = self.chip_(xc).detach().requires_grad_(True)
                loss = self._loss(out, yc) * len(yc) / self.batch_size
                (e,) = torch.autograd.grad(loss, out)
            for fb in self.feedback_:
                calibrate(fb, [e])

    @staticmethod
    def _sync(layer) -> None:
        """Make the layer's float weight what its cells now hold, so that it is not reprogrammed."""
        with torch.no_grad():
            held = layer.tile.get_weights()[0].reshape(layer.weight.shape)
            layer.weight.copy_(held)
            layer.programmed_weight.copy_(held)

    def set_feedback(self, index: int, matrix: torch.Tensor) -> None:
        """Program DFA's feedback matrix of hidden block ``index`` (``(block output size, classes)``; e.g. the
        transpose of the next layer's weight, which makes DFA of one hidden layer equal BP), and recalibrate
        the ranges on the calibration samples of ``prepare``."""
        if not self.feedback_:
            raise InputError("set_feedback: no feedback matrices; fit with rule 'dfa' first")
        if not 0 <= index < len(self.feedback_):
            raise InputError(
                f"set_feedback: index {index} is out of range; there are {len(self.feedback_)} hidden blocks"
            )
        layer = self.feedback_[index]
        expected = (layer.out_features, layer.in_features)
        if not isinstance(matrix, torch.Tensor) or tuple(matrix.shape) != expected:
            raise InputError(
                f"set_feedback: block {index} needs a matrix of shape {expected}, got "
                f"{tuple(matrix.shape) if isinstance(matrix, torch.Tensor) else type(matrix).__name__}"
            )
        with torch.no_grad():
            layer.weight.copy_(matrix)
        self._calibrate(*self._calibration)  # the feedback arrays' ranges follow their new matrices

    # ---- one step ----------------------------------------------------------------------------------
    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss == "cross_entropy":
            return nn.functional.cross_entropy(out, y)
        target = nn.functional.one_hot(y, out.shape[1]).to(out.dtype)
        return 0.5 * ((out - target) ** 2).sum(1).mean()

    def _gradients(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Fill each crossbar layer's ``weight.grad`` / ``bias.grad`` by the rule; returns the loss."""
        for p in self.chip_.parameters():
            p.grad = None
        self.chip_.train()
        if self.rule == "bp":
            loss = self._loss(self.chip_(xb), yb)
            loss.backward()
            return loss.detach()
        blocks = self.blocks_
        assert blocks is not None  # rule "dfa": built by _build
        outs = []
        h = xb
        for block in blocks[:-1]:
            h = block(h.detach())
            outs.append(h)
        out = blocks[-1](h.detach())
        loss = self._loss(out, yb)
        (e,) = torch.autograd.grad(loss, out, retain_graph=True)
        out.backward(e)
        with torch.no_grad():
            signals = [fb(e).reshape(h.shape) for fb, h in zip(self.feedback_, outs)]
        for h, s in zip(outs, signals):
            h.backward(s)
        return loss.detach()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One update on the batch ``x``, ``y`` (after ``prepare`` or ``fit``): forward reads, the rule's
        errors, the pulses. Returns ``{"loss": ...}`` (the loss before the update)."""
        if not hasattr(self, "chip_"):
            raise InputError("InSituTrainer.step: call prepare (or fit) first")
        loss = self._gradients(x, y)
        for i, layer in enumerate(self.layers_):
            grad = layer.weight.grad
            if grad is not None:
                counts = layer.tile.apply_delta(-self.lr * grad.reshape(layer.mapping.out_features, -1))
                if counts is not None:
                    self.writes_[i] += counts
                self._sync(layer)
        with torch.no_grad():
            for p in self.digital_params_:
                if p.grad is not None:
                    p.sub_(self.lr * p.grad)
        return {"loss": float(loss)}

    # ---- fitting -------------------------------------------------------------------------------------
    def prepare(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> "InSituTrainer":
        """Program ``model`` (left untouched) onto a fresh chip (``chip_``) and calibrate its ranges on the first
        ``calibration_samples`` of ``x``, ready for ``step``; ``fit`` starts with this. Returns self."""
        self._prepare(model, x, y, "InSituTrainer.prepare")
        return self

    def _prepare(self, model: nn.Module, x, y, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``prepare``, naming ``what`` in its errors; returns the checked data."""
        if not isinstance(model, nn.Module):
            raise InputError(f"{what}: model must be a torch.nn.Module, got {type(model).__name__}")
        x, y = _data(x, y, what, "x", "y")
        self.classes_ = int(y.max()) + 1
        self.input_shape_ = tuple(x.shape[1:])
        self._build(model, x, self.classes_, what)
        self._calibrate(x, y)
        self.writes_ = [WriteCounts() for _ in self.layers_]
        return x, y

    def fit(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        x_test: torch.Tensor | None = None,
        y_test: torch.Tensor | None = None,
        checkpoint: str | Path | None = None,
        checkpoint_every: int = 500,
        progress: bool | Callable[[int, int], Any] = False,
    ) -> "InSituTrainer":
        """Convert ``model`` (left untouched) onto the chip and train it there on ``x`` (samples first) and
        integer labels ``y``; with ``x_test``/``y_test``, each epoch's test accuracy on the chip is recorded.
        ``checkpoint``: a file to save to and resume from (``cimkit.train.loop.run_epochs``). Returns self."""
        what = "InSituTrainer.fit"
        if (x_test is None) != (y_test is None):
            raise InputError(f"{what}: give x_test and y_test together, or neither")
        if x_test is not None:
            x_test, y_test = _data(x_test, y_test, what, "x_test", "y_test")
        x, y = self._prepare(model, x, y, what)
        n = len(y)

        def step(epoch: int, index: int) -> dict[str, float]:
            idx = batch_indices(n, self.batch_size, self.seed, epoch, index)
            if self._random_modules:  # dropout draws from the global RNG: seed it per step, as a resume would
                torch.manual_seed(step_seed(self.seed, epoch, index))
            return self.step(x[idx], y[idx])

        def end_epoch(epoch: int) -> dict[str, float] | None:
            self._calibrate(x, y)
            if x_test is None or y_test is None:  # given together
                return None
            return {"test_accuracy": self.score(x_test, y_test)}

        def state() -> dict:
            return {
                "chip": self.chip_.state_dict(),
                "feedback": [f.state_dict() for f in self.feedback_],
                "writes": [vars(w).copy() for w in self.writes_],
            }

        def load(saved: dict) -> None:
            self.chip_.load_state_dict(saved["chip"])
            for f, s in zip(self.feedback_, saved["feedback"]):
                f.load_state_dict(s)
            self.writes_ = [WriteCounts(**w) for w in saved["writes"]]
            for layer in self.layers_:
                self._sync(layer)

        self.history_ = run_epochs(
            step,
            epochs=self.epochs,
            steps_per_epoch=steps_per_epoch(n, self.batch_size),
            state=state,
            load=load,
            settings=self._settings(model, x, y),
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            end_epoch=end_epoch,
            progress=progress,
            description=f"in-situ {self.rule}",
            what=what,
        )
        return self

    def step_cost(self, model: nn.Module):
        """The modelled time and energy of one of this run's steps (``cimkit.train.cost.StepCost``): the cost
        model's reads of ``model`` (the network ``fit`` got) and this run's writes per step, on average."""
        from ..workload import Workload
        from .cost import step_cost

        if not hasattr(self, "history_"):
            raise InputError("InSituTrainer.step_cost: call fit first")
        steps = max(1, sum(1 for h in self.history_ if "loss" in h))
        per_step = {
            layer.layer_name: WriteCounts(**{k: v / steps for k, v in vars(w).items()})
            for layer, w in zip(self.layers_, self.writes_)
        }
        wl = Workload.from_torch(model, input_shape=(1, *self.input_shape_))
        sizes = [math.prod(s) for s in getattr(self, "feedback_shapes_", [])]
        return step_cost(
            wl,
            self.spec,
            self.rule,
            batch=self.batch_size,
            writes=per_step,
            device=self.device,
            feedback_sizes=sizes,
            classes=self.classes_,
        )

    def predict(self, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
        """Class indices the trained chip predicts for ``x``."""
        if not hasattr(self, "chip_"):
            raise InputError("InSituTrainer.predict: call fit first")
        self.chip_.eval()
        with torch.no_grad():
            return torch.cat([self.chip_(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])

    def score(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy of the trained chip on ``x``, ``y`` (a fraction)."""
        return float((self.predict(x) == y).float().mean())


def _data(x, y, what: str, xname: str, yname: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise InputError(
            f"{what}: {xname} must be a float tensor with samples first, got "
            f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}"
        )
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{what}: {xname} has non-finite values")
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.dtype not in (torch.int64, torch.int32):
        raise InputError(f"{what}: {yname} must be a 1-d integer tensor of class indices")
    if len(y) != len(x):
        raise InputError(f"{what}: {xname} has {len(x)} samples and {yname} {len(y)}; they must match")
    if len(y) == 0 or int(y.min()) < 0:
        raise InputError(
            f"{what}: {yname} must hold class indices 0, 1, ... (got {'none' if len(y) == 0 else int(y.min())})"
        )
    return x.float(), y.long()
