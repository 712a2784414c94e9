"""The two canonical argument checks of cimkit.errors: ``check_int`` and ``check_real``.

Accepted values come back converted (``int`` / ``float``) and equal to what was given; everything else raises
one ``InputError`` whose message names the function, the argument, the value and the allowed range."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cimkit.errors import InputError, check_int, check_real, short_repr

FN, NAME = "some_op", "width"
BOUND = st.integers(-(10**6), 10**6)
REAL_BOUND = st.floats(-1e6, 1e6, allow_nan=False)
NOT_NUMBERS = [True, False, None, "3", b"3", [3], (3,), {"v": 3}, object(), 3j]


def _message(exc: pytest.ExceptionInfo, value, allowed: str) -> str:
    text = str(exc.value)
    assert text.startswith(f"{FN}: {NAME} = {short_repr(value)} is not allowed; {NAME} must be {allowed}"), text
    return text


def _int_range(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"an integer in {lo}..{hi}"
    if lo is not None:
        return f"an integer >= {lo}"
    return "an integer" if hi is None else f"an integer <= {hi}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _real_range(lo, hi, lo_open, hi_open) -> str:
    if lo is not None and hi is not None:
        return f"a finite number in {'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"a finite number {'>' if lo_open else '>='} {_fmt(lo)}"
    if hi is not None:
        return f"a finite number {'<' if hi_open else '<='} {_fmt(hi)}"
    return "a finite number"


# ---- check_int --------------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(data=st.data(), lo=st.none() | BOUND, hi=st.none() | BOUND)
def test_check_int_returns_every_integer_in_range_unchanged(data, lo, hi):
    assume(lo is None or hi is None or lo <= hi)
    value = data.draw(st.integers(min_value=lo, max_value=hi))
    kind = data.draw(st.sampled_from([int, np.int64])) if abs(value) < 2**63 else int
    got = check_int(FN, NAME, kind(value), lo, hi, "why")
    assert type(got) is int and got == value


@settings(max_examples=200, deadline=None)
@given(lo=BOUND, span=st.integers(0, 1000), outside=st.integers(1, 10**9), above=st.booleans())
def test_check_int_refuses_each_bound_and_names_the_range(lo, span, outside, above):
    hi = lo + span
    value = hi + outside if above else lo - outside
    with pytest.raises(InputError) as exc:
        check_int(FN, NAME, value, lo, hi, "the reason")
    assert _message(exc, value, f"an integer in {lo}..{hi}").endswith("(the reason)")
    # one-sided: only the bound crossed is stated
    with pytest.raises(InputError) as exc:
        check_int(FN, NAME, value, None, hi) if above else check_int(FN, NAME, value, lo)
    text = _message(exc, value, f"an integer <= {hi}" if above else f"an integer >= {lo}")
    assert "(" not in text  # no reason given, none printed


@given(lo=BOUND)
def test_check_int_bounds_are_closed(lo):
    assert check_int(FN, NAME, lo, lo, lo) == lo
    assert check_int(FN, NAME, lo, lo) == lo
    assert check_int(FN, NAME, lo, None, lo) == lo


@pytest.mark.parametrize("value", [*NOT_NUMBERS, 2.0, 2.5, float("nan"), float("inf"), Fraction(2), np.float64(2)])
@pytest.mark.parametrize("lo, hi", [(None, None), (1, None), (None, 8), (1, 8)])
def test_check_int_refuses_bools_floats_and_non_numbers(value, lo, hi):
    with pytest.raises(InputError) as exc:
        check_int(FN, NAME, value, lo, hi)
    _message(exc, value, _int_range(lo, hi))


def test_check_int_keeps_the_positional_call_of_its_callers():
    assert check_int("int_gelu", "input_bits", 8, 2, 32, "the input grid") == 8
    with pytest.raises(
        InputError,
        match=re.escape(
            "int_gelu: input_bits = 40 is not allowed; input_bits must be an integer in 2..32 (the input grid)"
        ),
    ):
        check_int("int_gelu", "input_bits", 40, 2, 32, "the input grid")


def test_a_huge_value_is_cut_in_the_message():
    with pytest.raises(InputError) as exc:
        check_int(FN, NAME, 10**500, 0, 10)
    assert "characters)" in str(exc.value) and len(str(exc.value)) < 200


# ---- check_real -------------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    lo=st.none() | REAL_BOUND,
    hi=st.none() | REAL_BOUND,
    lo_open=st.booleans(),
    hi_open=st.booleans(),
)
def test_check_real_returns_every_number_in_range_unchanged(data, lo, hi, lo_open, hi_open):
    assume(lo is None or hi is None or hi - lo > 1e-3)
    value = data.draw(
        st.floats(
            min_value=lo,
            max_value=hi,
            exclude_min=lo_open and lo is not None,
            exclude_max=hi_open and hi is not None,
            allow_nan=False,
            allow_infinity=False,
        )
    )
    kind = data.draw(st.sampled_from([float, np.float64]))
    got = check_real(FN, NAME, kind(value), lo, hi, lo_open=lo_open, hi_open=hi_open)
    assert type(got) is float and got == value


@given(value=st.integers(-(2**53), 2**53))
def test_check_real_takes_integers_and_numpy_and_fractions(value):
    assert check_real(FN, NAME, value) == float(value)
    assert check_real(FN, NAME, np.int32(value % 1000)) == float(value % 1000)
    assert check_real(FN, NAME, Fraction(value, 4)) == value / 4


@settings(max_examples=300, deadline=None)
@given(
    lo=REAL_BOUND,
    span=st.floats(0.0, 1e6),
    outside=st.floats(1e-3, 1e9),
    above=st.booleans(),
    lo_open=st.booleans(),
    hi_open=st.booleans(),
)
def test_check_real_refuses_beyond_each_bound(lo, span, outside, above, lo_open, hi_open):
    hi = lo + span
    value = hi + outside if above else lo - outside
    assume(value > hi if above else value < lo)
    with pytest.raises(InputError) as exc:
        check_real(FN, NAME, value, lo, hi, lo_open=lo_open, hi_open=hi_open, why="the reason")
    assert _message(exc, value, _real_range(lo, hi, lo_open, hi_open)).endswith("(the reason)")


@given(bound=REAL_BOUND, lower=st.booleans())
def test_check_real_open_bounds_exclude_the_bound_and_closed_ones_keep_it(bound, lower):
    lo, hi = (bound, None) if lower else (None, bound)
    assert check_real(FN, NAME, bound, lo, hi) == bound
    with pytest.raises(InputError) as exc:
        check_real(FN, NAME, bound, lo, hi, lo_open=lower, hi_open=not lower)
    _message(exc, bound, _real_range(lo, hi, lower, not lower))


@pytest.mark.parametrize(
    "lo, hi, lo_open, hi_open, allowed",
    [
        (None, None, False, False, "a finite number"),
        (0, None, False, False, "a finite number >= 0"),
        (0.0, None, True, False, "a finite number > 0"),
        (None, 1, False, True, "a finite number < 1"),
        (0, 1, False, False, "a finite number in [0, 1]"),
        (0, 1, True, False, "a finite number in (0, 1]"),
        (0.5, 100, False, True, "a finite number in [0.5, 100)"),
        (1e-30, 86400.0, True, True, "a finite number in (1e-30, 86400)"),
    ],
)
def test_check_real_writes_the_range_with_its_open_and_closed_ends(lo, hi, lo_open, hi_open, allowed):
    for value in (float("nan"), float("inf"), -float("inf"), 1e300 if hi is not None else "x"):
        with pytest.raises(InputError) as exc:
            check_real(FN, NAME, value, lo, hi, lo_open=lo_open, hi_open=hi_open)
        _message(exc, value, allowed)


@pytest.mark.parametrize("value", [*NOT_NUMBERS, float("nan"), float("inf"), -float("inf"), np.float64("nan"), 10**400])
def test_check_real_refuses_bools_non_finite_and_non_numbers(value):
    with pytest.raises(InputError) as exc:
        check_real(FN, NAME, value, 0.0, 1.0, lo_open=True)
    _message(exc, value, "a finite number in (0, 1]")
    assert isinstance(exc.value, ValueError)  # InputError is a ValueError, so callers may catch either


@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_unbounded_checks_accept_any_finite_value(value):
    assert check_real(FN, NAME, value) == value
    if value.is_integer() and abs(value) < 2**63:
        with pytest.raises(InputError):  # a float is never an integer argument, even a whole one
            check_int(FN, NAME, value)
    assert math.isfinite(check_real(FN, NAME, value, why="any"))
