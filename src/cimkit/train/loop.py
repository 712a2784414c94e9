"""The training loop every trainer of ``cimkit.train`` runs on: seeded epochs of minibatches, a checkpoint
file to resume from, and a progress bar.

A trainer gives ``run_epochs`` one ``step(epoch, batch_index)`` function (it draws its own minibatch, with
``batch_indices``, and returns a record of numbers), a ``state()`` / ``load(state)`` pair that saves and
restores everything a step changes (weights, optimizer, chip), and the ``settings`` that must match for a
checkpoint to be resumed. The loop counts steps, saves every ``checkpoint_every`` steps and at each epoch's
end, and on a second call with the same checkpoint path carries on from the saved step: a resumed run gives
the numbers of an uninterrupted one, because each batch's order and each step's random draws are seeded from
``(seed, epoch, index)``, never from a generator that lives across steps.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import InputError, check_int, check_real
from ..progress import ImageProgress, check_progress

Record = dict[str, float]


def check_count(fn: str, name: str, value, low: int = 1, what: str = "") -> int:
    """``value`` as an int ``>= low``: ``cimkit.errors.check_int`` with only a lower bound."""
    return check_int(fn, name, value, low, None, what)


def check_positive(fn: str, name: str, value, *, zero: bool = False, what: str = "") -> float:
    """``value`` as a finite float > 0 (>= 0 with ``zero``): ``cimkit.errors.check_real`` with only a lower bound."""
    return check_real(fn, name, value, 0.0, lo_open=not zero, why=what)


def step_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one step's random draws (batch order, dropout, noise samples): a function of
    ``(seed, epoch, index)`` only, so that a resumed run draws what an uninterrupted one would."""
    return (int(seed) * 1_000_003 + 7_919 * int(epoch) + 104_729 * int(index)) % (2**62)


def batch_indices(n: int, batch_size: int, seed: int, epoch: int, index: int) -> torch.Tensor:
    """The sample indices of minibatch ``index`` of ``epoch``: the epoch's seeded permutation of ``n``
    samples cut into batches of ``batch_size`` (the last one shorter)."""
    gen = torch.Generator().manual_seed(step_seed(seed, epoch, -1))
    order = torch.randperm(n, generator=gen)
    return order[index * batch_size : (index + 1) * batch_size]


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Minibatches in one pass over ``n`` samples."""
    return -(-int(n) // int(batch_size))


def fingerprint(*tensors: torch.Tensor) -> str:
    """A short hash of tensors' shapes, dtypes and values: what a checkpoint's settings record of the data
    and the starting weights, so that a checkpoint of another run is refused."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:24]


def _to_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def run_epochs(
    step: Callable[[int, int], Record],
    *,
    epochs: int,
    steps_per_epoch: int,
    state: Callable[[], dict],
    load: Callable[[dict], None],
    settings: dict,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 100,
    end_epoch: Callable[[int], Record | None] | None = None,
    progress: bool | Callable[[int, int], Any] = False,
    description: str = "training",
    what: str = "run_epochs",
) -> list[Record]:
    """Run ``step(epoch, index)`` for ``index`` in ``range(steps_per_epoch)`` of each of ``epochs`` epochs
    and return the history (each step's record with ``epoch`` and ``step`` added; then, at each epoch's end,
    ``end_epoch(epoch)``'s record, if it gives one, with ``"end_epoch": 1``).

    ``checkpoint``: a file written (atomically) every ``checkpoint_every`` steps and after each epoch with
    ``state()``, the position and the history; when it exists at the start, its ``settings`` must equal
    ``settings`` (else an InputError says so) and the run carries on from it after ``load(saved_state)``.
    ``progress``: True for a bar (steps done, steps per second), a callable ``progress(done, total)``, or
    False. ``what``: the caller's name, for error messages."""
    from ..io import atomic_write

    epochs = check_count(what, "epochs", epochs, 1)
    steps_per_epoch = check_count(what, "steps_per_epoch", steps_per_epoch, 1, "minibatches per epoch")
    checkpoint_every = check_count(what, "checkpoint_every", checkpoint_every, 1, "steps between checkpoints")
    check_progress(progress, what)
    path = None if checkpoint is None else Path(checkpoint)
    epoch, index, history = 0, 0, []
    if path is not None and path.exists():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a truncated or foreign file: say which
            raise InputError(
                f"{what}: the checkpoint {str(path)!r} cannot be read ({type(exc).__name__}: {exc}); "
                "delete it or pass another path"
            ) from None
        if not isinstance(saved, dict) or saved.get("settings") != settings:
            raise InputError(
                f"{what}: the checkpoint {str(path)!r} was made with other settings; pass the same "
                "ones, or another checkpoint path"
            )
        load(saved["state"])
        epoch, index, history = int(saved["epoch"]), int(saved["index"]), list(saved["history"])

    def save() -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(
                path,
                _to_bytes({"settings": settings, "state": state(), "epoch": epoch, "index": index, "history": history}),
            )

    total = epochs * steps_per_epoch
    with ImageProgress(progress, unit="step") as bar:
        task = bar.add(description, total, completed=epoch * steps_per_epoch + index)
        while epoch < epochs:
            while index < steps_per_epoch:
                record = dict(step(epoch, index))
                index += 1
                done = epoch * steps_per_epoch + index
                history.append({**record, "epoch": epoch, "step": done})
                if done % checkpoint_every == 0:
                    save()
                bar.update(task, done)
            if end_epoch is not None:
                end_record = end_epoch(epoch)
                if end_record is not None:
                    history.append(
                        {**end_record, "epoch": epoch, "step": (epoch + 1) * steps_per_epoch, "end_epoch": 1}
                    )
            epoch, index = epoch + 1, 0
            save()
    return history
