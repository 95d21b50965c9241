"""Suggesting a comparator from two differing results (lilypad.verification.suggest); every
suggestion is checked to accept the results it came from."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from lilypad.verification.comparators import compare_under
from lilypad.verification.spec import VerificationSpec
from lilypad.verification.suggest import round_up, suggest_comparator

MakeResult = Callable[..., Path]  # the make_result fixture (conftest.py)


def accepts(suggested: dict[str, object], a, b) -> bool:
    spec = VerificationSpec.model_validate(json.loads(json.dumps({"comparator": suggested})))
    return compare_under(spec.comparator, a, b).equal


@pytest.mark.parametrize(("value", "rounded"), [(0.00093, 0.001), (0.0123, 0.02), (0.5, 0.5), (7.1, 8.0),
                                                (120.0, 200.0), (0.0, 0.0)])
def test_round_up(value: float, rounded: float) -> None:
    assert round_up(value) == rounded


def test_identical_results_need_no_suggestion(make_result: MakeResult) -> None:
    assert suggest_comparator(make_result("a"), make_result("b")) is None


def test_a_few_differing_files_suggest_ignoring_them(make_result: MakeResult) -> None:
    a = make_result("a", outputs={"data": b"x", "time.txt": b"12:00", "uuid.txt": b"1"})
    b = make_result("b", outputs={"data": b"x", "time.txt": b"12:01", "uuid.txt": b"2", "extra/f": b""})
    suggestion = suggest_comparator(a, b)
    assert suggestion is not None
    assert suggestion.comparator == {"type": "exact",
                                     "ignore": ["outputs/extra", "outputs/time.txt", "outputs/uuid.txt"]}
    assert accepts(suggestion.comparator, a, b)
    assert json.loads(suggestion.snippet())["verification"]["comparator"]["type"] == "exact"


def test_numeric_differences_suggest_a_tolerance(make_result: MakeResult) -> None:
    a = make_result("a", outputs={"result.json": json.dumps({"mean": 2.50041}).encode(), "run.log": b"1"})
    b = make_result("b", outputs={"result.json": json.dumps({"mean": 2.49952}).encode(), "run.log": b"2"})
    suggestion = suggest_comparator(a, b)
    assert suggestion is not None
    assert suggestion.comparator == {"type": "numeric", "files": ["outputs/result.json"], "absTolerance": 0.0009,
                                     "ignore": ["outputs/run.log"]}
    assert accepts(suggestion.comparator, a, b)


def png(shade: int) -> bytes:
    image = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(image).ellipse((10, 10, 80, 80), fill=(shade, 30, 30))
    ImageDraw.Draw(image).rectangle((40, 0, 60, 96), fill=(10, 10, shade))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_slightly_different_images_suggest_an_image_comparator(make_result: MakeResult) -> None:
    a = make_result("a", outputs={"img.png": png(200)})
    b = make_result("b", outputs={"img.png": png(203)})
    suggestion = suggest_comparator(a, b)
    assert suggestion is not None and suggestion.comparator["type"] == "image"
    assert suggestion.comparator["files"] == ["outputs/img.png"]
    assert 0 <= suggestion.comparator["maxDistance"] <= 10
    assert accepts(suggestion.comparator, a, b)
