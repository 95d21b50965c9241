"""The mediator daemon: re-run checked jobs and judge the provider's result.

:class:`Mediator` follows the deals that name it as a mediator (every
``poll_interval`` seconds, woken early by the solver's ``/events`` naming it: the
deals the solver shows open and, once, its unfinished ones that ended since,
:func:`~lilypad.service.deals.deals_to_visit`); the state of each comes from the
chain, read at once for a deal the solver shows checked or ended and every
:data:`UNCHECKED_RECHECK_S` for the others. For a deal in
``ResultsChecked`` (checked by its job creator, or drawn for a random audit)
it does what :func:`lilypad.mediator.panel.next_action` says:

1. reads the current round's panel on-chain (the deal's
   ``protocol.consortium_size`` members, drawn by ``LilypadMediation``; see
   :mod:`lilypad.chain.mediation`) as soon as the draw block is sealed, and if
   it is a member fixes the draw with ``assignMediator`` at once, before any
   re-run, so the draw cannot expire (256 blocks) while it works; a draw
   nobody fixed in time is redrawn by its ``assignMediator``. A mediator not
   drawn looks again when a new round (or a redraw) starts: a silent panel is
   replaced;
2. if a member, fetches the job (module and inputs) from the solver, checks it
   is the job the deal is bound to (:func:`lilypad.provider.execution.binding_problems`:
   the job creator's signed offer, whose id the deal's nonce commits to),
   and re-runs the module **several times, concurrently** (the module's
   ``verification.reruns``, at least ``min_reruns``; the signed module commit
   checked, the job's input files downloaded and verified against the
   offer's ``inputs_cid``);
3. judges with :func:`lilypad.verification.judge_result` under the module's
   declared comparator and metering: the provider's claimed instruction count
   above what its own runs measured (plus the module's tolerance) -> reject;
   its own runs disagreeing with each other -> the job is non-deterministic,
   the job creator's fault (the provider is paid); its runs agreeing and the
   provider's result equivalent -> accept; else reject. Comparators other than
   plain ``exact`` need the provider's files: they are fetched from IPFS by the
   on-chain CID when the mediator has a kubo node or gateway (``ipfs``), else
   or on failure downloaded from the solver, and checked against that CID
   either way (unavailable files -> reject:
   the job creator could not get them either);
4. on a panel of one, sends the verdict; on a larger panel, commits a hash of
   it (with a fresh salt), reveals it once the reveal window opens, and
   resolves the round (``timeoutMediateResult``) once every member revealed or
   the window closed. A later round (the first had no majority) may draw it
   again: it judges once per deal and votes once per round.

Checks and random audits are handled alike: both put the deal in
``ResultsChecked`` with a panel to draw.

Handled deals are kept in SQLite (``<data_dir>/mediator.db``): the re-runs
(directories, CIDs, durations) once all have finished, the judgement before
any transaction is sent, and the salt and commitment before the commit is
sent, so a restart neither re-runs finished runs, nor judges twice, nor loses
the salt it needs to reveal (kill it between commit and reveal: it still
reveals). Each state change is one JSON log line (logger
``lilypad.mediator``, :func:`lilypad.observability.log_state_change`). With
``metrics_port`` it serves ``/metrics`` (re-runs by outcome and their
durations, deal transitions - verdicts among them - balances, chain head and lag) and
``/health`` on that port. The loop, the store, the waker, the chain metrics
and the container cleanup come from the service kit (:mod:`lilypad.service`).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lilypad.observability import log_state_change
from lilypad.protocol.deal import AgreementState, Deal
from lilypad.service import (
    DealStateStore,
    EventWaker,
    ServiceLoop,
    deals_to_visit,
    log_event,
    read_chain_metrics,
    remove_leftover_containers,
)

__all__ = ["DONE_STATUSES", "FAULTS", "MIN_RERUNS", "NOT_CHOSEN_RECHECK_S", "UNCHECKED_RECHECK_S", "Mediator",
           "MediatorConfig", "StoredRun", "rerun_count"]

log = logging.getLogger("lilypad.mediator")


#: The fewest re-runs a mediator makes of a checked job: one run cannot tell
#: a non-deterministic job from a wrong result.
MIN_RERUNS = 2

#: Test-only misbehaviours (``LILYPAD_MEDIATOR_FAULT``), to prove that the
#: protocol punishes them; never set in production. ``collude``: judge every
#: result "accept" without re-running (a mediator bribed by the provider);
#: ``no-reveal``: commit, never reveal; ``silent``: never vote at all.
FAULTS = frozenset({"", "collude", "no-reveal", "silent"})

#: Local statuses after which a deal needs nothing more from this mediator
#: (not being on a round's panel is not one: a later round may draw it).
DONE_STATUSES = frozenset({"accepted", "rejected", "non_deterministic", "done"})

#: Seconds before a deal whose current draw left this mediator out is read again.
NOT_CHOSEN_RECHECK_S = 5.0
#: How often the chain is read for a deal the solver shows not yet checked (seconds).
UNCHECKED_RECHECK_S = 5.0


def _may_need_a_mediator(state: AgreementState) -> bool:
    """Whether a deal the solver shows in ``state`` is worth reading from the chain at once:
    checked (or audited), or ended. Before a check a mediator has nothing to do, and reading
    every deal in flight from the chain each round cost the mediator as much CPU under load as
    the provider running the jobs; such a deal is read every :data:`UNCHECKED_RECHECK_S`
    instead, so a solver that lags the chain (or hides a check) delays a verdict by at most
    that, never past the mediation window."""
    return state == AgreementState.RESULTS_CHECKED or state.is_terminal


def rerun_count(declared: int, configured: int) -> int:
    """How many times to re-run a job (pure): the module's declared ``reruns``
    or the mediator's own ``min_reruns``, whichever is more, and at least 2."""
    return max(MIN_RERUNS, int(declared), int(configured))


