"""Parse and check job inputs: the ``-i KEY=VALUE`` strings of ``lilypad run``
and the ``string[] inputs`` of on-chain jobs.

Each item is one input, split on its *first* ``=`` only: the value is
everything after it, ``=`` and ``,`` included, exactly as the shell passed it
(``-i Message="hi there"`` is ``hi there``; ``-i 'Message=a=b,c=d'`` is
``a=b,c=d``). The original reads ``-i`` with pflag's ``StringToString``, a CSV
reader: there a comma starts another ``KEY=VALUE`` pair (``Message=a=b`` and
``c=d``), ``-i Message=hello, world`` is an error and quotes inside a value are
CSV quoting; here a comma is part of the value and one ``-i`` is one input
(see docs/modules.md). The original's on-chain daemon drops inputs whose
value contains ``=``; we keep them. Keys must be
identifiers (``^[A-Za-z_][A-Za-z0-9_]*$``) so that templates can name them as
``.Key``. Values may be empty (``-i Seed=``: the input is *set*, so
``{{if .Seed}}`` is true) but may not contain NUL characters (they cannot
reach a container's environment) or undecodable bytes.

Limits, measured in UTF-8 bytes: a value at most :data:`MAX_VALUE_BYTES`
(64 KiB); all inputs together at most :data:`MAX_TOTAL_BYTES` (256 KiB,
counting each input as ``len(KEY=VALUE)``); at most :data:`MAX_INPUTS` (64)
inputs. A key given twice is an error rather than a silent override.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from lilypad.exceptions import InputError

__all__ = [
    "KEY_PATTERN",
    "MAX_INPUTS",
    "MAX_TOTAL_BYTES",
    "MAX_VALUE_BYTES",
    "format_inputs",
    "parse_input",
    "parse_inputs",
    "validate_inputs",
]

KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_VALUE_BYTES = 64 * 1024
MAX_TOTAL_BYTES = 256 * 1024
MAX_INPUTS = 64

_MAX_KEY_CHARS = 256


def _utf8_len(text: str, key: str | None, what: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InputError(f"{what} is not valid UTF-8 text", key) from None


def _check_key(key: str) -> None:
    if not key:
        raise InputError("the key is empty (write KEY=VALUE)")
    if len(key) > _MAX_KEY_CHARS:
        raise InputError(f"the key is longer than {_MAX_KEY_CHARS} characters", key[:40] + "...")
    if not KEY_PATTERN.fullmatch(key):
        raise InputError(
            "keys must start with a letter or '_' and contain only letters, digits and '_'", key
        )


def _check_value(key: str, value: str) -> int:
    size = _utf8_len(value, key, "the value")
    if size > MAX_VALUE_BYTES:
        raise InputError(f"the value is {size} bytes, over the limit of {MAX_VALUE_BYTES}", key)
    if "\x00" in value:
        raise InputError("the value contains a NUL character", key)
    return size


def parse_input(item: str) -> tuple[str, str]:
    """Split one ``KEY=VALUE`` string on its first ``=`` and check both parts."""
    key, sep, value = item.partition("=")
    if not sep:
        shown = item if len(item) <= 40 else item[:37] + "..."
        raise InputError(f"{shown!r} has no '=' (write KEY=VALUE)")
    _check_key(key)
    _check_value(key, value)
    return key, value


def _check_totals(count: int, total: int) -> None:
    if count > MAX_INPUTS:
        raise InputError(f"{count} inputs given, over the limit of {MAX_INPUTS}")
    if total > MAX_TOTAL_BYTES:
        raise InputError(f"the inputs total {total} bytes, over the limit of {MAX_TOTAL_BYTES}")


def parse_inputs(items: Iterable[str]) -> dict[str, str]:
    """Parse ``KEY=VALUE`` strings into a dict, in order, enforcing every rule."""
    result: dict[str, str] = {}
    total = 0
    for item in items:
        key, value = parse_input(item)
        if key in result:
            raise InputError("given more than once", key)
        result[key] = value
        total += len(key) + 1 + len(value.encode("utf-8"))
        _check_totals(len(result), total)
    return result


def validate_inputs(inputs: Mapping[str, str]) -> dict[str, str]:
    """Check an already-split mapping against the same rules; return a plain dict copy."""
    total = 0
    items: Iterable[tuple[object, object]] = inputs.items()  # callers may pass anything
    for key, value in items:
        if not isinstance(key, str) or not isinstance(value, str):
            raise InputError("keys and values must be strings", str(key))
        _check_key(key)
        total += len(key) + 1 + _check_value(key, value)
    _check_totals(len(inputs), total)
    return dict(inputs)


def format_inputs(inputs: Mapping[str, str]) -> list[str]:
    """The inverse of :func:`parse_inputs`: ``["KEY=VALUE", ...]``."""
    return [f"{key}={value}" for key, value in inputs.items()]
