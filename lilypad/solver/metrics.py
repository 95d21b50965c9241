"""What the solver knows, gathered for ``/metrics``, ``/health`` and the status page.

:class:`StatusSources` holds what only the running service can give (the chain
head, providers' on-chain reputation, the chain watcher); the HTTP app keeps
one at ``app.state.status_sources`` and ``lilypad solver`` fills it in when it
watches a chain. :func:`snapshot` reads the solver's store and core once;
:class:`SolverCollector` turns a snapshot into Prometheus metrics at scrape
time, so the numbers are always the store's, never a counter that can drift.

Metrics (all gauges, ``lilypad_solver_``): ``open_offers{kind}``,
``offers{kind,state}``, ``deals{state}`` (the contracts' state names),
``queue_depth{queue}`` (job offers waiting for a match, deals waiting to be
agreed, to get results, to be judged, to be mediated, overdue for a timeout;
SSE subscribers), ``results_stored`` and ``results_stored_bytes``,
``chain_head_block`` and ``chain_head_lag_seconds`` (now minus the head
block's timestamp), ``watcher_polls``, ``watcher_logs_handled`` and
``watcher_errors``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lilypad.protocol.deal import AgreementState, state_name

__all__ = ["QUEUES", "SolverCollector", "StatusSources", "snapshot"]

log = logging.getLogger(__name__)

#: queue name -> the deal states it holds.
QUEUES: dict[str, tuple[AgreementState, ...]] = {
    "awaiting_agreement": (AgreementState.NONE, AgreementState.DEAL_NEGOTIATING),
    "awaiting_results": (AgreementState.DEAL_AGREED,),
    "awaiting_judgement": (AgreementState.RESULTS_SUBMITTED,),
    "awaiting_mediation": (AgreementState.RESULTS_CHECKED,),
}


@dataclass
class StatusSources:
    """What the running service adds to the store's view.

    ``chain_head()`` gives ``(block number, block timestamp)``;
    ``reputation(address)`` a provider's on-chain
    :class:`~lilypad.chain.contracts.Reputation`; ``protocol()`` the
    protocol's jackpot, treasury balance and current settings
    (:class:`~lilypad.chain.mediation.ProtocolView`); ``stake(address)`` a
    mediator's registry stake; ``panel(deal_id)`` a checked deal's mediation
    panel (:class:`~lilypad.mediator.panel.PanelView`). Chain reads are cached
    ``reputation_ttl`` seconds; ``watcher`` is the
    :class:`~lilypad.solver.watcher.ChainWatcher`.
    """

    chain_head: Callable[[], tuple[int, int]] | None = None
    reputation: Callable[[str], Any] | None = None
    protocol: Callable[[], Any] | None = None
    stake: Callable[[str], Any] | None = None
    panel: Callable[[str], Any] | None = None
    watcher: Any = None
    reputation_ttl: float = 15.0
    _cache: dict[tuple[str, str], tuple[float, Any]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def head(self) -> tuple[int, int] | None:
        if self.chain_head is None:
            return None
        try:
            block, stamp = self.chain_head()
            return int(block), int(stamp)
        except Exception as exc:  # report no head, never fail a scrape
            log.warning("reading the chain head failed: %s", exc)
            return None

    def _cached(self, what: str, key: str, read: Callable[[], Any]) -> Any | None:
        """``read()`` (a chain read), cached ``reputation_ttl`` seconds; ``None`` on a read error."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get((what, key))
        if cached is not None and now - cached[0] < self.reputation_ttl:
            return cached[1]
        try:
            value = read()
        except Exception as exc:
            log.warning("reading the %s of %s failed: %s", what, key or "protocol", exc)
            return None
        with self._lock:
            self._cache[(what, key)] = (now, value)
        return value

    def reputation_of(self, address: str) -> Any | None:
        """The provider's reputation, or ``None`` without a chain (or on a read error)."""
        read = self.reputation
        return None if read is None else self._cached("reputation", address.lower(), lambda: read(address))

    def protocol_view(self) -> Any | None:
        """Jackpot, treasury and settings, or ``None`` without a chain (or on a read error)."""
        read = self.protocol
        return None if read is None else self._cached("protocol", "", read)

    def stake_of(self, address: str) -> Any | None:
        read = self.stake
        return None if read is None else self._cached("stake", address.lower(), lambda: read(address))

    def panel_of(self, deal_id: str) -> Any | None:
        read = self.panel
        return None if read is None else self._cached("panel", deal_id.lower(), lambda: read(deal_id))


