"""Verification of job results by replication: comparators, verifier containers, metering, verdicts.

* :mod:`lilypad.verification.spec` - the module spec's ``verification`` block
  (:class:`VerificationSpec`: comparator, reruns, metering), pure;
* :mod:`lilypad.verification.comparators` - :func:`compare_under`: are two
  result directories equivalent under a comparator (``exact``, ``numeric``,
  ``image``, ``verifier``)?
* :mod:`lilypad.verification.verifier` - the verifier container, run in the
  executor's sandbox with both results mounted read-only;
* :mod:`lilypad.verification.metering` - what an instruction is: claims and allowances;
* :mod:`lilypad.verification.verdicts` - :func:`decide` (pure) and
  :func:`judge_result`, the mediator's entry point;
* :mod:`lilypad.verification.suggest` - :func:`suggest_comparator` for
  ``lilypad module check``.

The names below are imported on first use, so ``import lilypad.verification``
stays cheap and :mod:`lilypad.modules.spec` can import the spec models without
loading the Docker SDK or the image libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "Comparator",
    "Comparison",
    "ExactComparator",
    "ImageComparator",
    "Judgement",
    "MeteringSpec",
    "NumericComparator",
    "RunResultLike",
    "Suggestion",
    "Verdict",
    "VerificationSpec",
    "VerifierComparator",
    "compare_under",
    "decide",
    "judge_result",
    "needs_provider_files",
    "run_verifier",
    "suggest_comparator",
]

_HOMES = {
    "Comparator": "spec",
    "ExactComparator": "spec",
    "ImageComparator": "spec",
    "MeteringSpec": "spec",
    "NumericComparator": "spec",
    "VerificationSpec": "spec",
    "VerifierComparator": "spec",
    "Comparison": "comparators",
    "compare_under": "comparators",
    "run_verifier": "verifier",
    "Judgement": "verdicts",
    "RunResultLike": "verdicts",
    "Verdict": "verdicts",
    "decide": "verdicts",
    "judge_result": "verdicts",
    "needs_provider_files": "verdicts",
    "Suggestion": "suggest",
    "suggest_comparator": "suggest",
}

if TYPE_CHECKING:
    from lilypad.verification.comparators import Comparison, compare_under
    from lilypad.verification.spec import (
        Comparator,
        ExactComparator,
        ImageComparator,
        MeteringSpec,
        NumericComparator,
        VerificationSpec,
        VerifierComparator,
    )
    from lilypad.verification.suggest import Suggestion, suggest_comparator
    from lilypad.verification.verdicts import (
        Judgement,
        RunResultLike,
        Verdict,
        decide,
        judge_result,
        needs_provider_files,
    )
    from lilypad.verification.verifier import run_verifier


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
