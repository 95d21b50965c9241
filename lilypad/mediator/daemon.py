"""The mediator daemon: re-run checked jobs and judge the provider's result.

:class:`Mediator` follows the deals that name it as a mediator (the solver's
``/deals?party=<address>`` every ``poll_interval`` seconds, woken early by the
solver's ``/events``); the state of each comes from the chain. For a deal in
``ResultsChecked`` it

1. fixes the draw with ``assignMediator`` as soon as it can (anyone may; it
   makes the choice permanent) and reads the chosen mediator;
2. if chosen, fetches the job (module and inputs) from the solver, re-runs the
   module with the executor (the signed module commit checked, the job's input
   files downloaded and verified against the offer's ``inputs_cid``), and
   compares the CID of its result with the
   result CID the provider posted on-chain;
3. calls ``mediationAcceptResult`` when they are equal, ``mediationRejectResult``
   otherwise.

Handled deals are kept in SQLite (``<data_dir>/mediator.db``) with the verdict,
so a restart neither re-runs nor double-judges. Each state change is one JSON
log line (logger ``lilypad.mediator``, :func:`lilypad.observability.log_state_change`).
With ``metrics_port`` it serves ``/metrics`` (re-runs by outcome and their
durations, deal transitions, verdicts, balances, chain head and lag) and
``/health`` on that port. The loop, the store, the waker, the chain metrics
and the container cleanup come from the service kit (:mod:`lilypad.service`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lilypad.observability import log_state_change
from lilypad.protocol.deal import AgreementState, Deal
from lilypad.service import (
    DealStateStore,
    EventWaker,
    ServiceLoop,
    log_event,
    read_chain_metrics,
    remove_leftover_containers,
)

__all__ = ["MediatorConfig", "Mediator", "verdict"]

log = logging.getLogger("lilypad.mediator")


def verdict(rerun_cid: str, posted_cid: str | None) -> bool:
    """Whether the provider's posted result stands (pure)."""
    return posted_cid is not None and rerun_cid == posted_cid


@dataclass
class MediatorConfig:
    network: str
    solver_url: str
    private_key: str = field(repr=False)
    data_dir: Path
    modules: tuple[str, ...] = ()  # modules it will re-run (empty: any)
    deployments_dir: Path | None = None
    poll_interval: float = 0.5
    metrics_port: int | None = None  # serve /metrics and /health there (0: any free port)
    metrics_host: str = "127.0.0.1"