def snapshot(core: Any, sources: StatusSources | None = None, *, recent: int = 20) -> dict[str, Any]:
    """One consistent-enough read of the solver for the status page and metrics:
    open offers, offer and deal counts, queue depths, results stored, recent
    deals and results, the mediators of recent deals, and the chain head."""
    store = core.store
    offer_counts: dict[tuple[str, str], int] = {}
    for kind, table in (("resource", "resource_offers"), ("job", "job_offers")):
        for row in store._query(f"SELECT state, COUNT(*) AS n FROM {table} GROUP BY state"):
            offer_counts[(kind, row["state"])] = int(row["n"])
    deal_counts = {AgreementState(int(r["state"])): int(r["n"])
                   for r in store._query("SELECT state, COUNT(*) AS n FROM deals GROUP BY state")}
    results = store._query("SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM results")[0]
    recent_results = [dict(r) for r in store._query(
        "SELECT r.deal_id, r.cid, r.size, r.uploaded_at, d.state, d.resource_provider FROM results r"
        " JOIN deals d ON d.deal_id = r.deal_id ORDER BY r.uploaded_at DESC LIMIT ?", (recent,))]
    recent_deals = [dict(r) for r in store._query(
        "SELECT deal_id, state, resource_provider, job_offer_id, updated_at, result_cid FROM deals"
        " ORDER BY updated_at DESC LIMIT ?", (recent,))]
    mediators = [r["address"] for r in store._query(
        "SELECT address, MAX(d.updated_at) AS seen FROM deal_parties p JOIN deals d ON d.deal_id = p.deal_id"
        " WHERE p.role = 'mediator' GROUP BY address ORDER BY seen DESC LIMIT ?", (recent,))]
    queues = {name: sum(deal_counts.get(s, 0) for s in states) for name, states in QUEUES.items()}
    queues["unmatched_job_offers"] = offer_counts.get(("job", "open"), 0)
    try:
        queues["overdue_timeouts"] = len(core.overdue_deals())
    except Exception as exc:  # a store hiccup must not break the page
        log.warning("counting overdue deals failed: %s", exc)
    queues["event_subscribers"] = core.bus.subscriber_count
    head = sources.head() if sources is not None else None
    return {
        "taken_at": time.time(),
        "open_offers": {"resource": core.open_offers("resource"), "job": core.open_offers("job")},
        "offer_counts": offer_counts,
        "deal_counts": {state_name(s): n for s, n in sorted(deal_counts.items())},
        "queues": queues,
        "results_stored": int(results["n"]),
        "results_bytes": int(results["bytes"]),
        "recent_results": recent_results,
        "recent_deals": recent_deals,
        "mediators": mediators,
        "usage": core.usage(),
        "head": head,
    }


class SolverCollector:
    """A Prometheus collector reading :func:`snapshot` at every scrape."""

    def __init__(self, core: Any, sources: StatusSources) -> None:
        self.core = core
        self.sources = sources

    def describe(self) -> list[Any]:
        return []  # metrics are only known at collect time

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        snap = snapshot(self.core, self.sources, recent=0)
        p = "lilypad_solver"
        open_offers = GaugeMetricFamily(f"{p}_open_offers", "Offers open for matching, by kind.", labels=["kind"])
        for kind, records in snap["open_offers"].items():
            open_offers.add_metric([kind], len(records))
        yield open_offers
        offers = GaugeMetricFamily(f"{p}_offers", "Offers stored, by kind and state.", labels=["kind", "state"])
        for (kind, state), count in sorted(snap["offer_counts"].items()):
            offers.add_metric([kind, state], count)
        yield offers
        deals = GaugeMetricFamily(f"{p}_deals", "Deals by on-chain state (None: not seen on-chain yet).",
                                  labels=["state"])
        for state in AgreementState:
            deals.add_metric([state_name(state)], snap["deal_counts"].get(state_name(state), 0))
        yield deals
        queues = GaugeMetricFamily(f"{p}_queue_depth", "Work waiting, by queue.", labels=["queue"])
        for name, depth in snap["queues"].items():
            queues.add_metric([name], depth)
        yield queues
        yield GaugeMetricFamily(f"{p}_results_stored", "Results held by the solver.", value=snap["results_stored"])
        yield GaugeMetricFamily(f"{p}_results_stored_bytes", "Bytes of the result archives uploaded.",
                                value=snap["results_bytes"])
        if snap["head"] is not None:
            block, stamp = snap["head"]
            yield GaugeMetricFamily(f"{p}_chain_head_block", "The chain's head block.", value=block)
            yield GaugeMetricFamily(f"{p}_chain_head_lag_seconds", "Now minus the head block's timestamp.",
                                    value=max(0.0, time.time() - stamp))
        watcher = self.sources.watcher
        if watcher is not None:
            yield GaugeMetricFamily(f"{p}_watcher_polls", "Chain watcher polls done.", value=watcher.polls)
            yield GaugeMetricFamily(f"{p}_watcher_logs_handled", "Storage logs of the solver's deals handled.",
                                    value=watcher.handled)
            yield GaugeMetricFamily(f"{p}_watcher_errors", "Chain watcher rounds that failed.", value=watcher.errors)
