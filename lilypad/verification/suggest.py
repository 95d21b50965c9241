"""Suggest a comparator under which two differing results would be equivalent.

For ``lilypad module check``: after two runs of a module disagree,
:func:`suggest_comparator` looks at what differs and proposes the narrowest
built-in comparator that accepts it, as the JSON to paste into the spec:

* differing ``.json``/``.csv`` files with the same structure -> ``numeric`` over
  those files, ``absTolerance`` the largest observed difference rounded up to
  one significant digit;
* differing images whose perceptual hashes are close (at most
  :data:`MAX_SUGGESTED_DISTANCE` bits apart) -> ``image`` over those files,
  ``maxDistance`` the largest observed distance;
* anything else (and entries present in one result only) -> ``ignore``d paths,
  on an ``exact`` comparator when nothing of the above applies.

Two runs are a small sample: the suggestion is a starting point, and ignored
paths are not checked at all by mediation.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

from lilypad.results.compare import compare_results
from lilypad.verification.comparators import differences, image_distance, numeric_difference

__all__ = ["MAX_SUGGESTED_DISTANCE", "Suggestion", "round_up", "suggest_comparator"]

MAX_SUGGESTED_DISTANCE = 10
"""The largest perceptual-hash distance (of 64 bits) still called "the same picture"."""


@dataclass(frozen=True)
class Suggestion:
    """A comparator (its spec JSON) and a line on why."""

    comparator: dict[str, Any]
    explanation: str
    ignored: tuple[str, ...] = field(default=())

    def snippet(self) -> str:
        """The ``verification`` block to paste into ``lilypad_module.json.tmpl``."""
        return json.dumps({"verification": {"comparator": self.comparator}}, indent=2)


def round_up(value: float) -> float:
    """``value`` rounded up to one significant digit (``0.00093`` -> ``0.001``, ``0.0123`` -> ``0.02``)."""
    if value <= 0 or not math.isfinite(value):
        return value
    exact = Decimal(repr(value))
    step = Decimal(1).scaleb(exact.adjusted())
    return float((exact / step).to_integral_value(rounding=ROUND_CEILING) * step)


def suggest_comparator(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> Suggestion | None:
    """A comparator under which results ``a`` and ``b`` are equivalent (``None`` if they are identical)."""
    diff = compare_results(a, b)
    if diff.reproducible:
        return None
    structural, content = differences(diff)
    numeric: dict[str, float] = {}
    images: dict[str, int] = {}
    other = [path.rstrip("/") for path in structural]
    for rel in content:
        path_a, path_b = Path(a) / rel, Path(b) / rel
        if path_a.suffix.lower() in (".json", ".csv"):
            numbers = numeric_difference(path_a, path_b)
            if numbers.problem is None and math.isfinite(numbers.max_abs):
                numeric[rel] = numbers.max_abs
                continue
        else:
            try:
                distance = image_distance(path_a, path_b)
            except ValueError:
                distance = MAX_SUGGESTED_DISTANCE + 1
            if distance <= MAX_SUGGESTED_DISTANCE:
                images[rel] = distance
                continue
        other.append(rel)
    if images and len(images) >= len(numeric):
        other += list(numeric)
        comparator: dict[str, Any] = {"type": "image", "files": sorted(images), "hash": "phash",
                                      "maxDistance": max(images.values())}
        why = f"{len(images)} image(s) differ by at most {max(images.values())} bits of their perceptual hash"
    elif numeric:
        other += list(images)
        tolerance = round_up(max(numeric.values()))
        comparator = {"type": "numeric", "files": sorted(numeric), "absTolerance": tolerance}
        why = f"{len(numeric)} JSON/CSV file(s) differ only in numbers, by at most {max(numeric.values())!r}"
    else:
        comparator = {"type": "exact"}
        why = "the differing paths are ignored"
    if other:
        comparator["ignore"] = sorted(set(other))
        if numeric or images:
            why += f"; {len(set(other))} other path(s) are ignored"
    return Suggestion(comparator, why, tuple(sorted(set(other))))