@dataclass(frozen=True)
class StoredRun:
    """One finished re-run, as persisted: what the judgement needs of it."""

    result_dir: Path
    cid: str
    duration_s: float
    exit_code: int = 0


@dataclass
class MediatorConfig:
    network: str
    solver_url: str
    private_key: str = field(repr=False)
    data_dir: Path
    modules: tuple[str, ...] = ()  # modules it will re-run (empty: any)
    min_reruns: int = MIN_RERUNS  # re-runs per checked job, at least (the module may ask for more)
    deployments_dir: Path | None = None
    poll_interval: float = 0.5
    #: Seconds between rounds with no deal in flight while the solver's event stream is open
    #: (:class:`~lilypad.service.loop.ServiceLoop`): a check arrives as an event.
    idle_interval: float = 5.0
    metrics_port: int | None = None  # serve /metrics and /health there (0: any free port)
    metrics_host: str = "127.0.0.1"
    stake: int = 0  # LP base units to hold staked in the registry, topped up on start (0: leave it)
    fault: str = ""  # LILYPAD_MEDIATOR_FAULT, test-only (see FAULTS)
    #: Where to fetch the provider's result and the input files from IPFS first
    #: (:class:`~lilypad.ipfs.IpfsSources`; ``None``: the solver only).
    ipfs: Any | None = None


