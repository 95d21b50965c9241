#!/usr/bin/env python3
"""Are two results of verified-sort equivalent? Exit 0 if so, 1 if not (the reason on stderr).

    verify.py [A] [B]        (default /results/a /results/b)

Equivalent means: the same ``stdout``, ``stderr`` and ``exitCode``, the same
set of files under ``outputs/``, every file but ``sorted.txt`` byte-identical,
and both ``sorted.txt`` hold the same words (as a multiset), each sorted by
length (shortest first). The order of equal-length words may differ.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

SORTED = "sorted.txt"
MAX_BYTES = 16 * 1024 * 1024


class NotEquivalent(Exception):
    pass


def files(root: Path) -> set[str]:
    found = set()
    for directory, _, names in os.walk(root, followlinks=False):
        for name in names:
            found.add(os.path.relpath(os.path.join(directory, name), root))
    return found


def read(path: Path) -> bytes:
    if path.is_symlink():
        raise NotEquivalent(f"{path} is a symbolic link")
    with open(path, "rb") as stream:
        data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise NotEquivalent(f"{path} is over {MAX_BYTES} bytes")
    return data


def sorted_words(path: Path) -> list[str]:
    try:
        words = read(path).decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise NotEquivalent(f"{path} is not UTF-8 text") from None
    lengths = [len(word) for word in words]
    if lengths != sorted(lengths):
        raise NotEquivalent(f"{path} is not sorted by length")
    return words


def check(a: Path, b: Path) -> None:
    for name in ("stdout", "stderr", "exitCode"):
        if read(a / name) != read(b / name):
            raise NotEquivalent(f"{name} differs")
    names_a, names_b = files(a / "outputs"), files(b / "outputs")
    if names_a != names_b:
        raise NotEquivalent(f"outputs differ in their files: {sorted(names_a ^ names_b)[:5]}")
    for name in sorted(names_a):
        if name == SORTED:
            if Counter(sorted_words(a / "outputs" / name)) != Counter(sorted_words(b / "outputs" / name)):
                raise NotEquivalent(f"{name}: the words differ")
        elif read(a / "outputs" / name) != read(b / "outputs" / name):
            raise NotEquivalent(f"outputs/{name} differs")


def main(argv: list[str]) -> int:
    a = Path(argv[1]) if len(argv) > 1 else Path("/results/a")
    b = Path(argv[2]) if len(argv) > 2 else Path("/results/b")
    try:
        check(a, b)
    except (NotEquivalent, OSError) as problem:
        print(f"not equivalent: {problem}", file=sys.stderr)
        return 1
    print("equivalent: the same words, each sorted by length", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
