"""The module spec's ``verification`` block (lilypad.verification.spec, via parse_spec)."""

from __future__ import annotations

from typing import Any

import pytest

from lilypad.exceptions import SpecError
from lilypad.modules.spec import parse_spec
from lilypad.verification.spec import (
    ExactComparator,
    ImageComparator,
    NumericComparator,
    VerificationSpec,
    VerifierComparator,
)

JOB = {"Spec": {"Docker": {"Image": "busybox"}}}


def parse(verification: Any) -> VerificationSpec:
    return parse_spec({"job": JOB, "verification": verification}).verification


def test_absent_block_means_the_defaults() -> None:
    spec = parse_spec({"job": JOB}).verification
    assert spec == parse(None) == parse({}) == VerificationSpec()
    assert isinstance(spec.comparator, ExactComparator) and spec.comparator.ignore == ()
    assert spec.reruns == 2
    assert (spec.metering.unit, spec.metering.instructions) == ("job", 1)


def test_the_documented_example() -> None:
    spec = parse({"comparator": {"type": "exact", "ignore": ["outputs/time.txt"]}, "reruns": 2,
                  "metering": {"unit": "job", "instructions": 1}})
    assert spec.comparator == ExactComparator(ignore=("outputs/time.txt",))


def test_keys_match_case_insensitively_as_in_go() -> None:
    spec = parse_spec({"job": JOB, "Verification": {
        "Comparator": {"TYPE": "Numeric", "Files": ["outputs/*.json"], "abstolerance": 0.01, "IGNORE": ["x"]},
        "Reruns": 3, "Metering": {"Unit": "Second", "TOLERANCEPERCENT": 50}}}).verification
    assert spec.comparator == NumericComparator(files=("outputs/*.json",), absTolerance=0.01, ignore=("x",))
    assert spec.reruns == 3
    assert (spec.metering.unit, spec.metering.tolerance_percent) == ("second", 50)


def test_each_comparator_and_its_defaults() -> None:
    numeric = parse({"comparator": {"type": "numeric", "files": ["outputs/*.csv"]}}).comparator
    assert isinstance(numeric, NumericComparator) and (numeric.abs_tolerance, numeric.rel_tolerance) == (0, 0)
    image = parse({"comparator": {"type": "image", "files": ["outputs/*.png"], "hash": "DHash"}}).comparator
    assert isinstance(image, ImageComparator) and (image.hash, image.max_distance) == ("dhash", 0)
    verifier = parse({"comparator": {"type": "verifier", "context": "checks/verifier"}}).comparator
    assert isinstance(verifier, VerifierComparator) and verifier.timeout_seconds == 60
    assert parse({"metering": {"unit": "second"}}).metering.tolerance_percent == 100


@pytest.mark.parametrize(("verification", "path", "reason"), [
    ({"comparator": {"type": "fuzzy"}}, "verification.comparator", "unknown comparator type 'fuzzy'"),
    ({"comparator": {"ignore": ["../etc/passwd"]}}, "verification.comparator.exact.ignore",
     "escapes the result root"),
    ({"comparator": {"ignore": ["/outputs/x"]}}, "verification.comparator.exact.ignore",
     "relative to the result root"),
    ({"comparator": {"ignore": ["outputs//x"]}}, "verification.comparator.exact.ignore", "empty or '.'"),
    ({"comparator": {"type": "numeric", "files": ["outputs/*.json"], "absTolerance": -0.1}},
     "verification.comparator.numeric.absTolerance", "greater than or equal to 0"),
    ({"comparator": {"type": "numeric", "files": ["outputs/*.json"], "relTolerance": "0.1"}},
     "verification.comparator.numeric.relTolerance", "JSON number"),
    ({"comparator": {"type": "numeric"}}, "verification.comparator.numeric.files", "required"),
    ({"comparator": {"type": "numeric", "files": []}}, "verification.comparator.numeric.files", "at least 1"),
    ({"comparator": {"type": "image", "files": ["a.png"], "hash": "md5"}},
     "verification.comparator.image.hash", "unknown image hash 'md5'"),
    ({"comparator": {"type": "image", "files": ["a.png"], "maxDistance": 65}},
     "verification.comparator.image.maxDistance", "less than or equal to 64"),
    ({"comparator": {"type": "verifier", "context": "../shared"}}, "verification.comparator.verifier.context",
     "outside the module directory"),
    ({"comparator": {"type": "verifier", "context": "/verifier"}}, "verification.comparator.verifier.context",
     "relative to its root"),
    ({"comparator": {"type": "verifier", "context": "v", "timeoutSeconds": 601}},
     "verification.comparator.verifier.timeoutSeconds", "less than or equal to 600"),
    ({"comparator": {"type": "verifier"}}, "verification.comparator.verifier.context", "required"),
    ({"reruns": 1}, "verification.reruns", "greater than or equal to 2"),
    ({"reruns": 6}, "verification.reruns", "less than or equal to 5"),
    ({"reruns": 2.0}, "verification.reruns", "valid integer"),
    ({"metering": {"unit": "gpu-hour"}}, "verification.metering.unit", "unknown metering unit"),
    ({"metering": {"unit": "job", "instructions": 0}}, "verification.metering.instructions",
     "greater than or equal to 1"),
    ({"metering": {"unit": "second", "instructions": 5}}, "verification.metering", "does not go with"),
    ({"metering": {"unit": "job", "tolerancePercent": 5}}, "verification.metering", "unit \"second\" only"),
    ({"metering": {"unit": "second", "tolerancePercent": -1}}, "verification.metering.tolerancePercent",
     "greater than or equal to 0"),
    ("exact", "verification", "valid dictionary"),
])
def test_invalid_blocks_name_the_field(verification: Any, path: str, reason: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse(verification)
    assert caught.value.path == path
    assert reason in caught.value.reason, caught.value.reason


def test_builtin_modules_declare_their_comparators() -> None:
    from pathlib import Path

    from lilypad.modules.spec import render_spec

    modules = Path(__file__).resolve().parents[2] / "modules"

    def render(name: str) -> VerificationSpec:
        return render_spec((modules / name / "lilypad_module.json.tmpl").read_text(), {}).verification

    jitter = render("jitter")
    assert jitter.comparator == NumericComparator(files=("outputs/*.json",), absTolerance=0.01,
                                                  ignore=("outputs/run.log",))
    assert (jitter.metering.unit, jitter.metering.tolerance_percent) == ("second", 200)
    assert render("verified-sort").comparator == VerifierComparator(context="verifier", timeoutSeconds=60)
    assert render("nondeterministic") == VerificationSpec()
