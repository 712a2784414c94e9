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

from ..errors import InputError, short_repr
from ..report.protocol import figure_text, html_summary, import_pandas, one_line, text_summary
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


SCALES = ("thresholds", "uniform")  # input encodings of quantized programs (see CamProgram._quantize)
MAX_BITS = 16


def check_scale(scale: str) -> None:
    """Raise an ``InputError`` unless ``scale`` is one of ``SCALES`` ("uniform", "thresholds")."""
    if not isinstance(scale, str) or scale not in SCALES:
        raise InputError(f"scale must be 'uniform' or 'thresholds', got {short_repr(scale)}")


def check_bits(bits) -> int | None:
    """``bits`` as an int from 1 to 16, or None (exact thresholds); numpy integers accepted."""
    if bits is None:
        return None
    if isinstance(bits, (bool, np.bool_)) or not isinstance(bits, (int, np.integer)):
        raise InputError(
            f"bits must be an integer from 1 to {MAX_BITS} (or None for exact thresholds), got "
            f"{short_repr(bits)} of type {type(bits).__name__}"
        )
    if not 1 <= bits <= MAX_BITS:
        raise InputError(
            f"bits must be an integer from 1 to {MAX_BITS} (or None for exact thresholds), got {int(bits)}"
        )
    return int(bits)


def check_variation(variation_lsb) -> float:
    """``variation_lsb`` as a finite float >= 0 (code steps of bound variation)."""
    if isinstance(variation_lsb, (bool, np.bool_)) or not isinstance(
        variation_lsb, (int, float, np.integer, np.floating)
    ):
        raise InputError(
            f"variation_lsb must be a number >= 0 (std of the stored bounds in code steps), got "
            f"{short_repr(variation_lsb)} of type {type(variation_lsb).__name__}"
        )
    if not np.isfinite(variation_lsb) or variation_lsb < 0:
        raise InputError(
            f"variation_lsb must be a finite number >= 0 (std of the stored bounds in code steps), got "
            f"{float(variation_lsb)}"
        )
    return float(variation_lsb)


