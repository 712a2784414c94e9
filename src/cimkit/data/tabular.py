"""Tabular data sets that work offline, for tree ensembles: scikit-learn's breast cancer, wine and
digits, the Statlog Shuttle set shipped with ``river`` (49,097 x 9), and a seeded synthetic set of any
size. Each comes back as numpy arrays with a fixed, seeded, stratified train/test split."""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

TABULAR = ("breast_cancer", "wine", "digits", "shuttle", "synthetic")


@dataclass(frozen=True)
class Table:
    """A stratified train/test split of a tabular set: features ``x_*`` (N, features) float64, labels ``y_*``
    (N,) int64, and the set's ``name``."""

    x_train: np.ndarray  # (N, features) float64
    y_train: np.ndarray  # (N,) int64 class labels
    x_test: np.ndarray
    y_test: np.ndarray
    name: str


def _shuttle() -> tuple[np.ndarray, np.ndarray]:
    """Shuttle as river ships it (ODDS binary version: 7% anomalies); read straight from its CSV."""
    try:
        from importlib.resources import files

        path = files("river.datasets").joinpath("shuttle.csv.gz")
    except ModuleNotFoundError:
        raise InputError(
            "the Shuttle data set comes with the 'river' package: pip install river==0.26.1 (or cimkit[trees])"
        ) from None
    with path.open("rb") as raw, gzip.open(raw, "rt") as fh:
        data = np.loadtxt(fh, delimiter=",", skiprows=1)
    return data[:, :-1], data[:, -1].astype(np.int64)


def _synthetic(samples: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=samples,
        n_features=features,
        n_informative=max(2, features // 2),
        n_redundant=features // 4,
        n_classes=2,
        class_sep=0.8,
        random_state=seed,
    )
    return x, y.astype(np.int64)


def tabular(
    name: str, *, test_fraction: float = 0.25, seed: int = 0, samples: int = 100_000, features: int = 32
) -> Table:
    """One of ``TABULAR``; ``samples`` and ``features`` size the synthetic set only."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name not in TABULAR:
        raise InputError(f"unknown data set {name!r}; available: {', '.join(TABULAR)}")
    if not 0 < test_fraction < 1:
        raise InputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if name == "shuttle":
        x, y = _shuttle()
    elif name == "synthetic":
        if samples < 10 or features < 2:
            raise InputError(f"synthetic data needs samples >= 10 and features >= 2, got {samples}, {features}")
        x, y = _synthetic(samples, features, seed)
    else:
        x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        np.asarray(x, dtype=np.float64), np.asarray(y, np.int64), test_size=test_fraction, random_state=seed, stratify=y
    )
    return Table(x_train, y_train, x_test, y_test, name)
