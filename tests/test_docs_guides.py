"""Every ```python block of the guide in docs/ runs as written (docs/run_code.py, one process per page).

A page's blocks share one namespace and run in order, in a temporary working directory; see docs/index.md.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
_spec = importlib.util.spec_from_file_location("docs_run_code", DOCS / "run_code.py")
assert _spec is not None and _spec.loader is not None
run_code = importlib.util.module_from_spec(_spec)
sys.modules["docs_run_code"] = run_code  # dataclasses look their module up
_spec.loader.exec_module(run_code)

PAGES = [p.name for p in run_code.pages()]
#: the pages of one capability each (docs/index.md): each one shows code that runs
CAPABILITY_PAGES = [
    "tour.md",
    "simulator.md",
    "estimate.md",
    "workloads.md",
    "results.md",
    "transformers.md",
    "hamming.md",
    "cam.md",
    "snn.md",
    "training.md",
    "robustness.md",
]
RUNNABLE = [p for p in PAGES if run_code.blocks(p)]


def test_the_index_lists_every_page():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    missing = [p for p in PAGES if p != "index.md" and f"]({p})" not in index]
    assert not missing, f"pages missing from docs/index.md: {missing}"


@pytest.mark.parametrize("name", CAPABILITY_PAGES)
def test_the_page_has_code(name):
    assert run_code.blocks(name), f"docs/{name} has no ```python block"


def test_every_fence_has_a_language():
    # an unlabelled fence would be neither run nor clearly marked as not meant to run
    for page in run_code.pages():
        opening = False
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                opening = not opening
                if opening:
                    assert line.strip() != "```", f"docs/{page.name}:{number}: give the fence a language"


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNNABLE)
def test_the_pages_code_runs(name):
    # one thread per page: the suite runs pages beside other tests on 2 cores, and oversubscribed torch threads spin
    env = dict(os.environ, PYTHONWARNINGS="ignore", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(DOCS / "run_code.py"), name], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"docs/{name}:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
