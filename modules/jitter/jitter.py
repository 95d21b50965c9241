#!/usr/bin/env python3
"""The mean of some numbers plus a little noise, for lilypad's ``jitter`` module.

    jitter.py [--numbers "1, 2, 3.5"] [--outputs /outputs]

Writes ``result.json`` (``count``, and ``mean`` plus uniform noise within
+-0.001, as a stand-in for GPU arithmetic that is not bit-exact) and
``run.log`` (a timestamped line) to the outputs directory, and a line without
the noisy value to stdout. Two honest runs differ only there; the module's
``numeric`` comparator accepts that. Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import statistics
import sys
import time
from pathlib import Path

NOISE = 0.001


def parse_numbers(text: str) -> list[float]:
    numbers = []
    for token in re.split(r"[\s,;]+", text.strip()):
        if not token:
            continue
        value = float(token)  # ValueError: reported by main()
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {token[:40]!r}")
        numbers.append(value)
    return numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", default="1,2,3,4")
    parser.add_argument("--outputs", type=Path, default=Path("/outputs"))
    args = parser.parse_args(argv)
    try:
        numbers = parse_numbers(args.numbers)
    except ValueError as exc:
        print(f"jitter: {exc}", file=sys.stderr)
        return 2
    if not numbers:
        print("jitter: no numbers given (Numbers=1,2,3)", file=sys.stderr)
        return 2
    mean = statistics.fmean(numbers) + random.SystemRandom().uniform(-NOISE, NOISE)
    args.outputs.mkdir(parents=True, exist_ok=True)
    result = {"count": len(numbers), "mean": mean}
    (args.outputs / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (args.outputs / "run.log").write_text(f"{stamp} {time.time_ns()} mean of {len(numbers)} numbers\n",
                                          encoding="utf-8")
    print(f"jitter: the mean of {len(numbers)} numbers is in outputs/result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
