"""How fast the command line answers (issue 19: ``cimkit --version``, ``python -m cimkit`` and ``cimkit --help``
in under a second), beside a bare Python start and ``import torch`` measured in the same run; and how long
``cimkit report`` takes for the committed robustness results.

Run: python benchmarks/bench_cli.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CIMKIT = [sys.executable, "-m", "cimkit"]


def seconds(command: list[str], repeat: int) -> tuple[float, float]:
    """Median and best wall time (s) of ``repeat`` runs of ``command`` (each must exit 0)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "COLUMNS": "120"})
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "report.html")
        cases = {
            "python -c pass (floor)": [sys.executable, "-c", "pass"],
            "python -c 'import torch' (reference)": [sys.executable, "-c", "import torch"],
            "cimkit --version": [*CIMKIT, "--version"],
            "cimkit --help": [*CIMKIT, "--help"],
            "cimkit report --help": [*CIMKIT, "report", "--help"],
            "cimkit presets": [*CIMKIT, "presets"],
            "cimkit report (robustness_mnist parts)": [
                *CIMKIT,
                "report",
                str(ROOT / "benchmarks/results/robustness_mnist/parts"),
                "-o",
                out,
            ],
        }
        print(f"{'command':42s} {'median s':>9s} {'best s':>8s}  target")
        for name, command in cases.items():
            median, best = seconds(command, args.repeat if "report (" not in name else 1)
            target = (
                "< 1 s: " + ("met" if median < 1 else "MISSED")
                if name.startswith(("cimkit --", "cimkit report --"))
                else ""
            )
            print(f"{name:42s} {median:9.3f} {best:8.3f}  {target}")


if __name__ == "__main__":
    main()
