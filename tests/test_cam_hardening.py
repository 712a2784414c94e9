"""No silent wrong answers from cimkit.cam: models it cannot reproduce exactly and arguments outside their
ranges are refused at compile time with one clear message, and its outputs are written atomically."""

import json
import math

import numpy as np
import pytest
from sklearn import ensemble, tree

import cimkit as ck
from cimkit.cam import CamSpec
from cimkit.cam.experiment import TreesResult, plot_trees
from cimkit.errors import InputError, SpecError

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(240, 4))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)
Y3 = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
YR = 2 * X[:, 0] + X[:, 2]


@pytest.fixture(scope="module")
def forest():
    return ensemble.RandomForestClassifier(5, max_depth=3, random_state=0).fit(X, Y)


# ---- models ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: tree.DecisionTreeClassifier(),
        lambda: ensemble.RandomForestClassifier(),
        lambda: ensemble.GradientBoostingRegressor(),
        lambda: ensemble.HistGradientBoostingClassifier(),
        lambda: xgb.XGBClassifier(),
        lambda: lgb.LGBMClassifier(),
        lambda: lgb.LGBMRegressor(),
    ],
    ids=lambda f: type(f()).__name__,
)
def test_unfitted_models_are_refused_by_name(make):
    model = make()
    with pytest.raises(InputError, match=rf"{type(model).__name__} model is not fitted; call fit first"):
        ck.cam.compile(model)


@pytest.mark.parametrize(
    "make",
    [
        lambda: tree.DecisionTreeClassifier(max_depth=3),
        lambda: ensemble.RandomForestClassifier(3, max_depth=3, random_state=0),
    ],
    ids=["tree", "forest"],
)
def test_multi_output_classifiers_are_refused_at_compile(make):
    model = make().fit(X, np.stack([Y, 1 - Y], axis=1))
    with pytest.raises(InputError, match="2 outputs.*multi-output classifiers are not supported"):
        ck.cam.compile(model)


def test_multi_output_regressors_still_compile_exactly():
    model = ensemble.RandomForestRegressor(4, max_depth=3, random_state=0).fit(X, np.stack([YR, -YR], axis=1))
    np.testing.assert_allclose(ck.cam.compile(model).predict(X), model.predict(X), rtol=1e-9)


@pytest.mark.parametrize("booster", ["gblinear", "dart"])
def test_xgboost_boosters_without_plain_trees_are_refused(booster):
    model = xgb.XGBClassifier(booster=booster, n_estimators=3, n_jobs=1).fit(X, Y)
    with pytest.raises(InputError, match=f"booster '{booster}'.*booster='gbtree'"):
        ck.cam.compile(model)


def test_xgboost_multi_target_and_categorical_models_are_refused():
    with pytest.raises(InputError, match="2 targets"):
        ck.cam.compile(
            xgb.XGBRegressor(n_estimators=2, tree_method="hist", n_jobs=1).fit(X, np.stack([YR, -YR], axis=1))
        )
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=list("abcd"))
    df["c"] = pd.Categorical(RNG.integers(0, 5, len(X)))
    model = xgb.XGBClassifier(n_estimators=2, tree_method="hist", enable_categorical=True, n_jobs=1).fit(df, Y)
    with pytest.raises(InputError, match="categorical"):
        ck.cam.compile(model)


