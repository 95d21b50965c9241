"""The ``verification`` block of a module spec: how results are compared and metered.

A lilypad extension of the module spec (the original's Go decoder ignores it
as an unknown key); optional, and when absent every default below applies,
which is exactly the behaviour before it existed (byte equality, one
instruction per job)::

    "verification": {
      "comparator": {"type": "numeric", "files": ["outputs/*.json"], "absTolerance": 0.01,
                     "ignore": ["outputs/run.log"]},
      "reruns": 2,
      "metering": {"unit": "second", "tolerancePercent": 200}
    }

Comparators (``comparator.type``, default ``exact``); every one takes
``ignore``, globs of result paths left out of the comparison:

* ``exact``: every other entry byte for byte;
* ``numeric``: files matching ``files`` that end in ``.json`` or ``.csv`` must
  have the same structure, numbers equal within ``absTolerance`` /
  ``relTolerance`` (:func:`math.isclose`), everything else equal; other files exact;
* ``image``: files matching ``files`` must decode as images whose perceptual
  hashes (``hash``: ``phash``, ``dhash`` or ``ahash``) are at most
  ``maxDistance`` bits apart; other files exact;
* ``verifier``: a container built from ``context`` (a directory of the module
  holding a ``Dockerfile``) gets both results read-only at ``/results/a`` and
  ``/results/b`` and exits 0 when they are equivalent, within ``timeoutSeconds``.

Globs are ``/``-separated paths relative to the result's root (which holds
``stdout``, ``stderr``, ``exitCode`` and ``outputs/``): ``*``, ``?`` and
``[...]`` match within one path segment, a ``**`` segment matches any number
of segments, and a pattern that matches a directory covers everything in it.

``reruns`` (2 to 5) is how many times the mediator re-runs a checked job;
``metering`` is what one instruction is (see :class:`MeteringSpec`).
The models decode JSON as Go does (:class:`~lilypad.modules.gojson.GoModel`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StrictInt, StrictStr, field_validator, model_validator

from lilypad.modules.gojson import GoModel, json_number
from lilypad.verification.metering import allowed_instructions, claimed_instructions

__all__ = [
    "COMPARATOR_TYPES",
    "DEFAULT_RERUNS",
    "DEFAULT_SECOND_TOLERANCE_PERCENT",
    "HASH_KINDS",
    "MAX_RERUNS",
    "MAX_VERIFIER_TIMEOUT_S",
    "MIN_RERUNS",
    "Comparator",
    "ExactComparator",
    "ImageComparator",
    "MeteringSpec",
    "NumericComparator",
    "VerificationSpec",
    "VerifierComparator",
    "check_glob",
    "glob_matches",
    "matches_any",
]

COMPARATOR_TYPES = ("exact", "numeric", "image", "verifier")
HASH_KINDS = ("phash", "dhash", "ahash")
MIN_RERUNS, MAX_RERUNS, DEFAULT_RERUNS = 2, 5, 2
MAX_VERIFIER_TIMEOUT_S = 600
DEFAULT_VERIFIER_TIMEOUT_S = 60
DEFAULT_SECOND_TOLERANCE_PERCENT = 100


# --------------------------------------------------------------------------
# Globs over result paths
# --------------------------------------------------------------------------


def check_glob(pattern: str) -> str:
    """``pattern`` if it is a glob of paths inside a result, else ``ValueError``:
    it must be relative, non-empty, without ``..``, ``.`` or empty segments,
    backslashes or NUL characters."""
    if not pattern:
        raise ValueError("a glob must not be empty")
    if pattern.startswith("/"):
        raise ValueError(f"glob {pattern!r} must be relative to the result root (no leading '/')")
    if "\\" in pattern or "\x00" in pattern:
        raise ValueError(f"glob {pattern!r} must not contain backslashes or NUL characters")
    segments = pattern.split("/")
    if ".." in segments:
        raise ValueError(f"glob {pattern!r} escapes the result root ('..')")
    if any(segment in ("", ".") for segment in segments):
        raise ValueError(f"glob {pattern!r} has an empty or '.' path segment")
    return pattern


def _match_segments(pattern: list[str], path: list[str]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match_segments(rest, path[skip:]) for skip in range(len(path) + 1))
    return bool(path) and fnmatch.fnmatchcase(path[0], head) and _match_segments(rest, path[1:])


def glob_matches(pattern: str, rel: str) -> bool:
    """Whether the result path ``rel`` (``/``-separated, relative) or one of its
    parent directories matches ``pattern`` (see the module docstring)."""
    parts, wanted = rel.strip("/").split("/"), pattern.split("/")
    return any(_match_segments(wanted, parts[:depth]) for depth in range(1, len(parts) + 1))


def matches_any(patterns: Iterable[str], rel: str) -> bool:
    """Whether ``rel`` (or a parent directory) matches one of ``patterns``."""
    return any(glob_matches(pattern, rel) for pattern in patterns)


def _globs(value: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in value:
        check_glob(pattern)
    return value


_Globs = Annotated[tuple[StrictStr, ...], Field(max_length=256)]
_Tolerance = Annotated[float, BeforeValidator(json_number), Field(ge=0, allow_inf_nan=False)]


# --------------------------------------------------------------------------
# Comparators
# --------------------------------------------------------------------------


class _ComparatorBase(GoModel):
    ignore: _Globs = ()

    @field_validator("ignore")
    @classmethod
    def _ignore(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _globs(value)


class ExactComparator(_ComparatorBase):
    """Byte equality of every entry not matched by ``ignore`` (the default)."""

    type: Literal["exact"] = "exact"


class NumericComparator(_ComparatorBase):
    """JSON/CSV files matching ``files``: same structure, numbers within tolerance."""

    type: Literal["numeric"] = "numeric"
    files: _Globs = Field(min_length=1)
    abs_tolerance: _Tolerance = Field(0.0, alias="absTolerance")
    rel_tolerance: _Tolerance = Field(0.0, alias="relTolerance")

    @field_validator("files")
    @classmethod
    def _files(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _globs(value)


class ImageComparator(_ComparatorBase):
    """Images matching ``files``: perceptual hashes at most ``maxDistance`` bits apart."""

    type: Literal["image"] = "image"
    files: _Globs = Field(min_length=1)
    max_distance: Annotated[StrictInt, Field(ge=0, le=64)] = Field(0, alias="maxDistance")
    hash: Literal["phash", "dhash", "ahash"] = "phash"

    @field_validator("files")
    @classmethod
    def _files(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _globs(value)

    @field_validator("hash", mode="before")
    @classmethod
    def _hash(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() not in HASH_KINDS:
            raise ValueError(f"unknown image hash {value!r} ({', '.join(HASH_KINDS)})")
        return value.lower() if isinstance(value, str) else value


class VerifierComparator(_ComparatorBase):
    """A verifier container built from ``context`` (a directory of the module)."""

    type: Literal["verifier"] = "verifier"
    context: StrictStr
    timeout_seconds: Annotated[StrictInt, Field(ge=1, le=MAX_VERIFIER_TIMEOUT_S)] = Field(
        DEFAULT_VERIFIER_TIMEOUT_S, alias="timeoutSeconds")

    @field_validator("context")
    @classmethod
    def _context(cls, value: str) -> str:
        if not value or value.startswith("/") or "\\" in value or "\x00" in value:
            raise ValueError(f"the verifier context must be a directory of the module, given relative to "
                             f"its root, got {value!r}")
        if ".." in value.split("/"):
            raise ValueError(f"the verifier context {value!r} is outside the module directory ('..')")
        return value


Comparator = Annotated[
    ExactComparator | NumericComparator | ImageComparator | VerifierComparator,
    Field(discriminator="type"),
]


def _comparator_type(value: Any) -> Any:
    """Find ``type`` case-insensitively, default it to ``exact``, and refuse unknown types."""
    if not isinstance(value, Mapping):
        return value
    data = {key: item for key, item in value.items() if not (isinstance(key, str) and key.lower() == "type")}
    given = [item for key, item in value.items() if isinstance(key, str) and key.lower() == "type"]
    kind = given[-1] if given and given[-1] is not None else "exact"
    if not isinstance(kind, str) or kind.lower() not in COMPARATOR_TYPES:
        raise ValueError(f"unknown comparator type {kind!r} ({', '.join(COMPARATOR_TYPES)})")
    data["type"] = kind.lower()
    return data


# --------------------------------------------------------------------------
# Metering
# --------------------------------------------------------------------------


class MeteringSpec(GoModel):
    """What one instruction is, for this module.

    * ``{"unit": "job", "instructions": N}`` (the default, N=1): a fixed count per job;
    * ``{"unit": "second", "tolerancePercent": P}``: one instruction per started
      second of the container's running time (at least 1); the mediator accepts
      up to its own slowest run's count times ``1 + P/100``, rounded up (P=100 default).
    """

    unit: Literal["job", "second"] = "job"
    instructions_given: Annotated[StrictInt, Field(ge=1)] | None = Field(None, alias="instructions")
    tolerance_given: _Tolerance | None = Field(None, alias="tolerancePercent")

    @field_validator("unit", mode="before")
    @classmethod
    def _unit(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lower() not in ("job", "second"):
                raise ValueError(f"unknown metering unit {value!r} (job or second)")
            return value.lower()
        return value

    @model_validator(mode="after")
    def _fields_of_unit(self) -> MeteringSpec:
        if self.unit == "second" and self.instructions_given is not None:
            raise ValueError("instructions is a count per job: it does not go with unit \"second\"")
        if self.unit == "job" and self.tolerance_given is not None:
            raise ValueError("tolerancePercent applies to unit \"second\" only")
        return self

    @property
    def instructions(self) -> int:
        """The fixed count per job (unit ``job``; 1 unless declared)."""
        return self.instructions_given or 1

    @property
    def tolerance_percent(self) -> float:
        """How much slower than the mediator's slowest run a provider may claim (unit ``second``)."""
        return DEFAULT_SECOND_TOLERANCE_PERCENT if self.tolerance_given is None else self.tolerance_given

    def claim(self, duration_s: float) -> int:
        """The instruction count an honest provider claims for a run of ``duration_s`` seconds."""
        return claimed_instructions(self.unit, self.instructions, duration_s)

    def allowed(self, durations: Iterable[float]) -> int:
        """The most instructions the mediator accepts, given its own runs' durations."""
        return allowed_instructions(self.unit, self.instructions, self.tolerance_percent, durations)


# --------------------------------------------------------------------------
# The block
# --------------------------------------------------------------------------


class VerificationSpec(GoModel):
    """The ``verification`` block (every field optional; see the module docstring)."""

    comparator: Annotated[Comparator, BeforeValidator(_comparator_type)] = Field(
        default_factory=ExactComparator)
    reruns: Annotated[StrictInt, Field(ge=MIN_RERUNS, le=MAX_RERUNS)] = DEFAULT_RERUNS
    metering: MeteringSpec = Field(default_factory=MeteringSpec)
