"""One TOML value of a configuration as a Python value, or a problem reported under its key.

``Where`` collects problems as ``FILE: [TABLE] KEY: message``; ``build_backoff``,
``build_jitter`` and ``exceptions`` convert the values of ``backoff``, ``jitter``
and ``retry_on``/``counts``; the small helpers name TOML types and table keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import backoff as _backoff
from . import jitter as _jitter
from ._classifiers import import_exception
from ._errors import ConfigError

__all__ = [
    "Where",
    "build_backoff",
    "build_jitter",
    "exceptions",
    "is_int",
    "is_number",
    "join",
    "show",
    "table_key",
    "unknown",
]


class Where:
    """Formats problems as ``FILE: [TABLE] KEY: message`` and collects them."""

    __slots__ = ("file", "problems", "table")

    def __init__(self, file: str, table: str, problems: list[str]) -> None:
        self.file = file
        self.table = table
        self.problems = problems

    def bad(self, key: str | None, message: str) -> None:
        parts = [f"{self.file}:"]
        if self.table:
            parts.append(f"[{self.table}]")
        if key is not None:
            parts.append(f"{key}:")
        parts.append(message)
        self.problems.append(" ".join(parts))


def _kind_of(
    where: Where,
    key: str,
    value: Any,
    what: str,
    kinds: Mapping[str, Any],
    required: Callable[[str], tuple[str, ...]],
    *,
    known: str,
    article: str = "",
) -> tuple[str, dict[str, Any]] | None:
    """The kind of a backoff or jitter (``what``) given by name or as an inline table,
    with the table (``{}`` for a name); ``None`` when a problem was reported. ``known``
    lists the kinds in messages."""
    if isinstance(value, str):
        if value not in kinds:
            where.bad(key, f"unknown {what} kind {value!r} (known: {known})")
            return None
        needs = required(value)
        if needs:
            example = ", ".join(f"{name} = ..." for name in needs)
            where.bad(
                key,
                f'{what} "{value}" needs {article}{", ".join(needs)}: '
                f'{{ kind = "{value}", {example} }}',
            )
            return None
        return value, {}
    if not isinstance(value, dict):
        where.bad(key, f"must be a {what} kind or an inline table, got {show(value)}")
        return None
    kind = value.get("kind")
    if kind is None:
        where.bad(f"{key}.kind", f"missing: an inline {what} table needs kind = one of {known}")
        return None
    if not isinstance(kind, str) or kind not in kinds:
        shown = repr(kind) if isinstance(kind, str) else show(kind)
        where.bad(f"{key}.kind", f"unknown {what} kind {shown} (known: {known})")
        return None
    return kind, value


def build_backoff(where: Where, key: str, value: Any) -> _backoff.Backoff | None:
    """A backoff kind by name, or an inline table of a kind and its constructor's arguments."""
    kinds = ", ".join(sorted(_backoff.KINDS))
    named = _kind_of(where, key, value, "backoff", _backoff.KINDS, _backoff.required, known=kinds)
    if named is None:
        return None
    kind, value = named
    if not value:  # a kind given by name
        return _backoff.KINDS[kind]()
    make, allowed = _backoff.KINDS[kind], _backoff.parameters(kind)
    args: dict[str, Any] = {}
    ok = True
    for sub, arg in value.items():
        if sub == "kind":
            continue
        path = f"{key}.{sub}"
        if sub not in allowed:
            where.bad(path, unknown("key", sub, allowed, f" for backoff {kind!r}"))
            ok = False
            continue
        if sub == "then":
            then = build_backoff(where, path, arg)
            ok = ok and then is not None
            args[sub] = then
            continue
        if sub == "delays":
            if not isinstance(arg, list) or not all(is_number(d) for d in arg):
                where.bad(
                    path, f"backoff.{kind}: {sub} must be an array of numbers, got {show(arg)}"
                )
                ok = False
                continue
        elif not is_number(arg):
            where.bad(path, f"backoff.{kind}: {sub} must be a number, got {show(arg)}")
            ok = False
            continue
        try:
            make(**{sub: arg})  # alone, so the problem is reported under its own key
        except ConfigError as exc:
            where.bad(path, str(exc))
            ok = False
            continue
        args[sub] = arg
    for name in _backoff.required(kind):
        if name not in value:
            where.bad(f"{key}.{name}", f"missing: backoff {kind!r} needs {name}")
            ok = False
    if not ok:
        return None
    try:
        return make(**args)
    except ConfigError as exc:
        where.bad(key, str(exc))
        return None


