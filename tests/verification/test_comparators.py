"""Comparing two results under a comparator (lilypad.verification.comparators), on real files."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from lilypad.verification.comparators import compare_under, image_distance, numeric_difference
from lilypad.verification.spec import VerificationSpec, glob_matches

MakeResult = Callable[..., Path]  # the make_result fixture (conftest.py)


def comparator(**data: object):
    return VerificationSpec.model_validate({"comparator": data}).comparator


def as_json(**values: object) -> bytes:
    return json.dumps(values, indent=2, sort_keys=True).encode()


# --------------------------------------------------------------------------
# Globs
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("outputs/time.txt", "outputs/time.txt", True),
    ("outputs/*.json", "outputs/result.json", True),
    ("outputs/*.json", "outputs/sub/result.json", False),   # * stays within a segment
    ("outputs/**/*.json", "outputs/sub/deep/result.json", True),
    ("outputs/**/*.json", "outputs/result.json", True),      # ** matches zero segments
    ("outputs/logs", "outputs/logs/today.txt", True),        # a directory covers its contents
    ("stdout", "stdout", True),
    ("stdout", "stderr", False),
    ("outputs/t?me.txt", "outputs/time.txt", True),
    ("Outputs/time.txt", "outputs/time.txt", False),         # case-sensitive, like the file system
])
def test_glob_matches(pattern: str, path: str, matches: bool) -> None:
    assert glob_matches(pattern, path) is matches


# --------------------------------------------------------------------------
# exact
# --------------------------------------------------------------------------


def test_exact_accepts_identical_and_rejects_a_changed_file(make_result: MakeResult) -> None:
    a = make_result("a", outputs={"x.txt": b"1"})
    same = make_result("same", outputs={"x.txt": b"1"})
    forged = make_result("forged", outputs={"x.txt": b"2"})
    assert compare_under(comparator(), a, same).equal
    verdict = compare_under(comparator(), a, forged)
    assert not verdict.equal and "outputs/x.txt" in verdict.reason


def test_exact_with_ignore_accepts_the_ignored_variation_only(make_result: MakeResult) -> None:
    exact = comparator(type="exact", ignore=["outputs/time.txt", "outputs/logs"])
    a = make_result("a", outputs={"data": b"same", "time.txt": b"12:00", "logs/1.log": b"x"})
    honest = make_result("b", outputs={"data": b"same", "time.txt": b"12:01", "logs/2.log": b"y"})
    forged = make_result("c", outputs={"data": b"forged", "time.txt": b"12:01"})
    assert compare_under(exact, a, honest).equal
    verdict = compare_under(exact, a, forged)
    assert not verdict.equal and "outputs/data" in verdict.reason


def test_exact_rejects_entries_present_on_one_side(make_result: MakeResult) -> None:
    a = make_result("a", outputs={"x": b"1"})
    b = make_result("b", outputs={"x": b"1", "extra": b""})
    verdict = compare_under(comparator(ignore=["outputs/other"]), a, b)
    assert not verdict.equal and "outputs/extra" in verdict.reason


def test_a_different_exit_code_or_stdout_is_a_difference(make_result: MakeResult) -> None:
    a = make_result("a", outputs={"r.json": as_json(v=1.0)})
    numeric = comparator(type="numeric", files=["outputs/*.json"], absTolerance=0.1)
    assert not compare_under(numeric, a, make_result("b", outputs={"r.json": as_json(v=1.0)}, exit_code=b"1")).equal
    assert not compare_under(numeric, a, make_result("c", outputs={"r.json": as_json(v=1.0)}, stdout=b"x")).equal


# --------------------------------------------------------------------------
# numeric
# --------------------------------------------------------------------------


JITTER = comparator(type="numeric", files=["outputs/*.json"], absTolerance=0.01, ignore=["outputs/run.log"])


def test_numeric_accepts_jitter_and_rejects_a_forged_value(make_result: MakeResult) -> None:
    a = make_result("a", outputs={"result.json": as_json(count=4, mean=2.5004), "run.log": b"12:00"})
    honest = make_result("b", outputs={"result.json": as_json(count=4, mean=2.4993), "run.log": b"12:01"})
    forged = make_result("c", outputs={"result.json": as_json(count=4, mean=3.5004), "run.log": b"12:01"})
    assert compare_under(JITTER, a, honest).equal
    verdict = compare_under(JITTER, a, forged)
    assert not verdict.equal and "outputs/result.json" in verdict.reason and "absTolerance" in verdict.reason


@pytest.mark.parametrize(("other", "why"), [
    (as_json(count=4, mean=2.5, extra=1), "keys differ"),
    (as_json(count=4, mean="2.5"), "in the other"),          # a string is not a number
    (as_json(count=True, mean=2.5), "in the other"),         # nor is a boolean
    (json.dumps({"count": 4, "mean": [2.5]}).encode(), "in the other"),
    (b"{not json", "cannot be read as JSON"),
])
def test_numeric_rejects_structural_changes(make_result: MakeResult, other: bytes, why: str) -> None:
    a = make_result("a", outputs={"result.json": as_json(count=4, mean=2.5)})
    verdict = compare_under(JITTER, a, make_result("b", outputs={"result.json": other}))
    assert not verdict.equal and why in verdict.reason


def test_numeric_compares_nested_lists_and_csv(make_result: MakeResult) -> None:
    numeric = comparator(type="numeric", files=["outputs/**/*.json", "outputs/*.csv"], relTolerance=1e-6)
    a = make_result("a", outputs={"t.csv": b"name,value\nx,1000000\ny,2\n",
                                  "d/n.json": json.dumps({"v": [[1e9, 2.0], {"k": 3}]}).encode()})
    honest = make_result("b", outputs={"t.csv": b"name,value\nx,1000000.5\ny,2.000001\n",
                                       "d/n.json": json.dumps({"v": [[1e9 + 100, 2.0], {"k": 3.0}]}).encode()})
    assert compare_under(numeric, a, honest).equal
    label = make_result("c", outputs={"t.csv": b"name,value\nz,1000000\ny,2\n",
                                      "d/n.json": json.dumps({"v": [[1e9, 2.0], {"k": 3}]}).encode()})
    verdict = compare_under(numeric, a, label)
    assert not verdict.equal and "row 2, column 1" in verdict.reason
    far = make_result("d", outputs={"t.csv": b"name,value\nx,1000010\ny,2\n",
                                    "d/n.json": json.dumps({"v": [[1e9, 2.0], {"k": 3}]}).encode()})
    assert not compare_under(numeric, a, far).equal


def test_numeric_compares_files_outside_its_globs_exactly(make_result: MakeResult) -> None:
    a = make_result("a", outputs={"r.json": as_json(v=1.0), "other.json": as_json(v=1.0)})
    b = make_result("b", outputs={"r.json": as_json(v=1.0), "other.json": as_json(v=1.001)})
    verdict = compare_under(comparator(type="numeric", files=["outputs/r.json"], absTolerance=1.0), a, b)
    assert not verdict.equal and "outputs/other.json" in verdict.reason


def test_numeric_difference_reports_the_largest_gaps(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps([1.0, 100.0, "x"]))
    (tmp_path / "b.json").write_text(json.dumps([1.5, 100.1, "x"]))
    found = numeric_difference(tmp_path / "a.json", tmp_path / "b.json")
    assert found.problem is None
    assert found.max_abs == pytest.approx(0.5) and found.max_rel == pytest.approx(0.5 / 1.5)


# --------------------------------------------------------------------------
# image
# --------------------------------------------------------------------------


def picture(kind: str, fmt: str = "PNG", quality: int = 95, shift: int = 0) -> bytes:
    image = Image.new("RGB", (128, 128), "white")
    draw = ImageDraw.Draw(image)
    if kind == "circle":
        for radius in range(60, 0, -6):
            shade = 255 - radius * 4 + shift
            draw.ellipse((64 - radius, 64 - radius, 64 + radius, 64 + radius), fill=(shade, shade // 2, 40))
    else:  # stripes: a different picture
        for x in range(0, 128, 16):
            draw.rectangle((x, 0, x + 7, 127), fill=(20, 20, 200))
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return out.getvalue()


def test_image_accepts_a_re_encoded_picture_and_rejects_another(make_result: MakeResult) -> None:
    images = comparator(type="image", files=["outputs/*.png", "outputs/*.jpg"], maxDistance=6)
    a = make_result("a", outputs={"out.png": picture("circle"), "out.jpg": picture("circle", "JPEG", 95)})
    honest = make_result("b", outputs={"out.png": picture("circle", shift=3),
                                       "out.jpg": picture("circle", "JPEG", 60)})
    forged = make_result("c", outputs={"out.png": picture("stripes"), "out.jpg": picture("circle", "JPEG", 95)})
    assert compare_under(images, a, honest).equal
    verdict = compare_under(images, a, forged)
    assert not verdict.equal and "outputs/out.png" in verdict.reason and "maxDistance 6" in verdict.reason


@pytest.mark.parametrize("kind", ["phash", "dhash", "ahash"])
def test_image_hashes(tmp_path: Path, kind: str) -> None:
    (tmp_path / "a.png").write_bytes(picture("circle"))
    (tmp_path / "b.jpg").write_bytes(picture("circle", "JPEG", 70))
    (tmp_path / "c.png").write_bytes(picture("stripes"))
    near = image_distance(tmp_path / "a.png", tmp_path / "b.jpg", kind)
    far = image_distance(tmp_path / "a.png", tmp_path / "c.png", kind)
    assert near <= 6 < far


def test_image_that_does_not_decode_is_not_equivalent(make_result: MakeResult) -> None:
    images = comparator(type="image", files=["outputs/*.png"], maxDistance=64)
    a = make_result("a", outputs={"out.png": picture("circle")})
    b = make_result("b", outputs={"out.png": b"\x89PNG\r\n\x1a\n not really"})
    verdict = compare_under(images, a, b)
    assert not verdict.equal and "not a readable image" in verdict.reason
