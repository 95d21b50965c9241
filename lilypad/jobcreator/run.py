"""Run a job on the market: ``lilypad run``, and follow or fetch a deal.

:func:`run_job` does, printing one line per stage through ``echo``:

1. resolve the module to a commit and render it (its ``machine`` section gives
   the job offer's resource requirements);
2. post a signed :class:`~lilypad.protocol.offers.JobOffer` to the solver (with
   ``--inputs-path``, the offer signs the input files' CID and the files are
   uploaded for it: :mod:`lilypad.jobcreator.inputs`) and wait for the match
   (server-sent events, with polling as the fallback);
3. check the solver's deal against the offer (:func:`~lilypad.jobcreator.logic.deal_problems`),
   ``agree`` on-chain, escrowing the deposit with an EIP-2612 permit for exactly
   that amount signed in the same step (no separate approval transaction);
4. wait for the provider's results on-chain, download them from the solver
   into ``<data_dir>/downloaded-files/<deal id>/`` and verify them against the
   CID recorded **on-chain**;
5. ``acceptResult`` - or ``checkResult`` when the download does not verify (or
   mediation was asked for) and wait for the mediator's verdict.

Each run is recorded as JSON under ``<data_dir>/jobcreator/runs/`` (the offer,
the deal, the stage, the result), so an interrupted run can be followed later
and a new run never reuses the earlier one's offer (each offer has a fresh
nonce). :func:`deal_status` and :func:`fetch_result` (from
:mod:`lilypad.jobcreator.results`) serve ``lilypad status`` and ``lilypad fetch``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from lilypad.exceptions import (
    DealTermsError,
    JobCreatorError,
    JobInterruptedError,
    JobTimeoutError,
    LilypadError,
    NoMatchError,
    OfferStateError,
    SolverDomainMismatchError,
    SolverError,
    SolverRequestError,
    SolverUnavailableError,
)
from lilypad.jobcreator.inputs import MAX_INPUT_FILE_BYTES, check_inputs_path, upload_inputs
from lilypad.jobcreator.logic import (
    Stage,
    StageTracker,
    format_tokens,
    interrupt_plan,
    judge,
    outcome_of,
    overbilling,
    should_mediate,
    stage_of,
)
from lilypad.jobcreator.results import deal_status, download_verified, fetch_result, result_hints
from lilypad.jobcreator.steps import check_solver_domain, checked_deal, job_offer
from lilypad.protocol.deal import AgreementState, Deal, DealPricing
from lilypad.protocol.offers import DEFAULT_JOB_PRICING, JobOffer, PricingMode, ResourceSpec

if TYPE_CHECKING:
    from lilypad.client import DealView, OfferView
    from lilypad.protocol.signing import OfferDomain

__all__ = [
    "MAX_INPUT_FILE_BYTES",
    "JobRequest",
    "RunRecords",
    "RunReport",
    "chain_for_client",
    "check_inputs_path",
    "deal_status",
    "download_verified",
    "fetch_result",
    "result_hints",
    "run_job",
    "through_outage",
    "wait_for_event",
    "wait_for_match",
]

Echo = Callable[[str], None]
T = TypeVar("T")


# --------------------------------------------------------------------------
# What to run, and what happened
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRequest:
    """Everything ``lilypad run`` was asked to do (times in seconds)."""

    module: str
    inputs: Mapping[str, str]
    solver_url: str
    mediators: tuple[str, ...]
    data_dir: Path
    network: str = "ethereum:local:foundry"
    solver_address: str | None = None
    target: str | None = None
    pricing: DealPricing = DEFAULT_JOB_PRICING
    pricing_mode: PricingMode = PricingMode.MARKET_PRICE
    mediate: bool = False
    mediation_chance: int = 0
    inputs_path: Path | None = None
    #: Mediators judging a checked or audited result (odd, 1..7); ``None``: the network's
    #: default (:func:`lilypad.protocol.settings.deal_defaults`: 1 on a devnet, 3 where
    #: mediators stake).
    consortium_size: int | None = None
    #: The smallest results-collateral multiple accepted (replaces ``pricing``'s); ``None``:
    #: the network's default (2 on a devnet, 40 where mediators stake).
    min_results_collateral_multiple: int | None = None
    timeout: float = 7200.0
    download_timeout: float = 120.0
    poll_interval: float = 0.5
    #: The job creator's IPFS (:class:`~lilypad.ipfs.IpfsSources`): input files are added
    #: to its node and the result fetched from IPFS first; ``None``: the solver only.
    ipfs: Any | None = None


@dataclass
class RunReport:
    """The end of a run: ``outcome`` for the user, ``success`` for the exit code."""

    run_id: str
    offer_id: str | None = None
    deal_id: str | None = None
    stage: Stage = Stage.PREPARING
    result_cid: str | None = None
    results_dir: Path | None = None
    mediated: bool = False
    audited: bool = False  # drawn for a random audit at acceptResult (mediation paid by the jackpot)
    success: bool = False
    outcome: str = ""
    history: list[str] = field(default_factory=list)


class RunRecords:
    """One JSON file per run under ``<data_dir>/jobcreator/runs/``, rewritten atomically."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "jobcreator" / "runs"

    def new_id(self) -> str:
        return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(4)

    def save(self, run_id: str, **fields: Any) -> dict[str, Any]:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{run_id}.json"
        record = self.load(run_id) or {"run_id": run_id, "created_at": time.time()}
        record.update({k: (str(v) if isinstance(v, Path) else v) for k, v in fields.items()})
        record["updated_at"] = time.time()
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        os.replace(tmp, path)
        return record

    def load(self, run_id: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / f"{run_id}.json").read_text())
        except (OSError, ValueError):
            return None

    def all(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        found = [self.load(p.stem) for p in sorted(self.root.glob("*.json"))]
        return [r for r in found if r is not None]

    def unfinished(self) -> list[dict[str, Any]]:
        """Runs that stopped before their deal ended (interrupted, timed out)."""
        done = {Stage.DONE.value, Stage.FAILED.value}
        return [r for r in self.all() if r.get("deal_id") and r.get("stage") not in done]


# --------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------


def _concerns(event: Any, offer_id: str) -> bool:
    data = event.data if isinstance(event.data, dict) else {}
    if event.type == "offer":
        return str(data.get("id", "")).lower() == offer_id.lower()
    if event.type == "deal":
        deal = data.get("deal") or {}
        return str(deal.get("job_offer_id", "")).lower() == offer_id.lower()
    return False


def _about_deal(event: Any, deal_id: str) -> bool:
    data = event.data if isinstance(event.data, dict) else {}
    deal = (data.get("deal") or {}) if event.type == "deal" else {}
    return str(deal.get("deal_id", "")).lower() == deal_id.lower()


#: After the solver says the provider uploaded its result (which it does just before addResult),
#: the chain is read this often for this long: the transaction is on its way. Any other event about
#: the deal (the solver saw the chain move) has the chain read once: the change is already there.
EVENT_FOLLOW_POLL = 0.02
EVENT_FOLLOW_WINDOW = 1.0
#: The deal events that announce a transaction still to come.
FOLLOWED_EVENTS = frozenset({"result_uploaded"})


def wait_for_event(client: Any, concerns: Callable[[Any], bool], *, timeout: float,
                   last_event_id: str | None = None, party: str | None = None) -> tuple[Any, str | None]:
    """Block until the solver publishes an event ``concerns`` accepts, or ``timeout`` seconds
    pass; ``(that event or None, the id of the last event seen)``. Passing that id back
    resumes the stream where it stopped (``Last-Event-ID``), so nothing published between two
    waits is missed; ``party`` (the caller's address) has the solver send only the events naming
    it, not every client's. A solver that cannot be reached is waited out for ``timeout``: the
    caller's own reading (of the offer, of the chain) is the guarantee, an event only makes it sooner."""
    deadline = time.monotonic() + timeout
    try:
        stream = client.events(read_timeout=timeout, last_event_id=last_event_id, party=party)
    except SolverError:
        time.sleep(timeout)
        return None, last_event_id
    try:
        for event in stream:
            last_event_id = event.id or last_event_id
            if concerns(event):
                return event, last_event_id
            if time.monotonic() >= deadline:
                break
    except SolverUnavailableError:
        pass  # read timeout (or the solver went away): the caller reads again
    finally:
        stream.close()
    return None, last_event_id


def through_outage(call: Callable[[], T], *, deadline: float, outage_wait: float = 2.0,
                   clock: Callable[[], float] = time.monotonic,
                   notice: Callable[[SolverUnavailableError], None] | None = None) -> T:
    """``call()``, tried again every ``outage_wait`` seconds while the solver
    cannot be reached (restarting, say), until ``deadline`` on ``clock``;
    ``notice`` hears of the first failure."""
    told = False
    while True:
        try:
            return call()
        except SolverUnavailableError as exc:
            if clock() >= deadline:
                raise
            if notice is not None and not told:
                notice(exc)
                told = True
            time.sleep(max(0.0, min(outage_wait, deadline - clock())))


def wait_for_match(client: Any, offer_id: str, *, deadline: float, poll: float = 0.5, outage_wait: float = 2.0,
                   clock: Callable[[], float] = time.monotonic, party: str | None = None) -> OfferView:
    """Wait until job offer ``offer_id`` leaves ``open`` (or ``deadline`` on
    ``clock``); its last view. Events wake it early; polling every ``poll``
    seconds is the guarantee (an event missed, or no event stream, only
    costs latency). A solver that cannot be reached (restarting, say) is
    waited for until ``deadline``, ``outage_wait`` seconds between tries: the
    offer is in its database, so giving up would only leave it to be matched
    with nobody left to agree. ``party``: the offer's signer (the stream carries only its events)."""
    while True:
        view = through_outage(lambda: client.job_offer(offer_id), deadline=deadline, outage_wait=outage_wait,
                              clock=clock)
        if view.state != "open" or clock() >= deadline:
            return view
        wait_for_event(client, lambda event: _concerns(event, offer_id), timeout=poll, party=party)


@contextmanager
def chain_for_client(network: str, signer: Any = None, contracts: Any | None = None, *,
                     settings: Any = None) -> Iterator[Any]:
    """The contracts a job creator's command uses: ``contracts`` when given; else, when the
    node's URL is known without ape (``LILYPAD_RPC_URLS``, or ``APE_FOUNDRY_HOST`` for anvil) and
    ``signer`` is not an ape account, the lean :class:`~lilypad.client.chain.JobCreatorChain`
    (web3.py, no ape imported); else ape's :func:`~lilypad.chain.connect.connected`. The
    deployments and endpoints are ``settings``' (default: :func:`lilypad.settings.get_settings`)."""
    if contracts is not None:
        yield contracts
        return
    from lilypad.client.chain import job_creator_chain, lean_rpc_urls
    from lilypad.protocol.accounts import is_ape_account
    from lilypad.settings import get_settings

    settings = settings or get_settings()
    urls = lean_rpc_urls(network, settings.rpc_url_list)
    if urls and not (signer is not None and is_ape_account(signer)):
        with job_creator_chain(network, urls, settings.deployments_dir) as lean:
            yield lean
        return
    from lilypad.chain.connect import connected

    with connected(network, settings.deployments_dir, rpc_urls=settings.rpc_url_list) as live:
        yield live


@contextmanager
def _keyboard_interrupts() -> Iterator[None]:
    """Let Ctrl-C raise KeyboardInterrupt here: importing ape (and connecting some of
    its providers) replaces the SIGINT handler with ``sys.exit(130)``, which would
    skip cancelling the offer. Restored on leaving; only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


class _Run:
    """The state of one :func:`run_job` (kept for Ctrl-C and the record)."""

    def __init__(self, request: JobRequest, private_key: Any, echo: Echo, contracts: Any, client: Any,
                 sleep: Callable[[float], None]) -> None:
        from lilypad.client.chain import JobCreatorChain
        from lilypad.protocol.accounts import account_from_private_key, is_ape_account, local_account_from_private_key

        self.request, self.key, self.echo = request, private_key, echo
        self.contracts, self.client, self.sleep = contracts, client, sleep
        if is_ape_account(private_key):
            self.account = private_key
        elif isinstance(contracts, JobCreatorChain):  # signs without ape
            self.account = local_account_from_private_key(private_key)
        else:
            self.account = account_from_private_key(private_key)
        self.inputs_cid: str | None = None
        self.metering: Any = None  # the module's verification.metering, once resolved
        self.records = RunRecords(request.data_dir)
        self.report = RunReport(run_id=self.records.new_id())
        self.tracker = StageTracker()
        self.deal: Deal | None = None
        self.timeout_at: int | None = None
        self.deadline = time.monotonic() + request.timeout
        # When each stage was first reached (Unix time), kept in the run record:
        # `make bench` reads them to say where a job's time goes.
        self.stage_times: dict[str, float] = {Stage.PREPARING.value: time.time()}

    # helpers
    def stage(self, stage: Stage, line: str | None = None, **record: Any) -> None:
        if self.tracker.update(stage):
            self.report.history.append(stage.value)
        self.report.stage = stage
        self.stage_times.setdefault(stage.value, time.time())
        if line:
            self.echo(f"[{stage.value}] {line}")
        self.records.save(self.report.run_id, stage=stage.value, offer_id=self.report.offer_id,
                          deal_id=self.report.deal_id, stage_times=dict(self.stage_times), **record)

    def through_outage(self, call: Callable[[], T]) -> T:
        """``call()`` to the solver, which answered once: an outage (a restart)
        is waited through until the job's deadline, saying so once."""
        def notice(exc: SolverUnavailableError) -> None:
            self.echo(f"[{self.report.stage.value}] {exc}; retrying until the job's deadline")

        return through_outage(call, deadline=self.deadline, notice=notice)

    def check_deadline(self) -> None:
        if time.monotonic() >= self.deadline:
            plan = interrupt_plan(self.report.stage, deal=self.deal, deal_id=self.report.deal_id,
                                  timeout_at=self.timeout_at)
            raise JobTimeoutError(self.report.stage.value, self.request.timeout, plan.message)

    def agreement(self) -> Any:
        a = self.contracts.agreement(self.report.deal_id)
        if self.deal is not None:
            self.timeout_at = a.timeout_at(self.deal)
        return a

    # steps
    def build_offer(self) -> JobOffer:
        from lilypad.client import resolve_solver_address
        from lilypad.modules.resolve import ModuleResolver
        from lilypad.modules.spec import check_runnable
        from lilypad.protocol.settings import deal_defaults

        req = self.request
        resolved = ModuleResolver(Path(req.data_dir) / "modules").resolve(req.module)
        spec = resolved.render(req.inputs)
        check_runnable(spec)  # no provider could run it: say so before anything is signed or paid
        self.metering = spec.verification.metering
        self.inputs_cid = check_inputs_path(req.inputs_path, tuple(spec.input_files.required))
        machine = ResourceSpec.from_machine(spec.machine)
        self.echo(f"[{Stage.PREPARING.value}] module {req.module} -> {resolved.repo}@{resolved.commit[:12]} "
                  f"(cpu {machine.cpu}m, ram {machine.ram} MB, gpu {machine.gpu})")
        self.check_domain()  # the first word with the solver: an unreachable one fails fast
        sol = self.through_outage(lambda: resolve_solver_address(self.client, req.solver_address))
        consortium_size, multiple = req.consortium_size, req.min_results_collateral_multiple
        if consortium_size is None or multiple is None:
            defaults = deal_defaults(self.contracts.current_protocol_settings()[1])
            consortium_size = consortium_size or defaults.consortium_size
            multiple = multiple or defaults.results_collateral_multiple
        pricing = req.pricing.model_copy(update={"results_collateral_multiple": multiple})
        try:
            return job_offer(job_creator=self.account.address, solver=sol, module_ref=req.module, resolved=resolved,
                             spec=spec, inputs=req.inputs, pricing=pricing, mediators=req.mediators,
                             pricing_mode=req.pricing_mode, target=req.target, inputs_cid=self.inputs_cid,
                             consortium_size=consortium_size)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "offer"
            raise JobCreatorError(f"cannot make a job offer: {where}: {first['msg']}") from None

    def check_domain(self) -> OfferDomain:
        try:
            return check_solver_domain(self.client, self.contracts.deployment)
        except SolverDomainMismatchError as exc:
            raise JobCreatorError(
                f"the solver signs for chain {exc.solver_chain_id} / controller {exc.solver_controller}, but "
                f"{self.request.network} is chain {exc.chain_id} / controller {exc.controller}: "
                "refusing to sign an offer for another deployment"
            ) from None

    def add_inputs_to_ipfs(self) -> None:
        """Add and pin the input files on the job creator's kubo node (when it has
        one), so providers can fetch them by their CID; the solver keeps a copy
        too, so a node that is down is only a warning."""
        ipfs = self.request.ipfs
        if ipfs is None or not ipfs.api or self.inputs_cid is None:
            return
        from lilypad.ipfs.fetch import add_tree

        assert self.request.inputs_path is not None
        try:
            add_tree(ipfs, self.request.inputs_path, expected_cid=self.inputs_cid)
            self.echo(f"[{Stage.OFFER_POSTED.value}] input files {self.inputs_cid} pinned on IPFS ({ipfs.api})")
        except LilypadError as exc:
            self.echo(f"[{Stage.OFFER_POSTED.value}] warning: input files not added to IPFS ({exc}); "
                      "providers get them from the solver")

    def post_and_match(self, offer: JobOffer) -> DealView:
        from lilypad.protocol.signing import sign_offer

        signed = sign_offer(offer, self.key, self.check_domain())
        self.report.offer_id = self.through_outage(lambda: self.client.post_job_offer(signed))
        if self.inputs_cid is not None:
            assert self.request.inputs_path is not None
            self.add_inputs_to_ipfs()
            try:
                upload_inputs(self.client, self.report.offer_id, self.request.inputs_path, self.key,
                              echo=lambda line: self.echo(f"[{Stage.OFFER_POSTED.value}] {line}"))
            except LilypadError:
                self.cancel_offer()
                raise
        self.stage(Stage.OFFER_POSTED, f"job offer {self.report.offer_id} posted to {self.client.base_url}; "
                                       "waiting for a match", module=self.request.module,
                   inputs=dict(self.request.inputs), network=self.request.network, solver_url=self.client.base_url)
        view = wait_for_match(self.client, self.report.offer_id, deadline=self.deadline,
                              poll=self.request.poll_interval, party=str(self.account.address))
        state = view.state
        if state == "open":
            self.cancel_offer()
            raise JobTimeoutError(Stage.OFFER_POSTED.value, self.request.timeout,
                                  "no match; the job offer was cancelled and nothing was escrowed")
        if state != "matched" or not view.deal_id:
            self.stage(Stage.FAILED, outcome=f"offer {state}")
            raise NoMatchError(self.report.offer_id, str(state))
        self.report.deal_id = str(view.deal_id)
        try:
            deal_view = checked_deal(self.client, self.report.deal_id, offer, self.report.offer_id)
        except DealTermsError:
            self.stage(Stage.FAILED, outcome="bad deal terms")
            raise
        deal = self.deal = deal_view.terms
        price = format_tokens(deal.pricing.instruction_price)
        self.stage(Stage.MATCHED, f"deal {self.report.deal_id} with provider {deal.members.resource_provider} "
                                  f"at {price} per instruction")
        return deal_view

    def cancel_offer(self) -> str:
        try:
            self.client.cancel_job_offer(self.report.offer_id, self.key)
            return "the job offer was cancelled; nothing was escrowed."
        except OfferStateError:
            return "the offer was matched meanwhile; you did not agree, so nothing of yours is escrowed."
        except SolverRequestError as exc:
            if exc.status == 409:
                return "the offer was matched meanwhile; you did not agree, so nothing of yours is escrowed."
            return f"cancelling the offer failed ({exc}); it expires unmatched on its own, nothing was escrowed."
        except SolverError as exc:
            return f"cancelling the offer failed ({exc}); it expires unmatched on its own, nothing was escrowed."

    def agree(self) -> None:
        assert self.deal is not None
        deposit = self.deal.job_creator_deposit
        self.contracts.agree_paying(self.deal, self.account, deposit)
        self.agreement()
        self.stage(Stage.AGREED, f"agreed on-chain; {format_tokens(deposit)} escrowed; waiting for the provider")

    def wait_chain(self, until: Callable[[AgreementState], bool]) -> AgreementState:
        """Read the deal's state until ``until`` holds (or it ends): after each reading, wait for
        the solver's next event about the deal for at most ``poll_interval`` (:func:`wait_for_event`);
        an event announcing a transaction (:data:`FOLLOWED_EVENTS`) has the chain read every
        :data:`EVENT_FOLLOW_POLL` s for :data:`EVENT_FOLLOW_WINDOW` s."""
        deal_id = self.report.deal_id
        assert deal_id is not None

        def about_deal(event: Any) -> bool:
            return _about_deal(event, deal_id)

        follow_until, last_event = 0.0, None
        while True:
            a = self.agreement()
            stage = stage_of("matched", self.report.deal_id, a.state, job_creator_agreed=a.job_creator_agreed)
            if stage != self.tracker.stage and stage == Stage.RUNNING:
                self.stage(Stage.RUNNING, "the provider agreed; the job is running")
            if until(a.state) or a.state.is_terminal:
                return a.state
            self.check_deadline()
            if time.monotonic() < follow_until:
                self.sleep(EVENT_FOLLOW_POLL)
                continue
            event, last_event = wait_for_event(self.client, about_deal, timeout=self.request.poll_interval,
                                               last_event_id=last_event, party=str(self.account.address))
            if event is not None and isinstance(event.data, dict) and event.data.get("event") in FOLLOWED_EVENTS:
                follow_until = time.monotonic() + EVENT_FOLLOW_WINDOW

    def finish(self, state: AgreementState) -> RunReport:
        outcome = outcome_of(state)
        assert outcome is not None
        self.report.success, self.report.outcome = outcome.success, outcome.message
        if outcome.success and self.report.results_dir is None:
            self.report.success = False
            self.report.outcome = (f"{outcome.message}, but the result could not be downloaded and verified; "
                                   f"try `lilypad fetch {self.report.deal_id}` later")
        if self.report.mediated:
            self.echo(f"[{Stage.CHECKED.value}] {self.mediation_summary()}")
        final = Stage.DONE if self.report.success else Stage.FAILED
        self.stage(final, self.report.outcome, outcome=self.report.outcome, result_cid=self.report.result_cid,
                   results_dir=self.report.results_dir, chain_state=state.name)
        return self.report

    def mediation_summary(self) -> str:
        """Who judged the deal and how they voted (read from the chain)."""
        from lilypad.mediator.panel import VERDICT_WORDS

        assert self.deal is not None
        try:
            panel = self.contracts.panel(self.deal)
            votes = self.contracts.votes(self.deal) if panel.size > 1 else ()
        except Exception as exc:  # the summary is a courtesy: never fail a finished run on it
            return f"could not read the mediation panel: {type(exc).__name__}: {exc}"
        how = "random audit" if panel.audited else "check"
        if panel.size == 1:
            who = panel.members[0] if panel.members else "nobody"
            return f"mediation ({how}, round {panel.round}): mediator {who}"
        said = ", ".join(f"{m} {VERDICT_WORDS.get(v, '?')}" for m, v in votes) or "no votes"
        return f"mediation ({how}, round {panel.round}) by a panel of {panel.size}: {said}"

    def judge_and_settle(self) -> RunReport:
        assert self.deal is not None
        cid, count = self.contracts.result(self.report.deal_id)
        self.report.result_cid = cid
        self.stage(Stage.RESULTS_SUBMITTED, f"results submitted on-chain: data CID {cid}, {count} instruction(s)",
                   result_cid=cid)
        ipfs = self.request.ipfs
        where = f"IPFS ({ipfs.describe()}), else {self.client.base_url}" if ipfs else self.client.base_url
        self.stage(Stage.DOWNLOADING, f"downloading the result from {where}")
        assert cid is not None and self.report.deal_id is not None
        got = download_verified(self.client, self.report.deal_id, cid, self.request.data_dir,
                                wait=min(self.request.download_timeout, max(0.0, self.deadline - time.monotonic())),
                                poll=self.request.poll_interval, ipfs=ipfs)
        if got.ipfs_problem:
            self.echo(f"[{Stage.DOWNLOADING.value}] {got.ipfs_problem}")
        if got.verified:
            self.echo(f"[{Stage.DOWNLOADING.value}] result {cid} fetched from {got.source}")
        self.report.results_dir = path = got.path
        problem = got.problem
        mediate = got.verified and should_mediate(self.request.mediate, self.request.mediation_chance)
        verdict = judge(got.verified, problem, mediate=mediate, overbilled=overbilling(count, self.metering))
        if verdict.accept:
            self.echo(f"[{Stage.DOWNLOADING.value}] {verdict.reason}")
            self.contracts.accept_result(self.deal, self.account)
            state = self.agreement().state
            if state == AgreementState.RESULTS_CHECKED:
                self.report.mediated = self.report.audited = True
                self.stage(Stage.CHECKED, "acceptResult sent: the deal was drawn for a random audit (the jackpot pays "
                                          "the mediation fee); waiting for the mediators' verdict", results_dir=path,
                           audited=True)
                return self.finish(self.wait_chain(lambda s: s.is_terminal))
            self.stage(Stage.ACCEPTED, "acceptResult sent", results_dir=path)
            return self.finish(state)
        self.report.mediated = True
        self.echo(f"[{Stage.DOWNLOADING.value}] {verdict.reason}")
        self.contracts.check_result_paying(self.deal, self.account, self.deal.pricing.mediation_fee)
        self.agreement()
        self.stage(Stage.CHECKED, f"checkResult sent ({format_tokens(self.deal.pricing.mediation_fee)} mediation "
                                  "fee escrowed); waiting for the mediator's verdict", results_dir=path,
                   problem=problem)
        return self.finish(self.wait_chain(lambda s: s.is_terminal))

    def run(self) -> RunReport:
        previous = self.records.unfinished()
        for rec in previous[-3:]:
            self.echo(f"note: an earlier run left deal {rec.get('deal_id')} at stage {rec.get('stage')!r}; "
                      f"this run posts a new offer (follow the old one with `lilypad status {rec.get('deal_id')}`)")
        self.records.save(self.report.run_id, stage=Stage.PREPARING.value, module=self.request.module,
                          stage_times=dict(self.stage_times))
        offer = self.build_offer()
        self.post_and_match(offer)
        self.agree()
        state = self.wait_chain(lambda s: s in (AgreementState.RESULTS_SUBMITTED,))
        if state.is_terminal:
            return self.finish(state)
        return self.judge_and_settle()

    def interrupted(self) -> JobInterruptedError:
        stage = self.report.stage
        plan = interrupt_plan(stage, deal=self.deal, deal_id=self.report.deal_id, timeout_at=self.timeout_at)
        message = self.cancel_offer() if plan.cancel_offer else plan.message
        self.records.save(self.report.run_id, stage=stage.value, interrupted=True, outcome=message)
        return JobInterruptedError(stage.value, message)


def run_job(request: JobRequest, private_key: Any, *, echo: Echo = print, contracts: Any | None = None,
            client: Any | None = None, sleep: Callable[[float], None] = time.sleep) -> RunReport:
    """Run ``request`` on the market as the owner of ``private_key`` (a raw key,
    or an unlocked ape account: :func:`lilypad.protocol.accounts.load_ape_account`)
    (see the module docstring); the :class:`RunReport` of a deal that ended.

    ``contracts`` (a :class:`~lilypad.chain.contracts.LilypadContracts`) and
    ``client`` (a :class:`~lilypad.client.SolverClient`) default to a
    connection to ``request.network`` and ``request.solver_url``. Raises
    :class:`~lilypad.exceptions.NoMatchError`, ``DealTermsError``,
    ``JobTimeoutError``, ``JobInterruptedError`` (Ctrl-C, after cancelling an
    unmatched offer), ``InputFilesError`` and the chain's and solver's errors.
    """
    from lilypad.client import SolverClient

    own_client = client is None
    client = client or SolverClient(request.solver_url)
    try:
        with chain_for_client(request.network, private_key, contracts) as live, _keyboard_interrupts():
            run = _Run(request, private_key, echo, live, client, sleep)
            try:
                return run.run()
            except KeyboardInterrupt:
                raise run.interrupted() from None
            except JobTimeoutError as exc:
                run.records.save(run.report.run_id, stage=run.report.stage.value, outcome=str(exc))
                raise
    finally:
        if own_client:
            client.close()

