"""Adversarial attacks on a model and on its simulated chip, through the Adversarial Robustness Toolbox (ART).

The attacks (``ATTACKS``) are ART's, with settings that work on small image classifiers (ART's defaults do not
always: Carlini-Wagner needs an initial constant near 1 and a few binary-search steps, HopSkipJump and Boundary
need float32 inputs, SimBA needs probabilities; each entry says what it changes):

- white box (gradients): ``fgsm``, ``pgd`` (L-inf, a budget ``eps``), ``cw`` (Carlini-Wagner L2) and
  ``deepfool`` (minimal perturbations, measured in L2);
- black box (queries only): ``square`` (L-inf, a budget ``eps``), ``hopskipjump``, ``boundary`` and ``simba``
  (minimal perturbations, L2).

A converted model (``cimkit.convert``) is attacked as it computes: each query is a read of the chip, with its
read noise drawn afresh per query as a chip would (the tile's counter-based stream advances). White-box
gradients flow through the crossbar layers by their ``backward_mode``: "straight_through" (default; the ideal
product's gradient, zero where the DAC or the weight range clipped: BPDA, since the ADC's staircase has no
useful derivative) or "chip" (the input gradient is a transposed read of the same noisy arrays).
``eot_samples > 1`` attacks the expectation over read noise (EOT): the model seen by the attack averages the
class probabilities of that many reads of every input (its logits are the log of that mean), so gradients and
black-box scores are those of the average.

Strength: a budgeted attack is run once per ``eps``; a minimal-perturbation attack is run once and its
accuracy at a radius ``eps`` counts an input as robust when the model gets it right and the attack either
failed or needed an L2 perturbation larger than ``eps``. Every run is seeded (ART's random draws use numpy's
global generator, which a run seeds and restores), so the same seed gives the same adversarial examples.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import InputError, check_int, check_real, short_repr
from ..report.protocol import Result, figure_folder, saved_figure
from ..sim.convert import cim_layers


@dataclass(frozen=True)
class AttackKind:
    """One attack: ``box`` ("white" or "black"), ``norm`` of its perturbation ("inf" or "2"), whether it takes
    a budget ``eps`` (``budgeted``) or finds minimal perturbations, whether it needs class probabilities, its
    ART settings (``defaults``, overridable per run) and what they change from ART's defaults (``note``)."""

    name: str
    box: str
    norm: str
    budgeted: bool
    defaults: dict
    build: Callable[..., Any]
    probabilities: bool = False
    note: str = ""


def _fgsm(est, eps, batch_size, **kw):
    from art.attacks.evasion import FastGradientMethod

    return FastGradientMethod(est, norm=np.inf, eps=eps, eps_step=eps, batch_size=batch_size, **kw)


def _pgd(est, eps, batch_size, max_iter=40, step_ratio=2.5, **kw):
    from art.attacks.evasion import ProjectedGradientDescent

    return ProjectedGradientDescent(
        est,
        norm=np.inf,
        eps=eps,
        eps_step=max(step_ratio * eps / max_iter, 1e-12),
        max_iter=max_iter,
        batch_size=batch_size,
        verbose=False,
        **kw,
    )


def _cw(est, eps, batch_size, **kw):
    from art.attacks.evasion import CarliniL2Method

    return CarliniL2Method(est, batch_size=batch_size, verbose=False, **kw)


def _deepfool(est, eps, batch_size, **kw):
    from art.attacks.evasion import DeepFool

    return DeepFool(est, batch_size=batch_size, verbose=False, **kw)


def _square(est, eps, batch_size, **kw):
    from art.attacks.evasion import SquareAttack

    return SquareAttack(est, norm=np.inf, eps=eps, batch_size=batch_size, verbose=False, **kw)


def _hsj(est, eps, batch_size, **kw):
    from art.attacks.evasion import HopSkipJump

    return HopSkipJump(est, norm=2, targeted=False, batch_size=batch_size, verbose=False, **kw)


def _boundary(est, eps, batch_size, **kw):
    from art.attacks.evasion import BoundaryAttack

    return BoundaryAttack(est, targeted=False, batch_size=batch_size, verbose=False, **kw)


def _simba(est, eps, batch_size, **kw):
    from art.attacks.evasion import SimBA

    return SimBA(est, targeted=False, batch_size=1, verbose=False, **kw)  # ART's SimBA takes one input at a time


