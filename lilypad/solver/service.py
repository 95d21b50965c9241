"""The solver's logic without HTTP: :class:`SolverCore`, its event bus and the
pure rules it applies.

:class:`SolverCore` owns a :class:`~lilypad.solver.store.SolverStore` and an
in-memory :class:`~lilypad.solver.matching.Matcher` holding the open offers
(rebuilt from the store on start, so a restart loses nothing). It

* accepts offers: the signature, clock and nonce checks of
  :func:`~lilypad.protocol.signing.verify_offer` (nonces in the database), then
  stores the offer and adds it to the matcher;
* cancels offers on a signed request from their author (:func:`~lilypad.protocol.auth.sign_cancel`);
* says which job offer's input files and which deal's result may be
  uploaded or served (the pure rules of :mod:`lilypad.solver.rules`);
* runs matching rounds (:meth:`SolverCore.match_round`): the providers' slot
  usage comes from their deals not yet terminal (:func:`provider_usage`), every
  match becomes a :class:`~lilypad.protocol.deal.Deal` whose nonce commits to
  both offers (:func:`~lilypad.protocol.binding.deal_nonce`), stored together with its job offer's move to ``matched``;
* expires job offers unmatched ``match_timeout`` seconds after they were
  accepted and resource offers at their ``expires_at`` (:meth:`SolverCore.expire`);
* records the on-chain state a chain watcher feeds it
  (:meth:`SolverCore.on_chain_state`) and lists the deals whose on-chain
  window has passed (:meth:`SolverCore.overdue_deals`, from the pure
  :func:`timeout_due`), so that someone can call the timeout;
* publishes ``deal`` and ``offer`` events on an :class:`EventBus` (asyncio
  queues, fed from any thread) for the HTTP push channel.

Every public method is thread-safe (one lock around the matcher and the
store), and blocking: call it from a worker thread in async code.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from eth_utils import to_checksum_address

from lilypad.exceptions import (
    DealNotFoundError,
    OfferError,
    OfferExpiredError,
    OfferFromFutureError,
    OfferNotFoundError,
    OfferSignatureError,
    OfferStateError,
    ResultCIDMismatchError,
)
from lilypad.protocol.auth import recover_cancel_signer
from lilypad.protocol.binding import deal_nonce
from lilypad.protocol.deal import TIMEOUT_FOR_STATE, AgreementState, Deal, state_name
from lilypad.protocol.offers import JobOffer, ResourceOffer
from lilypad.protocol.signing import MAX_CLOCK_SKEW, OfferDomain, SignedOffer, offer_id, verify_offer
from lilypad.solver import rules
from lilypad.solver.events import Event, EventBus, Subscription
from lilypad.solver.limits import DEFAULT_MATCH_TIMEOUT, SolverTimeouts, timeouts_problem
from lilypad.solver.matching import Matcher
from lilypad.solver.store import (
    AgreementTimes,
    DealRecord,
    OfferKind,
    OfferRecord,
    ResultRecord,
    SlotRow,
    SolverStore,
)

__all__ = [
    "DEFAULT_MATCH_TIMEOUT",
    "Event",
    "EventBus",
    "SolverCore",
    "Subscription",
    "deal_view",
    "holds_slot",
    "offer_view",
    "provider_usage",
    "timeout_due",
]

log = logging.getLogger(__name__)



# --------------------------------------------------------------------------
# Pure rules
# --------------------------------------------------------------------------


def timeout_due(deal: Deal, state: AgreementState, times: AgreementTimes, now: int) -> str | None:
    """The controller function that may end the deal at chain time ``now``
    (``timeoutAgree``, ...), or ``None`` while its window is open (or it has
    no timeout). Mirrors ``LilypadController``: a window is open while
    ``now < start + window``."""
    t = deal.timeouts
    start, window = {
        AgreementState.DEAL_NEGOTIATING: (times.created_at, t.agree),
        AgreementState.DEAL_AGREED: (times.agreed_at, t.submit_results),
        AgreementState.RESULTS_SUBMITTED: (times.results_submitted_at, t.judge_results),
        AgreementState.RESULTS_CHECKED: (times.mediation_requested_at, deal.mediation_round_window),
    }.get(state, (None, 0))
    if start is None or now < start + window:
        return None
    return TIMEOUT_FOR_STATE[state]


def holds_slot(row: SlotRow, now: float) -> bool:
    """Whether a deal takes one of its provider's slots: every deal not in a
    terminal state, except one never seen on-chain (``NONE``) whose agree
    window has passed since the solver made it (nobody took it up)."""
    if row.state.is_terminal:
        return False
    return not (row.state == AgreementState.NONE and now >= row.created_at + row.agree_window)


def provider_usage(rows: Iterable[SlotRow], now: float) -> dict[str, int]:
    """Deals holding a slot, per provider address (lower-case)."""
    usage: dict[str, int] = {}
    for row in rows:
        if holds_slot(row, now):
            key = row.resource_provider.lower()
            usage[key] = usage.get(key, 0) + 1
    return usage


def offer_view(record: OfferRecord) -> dict[str, Any]:
    """An offer as the API shows it (a job offer with its ``deal_id``)."""
    view: dict[str, Any] = {"id": record.id, "kind": record.kind, "state": record.state, "signer": record.signer,
                            "accepted_at": record.accepted_at, "updated_at": record.updated_at,
                            "offer": record.signed.model_dump(mode="json")}
    if record.kind == "job":
        view["deal_id"] = record.deal_id
    return view


def deal_view(record: DealRecord, result: ResultRecord | None = None) -> dict[str, Any]:
    """A deal as the API shows it: the terms the contracts take, the on-chain
    state (the contracts' name) and agreement timestamps, the result CID
    recorded on-chain, the uploaded result and the solver's timestamps."""
    return {
        "deal_id": record.deal_id, "terms": record.deal.model_dump(mode="json"),
        "job_offer_id": record.job_offer_id, "resource_offer_id": record.resource_offer_id,
        "state": state_name(record.state), "state_code": int(record.state), "result_cid": record.result_cid,
        "uploaded_result": None if result is None else {"cid": result.cid, "size": result.size},
        "agreement": dataclasses.asdict(record.times),
        "created_at": record.created_at, "updated_at": record.updated_at,
    }


# --------------------------------------------------------------------------
# The core
# --------------------------------------------------------------------------


class SolverCore:
    """The solver's state machine (see the module docstring).

    ``solver``, when given, is the solver address offers must name;
    ``match_timeout`` (seconds) how long a job offer waits for a match;
    ``timeouts`` the solver's other timeouts (:mod:`lilypad.solver.limits`;
    its ``match`` is replaced by ``match_timeout``); ``inputs_ready(cid)``
    whether the input files ``cid`` are uploaded (``None``: this solver takes
    no input files) - a job offer with ``inputs_cid`` is matched only once
    they are; ``skew`` the clock skew allowed on offers and cancels; ``clock``
    the solver's clock (Unix seconds); ``mediator_eligible(address)``, when set,
    whether a new deal may name that mediator (the protocol's minimum mediator
    stake, :class:`~lilypad.solver.stakes.MediatorStakes`): matches use only those;
    ``settings_version()``, when set, the controller's current protocol
    settings version, which every deal built names (``None``: version 0, a
    solver with no chain); ``contract_jobs(id)``, when set, reads smart-contract
    job ``id`` from the chain (:class:`~lilypad.protocol.contract_jobs.ContractJob`,
    ``None``: none) for ``contract_job_creator``, the job creator contract: an
    unsigned job offer for a contract job is taken only when it is that job's
    (:func:`~lilypad.protocol.contract_jobs.contract_offer_problems`, at its current
    attempt's nonce), and its deal carries that nonce.
    """

    def __init__(self, store: SolverStore, domain: OfferDomain, *, solver: str | None = None,
                 match_timeout: float = DEFAULT_MATCH_TIMEOUT, timeouts: SolverTimeouts | None = None,
                 inputs_ready: Callable[[str], bool] | None = None, skew: int = MAX_CLOCK_SKEW,
                 clock: Callable[[], float] = time.time, bus: EventBus | None = None,
                 mediator_eligible: Callable[[str], bool] | None = None,
                 settings_version: Callable[[], int] | None = None,
                 contract_jobs: Callable[[int], Any] | None = None, contract_job_creator: str | None = None) -> None:
        if match_timeout <= 0:
            raise ValueError("match_timeout must be positive")
        self.store = store
        self.domain = domain
        self.solver = to_checksum_address(solver) if solver is not None else None
        self.match_timeout = float(match_timeout)
        self.timeouts = dataclasses.replace(timeouts or SolverTimeouts(), match=self.match_timeout)
        self.inputs_ready = inputs_ready
        self.skew = skew
        self.clock = clock
        self.bus = bus or EventBus()
        self.mediator_eligible = mediator_eligible
        self.settings_version = settings_version
        self.contract_jobs = contract_jobs
        self.contract_job_creator = contract_job_creator
        self._lock = threading.RLock()
        self._matcher = Matcher()
        self._ids: dict[tuple[str, bytes], str] = {}
        self._awaiting_inputs: dict[str, OfferRecord] = {}
        for kind in ("resource", "job"):
            for record in store.offers(kind, state="open"):
                self._add_to_matcher(record)

    # Offers ---------------------------------------------------------------
    def _add_to_matcher(self, record: OfferRecord) -> None:
        offer = record.signed.offer
        if isinstance(offer, JobOffer) and offer.inputs_cid is not None and not (
                self.inputs_ready is not None and self.inputs_ready(offer.inputs_cid)):
            self._awaiting_inputs[record.id] = record  # matched once its input files are uploaded
            return
        if isinstance(offer, ResourceOffer):
            self._matcher.add_resource_offer(offer)
        else:
            self._matcher.add_job_offer(offer)
        self._ids[(offer.signer.lower(), offer.nonce)] = record.id

    def _remove_from_matcher(self, record: OfferRecord) -> None:
        offer = record.signed.offer
        self._awaiting_inputs.pop(record.id, None)
        if isinstance(offer, ResourceOffer):
            self._matcher.remove_resource_offer(offer)
        else:
            self._matcher.remove_job_offer(offer)
        self._ids.pop((offer.signer.lower(), offer.nonce), None)

    def offer_id(self, signed: SignedOffer) -> str:
        return offer_id(signed, self.domain)

    def accept_offer(self, signed: SignedOffer, kind: OfferKind | None = None) -> OfferRecord:
        """Verify and store ``signed``; raises an :class:`~lilypad.exceptions.OfferError`
        (bad signature, stale or future clock, replayed nonce, wrong solver),
        or :class:`~lilypad.exceptions.OfferKindError` first if ``kind`` is
        given (the kind the caller takes) and ``signed`` is the other kind."""
        if kind is not None:
            rules.check_offer_kind(signed, kind)
        offer = signed.offer
        if self.solver is not None and offer.solver.lower() != self.solver.lower():
            raise OfferError(offer.kind, offer.signer, f"it names solver {offer.solver}, this is {self.solver}")
        if isinstance(offer, JobOffer):
            problem = timeouts_problem(offer.timeouts, self.timeouts)
            if offer.inputs_cid is not None and self.inputs_ready is None:
                problem = "it has input files (inputs_cid) and this solver takes none"
            if problem is not None:
                raise OfferError(offer.kind, offer.signer, problem)
        contract_checked = False
        if isinstance(offer, JobOffer) and offer.contract_job_id is not None:
            problem = self._contract_job_problem(offer)
            if problem is not None:
                raise OfferError(offer.kind, offer.signer, problem)
            contract_checked = True
        now = self.clock()
        verify_offer(signed, self.domain, now=int(now), seen_nonces=self.store.nonces, skew=self.skew,
                     contract_checked=contract_checked)
        with self._lock:
            record = self.store.add_offer(self.offer_id(signed), signed, now=now)
            self._add_to_matcher(record)
        self.bus.publish("offer", {"event": "created", "kind": record.kind, "id": record.id,
                                   "signer": record.signer})
        return record

    def _contract_job_problem(self, offer: JobOffer) -> str | None:
        """Why ``offer`` is not the offer of its contract job at its current attempt (``None``: it is)."""
        from lilypad.protocol.contract_jobs import contract_deal_nonce, contract_offer_problems

        if self.contract_jobs is None or self.contract_job_creator is None:
            return "it is a contract job's offer and this solver reads no chain to check it"
        assert offer.contract_job_id is not None
        job = self.contract_jobs(offer.contract_job_id)
        if job is None:
            return f"there is no contract job {offer.contract_job_id}"
        if not job.open or job.live_deal is not None:
            return f"contract job {job.id} is not waiting for a deal"
        problems = contract_offer_problems(job, offer, self.contract_job_creator)
        if bytes(offer.nonce) != contract_deal_nonce(self.contract_job_creator, job.id, job.attempts):
            problems.append(f"its nonce is not the job's attempt {job.attempts}")
        return "; ".join(problems) or None

    def awaits_inputs(self, offer_id: str) -> bool:
        """Whether job offer ``offer_id`` is open and waits for its input files."""
        with self._lock:
            return offer_id.lower() in self._awaiting_inputs

    def inputs_uploaded(self, offer_id: str) -> bool:
        """The input files of job offer ``offer_id`` are now stored: it joins
        matching if it waited for them; whether it did."""
        with self._lock:
            record = self._awaiting_inputs.get(offer_id.lower())
            if record is None:
                return False
            self._awaiting_inputs.pop(record.id)
            current = self.store.offer("job", record.id)
            if current is None or current.state != "open":
                return False
            self._add_to_matcher(current)
        self.bus.publish("offer", {"event": "inputs_uploaded", "kind": "job", "id": record.id,
                                   "signer": record.signer})
        return True

    def offer(self, kind: OfferKind, offer_id: str) -> OfferRecord:
        record = self.store.offer(kind, offer_id.lower())
        if record is None:
            raise OfferNotFoundError(kind, offer_id)
        return record

    def open_offers(self, kind: OfferKind) -> list[OfferRecord]:
        return self.store.offers(kind, state="open")

    def job_inputs(self, offer_id: str) -> tuple[OfferRecord, str]:
        """Job offer ``offer_id`` and the CID of its input files; raises
        :class:`~lilypad.exceptions.OfferNotFoundError` or
        :class:`~lilypad.exceptions.InputsNotFoundError` (it has none). Who may
        upload them is :func:`~lilypad.solver.rules.check_inputs_uploader`."""
        record = self.offer("job", offer_id)
        return record, rules.inputs_cid_of(record)

    def cancel_offer(self, kind: OfferKind, offer_id: str, *, created_at: int, signature: str) -> OfferRecord:
        """Cancel an open offer on its author's signed request (:func:`~lilypad.protocol.auth.sign_cancel`).

        Raises :class:`~lilypad.exceptions.OfferNotFoundError`,
        :class:`~lilypad.exceptions.OfferSignatureError` (not the author's),
        :class:`~lilypad.exceptions.OfferExpiredError` /
        :class:`~lilypad.exceptions.OfferFromFutureError` (request outside the
        clock skew) and :class:`~lilypad.exceptions.OfferStateError` (not open:
        a matched job offer cannot be cancelled).
        """
        record = self.offer(kind, offer_id)
        signer = recover_cancel_signer(kind, record.id, created_at, signature, self.domain)
        if signer != record.signer:
            raise OfferSignatureError(kind, record.signer, signer,
                                      f"the cancel request is signed by {signer}, not by the offer's author")
        now = int(self.clock())
        if created_at > now + self.skew:
            raise OfferFromFutureError(kind, record.signer, created_at, now, self.skew)
        if now > created_at + self.skew:
            raise OfferExpiredError(kind, record.signer, created_at + self.skew, now, "stale cancel request")
        with self._lock:
            if not self.store.set_offer_state(kind, record.id, "cancelled", now=self.clock()):
                current = self.offer(kind, record.id)
                raise OfferStateError(kind, record.id, current.state, "cancel")
            self._remove_from_matcher(record)
            cancelled = self.offer(kind, record.id)
        self.bus.publish("offer", {"event": "cancelled", "kind": kind, "id": record.id, "signer": record.signer})
        return cancelled

    # Matching and expiry ---------------------------------------------------
    def usage(self, now: float | None = None) -> dict[str, int]:
        """Slots in use per provider (lower-case address)."""
        return provider_usage(self.store.active_deal_slots(), self.clock() if now is None else now)

    def match_round(self) -> list[DealRecord]:
        """Match what can be matched now; return the new deals."""
        created: list[DealRecord] = []
        with self._lock:
            now = self.clock()
            version: int | None = None
            for match in self._matcher.match_all(self.usage(now), now=int(now), eligible=self.mediator_eligible):
                if version is None:  # read once per round, for its first deal
                    version = self.settings_version() if self.settings_version is not None else 0
                job_id = self._ids[(match.job.signer.lower(), match.job.nonce)]
                offer_id_ = self._ids[(match.offer.signer.lower(), match.offer.nonce)]
                # A contract job's deal carries the nonce its job creator contract requires.
                nonce = match.job.nonce if match.job.contract_job_id is not None else deal_nonce(job_id, offer_id_)
                deal = match.build_deal(nonce, settings_version=version)
                record = self.store.record_match(deal, job_offer_id=job_id, resource_offer_id=offer_id_, now=now)
                self._matcher.remove_job_offer(match.job)
                self._ids.pop((match.job.signer.lower(), match.job.nonce), None)
                if record is not None:
                    created.append(record)
        for record in created:
            self.bus.publish("deal", {"event": "created", "deal": deal_view(record)})
        return created

    def expire(self) -> list[OfferRecord]:
        """Expire unmatched job offers past the match timeout and resource
        offers past their ``expires_at``; forget stale nonces; return the expired offers."""
        with self._lock:
            now = self.clock()
            expired = self.store.expire_offers(now=now, job_accepted_before=now - self.match_timeout)
            for record in expired:
                self._remove_from_matcher(record)
            self.store.nonces.prune(int(now) - 1)
        for record in expired:
            self.bus.publish("offer", {"event": "expired", "kind": record.kind, "id": record.id,
                                       "signer": record.signer})
        return expired

    def tick(self) -> tuple[list[OfferRecord], list[DealRecord]]:
        """One round: expire, then match."""
        return self.expire(), self.match_round()

    # Deals ----------------------------------------------------------------
    def deal(self, deal_id: str) -> DealRecord:
        record = self.store.deal(deal_id)
        if record is None:
            raise DealNotFoundError(deal_id)
        return record

    def deals(self, *, party: str | None = None, states: Iterable[AgreementState] | None = None) -> list[DealRecord]:
        return self.store.deals(party=party, states=states)

    def on_chain_state(self, deal_id: str, state: AgreementState, result_cid: str | None = None, *,
                       at: int | None = None, times: AgreementTimes | None = None) -> DealRecord:
        """Record the deal's on-chain ``state`` (from the chain watcher).

        ``result_cid`` is the result CID recorded on-chain, when known;
        ``at`` the block time of the change (it becomes the start of the
        state's window; default: the solver's clock); ``times`` sets the
        agreement's timestamps outright (e.g. read from ``getAgreement``).
        """
        state = AgreementState(state)
        if times is None:
            when = int(self.clock()) if at is None else int(at)
            times = {
                AgreementState.DEAL_NEGOTIATING: AgreementTimes(created_at=when),
                AgreementState.DEAL_AGREED: AgreementTimes(agreed_at=when),
                AgreementState.RESULTS_SUBMITTED: AgreementTimes(results_submitted_at=when),
                AgreementState.RESULTS_CHECKED: AgreementTimes(mediation_requested_at=when),
            }.get(state)
            current = self.deal(deal_id)
            if state == AgreementState.DEAL_NEGOTIATING and current.times.created_at is not None:
                times = None  # the first agree set it; keep it
        with self._lock:
            record = self.store.update_deal(deal_id, state, now=self.clock(), result_cid=result_cid, times=times)
        if record is None:
            raise DealNotFoundError(deal_id)
        self.bus.publish("deal", {"event": "state", "deal": deal_view(record, self.result(deal_id))})
        return record

    def may_time_out(self) -> bool:
        """Whether any deal is in a state that a timeout can end (the timeout keeper reads
        the chain's clock only then: an idle solver asks the node nothing every round)."""
        return bool(self.store.deals(states=TIMEOUT_FOR_STATE))

    def overdue_deals(self, now: int | None = None) -> list[tuple[DealRecord, str]]:
        """Deals whose on-chain window has passed at chain time ``now``
        (default: the solver's clock), each with the controller function that
        ends it."""
        when = int(self.clock()) if now is None else int(now)
        due = []
        for record in self.store.deals(states=TIMEOUT_FOR_STATE):
            function = timeout_due(record.deal, record.state, record.times, when)
            if function is not None:
                due.append((record, function))
        return due

    # Results --------------------------------------------------------------
    def record_result(self, deal_id: str, cid: str, size: int) -> ResultRecord:
        """Record the result a provider uploaded for ``deal_id``."""
        record = self.deal(deal_id)
        if record.result_cid is not None and record.result_cid != cid:
            raise ResultCIDMismatchError(record.result_cid, cid)
        result = self.store.put_result(record.deal_id, cid, size, now=self.clock())
        self.bus.publish("deal", {"event": "result_uploaded", "deal": deal_view(record, result)})
        return result

    def result(self, deal_id: str) -> ResultRecord | None:
        return self.store.result(deal_id)

    def servable_result(self, deal_id: str, onchain_result: Callable[[str], str | None]) -> ResultRecord:
        """The result of deal ``deal_id`` to serve: the uploaded one, only while
        its CID is ``onchain_result(deal_id)`` (see
        :func:`~lilypad.solver.rules.servable_result` for the refusals). Who may
        upload it is :func:`~lilypad.solver.rules.check_result_uploader`."""
        record = self.deal(deal_id)
        return rules.servable_result(record, self.result(record.deal_id), onchain_result, self.timeouts.download)

    def purge_results(self) -> list[str]:
        """Forget the results of deals that ended more than the download
        timeout ago; the CIDs to delete from the results store (none without
        a download timeout)."""
        if self.timeouts.download is None:
            return []
        return self.store.drop_ended_results(ended_before=self.clock() - self.timeouts.download)

    def onchain_result_cid(self, deal_id: str) -> str | None:
        """The result CID the chain watcher reported for ``deal_id`` (``None``
        if none yet): a default for the HTTP app's ``onchain_result``."""
        record = self.store.deal(deal_id)
        return None if record is None else record.result_cid

    def job(self, deal_id: str) -> dict[str, Any]:
        """What the deal's provider must run: the job offer's module, inputs and machine."""
        record = self.deal(deal_id)
        job = self.offer("job", record.job_offer_id).signed.offer
        assert isinstance(job, JobOffer)
        return {
            "deal_id": record.deal_id,
            "job_offer_id": record.job_offer_id,
            "module": job.module.model_dump(mode="json"),
            "inputs": dict(job.inputs),
            "inputs_cid": job.inputs_cid,
            "spec": job.spec.model_dump(mode="json"),
        }

    def counts(self) -> Mapping[str, int]:
        """Open offers in the matcher (for health and tests)."""
        with self._lock:
            return {"resource_offers": self._matcher.resource_offer_count, "job_offers": self._matcher.job_offer_count}
