"""The mediator's verdict on a checked job: accept, reject, or non-deterministic.

:func:`decide` is the rule, pure:

1. the provider claimed more instructions than the mediator allows
   (:meth:`~lilypad.verification.spec.MeteringSpec.allowed`) -> ``REJECT``;
2. else the mediator's own re-runs disagree with each other -> ``NON_DETERMINISTIC``
   (the job creator's module is at fault, not the provider);
3. else the provider's result agrees with them -> ``ACCEPT``, otherwise ``REJECT``.

:func:`judge_result` is the mediator's I/O entry point: it compares the
re-runs with each other and the provider's result with the first re-run
under the module's comparator (:func:`~lilypad.verification.comparators.compare_under`),
works out the allowance from the re-runs' durations, and calls :func:`decide`.
For ``exact`` without ``ignore`` the CIDs are compared, so the provider's files
are not needed (:func:`needs_provider_files`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lilypad.verification.comparators import Comparison, compare_under
from lilypad.verification.spec import ExactComparator, VerificationSpec

__all__ = ["Judgement", "RunResultLike", "Verdict", "decide", "judge_result", "needs_provider_files"]


class Verdict(str, enum.Enum):
    """The outcome of mediation."""

    ACCEPT = "accept"
    REJECT = "reject"
    NON_DETERMINISTIC = "non_deterministic"


@dataclass(frozen=True)
class Judgement:
    """A verdict and why (one line, for logs and the job's record)."""

    verdict: Verdict
    reason: str


class RunResultLike(Protocol):
    """What :func:`judge_result` reads of a re-run (as :class:`~lilypad.executor.RunResult` has)."""

    @property
    def result_dir(self) -> Path: ...

    @property
    def cid(self) -> str: ...

    @property
    def duration_s(self) -> float: ...


def decide(*, reruns_agree: bool, provider_agrees: bool, claimed_instructions: int,
           allowed_instructions: int) -> Judgement:
    """The verdict from the facts (see the module docstring for the order of the rules)."""
    if claimed_instructions > allowed_instructions:
        return Judgement(Verdict.REJECT, f"claimed {claimed_instructions} instructions, the mediator measured "
                                         f"at most {allowed_instructions}")
    if not reruns_agree:
        return Judgement(Verdict.NON_DETERMINISTIC, "the mediator's own runs of the job disagree with each "
                                                    "other: the module is not deterministic under its comparator")
    if provider_agrees:
        return Judgement(Verdict.ACCEPT, "the provider's result agrees with the mediator's runs")
    return Judgement(Verdict.REJECT, "the provider's result differs from the mediator's runs, which agree")


def needs_provider_files(spec: VerificationSpec) -> bool:
    """Whether judging needs the provider's result files (``False``: its CID is enough,
    which is the case for ``exact`` without ``ignore`` globs)."""
    comparator = spec.comparator
    return not (isinstance(comparator, ExactComparator) and not comparator.ignore)


def _equivalent(spec: VerificationSpec, a: RunResultLike | Path, a_cid: str | None, b: RunResultLike | Path,
                b_cid: str | None, module_dir: Path | None, docker_client: Any) -> Comparison:
    if not needs_provider_files(spec):
        same = a_cid == b_cid
        return Comparison(same, f"CID {a_cid} {'equals' if same else 'differs from'} {b_cid}")
    path_a = a if isinstance(a, Path) else a.result_dir
    path_b = b if isinstance(b, Path) else b.result_dir
    return compare_under(spec.comparator, path_a, path_b, module_dir=module_dir, docker_client=docker_client)


def judge_result(spec: VerificationSpec, reruns: Sequence[RunResultLike], provider_result_dir: Path | None,
                 provider_cid: str | None, claimed_instructions: int, *, module_dir: Path | None,
                 docker_client: Any = None) -> Judgement:
    """Judge a provider's result against the mediator's ``reruns`` (at least two).

    ``provider_result_dir`` may be ``None`` when :func:`needs_provider_files` is
    false (the CIDs decide); otherwise ``None`` means the provider's result
    could not be fetched, which is a ``REJECT``. ``module_dir`` is the module's
    checkout (a verifier is built from it). Raises what
    :func:`~lilypad.verification.comparators.compare_under` raises.
    """
    if len(reruns) < 2:
        raise ValueError(f"judging needs at least two runs of the mediator, got {len(reruns)}")
    allowed = spec.metering.allowed([run.duration_s for run in reruns])
    if claimed_instructions > allowed:  # rule 1 decides alone: nothing need be compared
        return decide(reruns_agree=True, provider_agrees=True, claimed_instructions=claimed_instructions,
                      allowed_instructions=allowed)
    first = reruns[0]
    for other in reruns[1:]:
        agree = _equivalent(spec, first, first.cid, other, other.cid, module_dir, docker_client)
        if not agree.equal:
            judgement = decide(reruns_agree=False, provider_agrees=False,
                               claimed_instructions=claimed_instructions, allowed_instructions=allowed)
            return Judgement(judgement.verdict, f"{judgement.reason} ({agree.reason})")
    if provider_result_dir is None and needs_provider_files(spec):
        provider = Comparison(False, "the provider's result was unavailable (its files could not be fetched)")
    else:
        provider = _equivalent(spec, first, first.cid, provider_result_dir or Path(), provider_cid,
                               module_dir, docker_client)
    judgement = decide(reruns_agree=True, provider_agrees=provider.equal,
                       claimed_instructions=claimed_instructions, allowed_instructions=allowed)
    return Judgement(judgement.verdict, f"{judgement.reason} ({provider.reason})")
