#!/usr/bin/env python3
"""Deterministic statistics of numbers and text, for lilypad's ``stats`` module.

    stats.py [--numbers "1, 2, 3.5"] [--text "some words"] [--inputs /inputs] [--outputs /outputs]

Numbers come from ``--numbers`` (separated by commas and/or whitespace) and
from ``<inputs>/numbers.txt``; text from ``--text`` and ``<inputs>/text.txt``.
Writes ``numbers.json`` and/or ``words.json`` to the outputs directory and a
short summary to stdout. The same inputs always give byte-identical files:
keys are sorted, ties are broken by the word, and no time, randomness or
host detail is recorded. Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
TOP_WORDS = 10


class InputProblem(Exception):
    """Bad input: reported on stderr, exit status 2."""


def read_optional(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError as exc:
        raise InputProblem(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def parse_numbers(text: str) -> list[float]:
    numbers = []
    for token in re.split(r"[\s,;]+", text.strip()):
        if not token:
            continue
        try:
            value = float(token)
        except ValueError:
            raise InputProblem(f"not a number: {token[:40]!r}") from None
        if not math.isfinite(value):
            raise InputProblem(f"not a finite number: {token[:40]!r}")
        numbers.append(value)
    return numbers


def number_stats(numbers: list[float]) -> dict[str, Any]:
    ordered = sorted(numbers)
    return {
        "count": len(numbers),
        "sum": math.fsum(numbers),
        "min": ordered[0],
        "max": ordered[-1],
        "mean": statistics.fmean(numbers),
        "median": statistics.median(ordered),
        "pstdev": statistics.pstdev(numbers),
        "stdev": statistics.stdev(numbers) if len(numbers) > 1 else None,
        "sorted": ordered,
    }


def word_stats(text: str) -> dict[str, Any]:
    words = [word.casefold() for word in WORD_RE.findall(text)]
    counts = Counter(words)
    chain = hashlib.sha256(b"").digest()
    for word in words:  # a hash chain over the words, in order
        chain = hashlib.sha256(chain + word.encode("utf-8")).digest()
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_WORDS]
    return {
        "characters": len(text),
        "words": len(words),
        "unique_words": len(counts),
        "top_words": [{"word": word, "count": count} for word, count in top],
        "frequencies": dict(sorted(counts.items())),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "word_chain_sha256": chain.hex(),
    }


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", default="")
    parser.add_argument("--text", default="")
    parser.add_argument("--inputs", type=Path, default=Path("/inputs"))
    parser.add_argument("--outputs", type=Path, default=Path("/outputs"))
    args = parser.parse_args(argv)
    try:
        numbers = parse_numbers(args.numbers) + parse_numbers(read_optional(args.inputs / "numbers.txt"))
        text = "\n".join(part for part in (args.text, read_optional(args.inputs / "text.txt")) if part)
        if not numbers and not text:
            raise InputProblem("nothing to do: give Numbers=1,2,3 and/or Text=..."
                               " (or numbers.txt / text.txt in the input files)")
    except InputProblem as problem:
        print(f"stats: {problem}", file=sys.stderr)
        return 2
    args.outputs.mkdir(parents=True, exist_ok=True)
    if numbers:
        result = number_stats(numbers)
        write_json(args.outputs / "numbers.json", result)
        print(f"numbers: count={result['count']} sum={result['sum']!r} mean={result['mean']!r} "
              f"median={result['median']!r} min={result['min']!r} max={result['max']!r}")
    if text:
        result = word_stats(text)
        write_json(args.outputs / "words.json", result)
        top = ", ".join(f"{item['word']}={item['count']}" for item in result["top_words"])
        print(f"words: total={result['words']} unique={result['unique_words']} top: {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
