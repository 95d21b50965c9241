"""``lilypad jobcreator``: a relayer of smart-contract jobs - any number may run, nobody trusts them.

A client contract calls ``runJob(module, inputs, payee)`` (or ``runJobWithOptions``) on
``LilypadOnChainJobCreator``, which takes the deposit into escrow and is the job creator of the
job's deals. This daemon, holding no role and no client money:

1. follows ``JobAdded`` with an :class:`~lilypad.chain.events.EventPoller` (``LogFilter``
   pages, a cursor persisted in SQLite, ``confirmations``) and records each job in
   :class:`~lilypad.jobcreator.bridge.store.BridgeJobStore` before committing the log; it
   polls on each of the node's new blocks (a :class:`~lilypad.service.heads.HeadWaker`) and
   each solver event, every ``poll_interval`` while a job is in flight, and every
   ``idle_interval`` otherwise (every ``poll_interval`` when the node has no WebSocket endpoint);
2. posts the job's offer to the solver - unsigned, with ``contract_job_id`` and the nonce the
   contract requires for the job's current attempt; the solver checks it against the chain -
   after finding out whether another relayer already got a deal for it;
3. once matched, ``agree``\\ s for the contract (escrow from the job's deposit; the relayer that
   agrees is the one paid the relayer fee if the deal delivers);
4. when the result is submitted, ``judge``\\ s it (the contract accepts, or sends it to
   mediation with the job's own check chance); when the deal is settled, ``complete``\\ s the
   job (the contract delivers the result from storage and returns the payee's change, or frees
   the job for another attempt); it claims any deal timeout that comes due, and times the job
   out when it has no deal past its timeout.

Every step is decided from the chain (:func:`~lilypad.jobcreator.bridge.logic.reconcile`), so
after a crash at any point the job resumes, and a step another relayer took first is seen or
reverts cleanly. Transient errors (RPC, solver) are retried with backoff; other errors up to
``max_attempts`` times, after which this relayer leaves the job (the contract's timeouts end it).

**Test-only fault injection.** ``LILYPAD_BRIDGE_FAULT=<point>`` (one of
:data:`~lilypad.jobcreator.bridge.logic.FAULT_POINTS`) makes the process die abruptly
(exit status 3) at that point of the first job that reaches it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lilypad.jobcreator.bridge.logic import FAULT_POINTS, BridgeState, backoff_delay, reconcile
from lilypad.jobcreator.bridge.store import BridgeJob, BridgeJobStore
from lilypad.protocol.deal import AgreementState, Deal, DealPricing
from lilypad.service import EventWaker, HeadWaker, ServiceLoop, log_event, websocket_url

if TYPE_CHECKING:
    from lilypad.client import OfferView
    from lilypad.protocol.contract_jobs import ContractJob

__all__ = ["FAULT_ENV", "FAULT_EXIT_CODE", "Bridge", "BridgeConfig"]

log = logging.getLogger("lilypad.bridge")

#: The test-only fault injection variable (see the module docstring).
FAULT_ENV = "LILYPAD_BRIDGE_FAULT"
FAULT_EXIT_CODE = 3
_REASON_LIMIT = 240  # failure reasons go on-chain: keep them short
#: The least time between two rounds however often blocks and solver events wake the bridge.
BRIDGE_MIN_INTERVAL = 0.1


@dataclass
class BridgeConfig:
    """Everything the bridge needs (times in seconds)."""

    network: str
    solver_url: str
    private_key: Any = field(repr=False)  # a raw key, or an unlocked ape account (signs itself)
    data_dir: Path
    mediators: tuple[str, ...]
    solver_address: str | None = None
    deployments_dir: Path | None = None
    confirmations: int = 0
    poll_interval: float = 0.25
    # Between rounds with no job in flight while the node's new blocks wake the bridge (a
    # HeadWaker): a new job is a JobAdded log, which comes in a block.
    idle_interval: float = 10.0
    max_attempts: int = 8
    pricing: DealPricing | None = None  # its results-collateral multiple is the network's default
    consortium_size: int | None = None  # None: the network's default (deal_defaults)
    start_block: int | None = None
    fault: str = ""  # LILYPAD_BRIDGE_FAULT, from the settings (see the module docstring)
    metrics_port: int | None = None  # serve /metrics and /health there (0: any free port)
    metrics_host: str = "127.0.0.1"


def _is_transient(exc: BaseException) -> bool:
    from lilypad.chain.tx import is_transient
    from lilypad.exceptions import SolverUnavailableError, TransactionRetriesExhaustedError

    return isinstance(exc, (SolverUnavailableError, TransactionRetriesExhaustedError)) or is_transient(exc)


class Bridge:
    """The bridge's I/O loop; ``run()`` blocks until ``stop()``."""

    def __init__(self, config: BridgeConfig) -> None:
        from lilypad.exceptions import BridgeFaultError, ServiceConfigError

        if config.fault and config.fault not in FAULT_POINTS:
            raise BridgeFaultError(config.fault, FAULT_POINTS)
        if not config.mediators:
            raise ServiceConfigError("--mediators", "name at least one trusted mediator")
        self.config = config
        # Round errors end run(): each step retries what can be retried itself.
        self.loop = ServiceLoop(config.poll_interval, name="bridge", logger=log, fatal_errors=True,
                                idle_interval=config.idle_interval, min_interval=BRIDGE_MIN_INTERVAL)
        self._busy = True  # until a round has found no job in flight
        self.loop.busy = lambda: self._busy
        self.store = BridgeJobStore(Path(config.data_dir) / "bridge.db")
        self.contracts: Any = None
        self.client: Any = None
        self.account: Any = None
        self.domain: Any = None
        self.solver = ""
        self._specs: dict[str, Any] = {}
        self.metrics: Any = None

    def stop(self) -> None:
        self.loop.stop()

    # ------------------------------------------------------------------ run
    def run(self) -> None:
        from ape import networks

        from lilypad.chain.connect import connected
        from lilypad.chain.events import EventPoller, LogCursor
        from lilypad.client import SolverClient
        from lilypad.protocol.accounts import account_from_private_key, is_ape_account

        c = self.config
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the state changes
        key = c.private_key
        self.account = key if is_ape_account(key) else account_from_private_key(key)
        self.client = SolverClient(c.solver_url)
        try:
            with connected(c.network, c.deployments_dir) as contracts:
                self.contracts = contracts
                self._start_metrics()
                self._wait_for_solver()
                if self.loop.stopping:
                    return
                start = c.start_block if c.start_block is not None else int(contracts.deployment.block_number or 0)
                with LogCursor(Path(c.data_dir) / "events.sqlite", "bridge-jobs", start_block=start) as cursor:
                    poller = EventPoller(contracts, [contracts.job_creator.JobAdded], cursor,
                                         confirmations=c.confirmations)
                    log_event(log, "bridge_started", address=self.account.address, solver=self.solver,
                              job_creator=str(contracts.job_creator.address), confirmations=c.confirmations,
                              resuming=len(self.store.active()), fault=c.fault or None)
                    EventWaker(c.solver_url, self.loop.wake_event, self.loop.stop_event,
                               party=str(contracts.job_creator.address)).start()
                    if (ws := websocket_url(networks.provider)) is not None:
                        HeadWaker(ws, [self.loop], self.loop.stop_event, name="bridge-chain-heads").start()
                    self.loop.run(lambda: self.round(poller))
        finally:
            self.client.close()
            self.loop.stop_metrics()
            log_event(log, "bridge_stopped", address=self.account.address)

    def _start_metrics(self) -> None:
        """``--metrics-port``: serve ``/metrics`` (rounds) and ``/health`` (the last round's age)."""
        c = self.config
        if c.metrics_port is None:
            return
        from lilypad.observability.metrics import DaemonMetrics

        self.metrics = DaemonMetrics("bridge")
        self.loop.serve_metrics(self.metrics, c.metrics_port, host=c.metrics_host,
                                health=lambda: {"address": self.account.address})

    def _wait_for_solver(self) -> None:
        """Learn the solver's address and signing domain, waiting out an outage."""
        from lilypad.client import resolve_solver_address
        from lilypad.exceptions import SolverUnavailableError

        attempt = 0
        while not self.loop.stopping:
            try:
                self.solver = resolve_solver_address(self.client, self.config.solver_address)
                self.domain = self._domain()
                return
            except SolverUnavailableError as exc:
                attempt += 1
                log_event(log, "solver_unavailable", attempt=attempt, error=str(exc))
                self.loop.pause(backoff_delay(attempt, cap=10.0))

    def _domain(self) -> Any:
        from lilypad.exceptions import ServiceConfigError, SolverDomainMismatchError
        from lilypad.jobcreator.steps import check_solver_domain

        try:
            return check_solver_domain(self.client, self.contracts.deployment)
        except SolverDomainMismatchError as exc:
            raise ServiceConfigError("--solver-url", str(exc)) from None

    def round(self, poller: Any) -> None:
        """Read new ``JobAdded`` logs, then move every due job one step."""
        try:
            self.read_events(poller)
        except Exception as exc:  # RPC down: back off, the cursor has not moved
            log_event(log, "events_failed", error=f"{type(exc).__name__}: {exc}")
            self.loop.pause(min(5.0, 4 * self.config.poll_interval))
        now = time.time()
        active = self.store.active()
        for job in active:
            if job.next_try <= now and not self.loop.stopping:
                self.advance_safely(job)
        self._busy = bool(active)

    def read_events(self, poller: Any) -> int:
        added = 0
        for entry in poller.poll():
            job_id = int(entry.id)
            new = self.store.add(
                job_id, caller=str(entry.calling_contract), payee=str(entry.payee), module=str(entry.module),
                inputs=[str(i) for i in entry.inputs], block_number=int(entry.block_number),
                log_index=int(entry.log_index))
            if new:
                added += 1
                log_event(log, "job_state", job_id=job_id, state=BridgeState.SEEN.value, previous=None,
                          module=str(entry.module), caller=str(entry.calling_contract), block=int(entry.block_number))
            self._fault("after-seen")
            poller.commit(entry)
        return added

    # ------------------------------------------------------------------ steps
    def _fault(self, point: str) -> None:
        if self.config.fault == point:
            log.error("%s=%s: dying here on purpose", FAULT_ENV, point)
            logging.shutdown()
            os._exit(FAULT_EXIT_CODE)

    def _set(self, job: BridgeJob, state: BridgeState, note: str, **data: Any) -> BridgeJob:
        updated = self.store.update(job.job_id, state, note, **data)
        if state != job.state:
            log_event(log, "job_state", job_id=job.job_id, state=state.value, previous=job.state.value, note=note,
                      **{k: v for k, v in data.items() if k in ("offer_id", "deal_id", "result_cid")})
        return updated


    def advance_safely(self, job: BridgeJob) -> None:
        try:
            self.advance(job)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            transient = _is_transient(exc)
            attempts = self.store.defer(job.job_id, time.time() + backoff_delay(job.attempts + 1), error)
            log_event(log, "job_step_failed", job_id=job.job_id, state=job.state.value, attempt=attempts,
                      transient=transient, error=error)
            if not transient and attempts >= self.config.max_attempts:
                # This relayer gives up on the job; the contract's own timeouts still end it.
                self._set(job, BridgeState.FAILED, f"relayer gave up after {attempts} attempts: {error}")

    def advance(self, job: BridgeJob) -> None:
        """Take the job one step, from what the chain says now."""
        chain_job = self.contracts.contract_job(job.job_id)
        target = reconcile(job.state, chain_job)
        assert chain_job is not None  # reconcile raised otherwise
        if target in (BridgeState.DELIVERED, BridgeState.FAILED):
            self._set(job, target, "the chain says the job " + ("completed" if target == BridgeState.DELIVERED
                                                                 else "failed"))
            return
        if target is not None:
            job = self._set(job, target, "the chain's job moved on")
        if job.state == BridgeState.DEAL:
            self.follow_deal(job, chain_job)
        elif job.state == BridgeState.OFFER_POSTED and int(job.data.get("offer_attempt", -1)) == chain_job.attempts:
            self.follow_offer(job, chain_job)
        else:
            self.find_deal(job, chain_job)

    def _spec(self, module: str, inputs: dict[str, str]) -> tuple[Any, Any]:
        """``(resolved module, rendered spec)``, the spec checked to be runnable; module errors
        propagate (a job whose module cannot run is left to its timeout: the payee is refunded)."""
        from lilypad.modules.resolve import ModuleResolver
        from lilypad.modules.spec import check_runnable

        resolved = ModuleResolver(Path(self.config.data_dir) / "modules").resolve(module)
        spec = resolved.render(inputs)
        check_runnable(spec)
        return resolved, spec

    # ------------------------------------------------------------------ waiting for a deal

    def find_deal(self, job: BridgeJob, chain_job: ContractJob) -> None:
        """No live deal: time the job out if it is past its timeout; else agree to a deal another
        relayer already got matched for this attempt, or post the job's offer."""
        if self.contracts.chain_time() >= chain_job.created_at + chain_job.options.timeout:
            self.contracts.timeout_contract_job(chain_job, self.account)
            self._set(job, BridgeState.FAILED, "the job timed out without a deal; its payee was refunded")
            return
        nonce = self.contracts.contract_deal_nonce(job.job_id, chain_job.attempts)
        for view in self.client.deals(party=self.contracts.job_creator.address):
            if bytes(view.terms.nonce) == nonce:
                self.agree(job, chain_job, view.terms)
                return
        self.post_offer(job, chain_job, nonce)

    def _build_offer(self, job: BridgeJob, chain_job: ContractJob, nonce: bytes) -> Any:
        from lilypad.jobcreator.steps import job_offer, job_timeouts
        from lilypad.modules.inputs import parse_inputs
        from lilypad.protocol.offers import DEFAULT_JOB_PRICING
        from lilypad.protocol.settings import deal_defaults

        inputs = parse_inputs(chain_job.inputs)
        resolved, spec = self._spec(chain_job.module, inputs)
        o = chain_job.options
        # The network's defaults (the smallest results collateral and the panel size that make
        # cheating on the job lose, docs/twin.md), with a payment collateral the job can afford.
        defaults = deal_defaults(self.contracts.current_protocol_settings()[1])
        base = self.config.pricing or DEFAULT_JOB_PRICING
        judging = job_timeouts(spec).judge_results_collateral
        affordable = o.max_payment - o.relayer_fee - judging - (base.mediation_fee if o.check_bps else 0)
        pricing = base.model_copy(update={"results_collateral_multiple": defaults.results_collateral_multiple,
                                          "payment_collateral": max(0, min(base.payment_collateral, affordable))})
        offer = job_offer(job_creator=self.contracts.job_creator.address, solver=self.solver,
                          module_ref=chain_job.module, resolved=resolved, spec=spec, inputs=inputs, pricing=pricing,
                          mediators=self.config.mediators, target=o.targeted,
                          consortium_size=self.config.consortium_size or defaults.consortium_size, nonce=nonce)
        return offer.model_copy(update={"contract_job_id": job.job_id})

    def post_offer(self, job: BridgeJob, chain_job: ContractJob, nonce: bytes) -> None:
        from lilypad.exceptions import SolverRequestError
        from lilypad.protocol.signing import offer_id, unsigned_offer

        signed = unsigned_offer(self._build_offer(job, chain_job, nonce))
        oid = offer_id(signed, self.domain)
        try:
            self.client.post_job_offer(signed)
        except SolverRequestError as exc:
            if exc.status != 400:
                raise
            # Refused: most likely another relayer posted this attempt's offer (same nonce).
            log_event(log, "offer_refused", job_id=job.job_id, attempt=chain_job.attempts, code=exc.code,
                      detail=exc.detail)
            self.store.defer(job.job_id, time.time() + self.config.poll_interval * 4, f"offer refused: {exc.detail}")
            return
        self._fault("after-offer-posted")
        self._set(job, BridgeState.OFFER_POSTED, f"job offer {oid} posted (attempt {chain_job.attempts})",
                  offer_id=oid, offer_attempt=chain_job.attempts, offer_posted_at=time.time())

    def _offer_view(self, oid: str) -> OfferView | None:
        from lilypad.exceptions import SolverRequestError

        try:
            return self.client.job_offer(oid)
        except SolverRequestError as exc:
            if exc.status == 404:
                return None
            raise

    def follow_offer(self, job: BridgeJob, chain_job: ContractJob) -> None:
        view = self._offer_view(job.data["offer_id"])
        state = "gone" if view is None else view.state
        if state == "open":  # the solver expires it if no provider matches; then it is posted again
            return
        if state == "matched" and view is not None and view.deal_id:
            self.agree(job, chain_job, self.client.deal(str(view.deal_id)).terms)
            return
        # Expired or gone unmatched: post again (the same attempt, so the same nonce).
        self._set(job, BridgeState.SEEN, f"the job offer is {state}; posting again")

    def agree(self, job: BridgeJob, chain_job: ContractJob, deal: Deal) -> None:
        """Agree, for the contract, to ``deal`` (which it checks is bound to the job)."""
        from lilypad.chain.tx import is_custom_error

        try:
            self.contracts.relay_agree(chain_job, deal, self.account)
        except Exception as exc:
            if not is_custom_error(exc, self.contracts.job_creator, "DealLive"):
                raise
            log_event(log, "deal_agreed_by_another", job_id=job.job_id)  # another relayer was first
        self._fault("after-agree")
        self._set(job, BridgeState.DEAL, f"deal 0x{deal.deal_id.hex()} agreed with provider "
                  f"{deal.members.resource_provider}", deal_id="0x" + deal.deal_id.hex(),
                  deal_terms=deal.model_dump(mode="json"))

    # ------------------------------------------------------------------ following the deal

    def _deal_terms(self, job: BridgeJob, deal_id: bytes) -> Deal:
        stored = job.data.get("deal_terms")
        if stored is not None and job.data.get("deal_id") == "0x" + deal_id.hex():
            return Deal.model_validate(stored)
        deal = self.client.deal("0x" + deal_id.hex()).terms  # another relayer's deal
        self.store.update(job.job_id, job.state, deal_id="0x" + deal_id.hex(), deal_terms=deal.model_dump(mode="json"))
        return deal

    def follow_deal(self, job: BridgeJob, chain_job: ContractJob) -> None:
        """Judge a submitted result, complete a settled deal, claim a timeout that is due."""
        from lilypad.chain.tx import is_custom_error
        assert chain_job.live_deal is not None
        deal = self._deal_terms(job, chain_job.live_deal)
        agreement = self.contracts.agreement(deal.deal_id)
        state = AgreementState(int(agreement.state))
        try:
            if state == AgreementState.RESULTS_SUBMITTED:  # (its block comes after the result's: draws are ready)
                self.contracts.relay_judge(chain_job, deal, self.account)
                self._fault("after-judge")
                return
            if self.contracts.escrow(deal.deal_id).settled:
                self.contracts.relay_complete(chain_job, self.account)
                self._fault("after-complete")
                return
        except Exception as exc:  # another relayer judged or completed first: the next read shows it
            raced = ("WrongJobState", "DealNotJudgeable", "NoLiveDeal")
            if not any(is_custom_error(exc, self.contracts.job_creator, name) for name in raced):
                raise
            return
        due = agreement.timeout_at(deal)
        if due is not None and self.contracts.chain_time() >= due:
            try:
                self.contracts.timeout(deal, self.account)
                log_event(log, "deal_timeout_claimed", job_id=job.job_id, deal_id="0x" + deal.deal_id.hex())
            except Exception as exc:  # someone else (the solver's keeper) was first, or the chain lags
                log.debug("timeout of deal %s: %s", deal.deal_id.hex(), exc)