class Mediator:
    """The mediator's I/O loop. ``run()`` blocks until ``stop()``."""

    def __init__(self, config: MediatorConfig) -> None:
        if config.fault not in FAULTS:
            raise ValueError(f"LILYPAD_MEDIATOR_FAULT={config.fault!r}: not one of {sorted(f for f in FAULTS if f)}")
        self.config = config
        self.store = DealStateStore(Path(config.data_dir) / "mediator.db")
        self._retry_at: dict[str, float] = {}
        self._unchecked_read_at: dict[str, float] = {}  # deal id -> when the chain was last read for it
        self.contracts: Any = None
        self.account: Any = None
        self.address = ""
        from lilypad.observability.metrics import DaemonMetrics

        self.metrics = DaemonMetrics("mediator")
        self.loop = ServiceLoop(config.poll_interval, name="mediator", logger=log, metrics=self.metrics,
                                idle_interval=config.idle_interval)
        self._busy = True  # until a round has seen every deal settled
        self.loop.busy = lambda: self._busy
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
            if c.stake:
                from lilypad.mediator.stake import ensure_stake

                plan = ensure_stake(contracts, self.account, c.stake)
                log_event(log, "mediator_staked", address=self.address, action=plan.action, amount=plan.amount)
            server = self.loop.serve_metrics(self.metrics, c.metrics_port, host=c.metrics_host,
                                             health=lambda: {"address": self.address})
            log_event(log, "mediator_started", address=self.address, data_dir=str(c.data_dir),
                      metrics_port=server.port if server else None)
            remove_leftover_containers(Path(c.data_dir), log)
            EventWaker(c.solver_url, self.loop.wake_event, self.loop.stop_event, self.loop.events_connected,
                       party=self.address).start()
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
        busy = False  # whether any deal naming this mediator is still in flight after the round
        for view in deals_to_visit(client, self.address, self.store, DONE_STATUSES):
            deal_id = view.deal_id
            stored = self.store.get(deal_id)
            if stored is not None and stored[0] in DONE_STATUSES:
                continue
            if self._retry_at.get(deal_id, 0) > time.time():
                busy = True
                continue
            deal = view.terms
            if self.address.lower() not in {m.lower() for m in deal.members.mediators}:
                continue
            if not _may_need_a_mediator(view.agreement_state):
                # Nothing to judge before a check: the chain is read as soon as the solver (whose
                # stream wakes this loop) shows one, or an ending, and otherwise now and then.
                busy = True
                if time.time() < self._unchecked_read_at.get(deal_id, 0) + UNCHECKED_RECHECK_S:
                    continue
                self._unchecked_read_at[deal_id] = time.time()
            try:
                self._handle(client, view)
            except Exception as exc:
                self._retry_at[deal_id] = time.time() + 2.0
                log_event(log, "deal_action_failed", deal_id=deal_id, error=f"{type(exc).__name__}: {exc}")
            after = self.store.get(deal_id)
            if after is None or after[0] not in DONE_STATUSES:
                busy = True
            else:
                self._unchecked_read_at.pop(deal_id, None)
        self._busy = busy

    def _panel(self, deal: Deal) -> tuple[Any, tuple[str, ...] | None]:
        """``(panel, members)`` of the current round; ``members`` is ``None`` while
        there is no draw to read (not sealed yet, or too few eligible mediators).
        A draw that names this mediator is fixed on-chain at once; a draw whose
        block's hash is about to be forgotten is redrawn."""
        panel = self.contracts.panel(deal)
        if not panel.requested or panel.assigned:
            return panel, (panel.members if panel.assigned else None)
        members = self.contracts.draw_panel(deal)
        if members is None:
            if panel.draw_forgotten(self.contracts.head_block()):
                self.contracts.assign_mediator(deal, self.account)  # a fresh draw from a later block
            return panel, None
        if self.address.lower() in {m.lower() for m in members}:
            # Fix it before the re-runs: an unfixed draw expires after 256 blocks.
            members = self.contracts.assign_mediator(deal, self.account) or None
        return panel, members

    def _handle(self, client: Any, view: Any) -> None:
        from lilypad.mediator.panel import PanelAction, next_action

        deal_id, deal = view.deal_id, view.terms
        agreement = self.contracts.agreement(deal)
        state = agreement.state
        if state.is_terminal:
            self._set(deal_id, "done", final_state=state.name)
            return
        if state != AgreementState.RESULTS_CHECKED:
            return
        panel, members = self._panel(deal)
        if members is None:
            return
        if self.address.lower() not in {m.lower() for m in members}:
            stored = self.store.get(deal_id)
            data = dict(stored[1]) if stored else {}
            if stored is None or stored[0] != "not_chosen" or data.get("round") != panel.round:
                self._set(deal_id, "not_chosen", **{**data, "round": panel.round, "draw_block": panel.draw_block,
                                                    "members": list(members)})
            self._retry_at[deal_id] = time.time() + NOT_CHOSEN_RECHECK_S
            return
        if not panel.assigned:  # _panel fixed it: read the fixed panel
            panel = self.contracts.panel(deal)
        stored = self.store.get(deal_id)
        data = dict(stored[1]) if stored else {}
        action = next_action(panel, self.address, judged="verdict" in data,
                             committed_round=data.get("committed_round"), revealed_round=data.get("revealed_round"),
                             now=self.contracts.chain_time(), round_started_at=agreement.mediation_requested_at,
                             window=deal.timeouts.mediate_results)
        if action is PanelAction.JUDGE:
            if self.config.fault == "collude":  # bribed: vouch for the provider without re-running
                data.update(verdict="accept", reason="fault injection: collude", panel=list(panel.members))
                self._set(deal_id, "judged", **data)
            else:
                self._judge(client, view, list(panel.members), data)
            return  # act on the judgement next round, with a fresh view of the chain
        if self.config.fault == "silent" or (self.config.fault == "no-reveal" and action is PanelAction.REVEAL):
            return
        if action is PanelAction.VERDICT:
            self._send_verdict(deal_id, deal, data)
        elif action is PanelAction.COMMIT:
            self._commit(deal_id, deal, panel.round, data)
        elif action is PanelAction.REVEAL:
            self._reveal(deal_id, deal, panel.round, data)
        elif action is PanelAction.RESOLVE:
            receipt = self.contracts.timeout_mediate_result(deal, self.account)
            self._set(deal_id, "resolved", **{**data, "resolved_round": panel.round,
                                               "tx": str(getattr(receipt, "txn_hash", ""))})

    def _commit(self, deal_id: str, deal: Deal, round_: int, data: dict[str, Any]) -> None:
        """Commit this round's vote. The salt and commitment are persisted before
        the transaction, and reused if it has to be sent again (a restart)."""
        from lilypad.mediator.panel import chain_verdict, commitment

        if data.get("commit_round") != round_:
            salt = secrets.token_bytes(32)
            digest = commitment(deal.deal_id, round_, self.address, chain_verdict(data["verdict"]),
                                self._result_digest(data), salt)
            data.update(commit_round=round_, salt=salt.hex(), commitment=digest.hex())
            self._set(deal_id, "committing", **data)
        vote = self.contracts.vote(deal, self.address)
        if not (vote.round == round_ and vote.commitment.hex() == data["commitment"]):
            self.contracts.commit_verdict(deal, bytes.fromhex(data["commitment"]), self.account)
        data["committed_round"] = round_
        self._set(deal_id, "committed", **data)

    def _reveal(self, deal_id: str, deal: Deal, round_: int, data: dict[str, Any]) -> None:
        from lilypad.mediator.panel import chain_verdict

        vote = self.contracts.vote(deal, self.address)
        if not (vote.round == round_ and int(vote.verdict) != 0):
            self.contracts.reveal_verdict(deal, chain_verdict(data["verdict"]), self._result_digest(data),
                                          bytes.fromhex(data["salt"]), self.account)
        data["revealed_round"] = round_
        self._set(deal_id, "revealed", **data)

    @staticmethod
    def _result_digest(data: dict[str, Any]) -> bytes:
        """The digest of this mediator's own result (its first re-run's CID), committed with the verdict."""
        from lilypad.protocol.cid import ZERO_DIGEST, cid_to_digest

        runs = data.get("runs") or []
        return cid_to_digest(runs[0]["cid"]) if runs else ZERO_DIGEST

    def _judge(self, client: Any, view: Any, panel: list[str], data: dict[str, Any]) -> dict[str, Any]:
        """Re-run (or reuse the persisted re-runs) and judge; the judgement is
        persisted before any transaction is sent."""
        from lilypad.exceptions import DealBindingError
        from lilypad.provider.execution import binding_problems
        from lilypad.verification import judge_result, needs_provider_files

        deal_id, deal = view.deal_id, view.terms
        job = client.job(deal_id)
        problems = binding_problems(client, deal, job, view.resource_offer_id, self.contracts)
        if problems:  # the solver shows a job the deal is not bound to: never judge on it
            raise DealBindingError(deal_id, problems)
        prepared = self._prepare(client, job)
        vspec = prepared.spec.verification
        runs = self._stored_runs(data)
        if runs is None:
            count = rerun_count(vspec.reruns, self.config.min_reruns)
            self._set(deal_id, "rerunning", panel=list(panel), reruns=count)
            runs = self._rerun(prepared, count)
            data = {"panel": list(panel), "runs": [{"dir": str(r.result_dir), "cid": r.cid, "duration_s": r.duration_s,
                                                "exit_code": r.exit_code} for r in runs]}
            self._set(deal_id, "reran", **data)
        posted, claimed = self.contracts.result(deal)
        provider_dir = self._provider_files(client, deal_id, posted) if needs_provider_files(vspec) else None
        judgement = judge_result(vspec, runs, provider_dir, posted, claimed, module_dir=prepared.module_dir)
        data.update(verdict=judgement.verdict.value, reason=judgement.reason, posted_cid=posted,
                    claimed_instructions=claimed)
        self._set(deal_id, "judged", **data)
        return data

    def _send_verdict(self, deal_id: str, deal: Deal, data: dict[str, Any]) -> None:
        from lilypad.verification import Verdict

        verdict = Verdict(data["verdict"])
        call, status = {
            Verdict.ACCEPT: ("mediation_accept", "accepted"),
            Verdict.REJECT: ("mediation_reject", "rejected"),
            Verdict.NON_DETERMINISTIC: ("mediation_non_deterministic", "non_deterministic"),
        }[verdict]
        receipt = getattr(self.contracts, call)(deal, self.account)
        self._set(deal_id, status, **{**data, "tx": str(getattr(receipt, "txn_hash", ""))})

    def _prepare(self, client: Any, job: Any) -> Any:
        from lilypad.protocol.allowlist import Allowlist
        from lilypad.provider.execution import prepare_deal_job
        from lilypad.settings import DataLayout

        layout = DataLayout(self.config.data_dir)
        allowlist = Allowlist.parse(list(self.config.modules)) if self.config.modules else None
        return prepare_deal_job(job, cache_dir=layout.module_cache_dir, runs_dir=layout.runs_dir,
                                allowlist=allowlist, client=client, ipfs=self.config.ipfs)

    @staticmethod
    def _stored_runs(data: dict[str, Any]) -> list[StoredRun] | None:
        """The persisted re-runs, if every one's directory is still there."""
        runs = data.get("runs")
        if not runs or not all(Path(r["dir"]).is_dir() for r in runs):
            return None
        return [StoredRun(Path(r["dir"]), r["cid"], float(r["duration_s"]), int(r.get("exit_code", 0)))
                for r in runs]

    def _rerun(self, prepared: Any, count: int) -> list[StoredRun]:
        """Run ``prepared`` ``count`` times at once; every run must finish (an
        executor error is raised, and the deal is retried next round)."""
        from lilypad.provider.execution import run_prepared
        from lilypad.settings import DataLayout

        runs_dir = DataLayout(self.config.data_dir).runs_dir

        def one(_: int) -> StoredRun:
            started, outcome = time.monotonic(), "failed"
            try:
                result = run_prepared(prepared, runs_dir=runs_dir)
                outcome = "succeeded" if result.exit_code == 0 else "nonzero_exit"
                return StoredRun(Path(result.result_dir), str(result.cid), float(result.duration_s),
                                 int(result.exit_code))
            finally:
                self.metrics.job_finished(time.monotonic() - started, outcome)

        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="mediator-rerun") as pool:
            return list(pool.map(one, range(count)))

    def _provider_files(self, client: Any, deal_id: str, posted: str | None) -> Path | None:
        """The provider's result, downloaded and checked against the on-chain CID
        (``None`` when it cannot be had: never uploaded, or not that CID)."""
        from lilypad.exceptions import LilypadError

        if posted is None:
            return None
        dest = Path(self.config.data_dir) / "provider-results" / deal_id[2:18]
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        ipfs = self.config.ipfs
        if ipfs is not None and ipfs.enabled:
            from lilypad.ipfs.fetch import fetch_tree

            try:
                fetch_tree(ipfs, posted, dest)
                log_event(log, "provider_result_fetched", deal_id=deal_id, result_cid=posted, source="ipfs")
                return dest
            except LilypadError as exc:
                shutil.rmtree(dest, ignore_errors=True)
                log_event(log, "ipfs_fetch_failed", deal_id=deal_id, result_cid=posted,
                          error=f"{type(exc).__name__}: {exc}", note="trying the solver's result store")
        try:
            client.download_result(deal_id, dest, posted)
            log_event(log, "provider_result_fetched", deal_id=deal_id, result_cid=posted, source="solver")
        except LilypadError as exc:
            log_event(log, "provider_result_unavailable", deal_id=deal_id, error=f"{type(exc).__name__}: {exc}")
            return None
        return dest
