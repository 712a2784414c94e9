"""Trained tree ensembles -> one common form: trees of (feature, threshold, children, leaf values),
plus how the ensemble aggregates them. Each library's own split semantics is kept: scikit-learn and
LightGBM send x <= t to the left child, XGBoost x < t."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..errors import InputError

#: how an ensemble maps its summed tree outputs to predictions (ova: a logistic per class, LightGBM)
Link = Literal["identity", "logistic", "softmax", "normalize", "ova"]


@dataclass
class Tree:
    """One decision tree as node arrays (node 0 is the root): a sample goes left when its feature
    ``feature[n]`` passes the threshold, and the leaf it reaches adds ``value[leaf]`` to output ``output``."""

    feature: np.ndarray  # (nodes,) feature index, -1 at leaves
    threshold: np.ndarray  # (nodes,)
    left: np.ndarray  # (nodes,) child index, -1 at leaves
    right: np.ndarray
    value: np.ndarray  # (nodes, outputs) leaf values (rows of inner nodes unused)
    output: int = -1  # the output (class) this tree adds to; -1: all outputs (value is a vector)


@dataclass
class Ensemble:
    """A tree ensemble in one form for every library it is extracted from: its trees, how they split
    (``split``), how their outputs combine (``aggregate``, then ``base`` + ``scale`` x the combination) and
    the ``link`` to predictions; ``classes`` for a classifier, ``kind`` the source model's type."""

    trees: list[Tree]
    n_features: int
    n_outputs: int
    split: Literal["le", "lt"]  # left child when x <= t ('le') or x < t ('lt')
    aggregate: Literal["mean", "sum"]  # mean of tree outputs (forests) or their sum (boosting)
    link: Link
    base: np.ndarray = field(default_factory=lambda: np.zeros(1))  # added to the sum (boosting)
    scale: float = 1.0  # learning rate (boosting)
    classes: np.ndarray | None = None  # class labels of a classifier
    kind: str = ""
    input_dtype: type = np.float64  # the precision the library compares inputs in (float32 for sklearn, XGBoost)


def _sk_tree(t, output: int = -1, proba: bool = False) -> Tree:
    tree = t.tree_
    value = tree.value[:, :, :]
    if proba:  # classification tree: per-leaf class distribution
        v = value[:, 0, :]
        v = v / np.maximum(v.sum(axis=1, keepdims=True), 1e-300)
    else:
        v = value[:, :, 0] if value.shape[2] == 1 else value[:, 0, :]
    feat = np.where(tree.children_left < 0, -1, tree.feature)
    return Tree(
        feat.astype(np.int64),
        tree.threshold.astype(np.float64),
        tree.children_left.astype(np.int64),
        tree.children_right.astype(np.int64),
        v.astype(np.float64),
        output,
    )


def _from_sklearn(model) -> Ensemble:
    e = _from_sklearn_any(model)
    if not type(model).__name__.startswith("HistGradient"):
        e.input_dtype = np.float32  # scikit-learn's trees compare float32 inputs with their thresholds
    return e


def _from_sklearn_any(model) -> Ensemble:
    from sklearn import ensemble, tree

    name = type(model).__name__
    d = model.n_features_in_
    if getattr(model, "n_outputs_", 1) > 1 and hasattr(model, "classes_"):
        raise InputError(
            f"{name} was fit on {model.n_outputs_} outputs (y with {model.n_outputs_} columns): multi-output "
            "classifiers are not supported; compile one classifier per output"
        )
    if isinstance(model, tree.DecisionTreeClassifier):
        return Ensemble(
            [_sk_tree(model, proba=True)],
            d,
            len(model.classes_),
            "le",
            "mean",
            "normalize",
            classes=model.classes_,
            kind=name,
        )
    if isinstance(model, tree.DecisionTreeRegressor):
        return Ensemble([_sk_tree(model)], d, model.n_outputs_, "le", "mean", "identity", kind=name)
    if isinstance(model, (ensemble.RandomForestClassifier, ensemble.ExtraTreesClassifier)):
        return Ensemble(
            [_sk_tree(e, proba=True) for e in model.estimators_],
            d,
            len(model.classes_),
            "le",
            "mean",
            "normalize",
            classes=model.classes_,
            kind=name,
        )
    if isinstance(model, (ensemble.RandomForestRegressor, ensemble.ExtraTreesRegressor)):
        return Ensemble(
            [_sk_tree(e) for e in model.estimators_], d, model.n_outputs_, "le", "mean", "identity", kind=name
        )
    if isinstance(model, (ensemble.GradientBoostingClassifier, ensemble.GradientBoostingRegressor)):
        est = model.estimators_  # (n_estimators, K) regression trees
        k = est.shape[1]
        base = np.asarray(model._raw_predict_init(np.zeros((1, d), dtype=np.float32))[0], dtype=np.float64)
        trees = [_sk_tree(est[i, c], output=c) for i in range(est.shape[0]) for c in range(k)]
        if isinstance(model, ensemble.GradientBoostingClassifier):
            link: Link = "logistic" if k == 1 else "softmax"
            return Ensemble(trees, d, k, "le", "sum", link, base, model.learning_rate, model.classes_, name)
        return Ensemble(trees, d, 1, "le", "sum", "identity", base, model.learning_rate, kind=name)
    if isinstance(model, (ensemble.HistGradientBoostingClassifier, ensemble.HistGradientBoostingRegressor)):
        if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
            raise InputError(
                f"{name}: categorical splits cannot be stored as CAM ranges; refit without "
                "categorical_features (one-hot encode them)"
            )
        trees = []
        for iteration in model._predictors:
            for c, pred in enumerate(iteration):
                n = pred.nodes
                leaf = n["is_leaf"].astype(bool)
                trees.append(
                    Tree(
                        np.where(leaf, -1, n["feature_idx"]).astype(np.int64),
                        n["num_threshold"].astype(np.float64),
                        np.where(leaf, -1, n["left"]).astype(np.int64),
                        np.where(leaf, -1, n["right"]).astype(np.int64),
                        n["value"].astype(np.float64)[:, None],
                        c,
                    )
                )
        base = np.asarray(model._baseline_prediction, dtype=np.float64).ravel()
        k = len(model._predictors[0])
        if isinstance(model, ensemble.HistGradientBoostingClassifier):
            link = "logistic" if k == 1 else "softmax"
            return Ensemble(trees, model.n_features_in_, k, "le", "sum", link, base, 1.0, model.classes_, name)
        return Ensemble(trees, model.n_features_in_, 1, "le", "sum", "identity", base, 1.0, kind=name)
    raise InputError(f"unsupported model type {name}")


