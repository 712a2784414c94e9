"""The cost model against DNN+NeuroSim V1.3 changing one knob at a time (shared/reference/neurosim_sweep.json,
VGG8, and our own further runs in tests/data/neurosim_sweep_extra.json): every run within 25% on area,
latency and energy, and every change from the baseline moving the way
NeuroSim's does (the ratio of the two changes within 0.8 to 1.25). Counted as NeuroSim counts
(``neurosim_compat``); the sweep's traces have 0.182 of their input bits at 1 (the preset's 0.18)."""

import json
from pathlib import Path

import pytest

import cimkit as ck

#: a copy of shared/reference/neurosim_sweep.json (NeuroSim's figures, not code), so that every checkout runs it
SWEEP_FILE = Path(__file__).parent / "data" / "neurosim_sweep.json"
SWEEP = {k: v for k, v in json.loads(SWEEP_FILE.read_text()).items() if not k.startswith("_")}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "neurosim_sweep.json"
#: more runs of the same kind that we made ourselves with NeuroSim V1.3 (its "_source" says how): points the
#: cost model was not built on (other ADC resolutions, array sizes, nodes, cell bits, column muxing, input bits)
EXTRA_FILE = Path(__file__).parent / "data" / "neurosim_sweep_extra.json"
EXTRA = {k: v for k, v in json.loads(EXTRA_FILE.read_text()).items() if not k.startswith("_")}
RUNS = {**SWEEP, **EXTRA}
#: the baseline run of each network the runs change one knob of
BASELINES = {v["network"]: v for k, v in RUNS.items() if k in ("vgg8_base", "resnet18_base")}


def test_the_copy_is_the_reference():
    if not SHARED.is_file():
        pytest.skip("no shared/reference beside this checkout")
    assert json.loads(SHARED.read_text()) == json.loads(SWEEP_FILE.read_text())


#: NeuroSim's Param.cpp parameters and the spec fields they are
PARAMS = {
    "levelOutput": lambda v: {"periphery.adc_bits": int(v).bit_length() - 1},
    "numRowSubArray": lambda v: {"array.rows": int(v)},
    "numColSubArray": lambda v: {"array.cols": int(v)},
    "technode": lambda v: {"technology.node_nm": float(v)},
    "cellBit": lambda v: {"device.bits_per_cell": int(v)},
    "numColMuxed": lambda v: {"periphery.columns_per_adc": int(v)},
    "numBitInput": lambda v: {"periphery.input_bits": int(v)},
    "featuresize": None,  # the cell's own feature size: the node sets ours
    "wireWidth": None,  # follows the node
}


def spec_for(run: dict) -> ck.HardwareSpec:
    """The rram-22nm preset with the run's Param.cpp edits ("name = old; -> name = new;")."""
    changes = {}
    for edit in run["param_edits"]:
        name, new = edit.split("->")[1].strip().rstrip(";").split("=")
        to_spec = PARAMS[name.strip()]
        if to_spec is not None:
            changes.update(to_spec(float(new.strip().rstrip(";").replace("e-9", ""))))
    bits = changes.get("periphery.input_bits", 8)
    if bits != 8:  # NeuroSim's traces at other input bits have their own density (0.143 at 4 bits)
        changes["chip.input_activity"] = trace_density(bits)
    spec = ck.HardwareSpec.preset("rram-22nm")
    return spec.replace(**changes) if changes else spec


def trace_density(bits: int) -> float:
    """The fraction of 1 bits of NeuroSim's traces at ``bits`` input bits, measured as cimkit measures it:
    ReLU(N(0, 0.35)) activations quantized to k / 2^(bits-1) (tests/test_activity.py checks 8 and 4 bits)."""
    import torch

    from cimkit.workload import measure_activity

    g = torch.Generator().manual_seed(0)
    xs = [torch.relu(torch.randn(512, 128, generator=g) * 0.35) for _ in range(4)]
    spec = ck.HardwareSpec.preset("rram-22nm").replace(**{"periphery.input_bits": bits})
    top = (2**bits - 1) / 2 ** (bits - 1)
    return measure_activity(torch.nn.Sequential(torch.nn.Linear(128, 1)), xs, spec, input_range=top)["0"]


def network(ref: dict) -> str:
    return "resnet18" if "resnet" in ref.get("network", "VGG8").lower() else "vgg8"


def figures(run: str | dict) -> tuple[dict, dict]:
    """(cimkit, NeuroSim): area mm^2, latency s, energy J (post-layout factor included)."""
    ref = RUNS[run] if isinstance(run, str) else run
    r = ck.estimate(ck.zoo.workload(network(ref)), spec_for(ref), ops="neurosim", neurosim_compat=True)
    ours = {"area": r.area_mm2, "latency": r.latency_s, "energy": r.energy_j}
    theirs = {"area": ref["area_mm2"], "latency": ref["latency_ms"] * 1e-3, "energy": ref["energy_j"]}
    return ours, theirs


@pytest.mark.parametrize("run", sorted(RUNS))
def test_every_run_within_25_percent(run):
    ours, theirs = figures(run)
    for key in ours:
        assert abs(ours[key] / theirs[key] - 1) < 0.25, (run, key, ours[key], theirs[key])


@pytest.mark.parametrize("run", sorted(k for k, v in RUNS.items() if v["param_edits"]))
def test_every_change_moves_like_neurosims(run):
    ours, theirs = figures(run)
    ours0, theirs0 = figures(BASELINES[RUNS[run].get("network", "VGG8")])
    for key in ours:
        ratio = (ours[key] / ours0[key]) / (theirs[key] / theirs0[key])
        assert 0.8 <= ratio <= 1.25, (run, key, ratio)


def test_the_clock_is_the_read_cycle_as_neurosims():
    """NeuroSim's clock period is set by the read cycle: it moves with ADC levels (the encoder), the array
    size and columns per ADC (the multiplexer decoder) and the node; ours within 3% at every run but 14 nm
    (+10%: NeuroSim's FinFET decoder is faster than C V / I of its transistors says)."""
    for run, ref in RUNS.items():
        r = ck.estimate(ck.zoo.workload(network(ref)), spec_for(ref), neurosim_compat=True)
        tolerance = 0.11 if "node14" in run else 0.03
        assert r.clock_period_s == pytest.approx(ref["clock_period_ns"] * 1e-9, rel=tolerance), run
