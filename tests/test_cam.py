"""Tree ensembles on analog CAM: the compiled program predicts exactly what the model predicts."""

import numpy as np
import pytest
from sklearn import ensemble, tree
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

import cimkit as ck
from cimkit.errors import InputError

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

WINE, CANCER, DIABETES = load_wine(return_X_y=True), load_breast_cancer(return_X_y=True), load_diabetes(return_X_y=True)

CLASSIFIERS = [
    lambda: tree.DecisionTreeClassifier(max_depth=6, random_state=0),
    lambda: ensemble.RandomForestClassifier(30, max_depth=6, random_state=0),
    lambda: ensemble.ExtraTreesClassifier(30, max_depth=6, random_state=0),
    lambda: ensemble.GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0),
    lambda: ensemble.HistGradientBoostingClassifier(max_iter=30, random_state=0),
    lambda: xgb.XGBClassifier(n_estimators=30, max_depth=4),
    lambda: lgb.LGBMClassifier(n_estimators=30, verbose=-1),
]
REGRESSORS = [
    lambda: tree.DecisionTreeRegressor(max_depth=6, random_state=0),
    lambda: ensemble.RandomForestRegressor(20, max_depth=6, random_state=0),
    lambda: ensemble.ExtraTreesRegressor(20, max_depth=6, random_state=0),
    lambda: ensemble.GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0),
    lambda: ensemble.HistGradientBoostingRegressor(max_iter=30, random_state=0),
    lambda: xgb.XGBRegressor(n_estimators=30, max_depth=4),
    lambda: lgb.LGBMRegressor(n_estimators=30, verbose=-1),
]


@pytest.mark.parametrize("data", [WINE, CANCER], ids=["wine-3class", "cancer-binary"])
@pytest.mark.parametrize("make", CLASSIFIERS, ids=lambda f: type(f()).__name__)
def test_classifiers_predict_exactly(make, data):
    X, y = data
    model = make().fit(X, y)
    prog = ck.cam.compile(model)
    rng = np.random.default_rng(0)
    probe = np.concatenate([X, X + rng.normal(0, 0.01, X.shape) * X.std(axis=0)])  # off the training points too
    assert np.array_equal(prog.predict(probe), model.predict(probe))
    assert np.abs(prog.predict_proba(probe) - model.predict_proba(probe)).max() < 1e-6


@pytest.mark.parametrize("make", REGRESSORS, ids=lambda f: type(f()).__name__)
def test_regressors_predict_exactly(make):
    X, y = DIABETES
    model = make().fit(X, y)
    got, want = ck.cam.compile(model).predict(X), model.predict(X)
    assert np.abs(got - want).max() <= 1e-6 * np.abs(want).max()  # XGBoost sums leaves in float32


def test_thresholds_keep_each_librarys_boundary_semantics():
    X = np.arange(40, dtype=float)[:, None]
    y = (X[:, 0] > 17).astype(int)
    for model in (
        tree.DecisionTreeClassifier().fit(X, y),
        xgb.XGBClassifier(n_estimators=1, max_depth=1, min_child_weight=0).fit(X, y),
    ):
        prog = ck.cam.compile(model)
        edge = np.array([[t] for t in np.unique(prog.hi[np.isfinite(prog.hi)])])  # exactly on a stored bound
        assert np.array_equal(prog.predict(edge), model.predict(edge))


def test_rows_and_dont_care_cells():
    X, y = WINE
    model = tree.DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    prog = ck.cam.compile(model)
    assert prog.rows == model.get_n_leaves()
    tested = (~prog.dont_care).sum(axis=1)
    assert (tested >= 1).all() and (tested <= model.get_depth()).all()
    assert 0 < prog.sparsity < 1


def test_bad_input():
    X, y = WINE
    prog = ck.cam.compile(ensemble.RandomForestClassifier(5, random_state=0).fit(X, y))
    with pytest.raises(InputError, match="shape"):
        prog.predict(X[:, :5])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        prog.predict(bad)
    with pytest.raises(InputError, match="unsupported model type"):
        ck.cam.compile(object())
    with pytest.raises(InputError, match="categorical"):
        ck.cam.compile(
            ensemble.HistGradientBoostingClassifier(categorical_features=[0], max_iter=3).fit(
                np.c_[np.arange(60) % 3, np.arange(60)], np.arange(60) % 2
            )
        )
    broken = ck.cam.extract(tree.DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y))
    broken.trees[0].threshold[0] = np.nan
    with pytest.raises(InputError, match="non-finite split threshold"):
        ck.cam.CamProgram(broken)
    with pytest.raises(InputError, match="is a regressor"):
        ck.cam.compile(tree.DecisionTreeRegressor().fit(X, y)).predict_proba(X)