def check_seed(seed) -> int:
    """``seed`` as an int >= 0; numpy integers accepted."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be an integer >= 0, got {short_repr(seed)} of type {type(seed).__name__}")
    if seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {int(seed)}")
    return int(seed)


def check_samples(X, n_features: int, what: str = "input") -> np.ndarray:
    """``X`` as a finite float64 matrix of shape (samples >= 1, ``n_features``); ``what`` names it in errors."""
    if X is None:
        raise InputError(f"{what} is missing: give an array of shape (samples, {n_features})")
    try:
        A = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{what} must be numeric, of shape (samples, {n_features}): {short_repr(str(exc), 120)}"
        ) from None
    if A.ndim != 2 or A.shape[1] != n_features:
        hint = "; one sample is X.reshape(1, -1)" if A.ndim == 1 and A.shape[0] == n_features else ""
        raise InputError(
            f"{what} must have shape (samples, {n_features}) (the model's {n_features} features), got "
            f"shape {A.shape}{hint}"
        )
    if A.shape[0] == 0:
        raise InputError(f"{what} has no samples: give at least one row of {n_features} features")
    bad = ~np.isfinite(A)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputError(
            f"{what} has {int(bad.sum())} non-finite values (NaN or inf), first at row {r}, column {c}: "
            "missing values cannot be searched in the CAM; impute them first"
        )
    return A


class CamProgram:
    """Rows of bounds (``lo``, ``hi``: (rows, features)), leaf values and the ensemble's aggregation."""

    def __init__(
        self,
        ensemble: Ensemble,
        *,
        bits: int | None = None,
        X=None,
        scale: str = "thresholds",
        variation_lsb: float = 0.0,
        seed: int = 0,
    ) -> None:
        bits, variation_lsb, seed = check_bits(bits), check_variation(variation_lsb), check_seed(seed)
        check_scale(scale)
        if bits is None and variation_lsb > 0:
            raise InputError(
                f"variation_lsb={variation_lsb:g} perturbs the bound codes of a quantized program, but bits "
                "is None (exact thresholds); give bits too"
            )
        if bits is None and scale == "uniform":
            raise InputError(
                "scale='uniform' sets the code grid of a quantized program, but bits is None (exact "
                "thresholds); give bits too"
            )
        if not ensemble.trees:
            raise InputError(f"the {ensemble.kind or 'tree'} model has no trees to compile")
        if X is not None:
            X = check_samples(X, ensemble.n_features, "X")
        self.ensemble = ensemble
        parts = [_paths(t, ensemble.n_features) for t in ensemble.trees]
        self.lo = np.concatenate([p[0] for p in parts])
        self.hi = np.concatenate([p[1] for p in parts])
        self.bits, self.scale, self.variation_lsb, self.seed = bits, scale, variation_lsb, seed
        # the DAC of quantized programs: (offset, step) of a uniform grid, or each feature's kept edges
        self._grid: tuple[np.ndarray, np.ndarray] | None = None
        self._kept_edges: list[np.ndarray] | None = None
        if bits is not None:
            self._quantize(bits, X, scale, variation_lsb, seed)
        self.leaf = np.concatenate([p[2] for p in parts])  # (rows, width): all trees of an ensemble share a width
        counts = np.array([len(p[0]) for p in parts])
        self.tree_of_row = np.repeat(np.arange(len(parts)), counts)
        starts = np.concatenate([[0], np.cumsum(counts)])
        self.tree_rows = [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]
        # every feature's stored bounds over all trees: an input is binned once per feature
        self._edges = [np.unique(np.concatenate([self.lo[:, f], self.hi[:, f]])) for f in range(self.n_features)]
        self._edges = [u[np.isfinite(u)] for u in self._edges]
        self._tables = [self._build(r) for r in self.tree_rows]

    def _quantize(self, bits: int, X, scale: str, variation_lsb: float, seed: int) -> None:
        """Store bounds and compare inputs as ``bits``-bit codes (X-TIME stores an 8-bit bound in two 4-bit
        memristor levels); optionally perturb every stored bound by seeded Gaussian analog variation of
        ``variation_lsb`` code steps.

        ``scale="uniform"``: codes evenly spaced over each feature's range in ``X`` (a linear DAC).
        ``scale="thresholds"``: codes are the bins between the feature's stored thresholds (X-TIME's inputs
        are histogram-binned codes), exact while a feature has fewer than 2**bits distinct thresholds; past
        that, the kept edges are the thresholds nearest evenly spaced quantiles of ``X`` (of the thresholds'
        ranks when no ``X`` is given) and every bound snaps to its nearest kept edge."""
        if X is None and scale == "uniform":
            raise InputError(
                "quantized compilation with scale='uniform' needs data X to set each feature's input range"
            )
        self._top = 2**bits - 1
        if scale == "uniform":
            lo_f, hi_f = X.min(axis=0), X.max(axis=0)
            step = np.where(hi_f > lo_f, (hi_f - lo_f) / self._top, 1.0)
            self._grid = (lo_f, step)
            codes = [np.round((b - lo_f) / step) for b in (self.lo, self.hi)]
        else:
            codes = self._threshold_codes(None if X is None else X.astype(self.ensemble.input_dtype).astype(np.float64))
        rng = np.random.default_rng(seed)
        for bound, code in zip((self.lo, self.hi), codes):
            finite = np.isfinite(bound)
            if variation_lsb > 0:
                code = code + rng.normal(0.0, variation_lsb, code.shape)
            bound[finite] = code[finite]

    def _threshold_codes(self, X: np.ndarray | None) -> list[np.ndarray]:
        """Per feature, at most 2**bits - 1 edges from its stored thresholds; bound codes and the encoder."""
        kept = []
        codes = [np.full_like(self.lo, np.nan), np.full_like(self.hi, np.nan)]
        le = self.ensemble.split == "le"
        for f in range(self.n_features):
            u = np.unique(np.concatenate([self.lo[:, f], self.hi[:, f]]))
            u = u[np.isfinite(u)]
            if len(u) > self._top:
                if X is None:  # no data: the thresholds' own ranks stand in for quantiles
                    q = np.arange(len(u)) / max(len(u) - 1, 1)
                else:  # the data quantile of each threshold
                    q = np.searchsorted(np.sort(X[:, f]), u, side="right") / len(X)
                pick = np.unique(np.searchsorted(q, np.linspace(0, 1, self._top), side="left").clip(0, len(u) - 1))
                u = u[pick]
            kept.append(u)
            for code, bound in zip(codes, (self.lo[:, f], self.hi[:, f])):
                finite = np.isfinite(bound)
                b = bound[finite]
                idx = np.searchsorted(u, b)
                left, right = np.maximum(idx - 1, 0), np.minimum(idx, len(u) - 1)
                idx = np.where(np.abs(b - u[left]) < np.abs(u[right] - b), left, right)  # nearest kept edge
                # x <= u_i  <=>  #(u < x) <= i ;  x < u_i  <=>  #(u <= x) < i + 1
                code[finite, f] = idx if le else idx + 1
        self._kept_edges = kept
        return codes

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

    # ---- summaries -----------------------------------------------------------------------------------
    def feature_names(self) -> list[str]:
        """The features' names in ``to_pandas`` (``x0``, ``x1``, ...: the ensemble keeps no names)."""
        return [f"x{f}" for f in range(self.n_features)]

    def value_names(self) -> list[str]:
        """The names of the leaf-value columns of ``to_pandas``: ``value`` for one value per row, else
        ``value_<class>`` (a forest's class distribution) or ``value_<k>``."""
        width = self.leaf.shape[1]
        if width == 1:
            return ["value"]
        classes = self.ensemble.classes
        if classes is not None and len(classes) == width:
            return [f"value_{c}" for c in classes]
        return [f"value_{k}" for k in range(width)]

    def _per_output_trees(self) -> bool:
        """Whether each tree adds to one output (boosted multi-class ensembles), so rows carry it."""
        return any(t.output >= 0 for t in self.ensemble.trees) and self.ensemble.n_outputs > 1

    def to_pandas(self):
        """The program as a ``pandas.DataFrame``, one row per CAM row: ``tree`` (and ``output``, the class a
        boosted tree adds to), then each feature's stored bounds ``x<f>_lo`` and ``x<f>_hi`` (the cell admits
        lo < x <= hi, or lo <= x < hi for XGBoost / LightGBM; -inf / inf where unbounded, both at a don't-care
        cell; DAC codes in a quantized program), then the leaf value(s) (``value_names``). A
        ``MissingDependencyError`` when pandas is not installed."""
        pd = import_pandas("CamProgram.to_pandas")
        columns: dict[str, np.ndarray] = {"tree": self.tree_of_row}
        if self._per_output_trees():
            outputs = np.array([t.output for t in self.ensemble.trees])
            columns["output"] = outputs[self.tree_of_row]
        for f, name in enumerate(self.feature_names()):
            columns[f"{name}_lo"] = self.lo[:, f]
            columns[f"{name}_hi"] = self.hi[:, f]
        for k, name in enumerate(self.value_names()):
            columns[name] = self.leaf[:, k]
        return pd.DataFrame(columns)

    def headline(self) -> dict[str, str]:
        """The summary of the program: {label: text}."""
        e = self.ensemble
        tested = int((~self.dont_care).any(axis=0).sum())
        if e.classes is not None:
            task = f"{len(e.classes)} classes: {one_line(', '.join(str(c) for c in e.classes), 50)}"
        else:
            task = f"regression, {e.n_outputs} output{'s' if e.n_outputs != 1 else ''}"
        if self.bits is None:
            bits = "exact thresholds"
        else:
            bits = f"{self.bits}-bit codes ({self.scale} scale" + (
                f", {self.variation_lsb:g} LSB variation, seed {self.seed})" if self.variation_lsb else ")"
            )
        return {
            "trees": str(len(e.trees)),
            "rows": str(self.rows),
            "features": f"{self.n_features} ({tested} tested)",
            "task": task,
            "bits": bits,
            "sparsity": f"{figure_text('sparsity', self.sparsity)} don't-care cells",
            "match": "lo < x <= hi" if e.split == "le" else "lo <= x < hi",
        }

    def __repr__(self) -> str:
        return text_summary(type(self).__name__, self.ensemble.kind or "tree ensemble", list(self.headline().items()))

    def _repr_html_(self) -> str:
        """The summary and the first rows, each tested feature's cell as its interval ("*": don't care)."""
        rows = []
        used = [f for f in range(self.n_features) if not self.dont_care[:, f].all()]
        names = self.feature_names()
        values = self.value_names()
        for r in range(min(self.rows, 10)):
            row: dict[str, object] = {"tree": int(self.tree_of_row[r])}
            for f in used:
                lo, hi = self.lo[r, f], self.hi[r, f]
                row[names[f]] = "*" if np.isneginf(lo) and np.isposinf(hi) else _interval(lo, hi, self.ensemble.split)
            row.update({v: float(self.leaf[r, k]) for k, v in enumerate(values)})
            rows.append(row)
        # leaf values first after the tree, so that a wide program still shows them
        columns = ["tree", *values]
        return html_summary(
            type(self).__name__,
            self.ensemble.kind or "tree ensemble",
            list(self.headline().items()),
            rows,
            columns,
            total_rows=self.rows,
        )

    # ---- search -------------------------------------------------------------------------------------
    def encode(self, X) -> np.ndarray:
        """Validated inputs as the CAM compares them: the library's precision, or DAC codes."""
        X = check_samples(X, self.n_features)
        X = X.astype(self.ensemble.input_dtype).astype(np.float64)
        if self._grid is not None:
            X = np.clip(np.round((X - self._grid[0]) / self._grid[1]), 0, self._top)
        elif self._kept_edges is not None:
            side = "left" if self.ensemble.split == "le" else "right"
            X = np.stack(
                [np.searchsorted(u, X[:, f], side=side) for f, u in enumerate(self._kept_edges)],  # type: ignore[call-overload]
                axis=1,
            ).astype(np.float64)
        return X

    def inside(self, x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Cell match of checked inputs ``x`` against bounds, with the model's boundary semantics
        (broadcasting); the bit-parallel search is equivalent to AND-ing this over a row's features."""
        if self.ensemble.split == "le":
            return (lo < x) & (x <= hi)
        return (lo <= x) & (x < hi)

    def bound_levels(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi): each stored bound as a fraction of its feature's range, in [0, 1], which sets the
        conductance a cell is programmed to; NaN at don't-care bounds. Quantized programs use their own
        code grid; exact ones the range of ``X``."""
        if self.bits is not None:
            lo_f, span = np.zeros(self.n_features), np.full(self.n_features, float(self._top))
        else:
            X = self.encode(X)
            lo_f, span = X.min(axis=0), np.ptp(X, axis=0)
            span = np.where(span > 0, span, 1.0)
        lo, hi = (np.where(np.isfinite(b), np.clip((b - lo_f) / span, 0.0, 1.0), np.nan) for b in (self.lo, self.hi))
        return lo, hi

    def _bins(self, X: np.ndarray) -> list[np.ndarray]:
        side = "left" if self.ensemble.split == "le" else "right"
        return [np.searchsorted(u, X[:, f], side=side) for f, u in enumerate(self._edges)]  # type: ignore[call-overload]

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
        X = self.encode(X)
        out = np.empty((X.shape[0], len(self._tables)), dtype=np.int64)
        for start in range(0, X.shape[0], _CHUNK):
            for i, rows in self._search_block(X[start : start + _CHUNK]):
                out[start : start + _CHUNK, i] = rows
        return out

    def raw(self, X) -> np.ndarray:
        """(samples, outputs) the ensemble's aggregated leaf values before the link function."""
        e = self.ensemble
        X = self.encode(X)
        width = self.leaf.shape[1]
        total = np.zeros((X.shape[0], e.n_outputs if e.aggregate == "sum" else width))
        for start in range(0, X.shape[0], _CHUNK):
            block = total[start : start + _CHUNK]
            for i, rows in self._search_block(X[start : start + _CHUNK]):
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
        if e.link == "ova":  # one logistic per class, not normalized (LightGBM's multiclassova)
            return 1.0 / (1.0 + np.exp(-r))
        z = np.exp(r - r.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        e = self.ensemble
        if e.classes is not None:
            return e.classes[np.argmax(self.predict_proba(X), axis=1)]
        r = self.raw(X)
        return r[:, 0] if r.shape[1] == 1 else r


def _interval(lo: float, hi: float, split: str) -> str:
    """A cell's admitted inputs as an interval: (lo, hi] for 'le' splits, [lo, hi) for 'lt' ones."""
    left, right = ("(", "]") if split == "le" else ("[", ")")
    a = "-inf" if np.isneginf(lo) else f"{lo:.4g}"
    b = "inf" if np.isposinf(hi) else f"{hi:.4g}"
    return f"{left}{a}, {b}{right}"


def _first_set_bit(words: np.ndarray) -> np.ndarray:
    """Index of the lowest set bit over (N, W) uint64 words (word 0 first), -1 where none is set."""
    out = np.full(words.shape[0], -1, dtype=np.int64)
    for w in range(words.shape[1] - 1, -1, -1):  # at most a few words per tree
        x = words[:, w]
        low = x & (~x + np.uint64(1))
        nz = x != 0
        out = np.where(
            nz, w * 64 + np.log2(low.astype(np.float64), where=nz, out=np.zeros(len(x))).astype(np.int64), out
        )
    return out


def compile(
    model,
    bits: int | None = None,
    *,
    X=None,
    scale: str = "thresholds",
    variation_lsb: float = 0.0,  # noqa: A001
    seed: int = 0,
) -> CamProgram:
    """Compile a scikit-learn / XGBoost / LightGBM tree model to an analog-CAM program.

    ``bits=None`` keeps exact thresholds (predictions equal the model's). With ``bits``, inputs and stored
    bounds are ``bits``-bit codes: the bins between the model's own thresholds (``scale="thresholds"``,
    X-TIME's binned inputs; ``X`` optional) or evenly spaced over each feature's range in ``X``
    (``scale="uniform"``, a linear DAC);
    ``variation_lsb`` adds seeded Gaussian variation (in code steps) to every stored bound; it needs ``bits``.

    Raises ``InputError`` for an unfitted or unsupported model (multi-output classifiers, linear or DART
    boosters, categorical splits, LightGBM linear trees) and for arguments outside their ranges: ``bits`` an
    integer from 1 to 16 or None, ``scale`` 'thresholds' or 'uniform', ``variation_lsb`` a finite number >= 0,
    ``seed`` an integer >= 0 (numpy integers accepted), ``X`` finite numbers of shape (samples, features).
    """
    return CamProgram(extract(model), bits=bits, X=X, scale=scale, variation_lsb=variation_lsb, seed=seed)