#: the attacks, by name
ATTACKS: dict[str, AttackKind] = {
    a.name: a
    for a in (
        AttackKind("fgsm", "white", "inf", True, {}, _fgsm, note="one signed-gradient step of size eps"),
        AttackKind(
            "pgd",
            "white",
            "inf",
            True,
            {"max_iter": 40, "step_ratio": 2.5},
            _pgd,
            note="40 steps of 2.5 eps / 40 (Madry et al.), no random start",
        ),
        AttackKind(
            "cw",
            "white",
            "2",
            False,
            {"confidence": 0.0, "learning_rate": 0.1, "binary_search_steps": 3, "max_iter": 15, "initial_const": 1.0},
            _cw,
            note="initial_const 1 (ART's 0.01 finds almost nothing in few steps), 3 binary-search steps of 15 "
            "iterations, learning rate 0.1",
        ),
        AttackKind(
            "deepfool",
            "white",
            "2",
            False,
            {"max_iter": 50, "epsilon": 0.02, "nb_grads": 10},
            _deepfool,
            note="overshoot 0.02, at most 50 steps, gradients of all 10 classes",
        ),
        AttackKind(
            "square",
            "black",
            "inf",
            True,
            {"max_iter": 1000, "p_init": 0.1, "nb_restarts": 1},
            _square,
            note="1000 queries per image at most, initial square fraction 0.1",
        ),
        AttackKind(
            "hopskipjump",
            "black",
            "2",
            False,
            {"max_iter": 10, "max_eval": 200, "init_eval": 20, "init_size": 100},
            _hsj,
            note="10 iterations of at most 200 gradient-estimate queries (ART's default 10,000 is far over "
            "a CPU budget); float32 inputs",
        ),
        AttackKind(
            "boundary",
            "black",
            "2",
            False,
            {"max_iter": 200, "delta": 0.05, "epsilon": 0.05, "num_trial": 10, "sample_size": 10, "init_size": 100},
            _boundary,
            note="200 steps (ART's default 5000) with larger initial steps 0.05; untargeted; float32 inputs",
        ),
        AttackKind(
            "simba",
            "black",
            "2",
            False,
            {"attack": "px", "max_iter": 500, "epsilon": 0.2},
            _simba,
            probabilities=True,
            note="pixel basis, 500 queries of step 0.2; the model's outputs as probabilities",
        ),
    )
}


class _AttackView(nn.Module):
    """The model as an attack sees it: logits (or probabilities), optionally averaged over ``eot_samples`` reads
    (the log of the mean probability), counting the inputs it is queried on."""

    def __init__(self, model: nn.Module, eot_samples: int, probabilities: bool) -> None:
        super().__init__()
        self.model, self.eot_samples, self.probabilities = model, eot_samples, probabilities
        self.queries = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.queries += int(x.shape[0])
        if x.dtype == torch.float64:  # HopSkipJump and Boundary build float64 samples internally
            x = x.float()
        if self.eot_samples == 1:
            logits = self.model(x)
            return torch.softmax(logits, -1) if self.probabilities else logits
        probs = torch.stack([torch.softmax(self.model(x), -1) for _ in range(self.eot_samples)]).mean(0)
        return probs if self.probabilities else torch.log(probs.clamp_min(1e-30))


def art_classifier(
    model: nn.Module,
    *,
    input_shape: Sequence[int],
    num_classes: int,
    clip_values: tuple[float, float] = (0.0, 1.0),
    probabilities: bool = False,
    eot_samples: int = 1,
):
    """``model`` (float or converted) as ART's ``PyTorchClassifier`` on CPU: cross-entropy loss, inputs clipped to
    ``clip_values``, outputs logits (or ``probabilities``), averaged over ``eot_samples`` reads (EOT). The
    wrapper's ``model.queries`` counts the inputs queried."""
    from art.estimators.classification import PyTorchClassifier

    eot_samples = check_int("art_classifier", "eot_samples", eot_samples, 1, why="reads averaged per query")
    view = _AttackView(model, eot_samples, probabilities).eval()
    return PyTorchClassifier(
        view,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(input_shape),
        nb_classes=int(num_classes),
        clip_values=clip_values,
        device_type="cpu",
    )


def _attack_kind(name) -> AttackKind:
    if name not in ATTACKS:
        raise InputError(f"attack {short_repr(name)} is unknown; attacks: {', '.join(ATTACKS)}")
    return ATTACKS[name]


