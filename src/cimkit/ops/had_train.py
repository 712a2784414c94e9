"""Distillation training of a Hamming-attention student from its full-precision teacher (HAD: Horton et al.,
arXiv 2502.01770, section on training).

Taken from the paper: the teacher is the full-precision model; two KL-divergence losses, one on the
attention maps (teacher's against student's, layer by layer) and one on the outputs (logits); four stages,
(1) a scaled tanh whose constant decays 5 -> 1, (2) a sharp tanh whose constant decays 1 -> 0.05,
(3) the sign with a straight-through gradient clipped at 2, (4) fine-tuning with the sign and without the
attention-map loss. ``had_stages`` builds these; ``hamming.binarize`` has the binarizer formulas.

Assumed here (not in the paper, or not found): the constant decays geometrically within a stage (equal
ratios per step, ``Stage.c_at``); the attention loss is the mean over layers of KL(teacher || student)
per query row, averaged over batch, heads and query rows, the student's distribution taken before its
top-N selection (the softmax of all its binarized logits: the top-N map is zero outside its kept keys,
where the KL would be infinite and give no gradient; matching the whole row also teaches which keys
to keep); the output loss
is ``T**2 * KL(softmax(t / T) || softmax(s / T))`` averaged over rows, T = 1 by default; the two losses
weigh 1 each; one AdamW optimizer for the whole run, the learning rate set per stage; the teacher runs in
eval mode (no dropout), the student in train mode.

Seeding and resuming: every step draws its dropout from ``seed`` and the step number, each pass over the
loader starts from ``seed`` and the pass number (so a shuffling ``DataLoader`` without its own generator
draws the same order), and a checkpoint (written atomically every ``checkpoint_every`` steps and at the
end) holds the student, the optimizer, the step, the place in the loader and the history: a killed run
called again with the same arguments continues where the checkpoint left off and ends with the weights
an uninterrupted run gets; a finished checkpoint is loaded without training.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import math
import numbers
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, short_repr
from .grid import check_int
from .hamming import (
    BINARIZERS,
    calibrate_hamming_scales,
    hamming_modules,
    run_batch,
    set_hamming_stage,
    swap_hamming_attention,
)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage: ``steps`` optimizer steps with ``binarizer`` (one of ``hamming.BINARIZERS``), its
    constant going from ``c_start`` to ``c_end`` (geometrically; the tanh stages use it), the loss
    ``attention_weight * attention KL + output_weight * output KL``, learning rate ``lr``."""

    name: str
    binarizer: str
    steps: int
    c_start: float = 1.0
    c_end: float = 1.0
    attention_weight: float = 1.0
    output_weight: float = 1.0
    lr: float = 1e-4

    def __post_init__(self) -> None:
        fn = f"Stage {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"Stage: name = {short_repr(self.name)}; give a non-empty string")
        if self.binarizer not in BINARIZERS:
            raise InputError(
                f"{fn}: binarizer = {short_repr(self.binarizer)} is not allowed; one of {', '.join(BINARIZERS)}"
            )
        check_int(fn, "steps", self.steps, 1, 1 << 40, "optimizer steps of the stage")
        for name in ("c_start", "c_end", "lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
                raise InputError(f"{fn}: {name} = {short_repr(value)} is not allowed; a positive finite number")
        for name in ("attention_weight", "output_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise InputError(f"{fn}: {name} = {short_repr(value)} is not allowed; a finite number >= 0")
        if self.attention_weight == 0 and self.output_weight == 0:
            raise InputError(f"{fn}: attention_weight and output_weight are both 0; the stage would have no loss")

    def c_at(self, step: int) -> float:
        """The constant at ``step`` (0-based) of the stage: ``c_start * (c_end / c_start) ** (step / (steps - 1))``,
        ``c_start`` at the first step and ``c_end`` at the last."""
        if self.steps == 1:
            return float(self.c_end)
        return float(
            self.c_start * (self.c_end / self.c_start) ** (min(max(step, 0), self.steps - 1) / (self.steps - 1))
        )


def had_stages(
    steps: int | tuple[int, int, int, int] = 100,
    *,
    lr: float = 1e-4,
    attention_weight: float = 1.0,
    output_weight: float = 1.0,
) -> tuple[Stage, ...]:
    """HAD's four stages, ``steps`` optimizer steps each (or one count per stage):

    1. ``scaled_tanh``, c 5 -> 1; 2. ``sharp_tanh``, c 1 -> 0.05; 3. ``sign`` (straight-through gradient,
    clipped at 2 sigma); 4. ``finetune``: sign, attention loss off (output loss only)."""
    counts = (steps,) * 4 if isinstance(steps, numbers.Integral) and not isinstance(steps, bool) else steps
    if not isinstance(counts, (tuple, list)) or len(counts) != 4:
        raise InputError(f"had_stages: steps = {short_repr(steps)}; give an int or four ints (one per stage)")
    if isinstance(output_weight, bool) or not isinstance(output_weight, numbers.Real) or not output_weight > 0:
        raise InputError(
            f"had_stages: output_weight = {short_repr(output_weight)}; give a positive number (the "
            "fine-tuning stage has no other loss)"
        )
    return (
        Stage("scaled_tanh", "scaled_tanh", counts[0], 5.0, 1.0, attention_weight, output_weight, lr),
        Stage("sharp_tanh", "sharp_tanh", counts[1], 1.0, 0.05, attention_weight, output_weight, lr),
        Stage("sign", "sign", counts[2], 1.0, 1.0, attention_weight, output_weight, lr),
        Stage("finetune", "sign", counts[3], 1.0, 1.0, 0.0, output_weight, lr),
    )


# ---- losses ----------------------------------------------------------------------------------------------
def attention_kl(teacher: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows (all dimensions but the last) of KL(teacher || softmax(student_logits)), in nats:
    ``teacher`` an attention map (probabilities along the last dimension), ``student_logits`` the student's
    attention logits of the same shape (a blocked key's very negative logit meets a teacher probability of
    0 there, which counts 0)."""
    if teacher.shape != student_logits.shape:
        raise InputError(
            f"attention_kl: teacher map {tuple(teacher.shape)} and student logits "
            f"{tuple(student_logits.shape)} differ; the student must be the teacher with its attention "
            "swapped"
        )
    log_student = torch.log_softmax(student_logits.float(), dim=-1)
    t = teacher.detach().float()
    kl = torch.where(t > 0, t * (torch.log(t.clamp(min=1e-45)) - log_student), torch.zeros((), dtype=t.dtype))
    return kl.sum(-1).mean()


def output_kl(teacher: torch.Tensor, student: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``T**2 * KL(softmax(teacher / T) || softmax(student / T))`` over the last dimension, averaged over the
    rows (all other dimensions), in nats (T = ``temperature``)."""
    if teacher.shape != student.shape:
        raise InputError(
            f"output_kl: teacher output {tuple(teacher.shape)} and student output {tuple(student.shape)} differ"
        )
    t = F.log_softmax(teacher.detach().float() / temperature, -1).reshape(-1, teacher.shape[-1])
    s = F.log_softmax(student.float() / temperature, -1).reshape(-1, student.shape[-1])
    return F.kl_div(s, t, reduction="batchmean", log_target=True) * temperature**2


def default_output(out: Any) -> torch.Tensor:
    """The logits in a model's output: a tensor as it is, else its ``logits`` attribute (Hugging Face)."""
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    raise InputError(
        f"distill: the model returned a {type(out).__name__} without logits; pass output_fn=... that "
        "returns the logits tensor from it"
    )


# ---- the trainer -----------------------------------------------------------------------------------------
def had_student(
    teacher: nn.Module, batches: Iterable, n_top: int | None = 32, *, num_batches: int = 100, allow_short: bool = False
) -> nn.Module:
    """The student HAD starts from: a copy of ``teacher`` with Hamming attention (``swap_hamming_attention``,
    ``n_top`` keys kept, sign binarizer) and its scales calibrated on ``num_batches`` of ``batches``."""
    student = swap_hamming_attention(teacher, n_top, "sign", allow_short=allow_short)
    calibrate_hamming_scales(student, batches, num_batches)
    return student


def _probe(teacher: nn.Module) -> nn.Module:
    """A copy of the teacher that records its attention maps and computes what the teacher computes (Hamming
    attention with every key kept and no binarization is standard attention)."""
    if hamming_modules(teacher):
        probe = copy.deepcopy(teacher)
        for _, m in hamming_modules(probe):
            m.n_top, m.binarizer = None, "none"
    else:
        probe = swap_hamming_attention(teacher, None, "none")
    probe.eval()
    for p in probe.parameters():
        p.requires_grad_(False)
    for _, m in hamming_modules(probe):
        m.record = True
    return probe


def _epoch(loader: Iterable, seed: int, epoch: int, skip: int):
    """The batches of one pass over ``loader`` from the ``skip``-th on, as (index, batch); the pass starts
    from a seeded global RNG, so that a shuffling loader draws the same order on a resumed run."""
    torch.manual_seed(seed * 1_000_003 + 7_919 * (epoch + 1))
    for i, batch in enumerate(loader):
        if i >= skip:
            yield i, batch


def _to_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def distill(
    student: nn.Module,
    teacher: nn.Module,
    loader: Iterable,
    *,
    stages: Iterable[Stage] | None = None,
    seed: int = 0,
    temperature: float = 1.0,
    output_fn: Callable[[Any], torch.Tensor] | None = None,
    weight_decay: float = 0.0,
    max_grad_norm: float | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    progress: Callable[[int, int, dict], object] | None = None,
) -> list[dict]:
    """Train ``student`` (a model with ``HammingAttention``: ``swap_hamming_attention`` then
    ``calibrate_hamming_scales``, or ``had_student``) to match ``teacher`` (the full-precision model it
    came from; left untouched) through ``stages`` (default ``had_stages()``), on the batches of ``loader``
    (passed over again as often as the steps need; batches are run as ``hamming.run_batch`` says: a dict
    as keyword arguments, a tuple by its first element, else as is).

    The loss of a step is ``attention_weight * attention_kl`` (mean over the attention layers, teacher's map
    against the student's logits before top-N) ``+ output_weight * output_kl`` (the logits that ``output_fn`` takes from the
    model's output; default: the output tensor or its ``.logits``). The student is trained in place and
    left in eval mode with the last stage's binarizer. ``progress(step, steps, record)`` after each step.
    ``checkpoint``: a file to save to every ``checkpoint_every`` steps and at the end, and to resume from
    (it must have been made with the same stages and seed). A resumed run gives the weights of an uninterrupted
    one when the loader's batches depend only on its order (each pass is reseeded from ``seed``); a loader with
    randomness of its own per batch (augmentation, masking collators) draws other batches after a resume.
    Returns the history: one record per step,
    ``{"step", "stage", "binarizer", "c", "loss", "attention_loss", "output_loss"}``.
    """
    fn = "distill"
    from ..io import atomic_write

    for name, model in (("student", student), ("teacher", teacher)):
        if not isinstance(model, nn.Module):
            raise InputError(f"{fn}: {name} is a {type(model).__name__}; it must be a torch.nn.Module")
    stages = tuple(had_stages() if stages is None else stages)
    if not stages or not all(isinstance(s, Stage) for s in stages):
        raise InputError(f"{fn}: stages = {short_repr(stages)}; give one or more Stage (see had_stages)")
    seed = check_int(fn, "seed", seed, 0, (1 << 31) - 1, "the seed of dropout and data order")
    checkpoint_every = check_int(fn, "checkpoint_every", checkpoint_every, 1, 1 << 40, "steps between checkpoints")
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, numbers.Real)
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise InputError(f"{fn}: temperature = {short_repr(temperature)} is not allowed; a positive finite number")
    if progress is not None and not callable(progress):
        raise InputError(f"{fn}: progress = {short_repr(progress)}; give a callable progress(step, steps, record)")
    output_fn = default_output if output_fn is None else output_fn
    modules = hamming_modules(student)
    if not modules:
        raise InputError(
            f"{fn}: the student has no HammingAttention; make it with had_student(teacher, batches) or "
            "swap_hamming_attention + calibrate_hamming_scales"
        )
    uncalibrated = [n for n, m in modules if not (float(m.sigma_q) > 0 and float(m.sigma_k) > 0)]
    if uncalibrated and any(s.binarizer != "none" for s in stages):
        raise InputError(
            f"{fn}: the student's scales are not calibrated ({uncalibrated[0]!r} and "
            f"{len(uncalibrated) - 1} more); call calibrate_hamming_scales(student, batches) first"
        )
    probe = _probe(teacher)
    if len(hamming_modules(probe)) != len(modules):
        raise InputError(
            f"{fn}: the teacher has {len(hamming_modules(probe))} attention layers and the student "
            f"{len(modules)}; the student must be the teacher with its attention swapped"
        )

    settings = {
        "stages": [dataclasses.asdict(s) for s in stages],
        "seed": seed,
        "temperature": float(temperature),
        "format": 1,
    }
    total = sum(s.steps for s in stages)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=stages[0].lr, weight_decay=weight_decay)
    step, epoch, index, history = 0, 0, 0, []
    path = None if checkpoint is None else Path(checkpoint)
    if path is not None and path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("settings") != settings:
            raise InputError(
                f"{fn}: the checkpoint {str(path)!r} was made with other stages, seed or temperature; "
                "pass the same ones, or another checkpoint path"
            )
        student.load_state_dict(state["student"])
        opt.load_state_dict(state["optimizer"])
        step, epoch, index, history = (
            int(state["step"]),
            int(state["epoch"]),
            int(state["index"]),
            list(state["history"]),
        )

    def save() -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(
                path,
                _to_bytes(
                    {
                        "settings": settings,
                        "student": student.state_dict(),
                        "optimizer": opt.state_dict(),
                        "step": step,
                        "epoch": epoch,
                        "index": index,
                        "history": history,
                    }
                ),
            )

    batches = None
    try:
        while step < total:
            stage_no, within = 0, step
            while within >= stages[stage_no].steps:
                within -= stages[stage_no].steps
                stage_no += 1
            stage = stages[stage_no]
            c = stage.c_at(within)
            set_hamming_stage(student, stage.binarizer, c)
            for _, m in modules:
                m.record = stage.attention_weight > 0
            for group in opt.param_groups:
                group["lr"] = stage.lr
            if batches is None:
                batches = _epoch(loader, seed, epoch, index)
            got = next(batches, None)
            if got is None:  # the pass is over: the next one
                if index == 0:
                    raise InputError(f"{fn}: the loader gave no batch; give at least one")
                epoch, index = epoch + 1, 0
                batches = None
                continue
            index = got[0] + 1
            torch.manual_seed(seed * 1_000_003 + step)  # dropout of this step, the same on a resumed run
            student.train()
            with torch.no_grad():
                t_out = output_fn(run_batch(probe, got[1]))
                t_maps = [m.attention_map for _, m in hamming_modules(probe)]
            s_out = output_fn(run_batch(student, got[1]))
            out_loss = output_kl(t_out, s_out, temperature)
            if stage.attention_weight > 0:
                att_loss = torch.stack(
                    [attention_kl(t, m.attention_logits) for t, (_, m) in zip(t_maps, modules)]
                ).mean()
            else:
                att_loss = torch.zeros(())
            loss = stage.attention_weight * att_loss + stage.output_weight * out_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            opt.step()
            step += 1
            record = {
                "step": step,
                "stage": stage.name,
                "binarizer": stage.binarizer,
                "c": c,
                "loss": loss.item(),
                "attention_loss": att_loss.item(),
                "output_loss": out_loss.item(),
            }
            history.append(record)
            if step % checkpoint_every == 0 or step == total:
                save()
            if progress is not None:
                progress(step, total, record)
    finally:
        for _, m in modules:
            m.record, m.attention_map, m.attention_logits = False, None, None
        student.eval()
    last = stages[-1]
    set_hamming_stage(student, last.binarizer, last.c_at(last.steps - 1))
    return history
