"""Exceptions raised by cimkit for bad input. Each names the field, the value and what is allowed."""

from __future__ import annotations

import numbers


class CimkitError(ValueError):
    """Base class of cimkit's input errors (a ``ValueError``, so callers may catch either)."""


class SpecError(CimkitError):
    """A hardware description that is malformed or inconsistent."""


class InputError(CimkitError):
    """Data passed to a simulator or solver that it cannot accept (shape, dtype, non-finite values)."""


class MappingError(CimkitError):
    """A layer that cannot be mapped onto the arrays a spec describes."""


class MissingDependencyError(InputError, ImportError):
    """An optional package a cimkit feature needs is not installed (the message says how to install it); an
    ``ImportError`` too, so code that tolerates missing extras keeps catching it."""


def format_validation_error(exc, source: str, what: str, root_model) -> str:
    """A pydantic ValidationError as lines naming each field path, its value and what is allowed
    (for unknown keys: the keys allowed at that place of ``root_model``)."""
    lines = [f"{source}: invalid {what}"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            parent = _model_at(root_model, err["loc"][:-1])
            msg = f"unknown key; allowed here: {', '.join(parent.model_fields) if parent else 'see the docs'}"
        lines.append(f"  {loc} = {short_repr(err.get('input'))}: {msg}")
    return "\n".join(lines)


def short_repr(value, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, so that an error never echoes a huge input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text):,} characters)"


def _model_at(root_model, loc: tuple):
    from pydantic import BaseModel

    model = root_model
    for key in loc:
        field = model.model_fields.get(str(key))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model


def check_int(fn: str, name: str, value, lo: int, hi: int, why: str) -> int:
    """``value`` as an int in ``lo..hi``; else an InputError naming ``fn``, the argument, the value and
    the allowed range (with ``why``, the reason for the range)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= int(value) <= hi:
        raise InputError(
            f"{fn}: {name} = {short_repr(value)} is not allowed; {name} must be an integer in {lo}..{hi} ({why})"
        )
    return int(value)
