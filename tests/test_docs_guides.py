"""Every code block of the guides in docs/ that promise runnable code runs as written."""

import re
import warnings
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
#: guide -> the least number of code blocks it has
GUIDES = {"training.md": 4, "snn.md": 5, "robustness.md": 4}
BLOCKS = [
    (name, i, block)
    for name in GUIDES
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(encoding="utf-8"), re.S))
]


@pytest.mark.parametrize("name", sorted(GUIDES))
def test_the_guide_has_code(name):
    assert sum(1 for n, _, _ in BLOCKS if n == name) >= GUIDES[name]


@pytest.mark.parametrize("name,index,block", BLOCKS, ids=[f"{n}-{i}" for n, i, _ in BLOCKS])
def test_a_block_runs(name, index, block):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(block, f"docs/{name} block {index}", "exec"), {})