def _from_xgboost(model) -> Ensemble:
    booster = model.get_booster() if hasattr(model, "get_booster") else model
    try:
        cfg = json.loads(booster.save_config())
        dumps = booster.get_dump(dump_format="json")
    except Exception as exc:  # an empty Booster(): XGBoostError from the C++ core
        raise InputError(
            f"cannot read the XGBoost model ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); "
            "is it fitted or loaded?"
        ) from None
    gbm = cfg["learner"].get("gradient_booster", {}).get("name", "gbtree")
    if gbm == "gblinear":
        raise InputError(
            "XGBoost booster 'gblinear' is a linear model: it has no trees to store in a CAM; fit with booster='gbtree'"
        )
    if gbm != "gbtree":
        raise InputError(
            f"XGBoost booster {gbm!r} weights its trees at prediction time, which cimkit does not model; "
            "fit with booster='gbtree'"
        )
    objective = cfg["learner"]["objective"]["name"]
    param = cfg["learner"]["learner_model_param"]
    if int(param.get("num_target", "1") or 1) > 1:
        raise InputError(
            f"XGBoost model with {param['num_target']} targets: multi-target models are not supported; "
            "compile one model per target"
        )
    if "c" in (booster.feature_types or ()):
        raise InputError(
            "XGBoost categorical splits (enable_categorical=True) cannot be stored as CAM ranges; refit "
            "on one-hot encoded features"
        )
    raw_base = param["base_score"]
    base_val = np.array(json.loads(raw_base) if raw_base.startswith("[") else [float(raw_base)], dtype=np.float64)
    k = int(param.get("num_class", "0") or 0)
    names = booster.feature_names
    index = {n: i for i, n in enumerate(names)} if names else None
    n_features = booster.num_features()
    best = _xgb_best_iteration(model)
    if best is not None:  # the scikit-learn wrapper predicts with the trees up to the best iteration only
        per_round = len(dumps) // max(booster.num_boosted_rounds(), 1)
        dumps = dumps[: (best + 1) * per_round]
    trees = []
    for i, dump in enumerate(dumps):
        nodes = {}

        def walk(node):
            nodes[node["nodeid"]] = node
            for child in node.get("children", []):
                walk(child)

        walk(json.loads(dump))
        size = max(nodes) + 1
        feat = -np.ones(size, np.int64)
        thr = np.zeros(size)
        left = -np.ones(size, np.int64)
        right = -np.ones(size, np.int64)
        val = np.zeros((size, 1))
        for nid, node in nodes.items():
            if "leaf" in node:
                val[nid, 0] = node["leaf"]
            else:
                f = node["split"]
                if not isinstance(node.get("split_condition"), (int, float)):
                    raise InputError(
                        f"XGBoost split on {f!r} is not a numeric threshold (a categorical split?); it "
                        "cannot be stored as a CAM range"
                    )
                feat[nid] = index[f] if index else int(f.lstrip("f"))
                thr[nid] = np.float32(node["split_condition"])  # XGBoost splits are float32
                left[nid], right[nid] = node["yes"], node["no"]
        trees.append(Tree(feat, thr, left, right, val, i % k if k > 1 else 0))
    f32 = np.float32
    if objective.startswith("binary:logistic") or objective == "reg:logistic":
        p = float(base_val[0])
        return Ensemble(
            trees,
            n_features,
            1,
            "lt",
            "sum",
            "logistic",
            np.array([np.log(p / (1 - p))]),
            1.0,
            getattr(model, "classes_", None),
            "XGBoost",
            f32,
        )
    if objective.startswith("multi:"):
        return Ensemble(
            trees,
            n_features,
            k,
            "lt",
            "sum",
            "softmax",
            np.broadcast_to(base_val, (k,)).copy(),
            1.0,
            getattr(model, "classes_", None),
            "XGBoost",
            f32,
        )
    if objective.startswith("reg:squarederror") or objective.startswith("reg:absoluteerror"):
        return Ensemble(
            trees, n_features, 1, "lt", "sum", "identity", base_val[:1], 1.0, kind="XGBoost", input_dtype=f32
        )
    raise InputError(
        f"XGBoost objective {objective!r} is not supported (binary:logistic, multi:softprob/softmax, reg:squarederror)"
    )


