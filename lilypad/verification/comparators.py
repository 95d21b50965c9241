"""Compare two job result directories under a module's comparator.

:func:`compare_under` answers "are these two results equivalent?" with a
:class:`Comparison` (``equal`` and a one-line ``reason``). It starts from
:func:`lilypad.results.compare.compare_results` (equal CIDs: equal under any
comparator; else the entries only on one side and those whose content
differs), drops what the comparator's ``ignore`` globs cover, and then asks
of each remaining difference whether the comparator accepts it:

* ``exact``: none is accepted;
* ``numeric``: a ``.json`` or ``.csv`` file matching ``files`` is accepted when
  :func:`numeric_difference` finds the same structure and every pair of numbers
  :func:`math.isclose` within the tolerances;
* ``image``: a file matching ``files`` is accepted when both sides decode as
  images (Pillow) whose perceptual hashes (``imagehash``) are at most
  ``maxDistance`` bits apart (:func:`image_distance`);
* ``verifier``: the verifier container decides (:mod:`lilypad.verification.verifier`).

Files read for a numeric or image comparison are capped at
:data:`MAX_PARSED_BYTES` each (a larger one is "not equivalent"): the
mediator compares files a provider sent.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lilypad.results.compare import ResultDiff, compare_results
from lilypad.verification.spec import (
    Comparator,
    ImageComparator,
    NumericComparator,
    VerifierComparator,
    matches_any,
)

__all__ = [
    "MAX_PARSED_BYTES",
    "Comparison",
    "NumericDifference",
    "compare_under",
    "differences",
    "image_distance",
    "numeric_difference",
]

MAX_PARSED_BYTES = 64 * 1024 * 1024
"""The largest file parsed as JSON/CSV or decoded as an image, in bytes."""


@dataclass(frozen=True)
class Comparison:
    """Whether two results are equivalent under a comparator, and why (one line)."""

    equal: bool
    reason: str


@dataclass(frozen=True)
class NumericDifference:
    """How two JSON/CSV files compare numerically.

    ``problem`` is ``None`` when they have the same structure and the same
    non-numbers (then ``max_abs``/``max_rel`` are the largest absolute and
    relative differences of their numbers, 0 when all are equal), else what
    differs first.
    """

    problem: str | None
    max_abs: float = 0.0
    max_rel: float = 0.0
    pairs: tuple[tuple[float, float], ...] = ()

    def within(self, abs_tolerance: float, rel_tolerance: float) -> tuple[float, float] | None:
        """The first pair of numbers not :func:`math.isclose` within the tolerances (``None``: all are)."""
        for x, y in self.pairs:
            if not (x == y or (math.isnan(x) and math.isnan(y))
                    or math.isclose(x, y, rel_tol=rel_tolerance, abs_tol=abs_tolerance)):
                return x, y
        return None


# --------------------------------------------------------------------------
# What differs
# --------------------------------------------------------------------------


def differences(diff: ResultDiff, ignore: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """(entries on one side only or of different kinds, files/links whose content
    differs) in ``diff``, leaving out what ``ignore`` covers; directories end with ``/``."""
    structural = [path for path in diff.only_in_a + diff.only_in_b if not matches_any(ignore, path.rstrip("/"))]
    content = []
    for item in diff.differing:
        if matches_any(ignore, item.path):
            continue
        if item.kind_a != item.kind_b or item.kind_a != "file":
            structural.append(item.path)
        else:
            content.append(item.path)
    return sorted(set(structural)), content


def _listing(paths: list[str], limit: int = 5) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


# --------------------------------------------------------------------------
# Numbers in JSON and CSV
# --------------------------------------------------------------------------


def _read_capped(path: Path) -> bytes:
    with open(path, "rb") as stream:
        data = stream.read(MAX_PARSED_BYTES + 1)
    if len(data) > MAX_PARSED_BYTES:
        raise ValueError(f"over {MAX_PARSED_BYTES} bytes")
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _walk_json(a: Any, b: Any, where: str) -> Iterator[tuple[str, float, float] | str]:
    """Yield number pairs ``(where, a, b)``, or a string saying the first structural difference."""
    stack = [(a, b, where)]
    while stack:
        x, y, at = stack.pop()
        if _is_number(x) and _is_number(y):
            yield at, float(x), float(y)
        elif isinstance(x, dict) and isinstance(y, dict):
            if x.keys() != y.keys():
                yield f"{at or 'the top level'}: keys differ ({_listing(sorted(x.keys() ^ y.keys()))})"
                return
            stack.extend((x[key], y[key], f"{at}.{key}") for key in x)
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                yield f"{at or 'the top level'}: {len(x)} items in one, {len(y)} in the other"
                return
            pairs = enumerate(zip(x, y, strict=True))
            stack.extend((item_x, item_y, f"{at}[{index}]") for index, (item_x, item_y) in pairs)
        elif type(x) is not type(y) or x != y:
            yield f"{at or 'the top level'}: {json.dumps(x)[:40]} in one, {json.dumps(y)[:40]} in the other"
            return


def _csv_number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value


def _walk_csv(a: list[list[str]], b: list[list[str]]) -> Iterator[tuple[str, float, float] | str]:
    if len(a) != len(b):
        yield f"{len(a)} rows in one, {len(b)} in the other"
        return
    for row, (cells_a, cells_b) in enumerate(zip(a, b, strict=True), start=1):
        if len(cells_a) != len(cells_b):
            yield f"row {row}: {len(cells_a)} columns in one, {len(cells_b)} in the other"
            return
        for column, (x, y) in enumerate(zip(cells_a, cells_b, strict=True), start=1):
            if x == y:
                continue
            number_x, number_y = _csv_number(x), _csv_number(y)
            if number_x is None or number_y is None:
                yield f"row {row}, column {column}: {x[:40]!r} in one, {y[:40]!r} in the other"
                return
            yield f"row {row}, column {column}", number_x, number_y


def _parse(path: Path, kind: str) -> Any:
    text = _read_capped(path).decode("utf-8")
    if kind == "json":
        return json.loads(text)
    return list(csv.reader(io.StringIO(text, newline="")))


def numeric_difference(a: Path, b: Path) -> NumericDifference:
    """Compare two ``.json`` or ``.csv`` files (by ``a``'s extension) number by number."""
    kind = "json" if a.suffix.lower() == ".json" else "csv" if a.suffix.lower() == ".csv" else ""
    if not kind:
        return NumericDifference("not a .json or .csv file")
    try:
        parsed_a, parsed_b = _parse(a, kind), _parse(b, kind)
        walk = _walk_json(parsed_a, parsed_b, "") if kind == "json" else _walk_csv(parsed_a, parsed_b)
        pairs: list[tuple[float, float]] = []
        max_abs = max_rel = 0.0
        for item in walk:
            if isinstance(item, str):
                return NumericDifference(item)
            _, x, y = item
            pairs.append((x, y))
            if math.isfinite(x) and math.isfinite(y):
                gap = abs(x - y)
                max_abs = max(max_abs, gap)
                if gap:
                    max_rel = max(max_rel, gap / max(abs(x), abs(y)))
            elif not (x == y or (math.isnan(x) and math.isnan(y))):
                max_abs = max_rel = math.inf
    except (OSError, ValueError, RecursionError, csv.Error) as exc:  # UnicodeDecodeError is a ValueError
        return NumericDifference(f"cannot be read as {kind.upper()}: {str(exc)[:80]}")
    return NumericDifference(None, max_abs, max_rel, tuple(pairs))


# --------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------


def image_distance(a: Path, b: Path, hash_kind: str = "phash") -> int:
    """The Hamming distance of the two images' perceptual hashes (``phash``,
    ``dhash`` or ``ahash``; 64-bit). Raises ``ValueError`` if either is not a
    decodable image (or is over :data:`MAX_PARSED_BYTES`)."""
    import imagehash  # numpy, scipy: loaded only when images are compared
    from PIL import Image, UnidentifiedImageError

    function = {"phash": imagehash.phash, "dhash": imagehash.dhash, "ahash": imagehash.average_hash}[hash_kind]
    hashes = []
    for path in (a, b):
        try:
            with Image.open(io.BytesIO(_read_capped(path))) as image:
                image.load()
                hashes.append(function(image))
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError, SyntaxError) as exc:
            raise ValueError(f"{path.name} is not a readable image: {str(exc)[:80]}") from None
    return int(hashes[0] - hashes[1])


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def _accepts(comparator: NumericComparator | ImageComparator, root_a: Path, root_b: Path, rel: str) -> str | None:
    """``None`` if the comparator accepts the differing file ``rel``, else why not."""
    path_a, path_b = root_a / rel, root_b / rel
    if isinstance(comparator, NumericComparator):
        numbers = numeric_difference(path_a, path_b)
        if numbers.problem is not None:
            return f"{rel}: {numbers.problem}"
        outside = numbers.within(comparator.abs_tolerance, comparator.rel_tolerance)
        if outside is not None:
            return (f"{rel}: {outside[0]!r} and {outside[1]!r} differ by more than absTolerance "
                    f"{comparator.abs_tolerance} / relTolerance {comparator.rel_tolerance}")
        return None
    try:
        distance = image_distance(path_a, path_b, comparator.hash)
    except ValueError as exc:
        return f"{rel}: {exc}"
    if distance > comparator.max_distance:
        return f"{rel}: {comparator.hash} distance {distance} is over maxDistance {comparator.max_distance}"
    return None


