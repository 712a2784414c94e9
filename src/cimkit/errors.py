"""Exceptions raised by cimkit for bad input. Each names the field, the value and what is allowed."""

from __future__ import annotations

import math
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


def check_int(fn: str, name: str, value: object, lo: int | None = None, hi: int | None = None, why: str = "") -> int:
    """``value`` as an ``int`` in ``lo..hi`` (either bound may be None: no bound on that side).

    Accepts any integral number (``int``, numpy integers) but not ``bool``. Anything else raises an
    ``InputError`` that names ``fn``, the argument ``name``, the value and the allowed range, with ``why`` (the
    reason for the range) in parentheses when given, e.g.
    ``"int_gelu: input_bits = 40 is not allowed; input_bits must be an integer in 2..32 (the input grid)"``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _refused(fn, name, value, _int_range(lo, hi), why)
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _refused(fn, name, value, _int_range(lo, hi), why)
    return v


def check_real(
    fn: str,
    name: str,
    value: object,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    why: str = "",
) -> float:
    """``value`` as a finite ``float`` within the bounds: ``lo <= value`` (``lo < value`` with ``lo_open``) and
    ``value <= hi`` (``value < hi`` with ``hi_open``); a bound of None is no bound.

    Accepts any real number (``int``, ``float``, numpy scalars, ``Fraction``) but not ``bool``, NaN or an
    infinity. Anything else raises an ``InputError`` in ``check_int``'s format, the range written
    ``>= 0``, ``> 0``, ``in [0, 1]`` or ``in (0, 1]``, e.g.
    ``"Faults: dead_column_rate = 1.5 is not allowed; dead_column_rate must be a finite number in [0, 1]"``."""
    allowed = _real_range(lo, hi, lo_open, hi_open)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _refused(fn, name, value, allowed, why)
    try:
        v = float(value)
    except (OverflowError, ValueError):  # an int too large for a float
        raise _refused(fn, name, value, allowed, why) from None
    if (
        not math.isfinite(v)
        or (lo is not None and not (v > lo if lo_open else v >= lo))
        or (hi is not None and not (v < hi if hi_open else v <= hi))
    ):
        raise _refused(fn, name, value, allowed, why)
    return v


def _refused(fn: str, name: str, value: object, allowed: str, why: str) -> InputError:
    """The one message of ``check_int`` and ``check_real``."""
    reason = f" ({why})" if why else ""
    return InputError(f"{fn}: {name} = {short_repr(value)} is not allowed; {name} must be {allowed}{reason}")


def _int_range(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"an integer in {lo}..{hi}"
    if lo is not None:
        return f"an integer >= {lo}"
    if hi is not None:
        return f"an integer <= {hi}"
    return "an integer"


def _real_range(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"a finite number in {'(' if lo_open else '['}{_bound(lo)}, {_bound(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"a finite number {'>' if lo_open else '>='} {_bound(lo)}"
    if hi is not None:
        return f"a finite number {'<' if hi_open else '<='} {_bound(hi)}"
    return "a finite number"


def _bound(x: float) -> str:
    """A bound as written in a message: whole numbers without ``.0`` (``0``, ``86400``), others as ``repr``."""
    f = float(x)
    return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
