"""The command line's own surface: --version, ``python -m cimkit``, and --help without the heavy imports."""

import re
import subprocess
import sys
from importlib.metadata import version

import pytest

#: the numeric stack and cimkit's spec (pydantic is not listed: typer itself imports it for a command's help)
HEAVY = ("torch", "numpy", "matplotlib", "optuna", "dask", "sklearn", "art", "scipy", "cimkit.spec")
COMMANDS = ("demo", "estimate", "explore", "robustness", "simulate", "trees", "report", "zoo", "presets", "spec")


def _run(*args: str, importtime: bool = False) -> subprocess.CompletedProcess:
    flags = ["-X", "importtime"] if importtime else []
    return subprocess.run(
        [sys.executable, *flags, "-m", "cimkit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200"},
    )


def _imported(stderr: str) -> set[str]:
    """Top-level names of the modules a ``-X importtime`` run imported."""
    return {m.group(1).strip() for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", stderr, re.M)}


def test_version_is_the_installed_package_version():
    proc = _run("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"cimkit {version('cimkit')}"
    import cimkit

    assert cimkit.__version__ == version("cimkit")


def test_python_dash_m_cimkit_lists_every_command():
    proc = _run("--help")
    assert proc.returncode == 0, proc.stderr
    for command in COMMANDS:
        assert re.search(rf"\b{command}\b", proc.stdout), command


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("report", "--help")])
def test_help_and_version_import_no_heavy_module(args):
    """--help and --version answer in well under a second because they import none of the numeric stack."""
    proc = _run(*args, importtime=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = _imported(proc.stderr)
    assert "cimkit.cli" in modules  # the parse found the import log
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_no_arguments_shows_the_usage():
    proc = _run()
    assert "Usage" in proc.stdout + proc.stderr