def test_xgboost_after_early_stopping_uses_the_trees_predict_uses():
    model = xgb.XGBClassifier(n_estimators=60, early_stopping_rounds=3, random_state=0, n_jobs=1)
    model.fit(X[:160], Y[:160], eval_set=[(X[160:], Y[160:])], verbose=False)
    assert model.best_iteration + 1 < model.get_booster().num_boosted_rounds()  # the case this tests
    np.testing.assert_allclose(ck.cam.compile(model).predict_proba(X), model.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize(
    "make, data",
    [
        (
            lambda: lgb.LGBMRegressor(
                boosting_type="rf", bagging_fraction=0.5, bagging_freq=1, n_estimators=5, verbose=-1, n_jobs=1
            ),
            "reg",
        ),
        (lambda: lgb.LGBMClassifier(sigmoid=2.0, n_estimators=5, verbose=-1, n_jobs=1), "binary"),
        (lambda: lgb.LGBMClassifier(objective="multiclassova", n_estimators=5, verbose=-1, n_jobs=1), "3class"),
    ],
    ids=["rf-mean", "binary-sigmoid-2", "multiclassova"],
)
def test_lightgbm_outputs_match(make, data):
    y = {"reg": YR, "binary": Y, "3class": Y3}[data]
    model = make().fit(X, y)
    prog = ck.cam.compile(model)
    if data == "reg":
        np.testing.assert_allclose(prog.predict(X), model.predict(X), rtol=1e-9, atol=1e-9)
    else:
        np.testing.assert_allclose(prog.predict_proba(X), model.predict_proba(X), atol=1e-6)
        assert np.array_equal(prog.predict(X), model.predict(X))


def test_lightgbm_linear_trees_and_sqrt_regression_are_refused():
    with pytest.raises(InputError, match="linear_tree"):
        ck.cam.compile(lgb.LGBMRegressor(linear_tree=True, n_estimators=2, verbose=-1, n_jobs=1).fit(X, YR))
    with pytest.raises(InputError, match="reg_sqrt"):
        ck.cam.compile(lgb.LGBMRegressor(reg_sqrt=True, n_estimators=2, verbose=-1, n_jobs=1).fit(X, YR))


# ---- compile arguments ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, -0.5, True, "1", None],
    ids=["nan", "inf", "-inf", "negative", "bool", "str", "None"],
)
def test_variation_lsb_must_be_finite_and_non_negative(forest, value):
    with pytest.raises(InputError, match=r"variation_lsb must be a (finite )?number >= 0"):
        ck.cam.compile(forest, bits=4, variation_lsb=value)


def test_quantization_options_without_bits_are_refused(forest):
    with pytest.raises(InputError, match="variation_lsb=0.5 .*bits is None.*give bits"):
        ck.cam.compile(forest, variation_lsb=0.5)
    with pytest.raises(InputError, match="scale='uniform'.*give bits"):
        ck.cam.compile(forest, X=X, scale="uniform")
    with pytest.raises(InputError, match="scale must be 'uniform' or 'thresholds', got 'log'"):
        ck.cam.compile(forest, scale="log")


@pytest.mark.parametrize("bits", [0, 17, -1, True, 4.0, "8", np.float64(4)], ids=repr)
def test_bits_out_of_range_or_not_an_integer(forest, bits):
    with pytest.raises(InputError, match=r"bits must be an integer from 1 to 16 \(or None"):
        ck.cam.compile(forest, bits=bits)


@pytest.mark.parametrize("seed", [1.5, "a", -1, True, None], ids=repr)
def test_seed_must_be_a_non_negative_integer(forest, seed):
    with pytest.raises(InputError, match="seed must be an integer >= 0"):
        ck.cam.compile(forest, bits=4, variation_lsb=1.0, seed=seed)


def test_numpy_integers_are_accepted_for_bits_and_seed(forest):
    plain = ck.cam.compile(forest, bits=4, X=X, variation_lsb=1.0, seed=3)
    for b, s in ((np.int64(4), np.int64(3)), (np.int32(4), np.uint8(3))):
        prog = ck.cam.compile(forest, bits=b, X=X, variation_lsb=np.float32(1.0), seed=s)
        assert prog.bits == 4 and type(prog.bits) is int
        assert np.array_equal(prog.lo, plain.lo, equal_nan=True) and np.array_equal(prog.predict(X), plain.predict(X))