@contextlib.contextmanager
def _seeded(seed: int):
    """numpy's and torch's global generators seeded for one run, restored afterwards (ART draws from numpy's)."""
    np_state, torch_state = np.random.get_state(), torch.random.get_rng_state()
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        torch.random.set_rng_state(torch_state)


#: where a seeded run puts a chip's read-noise streams: seed ``s`` starts at draw ``(s + 1) * NOISE_STRIDE`` (odd,
#: so distinct seeds start at distinct draws of the stream's 2**23-draw period; a run of more draws than this
#: reaches the next seed's start)
NOISE_STRIDE = 104_729


def seek_noise(model: nn.Module, seed: int) -> None:
    """Put every crossbar layer's read-noise stream of ``model`` at the position seed ``seed`` starts from, so a
    run on a chip draws the same noise whatever ran on the chip before (no-op on a float model)."""
    for layer in cim_layers(model):
        layer.tile.rng.draws = (int(seed) + 1) * NOISE_STRIDE


@contextlib.contextmanager
def _backward(model: nn.Module, mode: str | None):
    layers = cim_layers(model)
    if mode is None or not layers:
        yield
        return
    old = [layer.backward_mode for layer in layers]
    try:
        for layer in layers:
            layer.backward_mode = mode
        yield
    finally:
        for layer, m in zip(layers, old):
            layer.backward_mode = m


