#!/usr/bin/env python3
"""Sort words by length, for lilypad's ``verified-sort`` module.

    sort_words.py [--words "the quick brown fox"] [--outputs /outputs]

Writes ``sorted.txt`` (one word per line, shortest first) to the outputs
directory. Words of equal length come out in a random order, as a parallel
sort would leave them: every honest run is correct, but two runs are rarely
byte-identical. Only the module's verifier (``verifier/``) knows that any
order of equal-length words is as good as another. Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

DEFAULT_WORDS = "the quick brown fox jumps over the lazy dog while seven tired cats watch"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", default=DEFAULT_WORDS)
    parser.add_argument("--outputs", type=Path, default=Path("/outputs"))
    args = parser.parse_args(argv)
    words = args.words.split()
    if not words:
        print("verified-sort: no words given (Words=\"some words\")", file=sys.stderr)
        return 2
    shuffled = list(words)
    random.SystemRandom().shuffle(shuffled)
    ordered = sorted(shuffled, key=len)  # stable: equal lengths keep the random order
    args.outputs.mkdir(parents=True, exist_ok=True)
    (args.outputs / "sorted.txt").write_text("".join(word + "\n" for word in ordered), encoding="utf-8")
    print(f"verified-sort: sorted {len(words)} words by length into outputs/sorted.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
