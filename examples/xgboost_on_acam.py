"""An XGBoost model on analog CAM: does it still decide the same, and what does a decision cost?

Run: python examples/xgboost_on_acam.py
"""

import numpy as np
import xgboost

import cimkit as ck
import cimkit.data

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