def _check_data(x, y, clip_values: tuple[float, float] = (0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    if not isinstance(x, np.ndarray) or x.ndim < 2 or x.dtype.kind != "f":
        raise InputError(f"x must be a float tensor or array of inputs (batch, ...), got {short_repr(x)}")
    if not np.isfinite(x).all():
        raise InputError("x has non-finite values (NaN or inf)")
    lo, hi = clip_values
    if x.size and (float(x.min()) < lo or float(x.max()) > hi):
        raise InputError(
            f"x holds values in [{float(x.min()):g}, {float(x.max()):g}], outside the valid input range "
            f"clip_values = ({lo:g}, {hi:g}) that the attacks clip to; pass the model's raw inputs (put a "
            "normalization inside the model) or the range they live in as clip_values"
        )
    if not isinstance(y, np.ndarray) or y.shape != (len(x),) or y.dtype.kind not in "iu":
        raise InputError(f"y must hold one integer label per input ({len(x)}), got {short_repr(y)}")
    return np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64)


def _predict(model: nn.Module, x: np.ndarray, batch_size: int) -> np.ndarray:
    out = []
    with torch.no_grad():
        for a in range(0, len(x), batch_size):
            out.append(model(torch.from_numpy(x[a : a + batch_size])).argmax(-1).numpy())
    return np.concatenate(out) if out else np.empty(0, np.int64)


@dataclass
class AttackRun:
    """One attack on one model: the adversarial inputs, predictions before and after (each a fresh read on a
    chip), the perturbations' L2 and L-inf norms, the seconds it took and the model queries it made (inputs
    forwarded, EOT reads counted once)."""

    attack: str
    eps: float | None
    x_adv: np.ndarray = field(repr=False)
    clean_pred: np.ndarray = field(repr=False)
    adv_pred: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    l2: np.ndarray = field(repr=False)
    linf: np.ndarray = field(repr=False)
    seconds: float
    queries: int

    @property
    def clean_accuracy(self) -> float:
        return float((self.clean_pred == self.labels).mean())

    @property
    def accuracy(self) -> float:
        """Accuracy on the adversarial inputs (a budgeted attack's robust accuracy)."""
        return float((self.adv_pred == self.labels).mean())

    def accuracy_at(self, radius: float) -> float:
        """Robust accuracy at L2 ``radius`` of a minimal-perturbation attack: right on the clean input, and the
        attack failed or needed more than ``radius``."""
        right = self.clean_pred == self.labels
        survived = (self.adv_pred == self.labels) | (self.l2 > radius)
        return float((right & survived).mean())


def run_attack(
    model: nn.Module,
    attack: str,
    x,
    y,
    *,
    eps: float | None = None,
    settings: Mapping | None = None,
    seed: int = 0,
    eot_samples: int = 1,
    backward: str | None = None,
    batch_size: int = 100,
    num_classes: int | None = None,
    clip_values: tuple[float, float] = (0.0, 1.0),
) -> AttackRun:
    """Run ``attack`` (a name of ``ATTACKS``) on ``model`` (float, or converted by ``cimkit.convert``) over inputs
    ``x`` (values in [0, 1]) with labels ``y``. ``eps``: the L-inf budget of a budgeted attack (required there;
    ignored by minimal-perturbation attacks, whose per-input norms are returned). ``settings`` override the
    attack's ART settings. ``backward``: the crossbar layers' backward mode during the attack ("straight_through"
    or "chip"; None: as they are). ``eot_samples``: reads averaged per query (expectation over noise).
    ``clip_values``: the valid input range (inputs outside it are refused; adversarial inputs stay inside it). On a
    chip the read-noise streams are first put at a position set by ``seed`` (``seek_noise``), so the same seed
    gives the same adversarial inputs whatever ran on the chip before."""
    kind = _attack_kind(attack)
    if (
        not isinstance(clip_values, (tuple, list))
        or len(clip_values) != 2
        or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in clip_values)
        or not clip_values[0] < clip_values[1]
    ):
        raise InputError(f"run_attack: clip_values must be (low, high) with low < high, got {short_repr(clip_values)}")
    clip_values = (float(clip_values[0]), float(clip_values[1]))
    xs, ys = _check_data(x, y, clip_values)
    if not isinstance(model, nn.Module):
        raise InputError(f"run_attack: model must be a torch.nn.Module, got {type(model).__name__}")
    if kind.budgeted:
        if eps is None:
            raise InputError(f"run_attack: attack {attack!r} takes a budget; pass eps (L-inf, in input units)")
        eps = check_real("run_attack", "eps", eps, 0.0, why="the L-inf budget, in input units")
    if settings is not None and not isinstance(settings, Mapping):
        raise InputError(f"run_attack: settings must be a dict of ART settings, got {short_repr(settings)}")
    settings = dict(settings or {})
    batch_size = check_int("run_attack", "batch_size", batch_size, 1)
    if backward is not None and backward not in ("straight_through", "chip"):
        raise InputError(f"run_attack: backward must be 'straight_through', 'chip' or None, got {short_repr(backward)}")
    seed = check_int("run_attack", "seed", seed, 0)
    model.eval()
    if num_classes is None:
        with torch.no_grad():
            num_classes = int(model(torch.from_numpy(xs[:1])).shape[-1])
    with _seeded(seed), _backward(model, backward):
        seek_noise(model, seed)
        clean_pred = _predict(model, xs, batch_size)
        est = art_classifier(
            model,
            input_shape=xs.shape[1:],
            num_classes=num_classes,
            clip_values=clip_values,
            probabilities=kind.probabilities,
            eot_samples=eot_samples,
        )
        view = est.model
        view.queries = 0
        t0 = time.perf_counter()
        if kind.budgeted and eps == 0:
            x_adv = xs.copy()  # no budget: nothing to perturb (ART refuses eps = 0)
        else:
            try:
                art_attack = kind.build(est, eps, batch_size, **{**kind.defaults, **settings})
            except (TypeError, ValueError) as exc:  # ART's own checks of its settings
                raise InputError(
                    f"run_attack: attack {attack!r} refuses the settings {short_repr(settings)}: "
                    f"{short_repr(str(exc), 300)}"
                ) from None
            labels = np.eye(num_classes, dtype=np.float32)[ys]
            x_adv = art_attack.generate(x=xs, y=labels).astype(np.float32)
        seconds = time.perf_counter() - t0
        queries = view.queries
        adv_pred = _predict(model, x_adv, batch_size)
    delta = (x_adv - xs).reshape(len(xs), -1)
    return AttackRun(
        attack,
        eps,
        x_adv,
        clean_pred,
        adv_pred,
        ys,
        np.linalg.norm(delta, axis=1),
        np.abs(delta).max(axis=1) if delta.size else np.zeros(len(xs)),
        seconds,
        queries,
    )


# ---- studies ----------------------------------------------------------------------------------------------------
@dataclass
class StrengthCurve:
    """Accuracy of one model under one attack at each strength (L-inf eps, or L2 radius for minimal attacks)."""

    model: str
    attack: str
    norm: str
    strengths: list[float]
    accuracy: list[float]
    clean_accuracy: float
    seconds: float
    queries_per_image: float
    median_l2: float | None = None  # minimal attacks: median L2 of the successful perturbations


