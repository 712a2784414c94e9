"""``python -m cimkit``: the same command line as ``cimkit``."""

from .cli import main

main()
