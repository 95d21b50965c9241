"""``lilypad jobcreator``: the bridge that turns ``JobAdded`` into results delivered on-chain.

A client contract calls ``runJob(module, inputs, payee)`` on
``LilypadOnChainJobCreator``; this daemon (holding ``BRIDGE_ROLE``):

1. follows ``JobAdded`` with an :class:`~lilypad.chain.events.EventPoller`
   (``LogFilter`` pages, a cursor persisted in SQLite, ``confirmations``) and
   records each job in :class:`~lilypad.jobcreator.bridge.store.BridgeJobStore` before
   committing the log, so a job is never missed and a re-delivered log is a no-op;
2. checks the job (inputs ``K=V`` split on the first ``=``, the module resolves
   and renders, the payee's allowance and balance cover the deposit) and
   ``takeFunds``; a job that cannot run fails at once through ``failJob``;
3. posts a signed job offer to the solver (its nonce derived from the job id,
   and the signed offer stored *before* it is posted, so a crash never posts
   two), waits for the match, checks the deal's terms and ``agree``\\ s, paying
   the deal's deposit from the bridge's own float;
4. when results are submitted, downloads them, verifies them against the CID
   recorded on-chain and ``acceptResult``\\ s (or ``checkResult``\\ s, per
   ``mediate``/``mediation_chance`` or when they do not verify);
5. calls ``submitResults(id, dealId, dataId)``, which pays the deposit to the
   bridge and calls the client back; or ``failJob(id, reason)``, which refunds
   the payee and tells the client if it implements ``jobFailed``.

Every step first asks the chain whether it already happened (see
:func:`~lilypad.jobcreator.bridge.logic.reconcile`), so after a crash at any point each
job resumes from its last state and nothing is run, paid or delivered twice.
Transient errors (RPC, solver unreachable) are retried with backoff without
limit (the on-chain ``jobTimeout`` bounds a job anyway); other errors at most
``max_attempts`` times, then the job fails with the error as its reason.

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

from lilypad.jobcreator.bridge.logic import (
    FAULT_POINTS,
    BridgeState,
    backoff_delay,
    deal_verdict,
    offer_nonce,
    reconcile,
)
from lilypad.jobcreator.bridge.store import BridgeJob, BridgeJobStore
from lilypad.protocol.deal import AgreementState, Deal, DealPricing, JobState
from lilypad.service import EventWaker, ServiceLoop, log_event

if TYPE_CHECKING:
    from lilypad.client import OfferView

__all__ = ["FAULT_ENV", "FAULT_EXIT_CODE", "Bridge", "BridgeConfig"]

log = logging.getLogger("lilypad.bridge")

#: The test-only fault injection variable (see the module docstring).
FAULT_ENV = "LILYPAD_BRIDGE_FAULT"
FAULT_EXIT_CODE = 3
_REASON_LIMIT = 240  # failure reasons go on-chain: keep them short


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
    match_timeout: float = 120.0
    download_timeout: float = 60.0
    mediate: bool = False
    mediation_chance: int = 0
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
        if not 0 <= config.mediation_chance <= 100:
            raise ServiceConfigError("--mediation-chance", "a percentage, 0 to 100")
        self.config = config
        # Round errors end run(): each step retries what can be retried itself.
        self.loop = ServiceLoop(config.poll_interval, name="bridge", logger=log, fatal_errors=True)
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
                self._check_role()
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
                    EventWaker(c.solver_url, self.loop.wake_event, self.loop.stop_event).start()
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

    def _check_role(self) -> None:
        from lilypad.exceptions import ServiceConfigError
        from lilypad.protocol.deploy import BRIDGE_ROLE

        if not self.contracts.job_creator.hasRole(BRIDGE_ROLE, self.account.address):
            raise ServiceConfigError(
                "WEB3_PRIVATE_KEY", f"{self.account.address} lacks BRIDGE_ROLE on the job creator "
                f"{self.contracts.job_creator.address}; grant it (ape run deploy --bridge ADDRESS) or use the "
                "bridge's key")

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
        for job in self.store.active():
            if job.next_try <= now and not self.loop.stopping:
                self.advance_safely(job)

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
                current = self.store.get(job.job_id)
                try:
                    self.fail(current or job, f"gave up after {attempts} attempts: {error}")
                except Exception as exc2:
                    log_event(log, "job_fail_failed", job_id=job.job_id, error=f"{type(exc2).__name__}: {exc2}")

    def advance(self, job: BridgeJob) -> None:
        """Take the job one step (or several, when a step's result is already known)."""
        on_chain = self.contracts.job(job.job_id)
        target = reconcile(job.state, JobState(int(on_chain.state)))
        if target == BridgeState.DELIVERED:
            self._set(job, target, "the chain says the job completed")
            return
        if target == BridgeState.FAILED:
            self._cancel_offer(job)
            self._set(job, target, job.data.get("reason") or "the chain says the job failed (failJob or timeoutJob)")
            return
        if target == BridgeState.FUNDS_TAKEN:
            job = self._set(job, target, "takeFunds was mined before a restart")
        if job.state == BridgeState.SEEN:
            job = self.take_funds(job, on_chain)
        if job.state == BridgeState.FUNDS_TAKEN:
            job = self.post_offer(job)
        if job.state == BridgeState.OFFER_POSTED:
            job = self.follow_offer(job)
        if job.state in (BridgeState.DEAL_AGREED, BridgeState.CHECKING):
            job = self.follow_deal(job)
        if job.state == BridgeState.RESULTS:
            self.deliver(job)

    def _overbilling(self, job: BridgeJob, count: int) -> str | None:
        """:func:`~lilypad.jobcreator.logic.overbilling` of ``count`` under the job's module."""
        from lilypad.jobcreator.logic import overbilling
        from lilypad.modules.inputs import parse_inputs

        _, spec = self._spec(job.module, parse_inputs(job.inputs))
        return overbilling(count, spec.verification.metering)

    def _spec(self, module: str, inputs: dict[str, str]) -> tuple[Any, Any]:
        """``(resolved module, rendered spec)``, the spec checked to be runnable;
        module errors propagate."""
        from lilypad.modules.resolve import ModuleResolver
        from lilypad.modules.spec import check_runnable

        resolved = ModuleResolver(Path(self.config.data_dir) / "modules").resolve(module)
        spec = resolved.render(inputs)
        check_runnable(spec)
        return resolved, spec

    def _check(self, job: BridgeJob, on_chain: Any) -> str | None:
        """Why the job cannot be run (``None``: it can)."""
        from lilypad.exceptions import InputError, ModuleError, ModuleFetchError
        from lilypad.modules.inputs import parse_inputs

        try:
            inputs = parse_inputs(job.inputs)
        except InputError as exc:
            return f"bad input: {exc}"
        try:
            self._spec(job.module, inputs)
        except ModuleFetchError:
            raise  # perhaps a network blip: retried with backoff, fails after max_attempts
        except ModuleError as exc:
            return f"module {job.module!r} cannot be run: {exc}"
        deposit = int(on_chain.deposit)
        allowance = self.contracts.allowance(job.payee, self.contracts.job_creator)
        if allowance < deposit:
            return f"insufficient allowance: payee {job.payee} approved {allowance}, the deposit is {deposit}"
        balance = self.contracts.balance_of(job.payee)
        if balance < deposit:
            return f"insufficient balance: payee {job.payee} holds {balance}, the deposit is {deposit}"
        return None

    def take_funds(self, job: BridgeJob, on_chain: Any) -> BridgeJob:
        problem = self._check(job, on_chain)
        if problem:
            return self.fail(job, problem)
        self.contracts.take_funds(job.job_id, self.account)
        self._fault("after-take-funds")
        return self._set(job, BridgeState.FUNDS_TAKEN, f"took the deposit of {int(on_chain.deposit)} from the payee")

    def _build_offer(self, job: BridgeJob, attempt: int) -> Any:
        from lilypad.jobcreator.steps import job_offer
        from lilypad.modules.inputs import parse_inputs
        from lilypad.protocol.offers import DEFAULT_JOB_PRICING
        from lilypad.protocol.settings import deal_defaults

        inputs = parse_inputs(job.inputs)
        resolved, spec = self._spec(job.module, inputs)
        # The network's defaults (a contract client cannot choose): the smallest results
        # collateral and the panel size that make cheating on its job lose (docs/twin.md).
        defaults = deal_defaults(self.contracts.current_protocol_settings()[1])
        pricing = (self.config.pricing or DEFAULT_JOB_PRICING).model_copy(
            update={"results_collateral_multiple": defaults.results_collateral_multiple})
        return job_offer(job_creator=self.account.address, solver=self.solver, module_ref=job.module,
                         resolved=resolved, spec=spec, inputs=inputs, pricing=pricing, mediators=self.config.mediators,
                         consortium_size=self.config.consortium_size or defaults.consortium_size,
                         nonce=offer_nonce(self.domain.chain_id, self.account.address, job.job_id, attempt))

    def post_offer(self, job: BridgeJob) -> BridgeJob:
        from lilypad.exceptions import SolverRequestError
        from lilypad.protocol.signing import SignedOffer, offer_id, sign_offer

        stored = job.data.get("signed_offer")
        attempt = int(job.data.get("offer_attempt", 0))
        if stored is None:
            signed = sign_offer(self._build_offer(job, attempt), self.config.private_key, self.domain)
            oid = offer_id(signed, self.domain)
            # Written down before it is posted: after a crash we re-post this one, never a second.
            job = self.store.update(job.job_id, job.state, signed_offer=signed.model_dump(mode="json"),
                                    offer_id=oid, offer_attempt=attempt)
        else:
            signed = SignedOffer.model_validate(stored)
            oid = job.data["offer_id"]
            if self._offer_view(oid) is not None:  # posted before a crash
                return self._set(job, BridgeState.OFFER_POSTED, f"job offer {oid} was posted before a restart",
                                 offer_id=oid, offer_posted_at=job.data.get("offer_posted_at") or time.time())
        try:
            self.client.post_job_offer(signed)
        except SolverRequestError as exc:
            if exc.status != 400 or self._offer_view(oid) is not None:
                raise
            # Refused for good (its clock went stale while we were down): sign a new one.
            log_event(log, "offer_refused", job_id=job.job_id, offer_id=oid, code=exc.code, detail=exc.detail)
            return self.store.update(job.job_id, job.state, signed_offer=None, offer_attempt=attempt + 1)
        self._fault("after-offer-posted")
        return self._set(job, BridgeState.OFFER_POSTED, f"job offer {oid} posted", offer_id=oid,
                         offer_posted_at=time.time())

    def _offer_view(self, oid: str) -> OfferView | None:
        from lilypad.exceptions import SolverRequestError

        try:
            return self.client.job_offer(oid)
        except SolverRequestError as exc:
            if exc.status == 404:
                return None
            raise

    def _cancel_offer(self, job: BridgeJob) -> None:
        oid = job.data.get("offer_id")
        if job.state != BridgeState.OFFER_POSTED or not oid:
            return
        try:
            self.client.cancel_job_offer(oid, self.config.private_key)
        except Exception as exc:  # matched meanwhile, expired, or the solver is down: it expires on its own
            log.debug("cancelling offer %s: %s", oid, exc)

    def follow_offer(self, job: BridgeJob) -> BridgeJob:
        from lilypad.exceptions import DealTermsError, OfferStateError, SolverRequestError
        from lilypad.jobcreator.steps import checked_deal
        from lilypad.protocol.offers import JobOffer
        from lilypad.protocol.signing import SignedOffer

        oid = job.data["offer_id"]
        view = self._offer_view(oid)
        state = "gone" if view is None else view.state
        if state == "open":
            waited = time.time() - float(job.data.get("offer_posted_at") or job.updated_at)
            if waited < self.config.match_timeout:
                return job
            try:
                self.client.cancel_job_offer(oid, self.config.private_key)
            except (OfferStateError, SolverRequestError) as exc:
                if getattr(exc, "status", 409) == 409:
                    return job  # matched meanwhile: follow the deal next round
                raise
            return self.fail(job, f"no resource provider matched the job within {int(self.config.match_timeout)} s")
        if state != "matched" or not view or not view.deal_id:
            return self.fail(job, f"no resource provider matched the job (its offer is {state})")
        deal_id = str(view.deal_id)
        offer = SignedOffer.model_validate(job.data["signed_offer"]).offer
        assert isinstance(offer, JobOffer)  # the bridge stored it: a job offer
        try:
            deal = checked_deal(self.client, deal_id, offer, oid).terms
        except DealTermsError as exc:
            return self.fail(job, "the solver's deal does not match the job offer: " + "; ".join(exc.problems))
        agreement = self.contracts.agreement(deal_id)
        if not agreement.job_creator_agreed:
            self.contracts.ensure_allowance(self.account, deal.job_creator_deposit, unlimited=True)
            self.contracts.agree(deal, self.account)
        self._fault("after-agree")
        return self._set(job, BridgeState.DEAL_AGREED, f"agreed to deal {deal_id} with provider "
                         f"{deal.members.resource_provider}", deal_id=deal_id, deal_terms=deal.model_dump(mode="json"))

    def follow_deal(self, job: BridgeJob) -> BridgeJob:
        from lilypad.jobcreator.logic import judge, should_mediate
        from lilypad.jobcreator.results import download_verified

        deal_id = job.data["deal_id"]
        deal = Deal.model_validate(job.data["deal_terms"])
        agreement = self.contracts.agreement(deal_id)
        verdict = deal_verdict(AgreementState(int(agreement.state)))
        if verdict is not None:
            if not verdict.deliver:
                return self.fail(job, verdict.reason)
            cid, _ = self.contracts.result(deal_id)
            return self._set(job, BridgeState.RESULTS, verdict.reason, result_cid=cid)
        if agreement.state == AgreementState.RESULTS_SUBMITTED and job.state == BridgeState.DEAL_AGREED:
            cid, count = self.contracts.result(deal_id)
            got = download_verified(self.client, deal_id, cid, Path(self.config.data_dir), wait=0.0)
            first_try = float(job.data.setdefault("results_seen_at", time.time()))
            if not got.verified and time.time() - first_try < self.config.download_timeout and not got.final:
                self.store.update(job.job_id, job.state, results_seen_at=first_try)
                return job  # not downloadable yet: try again next round
            mediate = got.verified and should_mediate(self.config.mediate, self.config.mediation_chance)
            judged = judge(got.verified, got.problem, mediate=mediate, overbilled=self._overbilling(job, count))
            if judged.accept:
                self.contracts.accept_result(deal, self.account)
                self._fault("after-accept")
                if self.contracts.agreement(deal_id).state == AgreementState.RESULTS_CHECKED:
                    # A random audit: the deal went to mediation (fee from the jackpot).
                    # Deliver only once the mediators have judged the result.
                    return self._set(job, BridgeState.CHECKING, "the deal was drawn for a random audit; "
                                     "waiting for the mediators' verdict", result_cid=cid, audited=True)
                return self._set(job, BridgeState.RESULTS, judged.reason, result_cid=cid)
            self.contracts.ensure_allowance(self.account, deal.pricing.mediation_fee, unlimited=True)
            self.contracts.check_result(deal, self.account)
            return self._set(job, BridgeState.CHECKING, judged.reason, result_cid=cid)
        due = agreement.timeout_at(deal)
        if due is not None and time.time() >= due:
            try:
                self.contracts.timeout(deal, self.account)
                log_event(log, "deal_timeout_claimed", job_id=job.job_id, deal_id=deal_id)
            except Exception as exc:  # someone else (the solver's keeper) was first, or the chain lags
                log.debug("timeout of deal %s: %s", deal_id, exc)
        return job

    def deliver(self, job: BridgeJob) -> BridgeJob:
        self._fault("before-callback")
        self.contracts.submit_results(job.job_id, job.data["deal_id"], job.data["result_cid"], self.account)
        self._fault("after-callback")
        after = JobState(int(self.contracts.job(job.job_id).state))
        if after == JobState.COMPLETED:
            return self._set(job, BridgeState.DELIVERED, "submitResults: the client's callback ran")
        return self._set(job, BridgeState.FAILED,
                         "the client's submitResults callback reverted; the payee was refunded",
                         reason="client callback reverted")

    def fail(self, job: BridgeJob, reason: str) -> BridgeJob:
        """End the job on-chain through ``failJob`` (refunding what was taken) and locally."""
        reason = reason if len(reason) <= _REASON_LIMIT else reason[: _REASON_LIMIT - 3] + "..."
        state = JobState(int(self.contracts.job(job.job_id).state))
        if state in (JobState.ADDED, JobState.FUNDS_TAKEN):
            self.contracts.fail_job(job.job_id, reason, self.account)
        return self._set(job, BridgeState.FAILED, reason, reason=reason)

