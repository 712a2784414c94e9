"""Exceptions raised by cimkit for bad input. Each names the field, the value and what is allowed."""

from __future__ import annotations


class CimkitError(ValueError):
    """Base class of cimkit's input errors (a ``ValueError``, so callers may catch either)."""


class SpecError(CimkitError):
    """A hardware description that is malformed or inconsistent."""


class InputError(CimkitError):
    """Data passed to a simulator or solver that it cannot accept (shape, dtype, non-finite values)."""


class MappingError(CimkitError):
    """A layer that cannot be mapped onto the arrays a spec describes."""