@dataclass
class AttackResult(Result):
    """Accuracy against attack strength (``curves``) and, optionally, a transferability matrix: ``transfer[i][j]``
    is the accuracy of model ``targets[j]`` on adversarial inputs crafted on model ``sources[i]`` (the diagonal:
    white-box accuracy)."""

    curves: list[StrengthCurve] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    transfer: list[list[float]] = field(default_factory=list)
    transfer_attack: str = ""
    transfer_eps: float | None = None
    images: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": type(self).__name__,
            "images": self.images,
            "curves": [asdict(c) for c in self.curves],
            "transfer": {
                "attack": self.transfer_attack,
                "eps": self.transfer_eps,
                "sources": self.sources,
                "targets": self.targets,
                "accuracy": self.transfer,
            },
        }

    def records(self) -> list[dict[str, Any]]:
        rows = [
            {
                "model": c.model,
                "attack": c.attack,
                "norm": c.norm,
                "strength": s,
                "accuracy": a,
                "clean_accuracy": c.clean_accuracy,
                "seconds": c.seconds,
            }
            for c in self.curves
            for s, a in zip(c.strengths, c.accuracy)
        ]
        rows += [
            {
                "model": t,
                "attack": f"transfer:{self.transfer_attack}",
                "crafted_on": s,
                "strength": self.transfer_eps,
                "accuracy": self.transfer[i][j],
            }
            for i, s in enumerate(self.sources)
            for j, t in enumerate(self.targets)
        ]
        return rows

    def table(self):
        from rich.table import Table

        t = Table(title=f"accuracy under attack ({self.images} images)")
        for col in ("model", "attack", "strength", "accuracy", "clean", "s", "queries/img"):
            t.add_column(col)
        for c in self.curves:
            for s, a in zip(c.strengths, c.accuracy):
                t.add_row(
                    c.model,
                    c.attack,
                    f"{c.norm}:{s:g}",
                    f"{100 * a:.1f}%",
                    f"{100 * c.clean_accuracy:.1f}%",
                    f"{c.seconds:.2f}",
                    f"{c.queries_per_image:.0f}",
                )
        return t

    def transfer_table(self):
        from rich.table import Table

        t = Table(
            title=f"transfer: accuracy of each target (columns) on {self.transfer_attack} eps={self.transfer_eps} "
            "examples crafted on each source (rows)"
        )
        t.add_column("crafted on")
        for name in self.targets:
            t.add_column(name)
        for i, s in enumerate(self.sources):
            t.add_row(s, *[f"{100 * v:.1f}" for v in self.transfer[i]])
        return t

    def figures(self, folder) -> list[Path]:
        folder = figure_folder(folder)
        paths = []
        by_attack: dict[str, list[StrengthCurve]] = {}
        for c in self.curves:
            by_attack.setdefault(c.attack, []).append(c)
        for attack, curves in by_attack.items():
            path = folder / f"attack_{attack}.png"
            with saved_figure(path, figsize=(6, 4)) as (fig, ax):
                for c in curves:
                    ax.plot(c.strengths, [100 * a for a in c.accuracy], marker="o", label=c.model)
                ax.set_xlabel(f"{'L-inf eps' if curves[0].norm == 'inf' else 'L2 radius'}")
                ax.set_ylabel("accuracy (%)")
                ax.set_title(f"{attack}: accuracy against strength")
                ax.legend(fontsize=8)
            paths.append(path)
        if self.transfer:
            path = folder / "transfer.png"
            n, m = len(self.sources), len(self.targets)
            with saved_figure(path, figsize=(1.2 + 0.8 * m, 1.0 + 0.6 * n)) as (fig, ax):
                im = ax.imshow(100 * np.asarray(self.transfer), vmin=0, vmax=100, cmap="viridis")
                ax.set_xticks(range(m), self.targets, rotation=45, ha="right", fontsize=7)
                ax.set_yticks(range(n), self.sources, fontsize=7)
                for i in range(n):
                    for j in range(m):
                        ax.text(
                            j, i, f"{100 * self.transfer[i][j]:.0f}", ha="center", va="center", fontsize=7, color="w"
                        )
                ax.set_xlabel("evaluated on")
                ax.set_ylabel("crafted on")
                ax.set_title(f"{self.transfer_attack} eps={self.transfer_eps}: accuracy (%)", fontsize=9)
                fig.colorbar(im, ax=ax)
            paths.append(path)
        return paths


