"""Explore: which ADC resolution, array size and ADC sharing give VGG8 the fastest chip for its area?

A design-space study written in Python (the same fields as a study YAML file, see
``examples/explore_vgg8.yaml`` and ``docs/explore.md``): every combination of ADC bits (5-7: fewer bits
cost accuracy, see simulate_mlp_on_pcm.py), crossbar size (64, 128, 256) and columns sharing one ADC
(1, 2, 4, 8) on the ``rram-22nm`` chip, 36 designs priced by the vectorized cost model, two objectives
(latency per image and chip area: the Pareto front), chips over 300 mm^2 refused. The same study runs
with Optuna's samplers (``tpe``, ``nsga2``...) over far larger spaces.

Expect a front of two designs, 48 mm^2 at 1.14 ms per image (5-bit ADCs, 256x256 arrays, 8 columns per
ADC) and 237 mm^2 at 0.64 ms (one ADC per column), printed one per line with its energy (59 and 68 uJ). Writes ``explore_adc_bits/``: ``trials.csv`` (every design
with its figures), ``best_<i>.yaml`` (the front's chips as HardwareSpec files), ``pareto.png`` and the
SQLite storage (a rerun resumes it: delete the folder to start afresh). Seeded; deterministic.
Run: python examples/explore_adc_bits.py   (about 6 s of CPU)
"""

from cimkit.explore import StudyConfig, run_study

config = StudyConfig(
    name="adc-bits",
    workloads=["vgg8"],
    hardware="rram-22nm",
    space={
        "adc_bits": {"choices": [5, 6, 7]},
        "crossbar": {"choices": [64, 128, 256]},
        "columns_per_adc": {"choices": [1, 2, 4, 8]},
    },
    objective={"mode": "pareto", "metrics": ["latency", "area"]},
    area_max_mm2=300,
    sampler={"name": "grid", "seed": 0},
    trials=36,
    batch=36,
)
result = run_study(config, out_dir="explore_adc_bits")
print(f"{result.completed} designs priced, {len(result.best_trials)} on the latency-area Pareto front:")
for trial in sorted(result.best_trials, key=lambda t: t.values[1]):
    p, figures = trial.params, trial.user_attrs["figures"]  # every figure behind the score, as in trials.csv
    latency_s, area_mm2 = trial.values
    print(
        f"  adc_bits {p['adc_bits']}, crossbar {p['crossbar']:>3}, columns_per_adc {p['columns_per_adc']}: "
        f"latency {latency_s * 1e3:.3f} ms, area {area_mm2:6.2f} mm^2, energy {figures['energy_j'] * 1e6:6.2f} uJ"
    )
