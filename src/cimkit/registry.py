"""Named plug-ins: one small registry per family (ADC kinds, DAC modes, read-noise models, op kinds,
unit types, cost components), so that an option string of the spec is interpreted in one place and a
new option is added by registering it, not by editing if/elif branches in several files.

A registry may name a ``loader``: a module imported on first lookup that registers the built-in entries
(so that, for example, the spec can validate ``chip.adc_type`` without importing the cost model first).
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterator, TypeVar

from .errors import InputError, short_repr

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one family, by name.

    ``what`` says what an entry is in error messages ("ADC kind"); ``loader`` is a module path imported
    once before the first lookup (it registers the built-ins)."""

    def __init__(self, what: str, loader: str | None = None) -> None:
        self.what = what
        self._loader = loader
        self._entries: dict[str, T] = {}
        #: bumped by every registration, so that caches of derived figures can tell they are stale
        self.version = 0

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            importlib.import_module(loader)

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` under ``name`` (a non-empty string); a second entry of the same name is refused
        unless ``replace`` (a plug-in overriding a built-in says so). Returns ``entry``."""
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"a {self.what} needs a non-empty name, got {short_repr(name)}")
        self._load()
        if name in self._entries and not replace:
            raise InputError(f"{self.what} {name!r} is already registered; pass replace=True to override it")
        self._entries[name] = entry
        self.version += 1
        return entry

    def decorator(self, name: str, *, replace: bool = False) -> Callable[[T], T]:
        """``@registry.decorator("name")`` registers the decorated object."""
        return lambda entry: self.register(name, entry, replace=replace)

    def names(self) -> tuple[str, ...]:
        self._load()
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def message(self, name: object, where: str) -> str:
        """The error text for an unknown ``name`` given as ``where`` (a field path or argument name)."""
        return f"{where} = {short_repr(name)}: unknown {self.what}; registered: {', '.join(self.names()) or '(none)'}"

    def check(self, name: object, where: str) -> str:
        """``name`` if registered, else a ``ValueError`` (for pydantic validators) naming ``where``."""
        if name not in self:
            raise ValueError(self.message(name, where))
        return name  # type: ignore[return-value]

    def get(self, name: object, where: str | None = None) -> T:
        """The entry called ``name``, or an ``InputError`` naming ``where`` and every registered name."""
        if name not in self:
            raise InputError(self.message(name, where or self.what))
        return self._entries[name]  # type: ignore[index]
