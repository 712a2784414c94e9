"""Trees on CAM: an XGBoost model on analog CAM: does it still decide the same, and what does a decision cost?

50 trees of depth 6 trained on NASA's Shuttle sensor readings (49,097 rows, 7% anomalies, shipped with
river) compile into analog-CAM rows (one row per root-to-leaf path, a [low, high) range per feature,
don't-care cells elsewhere). The exact table decides like the model on every test sample; 8-bit bounds and
1 LSB of programming variation (X-TIME-like chip: 16 nm, 256-row x 16-feature arrays) cost almost nothing.
``ck.cam.compare`` prices a decision with an X-TIME-style search and a MonoSparse-style one.

Expect accuracy 100.000%, 100.000% and about 99.96%, 240 rows, and about 0.04 nJ and 14-22 ns per decision
(printed per scheme with arrays and area in mm^2). Seeded. Needs the trees extra (xgboost, river):
prints "skipped: ..." and exits 0 without it.
Run: python examples/trees_on_cam.py   (about 5 s of CPU)
"""

import sys

import numpy as np

import cimkit as ck
import cimkit.data

try:
    import river  # noqa: F401  (the Shuttle data set)
    import xgboost
except ImportError as exc:
    print(f"skipped: needs {exc.name} (pip install cimkit[trees])")
    sys.exit(0)

data = ck.data.tabular("shuttle")  # NASA Shuttle sensor readings, 7% anomalies (shipped with river)
model = xgboost.XGBClassifier(n_estimators=50, max_depth=6, random_state=0).fit(data.x_train, data.y_train)

exact = ck.cam.compile(model)
assert np.array_equal(exact.predict(data.x_test), model.predict(data.x_test))  # same decisions, every sample

chip = ck.cam.CamSpec()  # X-TIME-like: 16 nm, 256 x 16-feature arrays, 8-bit bounds in two 4-bit cells
prog = ck.cam.compile(model, bits=chip.bits)  # inputs and bounds as 8-bit codes between the model's thresholds
noisy = ck.cam.compile(model, bits=chip.bits, variation_lsb=1.0, seed=0)  # programmed bounds off by ~1 code
for name, p in (("exact", exact), ("8-bit", prog), ("8-bit, 1 LSB variation", noisy)):
    print(f"{name:>24}: accuracy {(p.predict(data.x_test) == data.y_test).mean():.3%}")

print(f"{prog.rows} rows x {prog.n_features} features, {prog.sparsity:.0%} don't-care cells")
inputs = data.x_test[:1000]
for scheme, rep in ck.cam.compare(prog, inputs, chip, ("xtime", "monosparse")).items():
    print(
        f"{scheme:>24}: {rep.energy_j * 1e9:.3f} nJ/decision, {rep.latency_s * 1e9:.0f} ns, "
        f"{rep.arrays} arrays, {rep.area_mm2:.3f} mm^2"
    )