def build_jitter(where: Where, key: str, value: Any) -> _jitter.Jitter | None:
    """A jitter kind by name, or an inline table of a kind and its options."""
    kinds = ", ".join(_jitter.KINDS)
    named = _kind_of(
        where, key, value, "jitter", _jitter.KINDS, _jitter.required, known=kinds, article="a "
    )
    if named is None:
        return None
    kind, value = named
    if not value:  # a kind given by name
        return _jitter.make(kind)
    allowed = _jitter.parameters(kind)
    options: dict[str, Any] = {}
    ok = True
    for sub, arg in value.items():
        if sub == "kind":
            continue
        path = f"{key}.{sub}"
        if sub not in allowed:
            where.bad(path, unknown("key", sub, allowed, f" for jitter {kind!r}"))
            ok = False
        elif not is_number(arg):
            where.bad(path, f"jitter.{kind}: {sub} must be a number, got {show(arg)}")
            ok = False
        else:
            options[sub] = arg
    for name in _jitter.required(kind):
        if name not in value:
            where.bad(f"{key}.{name}", f"missing: jitter {kind!r} needs {name}")
            ok = False
    if not ok:
        return None
    try:
        return _jitter.make(kind, **options)
    except ConfigError as exc:
        # Each option's own check names it; blame the one the message names.
        blamed = next((name for name in options if name in str(exc)), None)
        where.bad(key if blamed is None else f"{key}.{blamed}", str(exc))
        return None


def exceptions(where: Where, key: str, value: Any) -> tuple[type[BaseException], ...] | None:
    """Exception types named by a string or an array of strings, imported now."""
    items: list[Any]
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list):
        items = value
        if not items:
            where.bad(key, "must not be empty (leave the key out to use the default classifier)")
            return None
    else:
        where.bad(key, f"must be an array of exception names, got {show(value)}")
        return None
    types: list[type[BaseException]] = []
    ok = True
    for item in items:
        if not isinstance(item, str):
            where.bad(
                key, f"entries must be exception names or 'module:Qualname', got {show(item)}"
            )
            ok = False
            continue
        try:
            types.append(import_exception(item, field=key))
        except ConfigError as exc:
            # import_exception prefixes the field, which this message already names.
            where.bad(key, str(exc).removeprefix(f"{key}: "))
            ok = False
        except Exception as exc:  # the module itself failed while importing
            where.bad(key, f"cannot import {item!r}: {type(exc).__name__}: {exc}")
            ok = False
    return tuple(types) if ok else None


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def show(value: Any) -> str:
    """``value`` with its TOML type, so a quoted number is easy to spot."""
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, int):
        kind = "an integer"
    elif isinstance(value, float):
        kind = "a float"
    elif isinstance(value, str):
        kind = "a string"
    elif isinstance(value, list):
        kind = "an array"
    elif isinstance(value, dict):
        kind = "a table"
    elif type(value).__module__ == "datetime":  # date, time or datetime
        kind = "a date/time"
    else:  # pragma: no cover - tomllib produces nothing else
        kind = type(value).__name__
    return f"{value!r} ({kind})"


def unknown(what: str, key: str, known: tuple[str, ...], context: str = "") -> str:
    import difflib

    hint = difflib.get_close_matches(key, known, n=1)
    did_you_mean = f"did you mean {hint[0]!r}? " if hint else ""
    listing = ", ".join(sorted(known)) or "none"
    return f"unknown {what} {key!r}{context} ({did_you_mean}known: {listing})"


def table_key(name: str) -> str:
    """``name`` as TOML writes it in a table header: bare when it can be, else quoted."""
    import json
    import re

    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def join(*parts: str) -> str:
    return ".".join(p for p in parts if p)
