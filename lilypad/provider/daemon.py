"""The resource provider daemon: offer, agree, run, upload, post the result, get paid.

:class:`ResourceProvider` is the I/O loop around :func:`lilypad.provider.logic.decide`:

* it detects this machine (:func:`lilypad.executor.detect_hardware`) unless the
  spec is given, and posts a signed :class:`~lilypad.solver.offers.ResourceOffer`
  (fixed price, ``slots``, trusted mediators, module allowlist), posting a
  fresh one (and cancelling the old) before it expires;
* it follows its deals: the solver's ``/events`` stream wakes it, and it polls
  ``/deals?party=<address>`` every ``poll_interval`` seconds regardless; the
  deal's state comes from the chain (``getAgreement``), never from the solver;
* for each deal :func:`decide` says what to do: ``agree`` (after approving
  Payments for the deposit), run the module in a worker thread (at most
  ``slots`` at once), upload the result, ``addResult`` (instruction count 1),
  or call the timeout that is due (``timeoutJudgeResult`` pays us when the job
  creator never judges);
* per-deal progress is kept in SQLite (``<data_dir>/provider.db``), so after a
  restart agreed deals are resumed (re-run or re-uploaded), not abandoned;
* every change of a deal's local status is one JSON log line (logger
  ``lilypad.provider``, :func:`lilypad.observability.log_state_change`); the
  private key is never logged;
* with ``metrics_port`` it serves ``/metrics`` (Prometheus: jobs run by
  outcome, run durations, deal transitions, ETH/LP balances, LP locked in
  escrow, chain head and lag) and ``/health`` on that port
  (:mod:`lilypad.observability.metrics`).

**Test-only fault injection.** ``LILYPAD_PROVIDER_FAULT=wrong-result`` makes
the provider tamper with every result (it appends a line to ``stdout``) before
computing its CID, so that a mediator's re-run disagrees;
``LILYPAD_PROVIDER_FAULT=die-mid-job`` makes the process die abruptly
(``os._exit``) when an agreed job is about to run, as a crashed node would.
Never set them in production: they exist only to test mediation rejection and
the submit timeout.

The helpers :class:`DealStateStore`, :class:`EventWaker`, :func:`log_event`
and :func:`execute_job` are shared with :mod:`lilypad.mediator.daemon`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lilypad.observability import log_state_change
from lilypad.protocol.deal import AgreementState, Deal, DealPricing, DealTimeouts
from lilypad.provider.logic import Action, DealSnapshot, JobStatus, LocalJob, OfferTerms, decide

__all__ = [
    "FAULT_ENV",
    "DealStateStore",
    "EventWaker",
    "ProviderConfig",
    "ResourceProvider",
    "execute_job",
    "log_event",
    "read_chain_metrics",
    "remove_leftover_containers",
    "resolve_solver_address",
    "snapshot_from_chain",
]

log = logging.getLogger("lilypad.provider")

#: The test-only fault injection variable (see the module docstring).
FAULT_ENV = "LILYPAD_PROVIDER_FAULT"
_FAULTS = frozenset({"", "wrong-result", "die-mid-job"})


def log_event(logger: logging.Logger, event: str, **fields: Any) -> None:
    """One structured (JSON) log line."""
    logger.info(json.dumps({"event": event, **fields}, default=str, sort_keys=True))


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


class DealStateStore:
    """Per-deal local state in SQLite: ``status`` plus free-form JSON ``data``. Thread-safe."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS deals (deal_id TEXT PRIMARY KEY, status TEXT NOT NULL,"
            " data TEXT NOT NULL DEFAULT '{}', updated_at REAL NOT NULL)"
        )

    def get(self, deal_id: str) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            row = self._conn.execute("SELECT status, data FROM deals WHERE deal_id = ?", (deal_id,)).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def put(self, deal_id: str, status: str, **data: Any) -> dict[str, Any]:
        """Set ``status`` and merge ``data`` into what is stored; the merged data."""
        with self._lock:
            row = self._conn.execute("SELECT data FROM deals WHERE deal_id = ?", (deal_id,)).fetchone()
            merged = {**(json.loads(row[0]) if row else {}), **data}
            self._conn.execute(
                "INSERT INTO deals (deal_id, status, data, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(deal_id)"
                " DO UPDATE SET status = excluded.status, data = excluded.data, updated_at = excluded.updated_at",
                (deal_id, status, json.dumps(merged), time.time()),
            )
        return merged

    def all(self) -> dict[str, tuple[str, dict[str, Any]]]:
        with self._lock:
            rows = self._conn.execute("SELECT deal_id, status, data FROM deals").fetchall()
        return {r[0]: (r[1], json.loads(r[2])) for r in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class EventWaker:
    """Follows the solver's ``/events`` stream in a daemon thread and sets
    ``wake`` on every ``deal`` event (the loop polls anyway: this only makes it prompt)."""

    def __init__(self, solver_url: str, wake: threading.Event, stop: threading.Event) -> None:
        self.solver_url, self.wake, self.stop = solver_url, wake, stop
        self.thread = threading.Thread(target=self._run, name="solver-events", daemon=True)

    def start(self) -> EventWaker:
        self.thread.start()
        return self

    def _run(self) -> None:
        from lilypad.solver.client import SolverClient

        client = SolverClient(self.solver_url, retries=0)
        while not self.stop.is_set():
            try:
                with client.events(read_timeout=30.0) as stream:
                    for event in stream:
                        if self.stop.is_set():
                            return
                        if event.type == "deal":
                            self.wake.set()
            except Exception:  # the solver is down or restarting: polling covers it
                self.stop.wait(1.0)


def resolve_solver_address(client: Any, given: str | None) -> str:
    """``given``, else the solver's ``/health`` ``solver`` field, else an error."""
    from eth_utils import is_address, to_checksum_address

    from lilypad.exceptions import ServiceConfigError, SolverAddressUnknownError

    if given:
        if not is_address(given):
            raise ServiceConfigError("--solver-address", f"{given!r} is not an address")
        return to_checksum_address(given)
    reported = client.health().get("solver")
    if not reported or not is_address(reported):
        raise SolverAddressUnknownError(client.base_url)
    return to_checksum_address(reported)


def snapshot_from_chain(contracts: Any, deal: Deal, module_ref: str | None) -> DealSnapshot:
    """The deal as the chain has it now."""
    a = contracts.agreement(deal)
    return DealSnapshot(
        deal=deal, state=AgreementState(a.state), module_ref=module_ref,
        resource_provider_agreed=bool(a.resource_provider_agreed), created_at=int(a.created_at),
        agreed_at=int(a.agreed_at), results_submitted_at=int(a.results_submitted_at),
        mediation_requested_at=int(a.mediation_requested_at),
    )


def read_chain_metrics(metrics: Any, contracts: Any, address: str, deal_ids: list[str], *, side: str) -> None:
    """Record the chain head, ``address``'s ETH and LP balances and the LP it
    has locked (``side`` of each deal's escrow) in ``metrics`` (a
    :class:`~lilypad.observability.metrics.DaemonMetrics`)."""
    from ape import chain

    # Every figure is read at the same block: a payout mined between two
    # reads would otherwise show the LP both paid out and still locked.
    head = chain.blocks.head
    at = int(head.number)
    locked = 0
    for deal_id in deal_ids:
        escrow = contracts.escrow(deal_id, block_id=at)
        if not escrow.settled:
            locked += int(getattr(escrow, side))
    metrics.chain_read(head_block=at, head_timestamp=int(head.timestamp),
                       # hex: ape-foundry passes the block id to anvil raw, and anvil refuses an int
                       eth_wei=int(chain.provider.get_balance(address, block_id=hex(at))),
                       lp_units=contracts.balance_of(address, block_id=at), locked_units=locked)


def execute_job(job: dict[str, Any], *, cache_dir: Path, runs_dir: Path, allowlist: Any | None,
                client: Any | None = None) -> Any:
    """Resolve ``job['module']`` (allowlist enforced, the signed commit checked),
    render it with ``job['inputs']``, download and verify its input files
    through ``client`` and run it in a fresh work directory; the executor's
    ``RunResult`` (see :func:`lilypad.provider.execution.run_deal_job`)."""
    from lilypad.provider.execution import run_deal_job

    return run_deal_job(job, cache_dir=cache_dir, runs_dir=runs_dir, allowlist=allowlist, client=client)


def remove_leftover_containers(data_dir: Path, logger: logging.Logger) -> list[str]:
    """Remove the job containers a killed run of this service left behind (those
    whose work dirs are in ``<data_dir>/runs``; created or running); their ids.
    Deals they belonged to are resumed from the store and run again. A Docker
    engine that cannot be reached is logged, not fatal: jobs retry later."""
    from lilypad.executor import cleanup_stale_containers
    from lilypad.settings import DataLayout

    runs_dir = DataLayout(data_dir).runs_dir
    try:
        removed = cleanup_stale_containers(under=runs_dir)
    except Exception as exc:  # noqa: BLE001 - the engine may be down; the job loop copes
        log_event(logger, "leftover_containers_not_checked", error=f"{type(exc).__name__}: {exc}")
        return []
    if removed:
        log_event(logger, "leftover_containers_removed", count=len(removed), ids=[i[:12] for i in removed])
    return removed


# --------------------------------------------------------------------------
# The provider
# --------------------------------------------------------------------------


@dataclass
class ProviderConfig:
    """Everything the provider needs; ``spec`` ``None``: detect this machine."""

    network: str
    solver_url: str
    private_key: str = field(repr=False)
    data_dir: Path
    mediators: tuple[str, ...]
    slots: int = 1
    spec: Any | None = None  # ResourceSpec
    cpu: int | None = None
    ram: int | None = None
    gpu: int | None = None
    disk: int | None = None
    pricing: DealPricing | None = None
    timeouts: DealTimeouts | None = None
    modules: tuple[str, ...] = ()
    solver_address: str | None = None
    deployments_dir: Path | None = None
    poll_interval: float = 0.5
    offer_ttl: int = 3600
    max_run_attempts: int = 3  # failed runs (executor errors) of one deal before giving up on it
    metrics_port: int | None = None  # serve /metrics and /health there (0: any free port)
    metrics_host: str = "127.0.0.1"
    fault: str = ""  # LILYPAD_PROVIDER_FAULT, from the settings (see the module docstring)


class ResourceProvider:
    """The resource provider's I/O loop (see the module docstring). ``run()``
    blocks until ``stop()`` is called (from any thread or a signal handler)."""

    def __init__(self, config: ProviderConfig) -> None:
        from lilypad.exceptions import ServiceConfigError

        if config.fault not in _FAULTS:
            raise ServiceConfigError(FAULT_ENV, f"unknown fault {config.fault!r} (known: wrong-result, die-mid-job)")
        if not config.mediators:
            raise ServiceConfigError("--mediators", "name at least one trusted mediator")
        if config.slots < 1:
            raise ServiceConfigError("--slots", "must be at least 1")
        self.config = config
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.store = DealStateStore(Path(config.data_dir) / "provider.db")
        self._running: dict[str, Future[Any]] = {}
        self._retry_at: dict[str, float] = {}
        self._offer_id: str | None = None
        self._offer_expires = 0
        self._module_refs: dict[str, str] = {}
        self.contracts: Any = None
        self.account: Any = None
        self.address = ""
        self.terms: OfferTerms | None = None
        from lilypad.observability.metrics import DaemonMetrics

        self.metrics = DaemonMetrics("provider")
        self.metrics_server: Any = None
        self._chain_read_at = 0.0

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()

    # ------------------------------------------------------------------ setup
    def _spec(self) -> Any:
        from lilypad.solver.offers import ResourceSpec

        c = self.config
        if c.spec is not None:
            return c.spec
        from lilypad.executor import detect_hardware

        hw = detect_hardware()
        gpu = hw.gpu_count if c.gpu is None else c.gpu
        vram = (hw.max_vram_mb,) if gpu and hw.max_vram_mb else ()
        return ResourceSpec(cpu=c.cpu if c.cpu is not None else hw.cpu_millis,
                            ram=c.ram if c.ram is not None else hw.ram_mb,
                            disk=c.disk if c.disk is not None else hw.disk_free_mb, gpu=gpu, vram=vram[:gpu])

    def _post_offer(self, client: Any) -> None:
        from lilypad.solver.offers import ResourceOffer
        from lilypad.solver.signing import sign_offer

        assert self.terms is not None
        now = int(time.time())
        offer = ResourceOffer(
            solver=self.terms.solver, resource_provider=self.address, spec=self._offer_spec, slots=self.config.slots,
            pricing=self.terms.pricing, timeouts=self.terms.timeouts, mediators=list(self.config.mediators),
            modules=list(self.config.modules), created_at=now, expires_at=now + self.config.offer_ttl,
        )
        signed = sign_offer(offer, self.config.private_key, client.offer_domain())
        old = self._offer_id
        self._offer_id = client.post_resource_offer(signed)
        self._offer_expires = offer.expires_at
        log_event(log, "offer_posted", offer_id=self._offer_id, slots=offer.slots,
                  spec=offer.spec.model_dump(mode="json"), expires_at=offer.expires_at)
        if old is not None:
            self._cancel_offer(client, old)

    def _cancel_offer(self, client: Any, offer_id: str) -> None:
        try:
            client.cancel_resource_offer(offer_id, self.config.private_key)
            log_event(log, "offer_cancelled", offer_id=offer_id)
        except Exception as exc:  # expired or already gone
            log.debug("cancelling offer %s failed: %s", offer_id, exc)

    # ------------------------------------------------------------------ run
    def run(self) -> None:
        from lilypad.chain.connect import connected
        from lilypad.protocol.accounts import account_from_private_key
        from lilypad.solver.client import SolverClient
        from lilypad.solver.offers import DEFAULT_RESOURCE_PRICING, DEFAULT_TIMEOUTS

        c = self.config
        self.account = account_from_private_key(c.private_key)
        self.address = self.account.address
        client = SolverClient(c.solver_url)
        solver = resolve_solver_address(client, c.solver_address)
        self.terms = OfferTerms.build(self.address, solver, c.pricing or DEFAULT_RESOURCE_PRICING,
                                      c.timeouts or DEFAULT_TIMEOUTS, c.mediators, c.modules)
        self._offer_spec = self._spec()
        pool = ThreadPoolExecutor(max_workers=c.slots, thread_name_prefix="job")
        with connected(c.network, c.deployments_dir) as contracts:
            self.contracts = contracts
            self._start_metrics()
            log_event(log, "provider_started", address=self.address, solver=solver, slots=c.slots,
                      fault=c.fault or None, data_dir=str(c.data_dir),
                      metrics_port=self.metrics_server.port if self.metrics_server else None)
            remove_leftover_containers(Path(c.data_dir), log)
            EventWaker(c.solver_url, self.wake, self.stop_event).start()
            try:
                while not self.stop_event.is_set():
                    try:
                        if time.time() > self._offer_expires - min(300, c.offer_ttl / 4):
                            self._post_offer(client)
                        self.step(client, pool)
                        self._read_chain()
                        self.metrics.round_done(True)
                    except Exception as exc:  # keep serving; the next round retries
                        self.metrics.round_done(False)
                        log_event(log, "round_failed", error=f"{type(exc).__name__}: {exc}")
                    self.wake.wait(c.poll_interval)
                    self.wake.clear()
            finally:
                if self._offer_id is not None:
                    self._cancel_offer(client, self._offer_id)
                pool.shutdown(wait=False, cancel_futures=True)
                client.close()
                if self.metrics_server is not None:
                    self.metrics_server.stop()
                log_event(log, "provider_stopped", address=self.address)

    def _start_metrics(self) -> None:
        from lilypad.observability.metrics import MetricsServer

        if self.config.metrics_port is None:
            return
        max_age = max(60.0, 20 * self.config.poll_interval)
        try:
            server = MetricsServer(self.metrics.registry, self.config.metrics_port, host=self.config.metrics_host,
                                   health=lambda: self.metrics.health(
                                       max_round_age=max_age, address=self.address,
                                       jobs_running=sum(not f.done() for f in self._running.values())))
        except OSError as exc:
            from lilypad.exceptions import ServiceConfigError

            raise ServiceConfigError("--metrics-port", f"cannot listen on {self.config.metrics_host}:"
                                                       f"{self.config.metrics_port}: {exc}") from None
        self.metrics_server = server.start()

    def _read_chain(self, every: float = 5.0) -> None:
        """Every ``every`` seconds: the chain head, balances and LP locked in open deals' escrow."""
        if self.metrics_server is None or time.time() - self._chain_read_at < every:
            return
        self._chain_read_at = time.time()
        self.metrics.running.set(sum(not f.done() for f in self._running.values()))
        try:
            read_chain_metrics(self.metrics, self.contracts, self.address,
                               [d for d, (status, _) in self.store.all().items()
                                if status not in (JobStatus.DONE.value, JobStatus.REFUSED.value)],
                               side="resource_provider")
        except Exception as exc:  # metrics must never stop the provider
            log.warning("reading balances for the metrics failed: %s", exc)

    def _local(self, deal_id: str) -> LocalJob:
        stored = self.store.get(deal_id)
        future = self._running.get(deal_id)
        running = future is not None and not future.done()
        if stored is None:
            return LocalJob(running=running)
        status, data = stored
        return LocalJob(JobStatus(status), data.get("result_cid"), data.get("result_dir"), running)

    def _set(self, deal_id: str, status: JobStatus, reason: str = "", **data: Any) -> None:
        previous = self.store.get(deal_id)
        self.store.put(deal_id, status.value, **data)
        if previous is None or previous[0] != status.value:
            self.metrics.transitions.labels(status=status.value).inc()
            log_state_change("provider", "deal", deal_id, None if previous is None else previous[0], status.value,
                             logger=log, reason=reason or None,
                             **{k: v for k, v in data.items() if k in ("result_cid", "tx")})

    def _module_ref(self, client: Any, deal_id: str) -> str | None:
        if deal_id not in self._module_refs:
            stored = self.store.get(deal_id)
            ref = stored[1].get("module_ref") if stored else None
            if ref is None:
                ref = client.job(deal_id)["module"]["ref"]
            self._module_refs[deal_id] = ref
        return self._module_refs[deal_id]

    def step(self, client: Any, pool: ThreadPoolExecutor) -> None:
        """One round over this provider's deals."""
        from lilypad.solver.store import deal_from_dict

        for view in client.deals(party=self.address):
            deal_id = view["deal_id"]
            stored = self.store.get(deal_id)
            if stored is not None and stored[0] in (JobStatus.DONE.value, JobStatus.REFUSED.value):
                continue
            deal = deal_from_dict(view["terms"])
            if deal.members.resource_provider.lower() != self.address.lower():
                continue
            if self._retry_at.get(deal_id, 0) > time.time():
                continue
            try:
                self._handle(client, pool, deal_id, deal)
            except Exception as exc:
                self._retry_at[deal_id] = time.time() + 2.0
                log_event(log, "deal_action_failed", deal_id=deal_id, error=f"{type(exc).__name__}: {exc}")

    def _handle(self, client: Any, pool: ThreadPoolExecutor, deal_id: str, deal: Deal) -> None:
        assert self.terms is not None
        snapshot = snapshot_from_chain(self.contracts, deal, self._module_ref(client, deal_id))
        local = self._local(deal_id)
        if self.store.get(deal_id) is None:
            self._set(deal_id, JobStatus.NEW, "seen", module_ref=snapshot.module_ref)
        decision = decide(snapshot, local, self.terms, time.time())
        action = decision.action
        if action == Action.WAIT:
            return
        if action == Action.DONE:
            self._set(deal_id, JobStatus.DONE, decision.reason, final_state=snapshot.state.name)
        elif action == Action.REFUSE:
            self._set(deal_id, JobStatus.REFUSED, decision.reason)
        elif action == Action.AGREE:
            problem = self._module_problem(client, deal_id)
            if problem is not None:
                log_event(log, "deal_refused", deal_id=deal_id, reason=problem)
                self._set(deal_id, JobStatus.REFUSED, f"not agreeing: {problem}")
                return
            deposit = deal.resource_provider_deposit + deal.results_collateral(1)
            self.contracts.ensure_allowance(self.account, deposit, unlimited=True)
            receipt = self.contracts.agree(deal, self.account)
            self._set(deal_id, JobStatus.AGREED, decision.reason, tx=getattr(receipt, "txn_hash", None))
        elif action == Action.RUN:
            if self.config.fault == "die-mid-job":  # test-only: crash with an agreed deal
                log.error("LILYPAD_PROVIDER_FAULT=die-mid-job: dying with deal %s agreed", deal_id)
                os._exit(1)
            self._set(deal_id, JobStatus.RUNNING, decision.reason)
            self._running[deal_id] = pool.submit(self._run_job, client.base_url, deal_id)
        elif action == Action.UPLOAD:
            if not local.result_dir or not Path(local.result_dir).is_dir():
                self._set(deal_id, JobStatus.AGREED, "the result directory is gone: run again")
                return
            with _client(client.base_url) as c2:
                c2.upload_result(deal_id, local.result_dir, self.config.private_key)
            self._set(deal_id, JobStatus.UPLOADED, decision.reason)
        elif action == Action.ADD_RESULT:
            assert local.result_cid is not None
            self.contracts.ensure_allowance(self.account, deal.results_collateral(1), unlimited=True)
            self._set(deal_id, JobStatus.SUBMITTED, "sending addResult")
            receipt = self.contracts.add_result(deal, local.result_cid, 1, self.account)
            log_event(log, "result_posted", deal_id=deal_id, result_cid=local.result_cid,
                      tx=getattr(receipt, "txn_hash", None))
        elif action == Action.TIMEOUT:
            receipt = self.contracts.timeout(deal, self.account)
            log_event(log, "timeout_claimed", deal_id=deal_id, function=decision.timeout, reason=decision.reason,
                      tx=getattr(receipt, "txn_hash", None))
            self.wake.set()

    def _run_job(self, solver_url: str, deal_id: str) -> None:
        """In a worker thread: fetch the job, run it, keep its result."""
        from lilypad.modules.allowlist import Allowlist
        from lilypad.results.cid import directory_cid
        from lilypad.settings import DataLayout

        started, outcome = time.monotonic(), "failed"
        try:
            layout = DataLayout(self.config.data_dir)
            allowlist = Allowlist.parse(list(self.config.modules)) if self.config.modules else None
            with _client(solver_url) as client:
                job = client.job(deal_id)
                log_event(log, "job_started", deal_id=deal_id, module=job["module"]["ref"],
                          inputs_cid=job.get("inputs_cid"))
                result = execute_job(job, cache_dir=layout.module_cache_dir, runs_dir=layout.runs_dir,
                                     allowlist=allowlist, client=client)
            cid = result.cid
            if self.config.fault == "wrong-result":
                with open(Path(result.result_dir) / "stdout", "a", encoding="utf-8") as handle:
                    handle.write("tampered by LILYPAD_PROVIDER_FAULT=wrong-result\n")
                cid = directory_cid(result.result_dir)
            self._set(deal_id, JobStatus.RAN, f"exit code {result.exit_code}", result_cid=cid,
                      result_dir=str(result.result_dir), exit_code=result.exit_code)
            outcome = "succeeded" if result.exit_code == 0 else "nonzero_exit"
        except Exception as exc:
            self._run_failed(deal_id, exc)
        finally:
            self.metrics.job_finished(time.monotonic() - started, outcome)
            self.wake.set()


    def _run_failed(self, deal_id: str, exc: Exception) -> None:
        """Retry a failed run later, at most ``max_run_attempts`` runs in all;
        then (or at once for a module that is not the signed one) give the deal up."""
        from lilypad.exceptions import ModuleCommitMismatchError

        stored = self.store.get(deal_id)
        failures = int((stored[1] if stored else {}).get("run_failures", 0)) + 1
        reason = f"the run failed: {type(exc).__name__}: {exc}"
        limit = max(1, self.config.max_run_attempts)
        if failures >= limit or isinstance(exc, ModuleCommitMismatchError):
            log_event(log, "run_given_up", deal_id=deal_id, failed_runs=failures, max_run_attempts=limit,
                      error=f"{type(exc).__name__}: {exc}",
                      note="not retrying; the deal is left to the on-chain submit-results timeout")
            self._set(deal_id, JobStatus.GAVE_UP, f"{reason}; gave up after {failures} failed run(s)",
                      run_failures=failures)
            return
        self._retry_at[deal_id] = time.time() + 5.0
        self._set(deal_id, JobStatus.AGREED, f"{reason} (failed run {failures} of at most {limit})",
                  run_failures=failures)

    def _module_problem(self, client: Any, deal_id: str) -> str | None:
        """Why we will not run this deal's module (``None``: it resolves to the offer's signed commit)."""
        from lilypad.modules.allowlist import Allowlist
        from lilypad.provider.execution import module_problem
        from lilypad.settings import DataLayout

        layout = DataLayout(self.config.data_dir)
        allowlist = Allowlist.parse(list(self.config.modules)) if self.config.modules else None
        return module_problem(client.job(deal_id), cache_dir=layout.module_cache_dir, allowlist=allowlist)


def _client(url: str) -> Any:
    from lilypad.solver.client import SolverClient

    return SolverClient(url)