def compare_under(comparator: Comparator, a: str | os.PathLike[str], b: str | os.PathLike[str], *,
                  module_dir: Path | None = None, docker_client: Any = None) -> Comparison:
    """Whether result directories ``a`` and ``b`` are equivalent under ``comparator``.

    ``module_dir`` (the module's checkout) and ``docker_client`` are used by a
    ``verifier`` comparator only. Raises
    :class:`~lilypad.exceptions.CIDError` if a directory holds something that
    is not a file, directory or symbolic link; a verifier raises what
    :func:`lilypad.verification.verifier.run_verifier` raises.
    """
    diff = compare_results(a, b)
    if diff.reproducible:
        return Comparison(True, f"identical results (CID {diff.cid_a})")
    if isinstance(comparator, VerifierComparator):
        from lilypad.verification.verifier import run_verifier

        return run_verifier(comparator, Path(a), Path(b), module_dir=module_dir, client=docker_client)
    structural, content = differences(diff, comparator.ignore)
    if structural:
        return Comparison(False, f"{_listing(structural)}: present in one result only, or of different kinds")
    if isinstance(comparator, (NumericComparator, ImageComparator)):
        exact = [rel for rel in content if not matches_any(comparator.files, rel)]
        if exact:
            return Comparison(False, f"{_listing(exact)} differ{'s' if len(exact) == 1 else ''} "
                                     f"(compared byte for byte)")
        for rel in content:
            problem = _accepts(comparator, diff.a, diff.b, rel)
            if problem is not None:
                return Comparison(False, problem)
        what = ("numbers within tolerance" if isinstance(comparator, NumericComparator)
                else "images within maxDistance")
        return Comparison(True, what + ("; ignored paths left out" if comparator.ignore else ""))
    if content:
        return Comparison(False, f"{_listing(content)} differ{'s' if len(content) == 1 else ''}")
    return Comparison(True, "equal except for ignored paths")
