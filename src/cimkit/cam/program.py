"""A compiled analog-CAM program: one row per root-to-leaf path, one cell per feature (a stored lower
and upper bound, or a don't-care), with the leaf values, and an exact bit-parallel search simulator.

Search: within one tree the set of rows whose cell admits an input value is constant between two
consecutive thresholds of that feature, so each (tree, feature) gets a table of row bitmasks indexed by
the input's threshold bin; a tree's match is the AND of its features' masks (the match line), and the
matched row is its single set bit. Everything is vectorized over samples; nothing loops over rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .extract import Ensemble, extract


@dataclass
class _TreeTables:
    rows: slice
    words: int
    features: list[int]
    masks: list[np.ndarray]  # per feature: (global bins of that feature, words) uint64

_CHUNK = 8192  # samples per search block: a block's masks stay in cache


def _paths(tree, n_features: int):
    """(lo, hi, leaf value) of every root-to-leaf path, depth first."""
    lo_rows, hi_rows, leaves = [], [], []
    stack = [(0, np.full(n_features, -np.inf), np.full(n_features, np.inf))]
    while stack:
        node, lo, hi = stack.pop()
        f = tree.feature[node]
        if f < 0:
            lo_rows.append(lo)
            hi_rows.append(hi)
            leaves.append(tree.value[node])
            continue
        t = tree.threshold[node]
        if not np.isfinite(t):
            raise InputError(f"the model has a non-finite split threshold ({t}) on feature {f}")
        hl = hi.copy()
        hl[f] = min(hl[f], t)
        lr = lo.copy()
        lr[f] = max(lr[f], t)
        stack.append((tree.right[node], lr, hi))
        stack.append((tree.left[node], lo, hl))
    return np.array(lo_rows), np.array(hi_rows), np.array(leaves)


class CamProgram:
    """Rows of bounds (``lo``, ``hi``: (rows, features)), leaf values and the ensemble's aggregation."""

    def __init__(self, ensemble: Ensemble) -> None:
        self.ensemble = ensemble
        parts = [_paths(t, ensemble.n_features) for t in ensemble.trees]
        self.lo = np.concatenate([p[0] for p in parts])
        self.hi = np.concatenate([p[1] for p in parts])
        widths = {p[2].shape[1] for p in parts}
        self.leaf = np.concatenate([p[2] for p in parts]) if len(widths) == 1 else None
        counts = np.array([len(p[0]) for p in parts])
        self.tree_of_row = np.repeat(np.arange(len(parts)), counts)
        starts = np.concatenate([[0], np.cumsum(counts)])
        self.tree_rows = [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]
        # every feature's stored bounds over all trees: an input is binned once per feature
        self._edges = [np.unique(np.concatenate([self.lo[:, f], self.hi[:, f]])) for f in range(self.n_features)]
        self._edges = [u[np.isfinite(u)] for u in self._edges]
        self._tables = [self._build(r) for r in self.tree_rows]

    # ---- shape of the program -------------------------------------------------------------------
    @property
    def rows(self) -> int:
        return len(self.lo)

    @property
    def n_features(self) -> int:
        return self.ensemble.n_features

    @property
    def dont_care(self) -> np.ndarray:
        """(rows, features) True where the cell matches everything (the feature is not tested on the path)."""
        return np.isneginf(self.lo) & np.isposinf(self.hi)

    @property
    def sparsity(self) -> float:
        """Fraction of don't-care cells."""
        return float(self.dont_care.mean())

    def _build(self, rows: slice) -> _TreeTables:
        """Row bitmasks of one tree for every global threshold bin of each feature it tests."""
        lo, hi = self.lo[rows], self.hi[rows]
        n = lo.shape[0]
        words = (n + 63) // 64
        feats, masks = [], []
        for f in np.flatnonzero(~(np.isneginf(lo) & np.isposinf(hi)).all(axis=0)):
            u = self._edges[f]
            edges_lo = np.concatenate([[-np.inf], u])  # global bin b covers (edges_lo[b], edges_hi[b]]
            edges_hi = np.concatenate([u, [np.inf]])
            inside = (lo[:, f][None, :] <= edges_lo[:, None]) & (hi[:, f][None, :] >= edges_hi[:, None])
            padded = np.zeros((inside.shape[0], words * 64), dtype=bool)
            padded[:, :n] = inside
            packed = np.packbits(padded.reshape(inside.shape[0], words, 64)[..., ::-1], axis=-1)
            masks.append(packed.view(">u8").astype(np.uint64).reshape(inside.shape[0], words))
            feats.append(int(f))
        return _TreeTables(rows, words, feats, masks)

    # ---- search -------------------------------------------------------------------------------------
    def _check(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise InputError(f"expected input of shape (samples, {self.n_features}), got {X.shape}")
        if not np.isfinite(X).all():
            raise InputError("input has non-finite values (NaN or inf): missing values cannot be searched in the "
                             "CAM; impute them first")
        return X.astype(self.ensemble.input_dtype).astype(np.float64)

    def _bins(self, X: np.ndarray) -> list[np.ndarray]:
        side = "left" if self.ensemble.split == "le" else "right"
        return [np.searchsorted(u, X[:, f], side=side) for f, u in enumerate(self._edges)]

    def _search_block(self, X: np.ndarray):
        """Yield (tree index, matched row or -1) for one block of samples."""
        bins = self._bins(X)
        for i, tab in enumerate(self._tables):  # trees are independent arrays; all samples of the block at once
            acc = np.full((X.shape[0], tab.words), np.uint64(0xFFFFFFFFFFFFFFFF))
            for f, m in zip(tab.features, tab.masks):
                acc &= np.take(m, bins[f], axis=0)  # 16x faster than fancy indexing of a 2-d table
            local = _first_set_bit(acc)
            yield i, np.where(local >= 0, local + tab.rows.start, -1)

    def match(self, X) -> np.ndarray:
        """(samples, trees) index of the matched row of every tree (-1 where none matched)."""
        X = self._check(X)
        out = np.empty((X.shape[0], len(self._tables)), dtype=np.int64)
        for start in range(0, X.shape[0], _CHUNK):
            for i, rows in self._search_block(X[start:start + _CHUNK]):
                out[start:start + _CHUNK, i] = rows
        return out

    def raw(self, X) -> np.ndarray:
        """(samples, outputs) the ensemble's aggregated leaf values before the link function."""
        e = self.ensemble
        X = self._check(X)
        width = self.leaf.shape[1]
        total = np.zeros((X.shape[0], e.n_outputs if e.aggregate == "sum" else width))
        for start in range(0, X.shape[0], _CHUNK):
            block = total[start:start + _CHUNK]
            for i, rows in self._search_block(X[start:start + _CHUNK]):
                value = np.where((rows >= 0)[:, None], self.leaf[np.maximum(rows, 0)], 0.0)
                if e.aggregate == "mean":
                    block += value
                else:
                    block[:, e.trees[i].output] += value[:, 0]
        if e.aggregate == "mean":
            return total / len(e.trees)
        return e.base[None, :] + e.scale * total

    def predict_proba(self, X) -> np.ndarray:
        e = self.ensemble
        if e.classes is None:
            raise InputError(f"{e.kind} is a regressor: use predict")
        r = self.raw(X)
        if e.link == "normalize":
            return r
        if e.link == "logistic":
            p = 1.0 / (1.0 + np.exp(-r[:, 0]))
            return np.stack([1 - p, p], axis=1)
        z = np.exp(r - r.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        e = self.ensemble
        if e.classes is not None:
            return e.classes[np.argmax(self.predict_proba(X), axis=1)]
        r = self.raw(X)
        return r[:, 0] if r.shape[1] == 1 else r


def _first_set_bit(words: np.ndarray) -> np.ndarray:
    """Index of the lowest set bit over (N, W) uint64 words (word 0 first), -1 where none is set."""
    out = np.full(words.shape[0], -1, dtype=np.int64)
    for w in range(words.shape[1] - 1, -1, -1):  # at most a few words per tree
        x = words[:, w]
        low = x & (~x + np.uint64(1))
        nz = x != 0
        out = np.where(nz, w * 64 + np.log2(low.astype(np.float64), where=nz, out=np.zeros(len(x))).astype(np.int64), out)
    return out


def compile(model) -> CamProgram:  # noqa: A001 - the public name of DESIGN.md
    """Compile a scikit-learn / XGBoost / LightGBM tree model to an analog-CAM program (exact thresholds)."""
    return CamProgram(extract(model))
