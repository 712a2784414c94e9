"""The ``cimkit trees`` job: train a tree ensemble on an offline tabular set, compile it to analog CAM, and
report accuracy (exact and quantized), rows, arrays, sparsity, and cost per decision under each search
scheme."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, short_repr
from ..io import atomic_write, check_output_path, figure_suffixes, json_safe, strict_json
from ..report import Result, figure_folder, saved_figure
from .cost import SCHEMES, compare
from .program import CamProgram, check_scale, check_seed, check_variation, compile
from .report import CamReport
from .spec import CamSpec

MODELS = ("rf", "et", "dt", "gb", "hgb", "xgboost", "lightgbm")


def make_model(kind: str, trees: int, depth: int, seed: int):
    """An untrained scikit-learn / XGBoost / LightGBM classifier of ``trees`` trees of depth ``depth``."""
    from sklearn import ensemble, tree

    if not isinstance(kind, str) or kind not in MODELS:
        raise InputError(f"unknown model {short_repr(kind)}; available: {', '.join(MODELS)}")
    for name, value in (("trees", trees), ("depth", depth)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name} must be an integer >= 1, got {short_repr(value)}")
    trees, depth, seed = int(trees), int(depth), check_seed(seed)
    if kind == "rf":
        return ensemble.RandomForestClassifier(trees, max_depth=depth, random_state=seed, n_jobs=-1)
    if kind == "et":
        return ensemble.ExtraTreesClassifier(trees, max_depth=depth, random_state=seed, n_jobs=-1)
    if kind == "dt":
        return tree.DecisionTreeClassifier(max_depth=depth, random_state=seed)
    if kind == "gb":
        return ensemble.GradientBoostingClassifier(n_estimators=trees, max_depth=depth, random_state=seed)
    if kind == "hgb":
        return ensemble.HistGradientBoostingClassifier(
            max_iter=trees, max_depth=depth, random_state=seed, early_stopping=False
        )
    try:
        if kind == "xgboost":
            import xgboost

            return xgboost.XGBClassifier(n_estimators=trees, max_depth=depth, random_state=seed, n_jobs=2)
        import lightgbm

        return lightgbm.LGBMClassifier(
            n_estimators=trees,
            max_depth=depth,
            num_leaves=min(2**depth, 131072),
            random_state=seed,
            verbose=-1,
            n_jobs=2,
        )
    except ModuleNotFoundError as exc:
        raise InputError(f"model {kind!r} needs the {exc.name} package: pip install cimkit[trees]") from None


@dataclass
class TreesResult(Result):
    """What ``run_trees`` measured: accuracy of the model, of its exact CAM program and of the quantized one,
    the program's size, and one ``CamReport`` per search scheme (``reports``).

    The result protocol (``cimkit.report.Result``): ``to_dict`` / ``to_json`` (``summary()``, each scheme's
    report under ``schemes``), ``to_csv`` (one row per scheme), ``table`` (cost per decision of each scheme),
    ``figures`` (energy per scheme and component; rows left per segment)."""

    data: str
    model: str
    trees: int
    depth: int
    bits: int
    test_samples: int
    model_accuracy: float
    cam_accuracy: float  # exact thresholds: equals the model's
    cam_predictions_equal: bool
    quantized_accuracy: float  # inputs and bounds at spec.bits, on ``scale``
    scale: str
    variation_lsb: float  # Gaussian variation of the stored bounds (code steps) in the quantized program
    rows: int
    features: int
    sparsity: float
    reports: dict[str, CamReport] = field(default_factory=dict)
    hardware: str = ""  # the CAM arrays priced, in words (e.g. "256x16-feature arrays (2 cells/feature, 16 nm)")

    def summary(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "reports"}
        out["schemes"] = {k: r.summary() for k, r in self.reports.items()}
        return out

    def to_dict(self) -> dict:
        return json_safe({"result": type(self).__name__, **self.summary()})

    def to_json(self, path: str | Path | None = None) -> str:
        """``to_dict()`` as strict JSON (a non-finite number is written as null); written atomically to ``path``
        if given."""
        text = strict_json(self.to_dict(), indent=2)
        if path is not None:
            atomic_write(path, text)
        return text

    def records(self) -> list[dict]:
        """One row per search scheme: arrays, energy per decision (J), latency (s), throughput, area (mm^2),
        then energy and area by component (``energy_<component>_j``, ``area_<component>_mm2``)."""
        out = []
        for name, r in self.reports.items():
            row = {
                "scheme": name,
                "arrays": r.arrays,
                "energy_j": r.energy_j,
                "latency_s": r.latency_s,
                "throughput_per_s": r.throughput_per_s,
                "area_mm2": r.area_mm2,
                "cell_evaluations": r.cell_evaluations,
            }
            row.update({f"energy_{c}_j": v for c, v in r.energy_breakdown_j.items()})
            row.update({f"area_{c}_mm2": v for c, v in r.area_breakdown_mm2.items()})
            out.append(row)
        return out

    def csv_columns(self) -> tuple[str, ...]:
        return ("scheme", "arrays", "energy_j", "latency_s", "throughput_per_s", "area_mm2", "cell_evaluations")

    def table(self):
        """Cost per decision of each scheme, with its energy relative to ``raw`` and ``xtime`` where priced."""
        from rich.table import Table

        t = Table(title="cost per decision" + (f" on {self.hardware}" if self.hardware else ""))
        t.add_column("scheme", no_wrap=True)
        refs = [n for n in ("raw", "xtime") if n in self.reports]
        for col in ("arrays", "nJ/decision", *(f"vs {n}" for n in refs), "latency", "decisions/s", "mm^2"):
            t.add_column(col, justify="right", no_wrap=True)
        for name, r in self.reports.items():
            e = r.energy_j
            t.add_row(
                name,
                str(r.arrays),
                f"{e * 1e9:.3f}",
                *(f"{self.reports[n].energy_j / e:.2f}x" for n in refs),
                f"{r.latency_s * 1e9:.0f} ns",
                f"{r.throughput_per_s:.3g}",
                f"{r.area_mm2:.3f}",
            )
        return t

    def figures(self, folder: str | Path) -> list[Path]:
        """``trees.png`` (``plot_trees``): energy per decision by scheme and component, and the rows searched
        in each match-line segment; nothing when no scheme was priced."""
        return [plot_trees(self, figure_folder(folder) / "trees.png")] if self.reports else []


def run_trees(
    data: str = "breast_cancer",
    model: str = "rf",
    *,
    trees: int = 100,
    depth: int = 8,
    spec: CamSpec | None = None,
    scale: str = "thresholds",
    variation_lsb: float = 0.0,
    energy_samples: int = 2000,
    seed: int = 0,
    schemes=tuple(SCHEMES),
) -> tuple[TreesResult, CamProgram]:
    """Train, compile and price one ensemble; the priced program is quantized to ``spec.bits`` on ``scale``
    (see ``compile``) and its energy averaged over up to ``energy_samples`` test inputs."""
    from ..data import tabular

    if spec is None:
        spec = CamSpec()
    elif not isinstance(spec, CamSpec):
        raise InputError(f"spec must be a cimkit.cam.CamSpec or None, got {type(spec).__name__}")
    # every argument is checked before training, not after
    check_scale(scale)
    variation_lsb, seed = check_variation(variation_lsb), check_seed(seed)
    if (
        isinstance(energy_samples, (bool, np.bool_))
        or not isinstance(energy_samples, (int, np.integer))
        or energy_samples < 1
    ):
        raise InputError(f"energy_samples must be an integer >= 1, got {short_repr(energy_samples)}")
    schemes = (schemes,) if isinstance(schemes, str) else tuple(schemes)
    for s in schemes:
        if not isinstance(s, str) or s not in SCHEMES:
            raise InputError(f"unknown scheme {short_repr(s)}; available: {', '.join(SCHEMES)}")
    clf = make_model(model, trees, depth, seed)
    t = tabular(data, seed=seed)
    clf.fit(t.x_train, t.y_train)
    prog = compile(clf)
    want = clf.predict(t.x_test)
    got = prog.predict(t.x_test)
    quant = compile(clf, bits=spec.bits, X=t.x_train, scale=scale, variation_lsb=variation_lsb, seed=seed)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(t.x_test), size=min(energy_samples, len(t.x_test)), replace=False)
    reports = compare(quant, t.x_test[np.sort(pick)], spec, schemes)
    result = TreesResult(
        data,
        model,
        trees,
        depth,
        spec.bits,
        len(t.y_test),
        float((want == t.y_test).mean()),
        float((got == t.y_test).mean()),
        bool(np.array_equal(got, want)),
        float((quant.predict(t.x_test) == t.y_test).mean()),
        scale,
        variation_lsb,
        prog.rows,
        prog.n_features,
        prog.sparsity,
        reports,
        hardware=f"{spec.rows}x{spec.cols}-feature arrays ({spec.cells_per_feature} cells/feature, "
        f"{spec.node_nm:g} nm)",
    )
    return result, prog


def plot_trees(result: TreesResult, path: str | Path) -> Path:
    """Energy per decision by component for each scheme, and the fraction of rows searched in each
    match-line segment under the monotone (sequential) schemes."""
    path = check_output_path(path, figure_suffixes(), "figure")
    names = list(result.reports)
    # every component with energy in any scheme, plug-ins included (built-ins first, in report order)
    comps = list(dict.fromkeys(c for n in names for c in result.reports[n].energy_breakdown_j))
    with saved_figure(path, ncols=2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]}) as (fig, (ax, ax2)):
        bottom = np.zeros(len(names))
        for comp in comps:
            vals = np.array([result.reports[n].energy_breakdown_j.get(comp, 0.0) * 1e9 for n in names])
            ax.bar(names, vals, bottom=bottom, label=comp)
            bottom += vals
        ax.set_ylabel("energy per decision (nJ)")
        ax.set_title(
            f"{result.model} x{result.trees}, depth {result.depth} on {result.data}: {result.rows} rows, "
            f"sparsity {result.sparsity:.0%}"
        )
        ax.tick_params(axis="x", rotation=30)
        ax.legend(fontsize=7)
        for n in names:
            r = result.reports[n]
            if SCHEMES[n].sequential:
                ax2.plot(np.arange(1, len(r.evaluated_fraction) + 1), r.evaluated_fraction, marker="o", label=n)
        ax2.set_xlabel("match-line segment (evaluated in turn)")
        ax2.set_ylabel("fraction of rows searched")
        ax2.set_yscale("log")
        ax2.set_title("monotone match lines: rows left to search")
        ax2.legend(fontsize=7)
    return path


def sparsity_sweep(
    *,
    depths=(4, 6, 8, 10),
    trees=(10, 50, 100),
    features=(8, 16, 32, 64),
    base_depth: int = 8,
    base_trees: int = 50,
    samples: int = 5000,
    spec: CamSpec | None = None,
    seed: int = 0,
) -> list[dict]:
    """Don't-care fraction of random forests on the synthetic set, varying depth, tree count and feature
    count one at a time (the others at ``base_depth``, ``base_trees`` and 16 features): of the program's
    cells, and of the cells of the arrays that must be stored, X-TIME-style (trees packed, model feature
    order) and after MonoSparse reordering (all-don't-care arrays dropped)."""
    from ..data import tabular
    from .layout import layout

    spec = spec or CamSpec()
    rows = []
    cases = (
        [("depth", d, d, base_trees, 16) for d in depths]
        + [("trees", t, base_depth, t, 16) for t in trees]
        + [("features", f, base_depth, base_trees, f) for f in features]
    )
    for varied, value, depth, n_trees, n_features in cases:
        t = tabular("synthetic", samples=samples, features=n_features, seed=seed)
        prog = compile(make_model("rf", n_trees, depth, seed).fit(t.x_train, t.y_train))
        lay = layout(prog, spec, reorder=False, sequential=False)
        packed = layout(prog, spec, reorder=True, sequential=True)
        rows.append(
            {
                "varied": varied,
                "value": value,
                "depth": depth,
                "trees": n_trees,
                "features": n_features,
                "rows": prog.rows,
                "program_sparsity": prog.sparsity,
                "array_sparsity": lay.array_sparsity(),
                "arrays": int(lay.arrays_tested().sum()),
                "arrays_reordered": int(packed.arrays_tested().sum()),
                "array_sparsity_reordered": packed.array_sparsity(),
            }
        )
    return rows
