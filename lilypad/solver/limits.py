"""The solver's own timeouts (``lilypad solver --match-timeout ...``), as pure rules.

A deal's windows are on-chain (``DealTimeouts``: agree, submit results, judge
results, mediate results) and every open state ends at its window by a
timeout anyone can call (the solver's :class:`~lilypad.solver.watcher.TimeoutKeeper`
calls them). The solver bounds those windows for the deals it makes, so its
timeouts hold on-chain:

* ``match`` - an unmatched job offer expires this long after it was accepted;
* ``execution`` - the longest ``submit_results`` window (time to run the job
  and post its result) a job offer may propose;
* ``download`` - the longest ``judge_results`` window (how long a deal waits
  for the job creator to download and judge the result) a job offer may
  propose, and how long the solver keeps a result downloadable after its deal
  ended (then it is deleted);
* ``total`` - the longest a deal may stay open: the sum of its four windows.

``None`` means no bound beyond the contracts' own (30 days per window).
A job offer outside them is refused when it is posted (HTTP 400), with the
reason: nothing is matched that the solver would not see through.
"""

from __future__ import annotations

from dataclasses import dataclass

from lilypad.protocol.deal import DealTimeouts

__all__ = [
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DEFAULT_MATCH_TIMEOUT",
    "SolverTimeouts",
    "deal_window_total",
    "timeouts_problem",
]

#: Seconds a job offer stays open unmatched (the original's 30 s).
DEFAULT_MATCH_TIMEOUT = 30.0
#: Seconds a deal waits for the job creator to judge, and a result stays
#: downloadable after its deal ended (the original's 3600 s).
DEFAULT_DOWNLOAD_TIMEOUT = 3600.0


@dataclass(frozen=True)
class SolverTimeouts:
    """The solver's timeouts in seconds (see the module docstring)."""

    match: float = DEFAULT_MATCH_TIMEOUT
    execution: float | None = None
    download: float | None = DEFAULT_DOWNLOAD_TIMEOUT
    total: float | None = None

    def __post_init__(self) -> None:
        for name in ("match", "execution", "download", "total"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"the {name} timeout must be positive")


def deal_window_total(timeouts: DealTimeouts) -> int:
    """A deal's four windows added up (seconds): how long it stays open with one
    mediation round (a mediation that needs more rounds, or a panel that
    commits and reveals, adds windows; see docs/protocol.md)."""
    return timeouts.agree + timeouts.submit_results + timeouts.judge_results + timeouts.mediate_results


def timeouts_problem(proposed: DealTimeouts, limits: SolverTimeouts) -> str | None:
    """Why a job offer proposing ``proposed`` windows is outside ``limits``
    (``None``: it is within them)."""
    if limits.execution is not None and proposed.submit_results > limits.execution:
        return (f"its submit-results window is {proposed.submit_results} s; this solver's execution timeout is "
                f"{limits.execution:g} s")
    if limits.download is not None and proposed.judge_results > limits.download:
        return (f"its judge-results window is {proposed.judge_results} s; this solver's download timeout is "
                f"{limits.download:g} s")
    total = deal_window_total(proposed)
    if limits.total is not None and total > limits.total:
        return f"its deal windows add up to {total} s; this solver's total timeout is {limits.total:g} s"
    return None
