"""Offline datasets, cached as .npz under the cimkit cache directory."""

from .digits import cache_dir, digits, mnist

__all__ = ["mnist", "digits", "cache_dir"]
