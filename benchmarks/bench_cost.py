"""Cost-model speed against issue 11's targets: estimate_many >= 10,000 VGG16 configurations per second,
one ResNet-18 estimate < 5 ms, one BERT-base encoder at sequence length 512 < 10 ms; DNN+NeuroSim's run
time on these machines beside them.

Run: python benchmarks/bench_cost.py
"""

from __future__ import annotations

import itertools
import statistics
import time

import cimkit as ck
from cimkit.workload.core import Op, Workload

NEUROSIM_SECONDS = {"vgg8": 105.0, "resnet18": 352.0}  # shared/reference/neurosim.md


def bert_base(seq: int = 512, d: int = 768, heads: int = 12, ff: int = 3072, layers: int = 12) -> Workload:
    """BERT-base's encoder (zoo.workload("bert-base", seq_len=...) when the zoo has it): per layer Q, K, V,
    Q K^T, softmax, A V, output projection, residual add, layer norm, two FFN linears with GELU, add, norm."""
    try:
        return ck.zoo.workload("bert-base", seq_len=seq)
    except Exception:  # noqa: BLE001 (a zoo without it)
        pass
    hd = d // heads
    ops = []
    for i in range(layers):
        lin = lambda n, a, b: Op(f"{i}.{n}", "linear", a, b, in_shape=(seq, a), out_shape=(seq, b), vectors=seq,  # noqa: E731
                                 macs=seq * a * b)
        dig = lambda n, k, fn, e, red=0: Op(f"{i}.{n}", k, in_shape=(e,), out_shape=(e,), elements=e, fn=fn, reduce=red)  # noqa: E731
        ops += [lin("q", d, d), lin("k", d, d), lin("v", d, d),
                Op(f"{i}.qk", "matmul", hd, seq, groups=heads, vectors=seq, in_shape=(heads, seq, hd),
                   out_shape=(heads, seq, seq), macs=heads * seq * hd * seq, fn="matmul"),
                dig("softmax", "softmax", "softmax", heads * seq * seq, seq),
                Op(f"{i}.av", "matmul", seq, hd, groups=heads, vectors=seq, in_shape=(heads, seq, seq),
                   out_shape=(heads, seq, hd), macs=heads * seq * seq * hd, fn="matmul"),
                lin("o", d, d), dig("add1", "eltwise", "add", seq * d), dig("ln1", "norm", "layer_norm", seq * d, d),
                lin("ff1", d, ff), dig("gelu", "act", "gelu", seq * ff), lin("ff2", ff, d),
                dig("add2", "eltwise", "add", seq * d), dig("ln2", "norm", "layer_norm", seq * d, d)]
    return Workload("bert-base-512", (1, seq, d), ops)


def _median_ms(fn, repeats: int = 30) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    spec = ck.HardwareSpec.preset("rram-22nm")
    for net, target in (("vgg8", None), ("resnet18", 5.0)):
        wl = ck.zoo.workload(net)
        t = _median_ms(lambda: ck.estimate(wl, spec))
        goal = f"(target < {target:g} ms)" if target else ""
        print(f"{net:9} one estimate: {t:6.2f} ms {goal}; DNN+NeuroSim here: {NEUROSIM_SECONDS[net]:.0f} s, "
              f"{NEUROSIM_SECONDS[net] / (t / 1e3):,.0f}x slower")
    bert = bert_base()
    t = _median_ms(lambda: ck.estimate(bert, spec))
    r = ck.estimate(bert, spec)
    units = ", ".join(f"{u} {v['ops']} ops" for u, v in r.units.items())
    print(f"bert-base seq 512 ({len(bert.ops)} ops) one estimate: {t:6.2f} ms (target < 10 ms); "
          f"{r.energy_j * 1e3:.2f} mJ, units: {units}")
    t = _median_ms(lambda: ck.estimate(bert, spec.replace(routing={"matmul": "crossbar"})), 10)
    print(f"bert-base seq 512, matmuls on rewritten arrays: {t:6.2f} ms")

    wl = ck.zoo.workload("vgg16")
    grid = itertools.product((3, 4, 5, 6, 7, 8), (64, 128, 256, 512), (1, 2, 4, 8), (45, 32, 22, 14, 7),
                             (0.6, 0.7, 0.8, 0.9), (None, 200, 400, 800, 1600), (1, 8))
    t0 = time.perf_counter()
    specs = [spec.replace(**{"periphery.adc_bits": b, "array.rows": r, "array.cols": r, "device.bits_per_cell": c,
                             "technology.node_nm": n, "technology.supply_v": v, "chip.tiles": tiles,
                             "periphery.columns_per_adc": cpa})
             for b, r, c, n, v, tiles, cpa in itertools.islice(grid, 10_000)]
    t_specs = time.perf_counter() - t0
    from cimkit.cost.estimate import _params

    t0 = time.perf_counter()
    _params(specs)
    t_params = time.perf_counter() - t0
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        many = ck.estimate_many(wl, specs)
        t_many = time.perf_counter() - t0
        best = t_many if best is None else min(best, t_many)
    n = len(specs)
    print(f"vgg16     {n} configurations: estimate_many {best:.3f} s = {n / best:,.0f} configs/s (target >= 10,000/s), "
          f"of which the spec columns {t_params:.3f} s; building the {n} validated specs {t_specs:.2f} s; "
          f"feasible {int(many.feasible.sum())}")


if __name__ == "__main__":
    main()