def _xgb_best_iteration(model) -> int | None:
    """The scikit-learn wrapper's best iteration after early stopping, else None."""
    if not hasattr(model, "get_booster") or getattr(model, "early_stopping_rounds", None) is None:
        return None
    try:
        return int(model.best_iteration)
    except (AttributeError, TypeError, ValueError):
        return None


def _from_lightgbm(model) -> Ensemble:
    booster = model.booster_ if hasattr(model, "booster_") else model
    dump = booster.dump_model()  # best iteration only, as predict does, when early stopping found one
    k = dump.get("num_tree_per_iteration", 1)
    words = dump.get("objective", "regression").split()
    objective = words[0]
    options = dict(w.split(":", 1) for w in words[1:] if ":" in w)
    if "sqrt" in words[1:]:
        raise InputError(
            "LightGBM regression with reg_sqrt=True squares its output, which cimkit does not model; "
            "refit without reg_sqrt"
        )
    trees = []
    for i, info in enumerate(dump["tree_info"]):
        feat: list[int] = []
        thr: list[float] = []
        left: list[int] = []
        right: list[int] = []
        val: list[float] = []

        def walk(node) -> int:
            nid = len(feat)
            feat.append(-1)
            thr.append(0.0)
            left.append(-1)
            right.append(-1)
            val.append(node.get("leaf_value", 0.0))
            if node.get("leaf_coeff"):
                raise InputError(
                    "LightGBM linear trees (linear_tree=True) have a linear model in each leaf, which a "
                    "CAM leaf memory cannot store; refit with linear_tree=False"
                )
            if "split_feature" in node:
                if node.get("decision_type", "<=") != "<=":
                    raise InputError(
                        "LightGBM categorical splits cannot be stored as CAM ranges; refit without "
                        "categorical features (one-hot encode them)"
                    )
                feat[nid], thr[nid] = node["split_feature"], node["threshold"]
                left[nid] = walk(node["left_child"])
                right[nid] = walk(node["right_child"])
            return nid

        walk(info["tree_structure"])
        trees.append(
            Tree(
                np.array(feat, np.int64),
                np.array(thr, np.float64),
                np.array(left, np.int64),
                np.array(right, np.int64),
                np.array(val, np.float64)[:, None],
                i % k if k > 1 else 0,
            )
        )
    links: dict[str, Link] = {"binary": "logistic", "multiclass": "softmax", "multiclassova": "ova"}
    link = links.get(objective, "identity")
    if link == "identity" and not objective.startswith("regression"):
        raise InputError(
            f"LightGBM objective {objective!r} is not supported (binary, multiclass, multiclassova, regression)"
        )
    scale = float(options.get("sigmoid", 1.0)) if link in ("logistic", "ova") else 1.0
    if dump.get("average_output"):  # boosting_type='rf': the mean of the trees, not their sum
        scale /= max(len(trees) // max(k, 1), 1)
    if not trees:
        raise InputError("the LightGBM model has no trees; is it fitted?")
    return Ensemble(
        trees,
        dump["max_feature_idx"] + 1,
        k,
        "le",
        "sum",
        link,
        np.zeros(k),
        scale,
        getattr(model, "classes_", None),
        "LightGBM",
    )


def _check_fitted(model) -> None:
    """An ``InputError`` for a scikit-learn-style estimator (scikit-learn, XGBoost and LightGBM wrappers) that
    has not been fitted."""
    if not (hasattr(model, "fit") and hasattr(model, "get_params")):
        return  # a raw XGBoost / LightGBM Booster: always holds a model
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise InputError(f"{type(model).__name__} model is not fitted; call fit first") from None


def extract(model) -> Ensemble:
    """The common form of a scikit-learn, XGBoost or LightGBM tree model."""
    module = type(model).__module__
    if module.startswith(("sklearn", "xgboost", "lightgbm")):
        _check_fitted(model)
    if module.startswith("sklearn"):
        return _from_sklearn(model)
    if module.startswith("xgboost"):
        return _from_xgboost(model)
    if module.startswith("lightgbm"):
        return _from_lightgbm(model)
    raise InputError(
        f"unsupported model type {type(model).__module__}.{type(model).__name__}: cimkit.cam.compile "
        "takes scikit-learn trees and ensembles, XGBoost and LightGBM models"
    )
