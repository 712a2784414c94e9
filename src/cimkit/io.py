"""Reading user files safely and writing outputs atomically.

``load_yaml`` reads a YAML file as plain data and refuses what a description file never needs and an
attacker or an accident can abuse: aliases (billion-laughs bombs), deep nesting, duplicate keys (one
would silently win), non-UTF-8 or binary content, empty files, oversized files. ``atomic_path`` and
``atomic_write`` give every output the write-to-a-temporary-then-rename treatment, so that a full disk
or Ctrl-C never leaves a truncated file behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterator

import yaml

from .errors import InputError, short_repr

#: description files are small; a larger one is a mistake (or an attack)
MAX_YAML_BYTES = 1 << 20
#: nesting deeper than this is never a description file
MAX_YAML_DEPTH = 32


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader without aliases, with bounded depth and with duplicate keys refused."""

    def __init__(self, stream: str, source: str) -> None:
        super().__init__(stream)
        self._source, self._depth = source, 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise InputError(
                f"{self._source}:{event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                "allowed in cimkit files; write the value out"
            )
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise InputError(
                    f"{self._source}:{mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels; "
                    "cimkit files are a few levels deep"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise InputError(
                    f"{self._source}:{key_node.start_mark.line + 1}: a mapping key must be a plain "
                    f"value, got {short_repr(key)}"
                ) from None
            line = key_node.start_mark.line + 1
            if key in seen:
                raise InputError(
                    f"{self._source}:{line}: duplicate key {short_repr(key)} (first on line {seen[key]}); "
                    "give each key once"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path, what: str = "description") -> dict[str, Any]:
    """The mapping stored in the YAML file ``path``; ``what`` names the file in errors.

    Raises ``InputError`` (one message naming the file, the line where there is one, and what is
    allowed) for a missing file, a file over 1 MiB, non-UTF-8 or binary content, invalid YAML,
    aliases, nesting deeper than 32 levels, duplicate keys, an empty file, or a top level that is not
    a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such {what} file: {path}")
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise InputError(f"{path}: {size:,} bytes is too large for a {what} file (at most {MAX_YAML_BYTES:,})")
    raw = path.read_bytes()
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(f"{path}: UTF-16 text; save the {what} file as UTF-8")
    if b"\x00" in raw:
        raise InputError(f"{path}: binary content (NUL bytes); a {what} file is UTF-8 text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); save the "
            f"{what} file as UTF-8"
        ) from None
    try:
        loader = _StrictLoader(text, str(path))  # the reader checks the characters here already
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {short_repr(str(exc), 300)}") from None
    except RecursionError:
        raise InputError(f"{path}: nested too deeply to read") from None
    if data is None:
        raise InputError(
            f"{path}: the {what} file is empty (only comments or blank lines); give its keys, "
            "or '{}' for every default"
        )
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: expected a mapping of keys at the top level, got {type(data).__name__} {short_repr(data)}"
        )
    return data


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix, so writers that read the format from the name
    still work) that replaces ``path`` when the block ends normally and is removed otherwise, even on
    Ctrl-C. Errors opening the folder become an ``InputError`` naming it."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name to write")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder {folder} for {path.name}: {exc.strerror or exc}") from None
    tmp = folder / f".{path.stem}.{os.getpid()}.tmp{path.suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def build_model(reference: str, where: str):
    """The ``torch.nn.Module`` that the function ``reference`` (``package.module:function``, called without
    arguments) returns. Each way it can fail is one ``InputError`` starting with ``where`` (what names the
    reference to the user: a workload entry, a command's argument)."""
    import importlib

    import torch

    module_name, _, attr = reference.partition(":")
    if not module_name or not attr:
        raise InputError(f"{where}: write a function as package.module:function")
    try:
        factory: object = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - ImportError, or an error inside the module
        raise InputError(
            f"{where}: cannot import {module_name} ({type(exc).__name__}: {short_repr(str(exc), 200)}); "
            "expected 'package.module:function'"
        ) from None
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise InputError(f"{where}: {module_name} has no function {attr!r}")
    if not callable(factory):
        raise InputError(
            f"{where}: {module_name} has no function {attr!r} ({short_repr(factory)} is not callable); "
            "give a function that returns a torch.nn.Module"
        )
    try:
        model = factory()
    except Exception as exc:  # noqa: BLE001 - user code: report it in one line
        raise InputError(
            f"{where}: calling it without arguments failed: {type(exc).__name__}: {short_repr(str(exc), 200)}"
        ) from None
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"{where}: returned {type(model).__name__} {short_repr(model)}, not a torch.nn.Module")
    return model


def cache_root() -> Path:
    """Where cimkit keeps what it builds or measures once: ``$CIMKIT_CACHE``, else ``~/.cache/cimkit``
    (not created here)."""
    return Path(os.environ.get("CIMKIT_CACHE") or Path.home() / ".cache" / "cimkit")


def dict_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """The leaves where two nested dicts differ, one ``"path.to.key: a -> b"`` phrase each (values shortened),
    in key order: what a refused checkpoint, saved chip or study storage tells the user."""
    out = []
    for k in sorted(set(a) | set(b), key=str):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out += dict_differences(x, y, f"{prefix}{k}.")
        elif x != y:
            out.append(f"{prefix}{k}: {short_repr(x, 30)} -> {short_repr(y, 30)}")
    return out


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return Path(path)


def strict_json(value: Any, indent: int | None = 1) -> str:
    """``value`` as strict JSON: numpy scalars and arrays as Python numbers and lists, every non-finite
    number as null (``json.dumps`` would write NaN, which strict parsers refuse)."""
    return json.dumps(json_safe(value), indent=indent, allow_nan=False)


def json_safe(value: Any) -> Any:
    """``value`` with numpy types as Python ones and non-finite numbers as None."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def check_output_path(path: str | Path, suffixes: tuple[str, ...] | None = None, what: str = "output") -> Path:
    """``path`` if a file can be written there later: not a folder, its folder writable (or creatable),
    and its suffix one of ``suffixes`` when given. Checked before long work starts."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; give a file name")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise InputError(
            f"{what} {path}: unsupported file type {path.suffix or '(none)'!r}; use one of {', '.join(suffixes)}"
        )
    _check_creatable(path.parent, f"{what} {path}")
    return path


def _check_creatable(folder: Path, what: str) -> None:
    """An ``InputError`` unless ``folder`` exists or can be created: its nearest existing ancestor must
    be a writable folder (not a file)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"{what}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{what}: the folder {folder} is not writable")


def figure_suffixes() -> tuple[str, ...]:
    """File suffixes matplotlib can save a figure as (``.png``, ``.pdf``, ``.svg``, ...)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return tuple(f".{ext}" for ext in FigureCanvasBase.get_supported_filetypes())


def check_output_dir(path: str | Path, what: str = "output folder", *, create: bool = True) -> Path:
    """``path`` as a writable folder: created if needed (``create``), or only checked to be creatable,
    so that bad output folders fail before long work starts and nothing is made for a run that fails
    its own checks."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path} is an existing file, not a folder")
    if not create:
        _check_creatable(path, f"cannot create the {what} {path}")
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the {what} {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"the {what} {path} is not writable")
    return path