def test_quantized_bounds_and_variation_change_accuracy_reproducibly():
    X, y = CANCER
    model = ensemble.RandomForestClassifier(50, max_depth=6, random_state=0).fit(X, y)
    exact = (model.predict(X) == y).mean()
    acc = {b: (ck.cam.compile(model, bits=b, X=X, scale="uniform").predict(X) == y).mean() for b in (2, 4, 8, 12)}
    assert abs(acc[12] - exact) <= 0.01 and abs(acc[8] - exact) <= 0.02  # 8-bit bounds keep the accuracy
    assert acc[2] < acc[8]  # too coarse a grid loses it
    noisy = [
        ck.cam.compile(model, bits=8, X=X, scale="uniform", variation_lsb=2.0, seed=s).predict(X) for s in (0, 0, 1)
    ]
    assert np.array_equal(noisy[0], noisy[1]) and not np.array_equal(noisy[0], noisy[2])
    with pytest.raises(InputError, match="needs data X"):
        ck.cam.compile(model, bits=8, scale="uniform")
    # threshold-binned codes need no data: 8 bits hold this forest's thresholds per feature closely
    assert abs((ck.cam.compile(model, bits=8).predict(X) == y).mean() - exact) <= 0.01
    with pytest.raises(InputError, match="bits must be"):
        ck.cam.compile(model, bits=0, X=X)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ensemble.RandomForestClassifier(30, max_depth=6, random_state=0),
        lambda: xgb.XGBClassifier(n_estimators=20, max_depth=4),
    ],
    ids=["sklearn", "xgboost"],
)
def test_threshold_binned_codes_are_exact_when_bins_suffice(make):
    """X-TIME's inputs are bins between the model's thresholds: with fewer distinct thresholds per feature
    than codes, the quantized CAM decides exactly as the model does, on either boundary semantics."""
    X, y = WINE
    model = make().fit(X, y)
    prog = ck.cam.compile(model, bits=12, X=X, scale="thresholds")
    rng = np.random.default_rng(0)
    probe = np.concatenate([X, X + rng.normal(0, 0.01, X.shape) * X.std(axis=0)])
    on_bounds = np.repeat(X[:1], 5, axis=0)
    exact = ck.cam.compile(model)
    on_bounds[:, 0] = np.unique(exact.hi[np.isfinite(exact.hi[:, 0]), 0])[:5]
    probe = np.concatenate([probe, on_bounds])
    assert np.array_equal(prog.predict(probe), model.predict(probe))
    assert prog.lo[np.isfinite(prog.lo)].max() <= 2**12 - 1


def test_threshold_binned_codes_beat_a_uniform_grid_at_few_bits():
    X, y = CANCER
    model = ensemble.RandomForestClassifier(50, max_depth=6, random_state=0).fit(X, y)
    acc = {s: (ck.cam.compile(model, bits=4, X=X, scale=s).predict(X) == y).mean() for s in ("uniform", "thresholds")}
    assert acc["thresholds"] > acc["uniform"]
    with pytest.raises(InputError, match="scale must be"):
        ck.cam.compile(model, bits=4, X=X, scale="log")


def test_programs_pickle_for_parallel_workers():
    import pickle

    X, y = WINE
    model = ensemble.RandomForestClassifier(5, random_state=0).fit(X, y)
    for prog in (
        ck.cam.compile(model),
        ck.cam.compile(model, bits=6, X=X, scale="uniform"),
        ck.cam.compile(model, bits=6),
    ):
        assert np.array_equal(pickle.loads(pickle.dumps(prog)).predict(X), prog.predict(X))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), leaves=st.integers(2, 40), bits=st.integers(6, 10))
def test_threshold_codes_preserve_every_comparison(seed, leaves, bits):
    """Property: with fewer thresholds than codes, encoding inputs and bounds as bins between thresholds
    changes no comparison, for inputs anywhere, including exactly on a threshold."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 2)) * rng.uniform(0.01, 100, size=2)
    y = rng.integers(0, 3, size=300)
    model = tree.DecisionTreeClassifier(max_leaf_nodes=leaves, random_state=seed).fit(X, y)
    exact = ck.cam.compile(model)
    on = [np.unique(b[np.isfinite(b)]) for b in (exact.hi[:, 0], exact.hi[:, 1])]
    probe = np.concatenate(
        [
            rng.normal(size=(200, 2)) * X.std(axis=0),
            np.stack(
                [
                    np.resize(on[0], 50) if len(on[0]) else np.zeros(50),
                    np.resize(on[1], 50) if len(on[1]) else np.zeros(50),
                ],
                axis=1,
            ),
        ]
    )
    prog = ck.cam.compile(model, bits=bits)
    assert np.array_equal(prog.match(probe), exact.match(probe))
