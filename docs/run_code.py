"""Run the ```python code blocks of the guide's pages, as the docs test does.

    python docs/run_code.py                  # every page of docs/
    python docs/run_code.py tour.md cam.md   # some pages (names or paths)
    python docs/run_code.py --list           # the blocks of every page, with their line numbers

The blocks of one page run in order in one shared namespace (a later block may use the names an earlier
one defined), in a fresh temporary working directory (nothing is written into the repository). Blocks
fenced otherwise (```text, ```yaml, ```bash, ...) are not run. Exit status: 0 when every block ran,
1 otherwise (the failing page, block, line and traceback are printed).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


@dataclass(frozen=True)
class Block:
    """One ```python block: its page, index on the page (from 0), first line of code (from 1) and code."""

    page: str
    index: int
    line: int
    code: str


def pages() -> list[Path]:
    """Every Markdown page of docs/, sorted by name."""
    return sorted(DOCS.glob("*.md"))


def blocks(page: str | Path) -> list[Block]:
    """The ```python blocks of ``page`` in order."""
    path = _path(page)
    text = path.read_text(encoding="utf-8")
    return [
        Block(path.name, i, text.count("\n", 0, m.start(1)) + 1, m.group(1)) for i, m in enumerate(FENCE.finditer(text))
    ]


def run_page(page: str | Path, verbose: bool = False) -> float:
    """Run the blocks of ``page`` in order in one namespace, in a temporary working directory; return the
    seconds taken. An exception in a block propagates, with the page, block and line in its traceback."""
    found = blocks(page)
    start = time.perf_counter()
    namespace: dict = {"__name__": "__main__"}
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="cimkit-docs-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.chdir(tmp)
        try:
            for block in found:
                t0 = time.perf_counter()
                # pad with newlines so that tracebacks give the line number in the Markdown file
                code = compile("\n" * (block.line - 1) + block.code, str(DOCS / block.page), "exec")
                exec(code, namespace)
                if verbose:
                    print(f"  {block.page} block {block.index} (line {block.line}): {time.perf_counter() - t0:.1f} s")
        finally:
            os.chdir(cwd)
    return time.perf_counter() - start


def _path(page: str | Path) -> Path:
    path = Path(page)
    if not path.is_file():
        path = DOCS / Path(page).name
    if not path.is_file():
        raise SystemExit(f"no page {page!r} in {DOCS}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", help="pages to run (default: every page of docs/)")
    parser.add_argument("--list", action="store_true", help="list the blocks instead of running them")
    args = parser.parse_args(argv)
    chosen = [_path(p) for p in args.pages] or pages()
    failed = []
    for path in chosen:
        found = blocks(path)
        if args.list:
            for b in found:
                print(f"{b.page}:{b.line} block {b.index} ({b.code.count(chr(10))} lines)")
            continue
        if not found:
            print(f"{path.name}: no python blocks")
            continue
        try:
            seconds = run_page(path, verbose=True)
        except Exception:
            traceback.print_exc()
            print(f"{path.name}: FAILED")
            failed.append(path.name)
        else:
            print(f"{path.name}: {len(found)} blocks ran in {seconds:.1f} s")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
