"""Analog-CAM search simulation speed: a 100-tree, depth-8 random forest on 100,000 samples, against the
model's own predict in the same run (target: at most 5x).

Run: python benchmarks/bench_cam.py
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.ensemble import RandomForestClassifier

import cimkit as ck


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def training_set(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """20,000 x 16 Gaussian features with a nonlinear label: deep trees with many paths."""
    x = rng.normal(size=(20_000, 16))
    return x, (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)


def main() -> None:
    rng = np.random.default_rng(0)
    x_train, y_train = training_set(rng)
    model = RandomForestClassifier(100, max_depth=8, random_state=0, n_jobs=1).fit(x_train, y_train)
    t0 = time.perf_counter()
    prog = ck.cam.compile(model)
    t_compile = time.perf_counter() - t0
    x = rng.normal(size=(100_000, 16))
    assert np.array_equal(prog.predict(x), model.predict(x))
    t_model = best_of(lambda: model.predict(x))
    t_cam = best_of(lambda: prog.predict(x))
    print(
        f"100 trees, depth 8, {prog.rows} CAM rows x {prog.n_features} features (sparsity {prog.sparsity:.2f}); "
        f"compile {t_compile:.2f} s"
    )
    print(
        f"100,000 samples: model.predict {t_model:.2f} s, CAM search {t_cam:.2f} s -> {t_cam / t_model:.2f}x "
        f"(target <= 5x); predictions identical"
    )


if __name__ == "__main__":
    main()