BAD_INPUTS = {
    "wide": (X[:, :3], r"shape \(samples, 4\).*got shape \(240, 3\)"),
    "1-D": (X[0], r"got shape \(4,\); one sample is X.reshape\(1, -1\)"),
    "empty": (X[:0], "no samples"),
    "nan": (np.where(np.arange(4) == 2, np.nan, X), "non-finite values .*row 0, column 2"),
    "inf": (np.where(np.arange(4) == 1, np.inf, X), "non-finite"),
    "strings": ([["a", "b", "c", "d"]], "must be numeric"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_X_at_compile_and_at_predict(forest, case):
    bad, message = BAD_INPUTS[case]
    with pytest.raises(InputError, match="X .*" + message):
        ck.cam.compile(forest, bits=4, X=bad)
    with pytest.raises(InputError, match=message):
        ck.cam.compile(forest).predict(bad)


def test_quantized_compile_with_empty_X_no_longer_gives_a_program(forest):
    """An empty X used to compile, with quantiles of no data (NaN) choosing the kept edges."""
    with pytest.raises(InputError, match="no samples"):
        ck.cam.compile(forest, bits=2, X=X[:0])


# ---- CAM spec and cost -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "circuit, message",
    [
        ({"sl_voltage_v": math.nan}, "finite"),
        ({"dac_area_um2": math.inf}, "finite"),
        ({"sense_cap_ff": True}, "boolean"),
        ({"search_ns": 1.0}, "allowed here"),
    ],
)
def test_cam_circuit_is_strict(circuit, message):
    with pytest.raises(SpecError, match=message):
        CamSpec.from_dict({"circuit": circuit})


def test_cam_estimate_checks_its_arguments(forest):
    prog = ck.cam.compile(forest, bits=4)
    with pytest.raises(InputError, match="CamSpec"):
        ck.cam.estimate(prog, X, spec=ck.HardwareSpec())
    with pytest.raises(InputError, match="CamProgram"):
        ck.cam.estimate(forest, X)
    with pytest.raises(InputError, match="unknown scheme 'fast'"):
        ck.cam.compare(prog, X, None, ("raw", "fast"))
    assert list(ck.cam.compare(prog, X[:20], None, "raw")) == ["raw"]  # one name is a list of one


def test_cam_cost_overflow_is_an_error_not_inf(forest):
    prog = ck.cam.compile(forest, bits=4)
    spec = CamSpec().replace(**{"circuit.cell_area_um2": 1e307})
    with pytest.raises(SpecError, match="outside any physical range"):
        ck.cam.estimate(prog, X[:20], spec)


# ---- cimkit trees outputs ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trees_result(forest):
    prog = ck.cam.compile(forest)
    quant = ck.cam.compile(forest, bits=8, X=X)
    reports = ck.cam.compare(quant, X[:50], CamSpec(), ("raw", "xtime", "monosparse"))
    result = TreesResult(
        "synthetic",
        "rf",
        5,
        3,
        8,
        len(X),
        0.9,
        0.9,
        True,
        0.9,
        "thresholds",
        0.0,
        prog.rows,
        prog.n_features,
        prog.sparsity,
        reports,
    )
    return result


def test_trees_json_is_strict_and_written_atomically(tmp_path, trees_result):
    out = tmp_path / "sub" / "trees.json"
    text = trees_result.to_json(out)
    data = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert text == out.read_text() and data["schemes"]["monosparse"]["arrays"] >= 1
    assert sorted(p.name for p in out.parent.iterdir()) == ["trees.json"]  # no temporary left behind
    raw, latency = trees_result.reports["raw"], trees_result.reports["raw"].latency_s
    raw.latency_s = math.nan  # an undefined figure is null, never NaN
    try:
        assert json.loads(trees_result.to_json())["schemes"]["raw"]["latency_s"] is None
    finally:
        raw.latency_s = latency


def test_plot_trees_checks_the_suffix_first_and_writes_atomically(tmp_path, trees_result, monkeypatch):
    import matplotlib.pyplot as plt

    with monkeypatch.context() as m:
        m.setattr(plt, "subplots", lambda *a, **k: pytest.fail("plotted before checking the file name"))
        with pytest.raises(InputError, match=r"unsupported file type '\.foo'; use one of .*\.png"):
            plot_trees(trees_result, tmp_path / "trees.foo")
    path = plot_trees(trees_result, tmp_path / "fig" / "trees.png")
    assert path.stat().st_size > 1000 and sorted(p.name for p in path.parent.iterdir()) == ["trees.png"]