class Mediator:
    """The mediator's I/O loop. ``run()`` blocks until ``stop()``."""

    def __init__(self, config: MediatorConfig) -> None:
        self.config = config
        self.store = DealStateStore(Path(config.data_dir) / "mediator.db")
        self._retry_at: dict[str, float] = {}
        self.contracts: Any = None
        self.account: Any = None
        self.address = ""
        from lilypad.observability.metrics import DaemonMetrics

        self.metrics = DaemonMetrics("mediator")
        self.loop = ServiceLoop(config.poll_interval, name="mediator", logger=log, metrics=self.metrics)
        self._chain_read_at = 0.0

    def stop(self) -> None:
        self.loop.stop()

    def run(self) -> None:
        from lilypad.chain.connect import connected
        from lilypad.client import SolverClient
        from lilypad.protocol.accounts import account_from_private_key

        c = self.config
        self.account = account_from_private_key(c.private_key)
        self.address = self.account.address
        client = SolverClient(c.solver_url)
        with connected(c.network, c.deployments_dir) as contracts:
            self.contracts = contracts
            server = self.loop.serve_metrics(self.metrics, c.metrics_port, host=c.metrics_host,
                                             health=lambda: {"address": self.address})
            log_event(log, "mediator_started", address=self.address, data_dir=str(c.data_dir),
                      metrics_port=server.port if server else None)
            remove_leftover_containers(Path(c.data_dir), log)
            EventWaker(c.solver_url, self.loop.wake_event, self.loop.stop_event).start()
            try:
                self.loop.run(lambda: self._round(client))
            finally:
                client.close()
                self.loop.stop_metrics()
                log_event(log, "mediator_stopped", address=self.address)

    def _round(self, client: Any) -> None:
        """One round of the loop: handle the deals, read the chain."""
        self.step(client)
        self._read_chain()

    def _read_chain(self, every: float = 5.0) -> None:
        """Every ``every`` seconds, for the metrics: the chain head and balances."""
        if self.loop.metrics_server is None or time.time() - self._chain_read_at < every:
            return
        self._chain_read_at = time.time()
        try:
            read_chain_metrics(self.metrics, self.contracts, self.address, [], side="resource_provider")
        except Exception as exc:  # metrics must never stop the mediator
            log.warning("reading balances for the metrics failed: %s", exc)

    def _set(self, deal_id: str, status: str, **data: Any) -> None:
        previous = self.store.get(deal_id)
        self.store.put(deal_id, status, **data)
        if previous is None or previous[0] != status:
            self.metrics.transitions.labels(status=status).inc()
            log_state_change("mediator", "deal", deal_id, None if previous is None else previous[0], status,
                             logger=log, **data)

    def step(self, client: Any) -> None:
        for view in client.deals(party=self.address):
            deal_id = view.deal_id
            stored = self.store.get(deal_id)
            if stored is not None and stored[0] in ("accepted", "rejected", "done", "not_chosen"):
                continue
            if self._retry_at.get(deal_id, 0) > time.time():
                continue
            deal = view.terms
            if self.address.lower() not in {m.lower() for m in deal.members.mediators}:
                continue
            try:
                self._handle(client, deal_id, deal)
            except Exception as exc:
                self._retry_at[deal_id] = time.time() + 2.0
                log_event(log, "deal_action_failed", deal_id=deal_id, error=f"{type(exc).__name__}: {exc}")

    def _chosen(self, deal: Deal) -> str | None:
        chosen = self.contracts.chosen_mediator(deal)
        if chosen is None:
            try:  # fix the draw now (a new block seals the check block)
                self.contracts.assign_mediator(deal, self.account)
            except Exception as exc:  # someone else did, or the draw is not ready yet
                log.debug("assignMediator: %s", exc)
            chosen = self.contracts.chosen_mediator(deal)
        return chosen

    def _handle(self, client: Any, deal_id: str, deal: Deal) -> None:
        state = self.contracts.state(deal)
        if state.is_terminal:
            self._set(deal_id, "done", final_state=state.name)
            return
        if state != AgreementState.RESULTS_CHECKED:
            return
        chosen = self._chosen(deal)
        if chosen is None:
            return
        if chosen.lower() != self.address.lower():
            self._set(deal_id, "not_chosen", chosen=chosen)
            return
        stored = self.store.get(deal_id)
        data = stored[1] if stored else {}
        rerun_cid = data.get("rerun_cid")
        if rerun_cid is None:
            self._set(deal_id, "rerunning", chosen=chosen)
            rerun_cid = self._rerun(client, deal_id)
            self._set(deal_id, "reran", rerun_cid=rerun_cid)
        posted, _ = self.contracts.result(deal)
        if verdict(rerun_cid, posted):
            receipt = self.contracts.mediation_accept(deal, self.account)
            self._set(deal_id, "accepted", rerun_cid=rerun_cid, posted_cid=posted,
                      tx=str(getattr(receipt, "txn_hash", "")))
        else:
            receipt = self.contracts.mediation_reject(deal, self.account)
            self._set(deal_id, "rejected", rerun_cid=rerun_cid, posted_cid=posted,
                      tx=str(getattr(receipt, "txn_hash", "")))

    def _rerun(self, client: Any, deal_id: str) -> str:
        from lilypad.protocol.allowlist import Allowlist
        from lilypad.provider.execution import run_deal_job
        from lilypad.settings import DataLayout

        job = client.job(deal_id)
        layout = DataLayout(self.config.data_dir)
        allowlist = Allowlist.parse(list(self.config.modules)) if self.config.modules else None
        started, outcome = time.monotonic(), "failed"
        try:
            result = run_deal_job(job, cache_dir=layout.module_cache_dir, runs_dir=layout.runs_dir,
                                  allowlist=allowlist, client=client)
            outcome = "succeeded" if result.exit_code == 0 else "nonzero_exit"
        finally:
            self.metrics.job_finished(time.monotonic() - started, outcome)
        return str(result.cid)
