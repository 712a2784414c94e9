"""Offline datasets: digit images (cached as .npz under the cimkit cache directory) and tabular sets."""

from .digits import cache_dir, digits, mnist
from .tabular import TABULAR, Table, tabular

__all__ = ["mnist", "digits", "cache_dir", "tabular", "Table", "TABULAR"]