def _check_models(models, what: str) -> dict[str, nn.Module]:
    if (
        not isinstance(models, Mapping)
        or not models
        or not all(isinstance(k, str) and isinstance(v, nn.Module) for k, v in models.items())
    ):
        raise InputError(f"{what} must be a non-empty dict of name -> torch.nn.Module, got {short_repr(models)}")
    return dict(models)


def accuracy_vs_strength(
    models: Mapping[str, nn.Module],
    attack: str,
    x,
    y,
    strengths: Sequence[float],
    *,
    seed: int = 0,
    settings: Mapping | None = None,
    eot_samples: int = 1,
    backward: str | None = None,
    batch_size: int = 100,
) -> AttackResult:
    """Accuracy of each of ``models`` (name -> model, float or converted) under ``attack`` at each of
    ``strengths`` (L-inf eps for budgeted attacks, one run each; L2 radii for minimal-perturbation attacks, one
    run evaluated at each radius)."""
    kind = _attack_kind(attack)
    models = _check_models(models, "accuracy_vs_strength: models")
    if isinstance(strengths, (str, bytes)) or not isinstance(strengths, Sequence) or not strengths:
        raise InputError(
            f"accuracy_vs_strength: strengths must be a non-empty list of numbers, got {short_repr(strengths)}"
        )
    strengths = [check_real("accuracy_vs_strength", f"strengths[{i}]", s, 0.0) for i, s in enumerate(strengths)]
    curves = []
    n = 0
    for name, model in models.items():
        if kind.budgeted:
            runs = [
                run_attack(
                    model,
                    attack,
                    x,
                    y,
                    eps=s,
                    settings=settings,
                    seed=seed,
                    eot_samples=eot_samples,
                    backward=backward,
                    batch_size=batch_size,
                )
                for s in strengths
            ]
            acc = [r.accuracy for r in runs]
            first, seconds, queries, median = runs[0], sum(r.seconds for r in runs), sum(r.queries for r in runs), None
        else:
            first = run_attack(
                model,
                attack,
                x,
                y,
                settings=settings,
                seed=seed,
                eot_samples=eot_samples,
                backward=backward,
                batch_size=batch_size,
            )
            acc = [first.accuracy_at(s) for s in strengths]
            seconds, queries = first.seconds, first.queries
            ok = (first.clean_pred == first.labels) & (first.adv_pred != first.labels)
            median = float(np.median(first.l2[ok])) if ok.any() else None
        n = len(first.labels)
        curves.append(
            StrengthCurve(
                name, attack, kind.norm, strengths, acc, first.clean_accuracy, seconds, queries / max(n, 1), median
            )
        )
    return AttackResult(curves=curves, images=n)


def transfer_matrix(
    sources: Mapping[str, nn.Module],
    x,
    y,
    *,
    attack: str = "pgd",
    eps: float | None = None,
    targets: Mapping[str, nn.Module] | None = None,
    seed: int = 0,
    settings: Mapping | None = None,
    eot_samples: int = 1,
    backward: str | None = None,
    batch_size: int = 100,
) -> AttackResult:
    """Transferability: adversarial inputs crafted with ``attack`` on each model of ``sources`` (float or on a
    chip), evaluated on each of ``targets`` (default: the sources). Entry (i, j) is target j's accuracy on
    source i's examples; the diagonal is white-box (or black-box) accuracy against the model itself."""
    sources = _check_models(sources, "transfer_matrix: sources")
    targets = sources if targets is None else _check_models(targets, "transfer_matrix: targets")
    xs, ys = _check_data(x, y)
    rows = []
    for model in sources.values():
        run = run_attack(
            model,
            attack,
            xs,
            ys,
            eps=eps,
            settings=settings,
            seed=seed,
            eot_samples=eot_samples,
            backward=backward,
            batch_size=batch_size,
        )
        row = []
        for target in targets.values():
            target.eval()
            with _seeded(seed):
                seek_noise(target, seed + 1)  # a read of its own, not the noise the attack saw
                row.append(float((_predict(target, run.x_adv, batch_size) == ys).mean()))
        rows.append(row)
    return AttackResult(
        sources=list(sources),
        targets=list(targets),
        transfer=rows,
        transfer_attack=attack,
        transfer_eps=eps,
        images=len(ys),
    )


__all__ = [
    "ATTACKS",
    "NOISE_STRIDE",
    "seek_noise",
    "AttackKind",
    "AttackRun",
    "AttackResult",
    "StrengthCurve",
    "art_classifier",
    "run_attack",
    "accuracy_vs_strength",
    "transfer_matrix",
]
