"""The resource provider daemon: offer, agree, run, upload, post the result, get paid.

:class:`ResourceProvider` is the I/O loop around :func:`lilypad.provider.logic.decide`:

* it detects this machine (:func:`lilypad.executor.detect_hardware`) unless the
  spec is given, and posts a signed :class:`~lilypad.protocol.offers.ResourceOffer`
  (fixed price, ``slots``, trusted mediators, module allowlist), posting a
  fresh one (and cancelling the old) before it expires;
* it follows its deals: the solver's ``/events`` stream (its own events) wakes it,
  and every ``poll_interval`` seconds regardless it reads the deals the solver shows
  open and, once, its unfinished ones that ended since
  (:func:`~lilypad.service.deals.deals_to_visit`); the deal's state comes from the
  chain (``getAgreement``), never from the solver;
* for each deal :func:`decide` says what to do: ``agree`` (after approving
  Payments for the deposit), run the module in a worker thread (at most
  ``slots`` at once), upload the result (with ``ipfs``: first added and pinned
  on the provider's kubo node, whose CID must be the one computed here, else
  nothing is posted; then uploaded to the solver as the fallback copy; either
  copy suffices, and a kubo node that is down only leaves the solver's copy),
  ``addResult`` (with the run's
  instruction count as the module's ``verification.metering`` defines it,
  capped at what the deal's payment collateral covers),
  or call the timeout that is due (``timeoutJudgeResult`` pays us when the job
  creator never judges);
* with ``executor="bacalhau"`` (``--executor bacalhau``) it offers the Bacalhau cluster
  behind ``bacalhau_api`` (its connected compute nodes' capacity, re-read at each offer)
  and runs each job there (:class:`lilypad.executor.bacalhau.BacalhauExecutor`); the
  Bacalhau job id is kept with the deal, so a restarted provider follows that job
  instead of submitting it again;
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
computing its CID, so that a mediator's re-run disagrees; ``forge-json`` adds
1.0 to every number in the result's ``outputs/**/*.json`` (a forged result of a
module whose comparator tolerates small numeric differences);
``inflate-instructions`` claims ten times the metered instruction count (capped
at what the deal can pay);
``LILYPAD_PROVIDER_FAULT=die-mid-job`` makes the process die abruptly
(``os._exit``) when an agreed job is about to run, as a crashed node would.
Never set them in production: they exist only to test mediation rejection and
the submit timeout.

The loop (stop, wake, the metrics server), the store, the solver-events
waker, the solver address, the chain metrics and the leftover-container
cleanup come from the service kit (:mod:`lilypad.service`); running a job
from :func:`lilypad.provider.execution.run_deal_job`.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lilypad.observability import log_state_change
from lilypad.protocol.deal import AgreementState, Deal, DealPricing, DealTimeouts
from lilypad.provider.logic import Action, DealSnapshot, JobStatus, LocalJob, OfferTerms, decide
from lilypad.service import (
    DealStateStore,
    EventWaker,
    ServiceLoop,
    deals_to_visit,
    log_event,
    read_chain_metrics,
    remove_leftover_containers,
)

__all__ = ["FAULT_ENV", "ProviderConfig", "ResourceProvider", "snapshot_from_chain"]

log = logging.getLogger("lilypad.provider")

#: The test-only fault injection variable (see the module docstring).
FAULT_ENV = "LILYPAD_PROVIDER_FAULT"
_FAULTS = frozenset({"", "wrong-result", "forge-json", "inflate-instructions", "die-mid-job"})


def snapshot_from_chain(contracts: Any, deal: Deal, module_ref: str | None) -> DealSnapshot:
    """The deal as the chain has it now."""
    a = contracts.agreement(deal)
    return DealSnapshot(
        deal=deal, state=AgreementState(a.state), module_ref=module_ref,
        resource_provider_agreed=bool(a.resource_provider_agreed), created_at=int(a.created_at),
        agreed_at=int(a.agreed_at), results_submitted_at=int(a.results_submitted_at),
        mediation_requested_at=int(a.mediation_requested_at),
    )


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
    #: Replaces ``pricing``'s multiple; ``None``: the network's default
    #: (:func:`lilypad.protocol.settings.deal_defaults` of the chain's current settings).
    results_collateral_multiple: int | None = None
    #: The smallest mediator panel a deal may have; ``None``: the network's default.
    min_consortium_size: int | None = None
    timeouts: DealTimeouts | None = None
    modules: tuple[str, ...] = ()
    solver_address: str | None = None
    deployments_dir: Path | None = None
    poll_interval: float = 0.5
    #: Seconds between rounds with no deal in flight while the solver's event stream is open
    #: (:class:`~lilypad.service.loop.ServiceLoop`): a new deal arrives as an event.
    idle_interval: float = 5.0
    offer_ttl: int = 3600
    max_run_attempts: int = 3  # failed runs (executor errors) of one deal before giving up on it
    metrics_port: int | None = None  # serve /metrics and /health there (0: any free port)
    metrics_host: str = "127.0.0.1"
    fault: str = ""  # LILYPAD_PROVIDER_FAULT, from the settings (see the module docstring)
    #: The provider's kubo node (``--ipfs-api``; gateway and peers for input files): ``None``, solver store only.
    ipfs: Any | None = None  # lilypad.ipfs.IpfsSources
    #: ``docker`` (this machine's engine) or ``bacalhau`` (the cluster behind ``bacalhau_api``).
    executor: str = "docker"
    bacalhau_api: str | None = None  # the orchestrator's API, http://HOST:PORT
    bacalhau_registry: str | None = None  # HOST:PORT of the registry the compute nodes pull images from
    #: Give /inputs as Bacalhau ``local`` sources (read-only; the compute nodes must see this
    #: data directory at the same path and allow it) instead of inline in the job.
    bacalhau_local_inputs: bool = False


class ResourceProvider:
    """The resource provider's I/O loop (see the module docstring). ``run()``
    blocks until ``stop()`` is called (from any thread or a signal handler)."""

    def __init__(self, config: ProviderConfig) -> None:
        from lilypad.exceptions import ServiceConfigError

        if config.fault not in _FAULTS:
            known = ", ".join(sorted(_FAULTS - {""}))
            raise ServiceConfigError(FAULT_ENV, f"unknown fault {config.fault!r} (known: {known})")
        if not config.mediators:
            raise ServiceConfigError("--mediators", "name at least one trusted mediator")
        if config.slots < 1:
            raise ServiceConfigError("--slots", "must be at least 1")
        if config.executor not in ("docker", "bacalhau"):
            raise ServiceConfigError("--executor", f"unknown executor {config.executor!r} (docker or bacalhau)")
        if config.executor == "bacalhau" and not (config.bacalhau_api and config.bacalhau_registry):
            raise ServiceConfigError("--bacalhau-api", "--executor bacalhau needs --bacalhau-api and "
                                                       "--bacalhau-registry")
        self.config = config
        self.executor: Any = None
        if config.executor == "bacalhau":
            from lilypad.executor.bacalhau import BacalhauExecutor

            assert config.bacalhau_api and config.bacalhau_registry
            self.executor = BacalhauExecutor(config.bacalhau_api, config.bacalhau_registry,
                                             local_inputs=config.bacalhau_local_inputs)
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
        self.loop = ServiceLoop(config.poll_interval, name="provider", logger=log, metrics=self.metrics,
                                idle_interval=config.idle_interval)
        self._busy = True  # until a round has seen every deal settled
        self.loop.busy = lambda: self._busy or self._jobs_running() > 0
        self._chain_read_at = 0.0

    def stop(self) -> None:
        self.loop.stop()

    # ------------------------------------------------------------------ setup
    def _spec(self) -> Any:
        from lilypad.protocol.offers import ResourceSpec

        c = self.config
        if c.spec is not None:
            return c.spec
        if self.executor is not None:  # the cluster's connected compute nodes, summed
            cap = self.executor.capacity()
            if not cap.nodes:
                from lilypad.exceptions import BacalhauError

                raise BacalhauError(f"the Bacalhau cluster at {c.bacalhau_api} has no connected compute node")
            gpu = cap.gpu if c.gpu is None else c.gpu
            return ResourceSpec(cpu=c.cpu if c.cpu is not None else cap.cpu_millis,
                                ram=c.ram if c.ram is not None else cap.ram_mb,
                                disk=c.disk if c.disk is not None else cap.disk_mb, gpu=gpu)
        from lilypad.executor import detect_hardware

        hw = detect_hardware()
        gpu = hw.gpu_count if c.gpu is None else c.gpu
        vram = (hw.max_vram_mb,) if gpu and hw.max_vram_mb else ()
        return ResourceSpec(cpu=c.cpu if c.cpu is not None else hw.cpu_millis,
                            ram=c.ram if c.ram is not None else hw.ram_mb,
                            disk=c.disk if c.disk is not None else hw.disk_free_mb, gpu=gpu, vram=vram[:gpu])

    def _post_offer(self, client: Any) -> None:
        from lilypad.protocol.offers import ResourceOffer
        from lilypad.protocol.signing import sign_offer

        assert self.terms is not None
        if self.executor is not None and self.config.spec is None:  # the cluster's capacity now
            try:
                self._offer_spec = self._spec()
            except Exception as exc:  # keep offering what was read last; the runs will tell
                log.warning("reading the Bacalhau cluster's capacity failed (offering the last read): %s", exc)
        now = int(time.time())
        offer = ResourceOffer(
            solver=self.terms.solver, resource_provider=self.address, spec=self._offer_spec, slots=self.config.slots,
            pricing=self.terms.pricing, timeouts=self.terms.timeouts, mediators=list(self.config.mediators),
            modules=list(self.config.modules), created_at=now, expires_at=now + self.config.offer_ttl,
            min_consortium_size=self.terms.min_consortium_size,
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
        from lilypad.client import SolverClient, resolve_solver_address
        from lilypad.protocol.accounts import account_from_private_key
        from lilypad.protocol.offers import DEFAULT_RESOURCE_PRICING, DEFAULT_TIMEOUTS
        from lilypad.protocol.settings import deal_defaults

        c = self.config
        self.account = account_from_private_key(c.private_key)
        self.address = self.account.address
        client = SolverClient(c.solver_url)
        solver = resolve_solver_address(client, c.solver_address)
        self._offer_spec = self._spec()
        pool = ThreadPoolExecutor(max_workers=c.slots, thread_name_prefix="job")
        with connected(c.network, c.deployments_dir) as contracts:
            self.contracts = contracts
            defaults = deal_defaults(contracts.current_protocol_settings()[1])
            pricing = (c.pricing or DEFAULT_RESOURCE_PRICING).model_copy(update={
                "results_collateral_multiple": c.results_collateral_multiple or defaults.results_collateral_multiple})
            self.terms = OfferTerms.build(self.address, solver, pricing, c.timeouts or DEFAULT_TIMEOUTS, c.mediators,
                                          c.modules, c.min_consortium_size or defaults.consortium_size)
            server = self.loop.serve_metrics(self.metrics, c.metrics_port, host=c.metrics_host, health=lambda: {
                "address": self.address, "jobs_running": self._jobs_running()})
            ipfs_peers = self._ipfs_addresses()
            log_event(log, "provider_started", address=self.address, solver=solver, slots=c.slots,
                      results_collateral_multiple=pricing.results_collateral_multiple,
                      min_consortium_size=self.terms.min_consortium_size,
                      fault=c.fault or None, data_dir=str(c.data_dir),
                      ipfs_api=c.ipfs.api if c.ipfs else None, ipfs_addresses=ipfs_peers,
                      metrics_port=server.port if server else None)
            remove_leftover_containers(Path(c.data_dir), log)
            EventWaker(c.solver_url, self.loop.wake_event, self.loop.stop_event, self.loop.events_connected,
                       party=self.address).start()
            try:
                self.loop.run(lambda: self._round(client, pool))
            finally:
                if self._offer_id is not None:
                    self._cancel_offer(client, self._offer_id)
                pool.shutdown(wait=False, cancel_futures=True)
                client.close()
                self.loop.stop_metrics()
                log_event(log, "provider_stopped", address=self.address)

    def _ipfs_addresses(self) -> list[str] | None:
        """Our kubo node's multiaddrs (logged at start, so clients can ``--ipfs-peer`` them);
        a node that does not answer is logged as such: results then go to the solver only."""
        from lilypad.exceptions import LilypadError

        ipfs = self.config.ipfs
        if ipfs is None or not ipfs.api:
            return None
        from lilypad.ipfs.client import KuboClient

        try:
            with KuboClient(ipfs.api, timeout=10.0) as kubo:
                return kubo.swarm_addresses()
        except LilypadError as exc:
            log_event(log, "ipfs_unavailable", ipfs_api=ipfs.api, error=f"{type(exc).__name__}: {exc}",
                      note="results go to the solver's store until the node answers")
            return None

    def _round(self, client: Any, pool: ThreadPoolExecutor) -> None:
        """One round of the loop: refresh the offer when due, handle the deals, read the chain."""
        if time.time() > self._offer_expires - min(300, self.config.offer_ttl / 4):
            self._post_offer(client)
        self.step(client, pool)
        self._read_chain()

    def _jobs_running(self) -> int:
        return sum(not f.done() for f in self._running.values())

    def _read_chain(self, every: float = 5.0) -> None:
        """Every ``every`` seconds: the chain head, balances and LP locked in open deals' escrow."""
        if self.loop.metrics_server is None or time.time() - self._chain_read_at < every:
            return
        self._chain_read_at = time.time()
        self.metrics.running.set(self._jobs_running())
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
        return LocalJob(JobStatus(status), data.get("result_cid"), data.get("result_dir"), running,
                        int(data.get("instructions") or 1))

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
                ref = client.job(deal_id).module.ref
            self._module_refs[deal_id] = ref
        return self._module_refs[deal_id]

    def step(self, client: Any, pool: ThreadPoolExecutor) -> None:
        """One round over this provider's deals; notes whether any is still in flight (the loop
        waits ``idle_interval`` instead of ``poll_interval`` when none is)."""
        finished = (JobStatus.DONE.value, JobStatus.REFUSED.value)
        busy = False
        for view in deals_to_visit(client, self.address, self.store, finished):
            deal_id = view.deal_id
            stored = self.store.get(deal_id)
            if stored is not None and stored[0] in finished:
                continue
            deal = view.terms
            if deal.members.resource_provider.lower() != self.address.lower():
                continue
            if self._retry_at.get(deal_id, 0) > time.time():
                busy = True
                continue
            try:
                self._handle(client, pool, deal_id, deal)
            except Exception as exc:
                self._retry_at[deal_id] = time.time() + 2.0
                log_event(log, "deal_action_failed", deal_id=deal_id, error=f"{type(exc).__name__}: {exc}")
            after = self.store.get(deal_id)
            if after is None or after[0] not in finished:
                busy = True
        self._busy = busy

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
            problem = self._module_problem(client, deal_id, deal)
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
            self._running[deal_id] = pool.submit(self._run_job, client.base_url, deal_id, deal)
        elif action == Action.UPLOAD:
            if not local.result_dir or not Path(local.result_dir).is_dir():
                self._set(deal_id, JobStatus.AGREED, "the result directory is gone: run again")
                return
            self._upload(client, deal_id, local)
        elif action == Action.ADD_RESULT:
            assert local.result_cid is not None
            count = local.instructions
            self.contracts.ensure_allowance(self.account, deal.results_collateral(count), unlimited=True)
            self._set(deal_id, JobStatus.SUBMITTED, "sending addResult")
            receipt = self.contracts.add_result(deal, local.result_cid, count, self.account)
            log_event(log, "result_posted", deal_id=deal_id, result_cid=local.result_cid, instructions=count,
                      tx=getattr(receipt, "txn_hash", None))
        elif action == Action.TIMEOUT:
            receipt = self.contracts.timeout(deal, self.account)
            log_event(log, "timeout_claimed", deal_id=deal_id, function=decision.timeout, reason=decision.reason,
                      tx=getattr(receipt, "txn_hash", None))
            self.loop.wake()

    def _upload(self, client: Any, deal_id: str, local: LocalJob) -> None:
        """Add and pin the result on our kubo node (when configured), then upload
        it to the solver (the fallback copy). Either copy is enough to post the
        result; with neither, the error is raised and the upload retried."""
        from lilypad.exceptions import IpfsCIDMismatchError, LilypadError

        assert local.result_dir is not None and local.result_cid is not None
        pinned = False
        ipfs = self.config.ipfs
        if ipfs is not None and ipfs.api:
            from lilypad.ipfs.fetch import add_tree

            try:
                add_tree(ipfs, local.result_dir, expected_cid=local.result_cid)
                pinned = True
                log_event(log, "result_pinned", deal_id=deal_id, result_cid=local.result_cid, ipfs_api=ipfs.api)
            except IpfsCIDMismatchError:
                raise  # never post a CID kubo does not agree with: retried, and logged each time
            except LilypadError as exc:
                log_event(log, "ipfs_add_failed", deal_id=deal_id, ipfs_api=ipfs.api,
                          error=f"{type(exc).__name__}: {exc}", note="falling back to the solver's result store")
        try:
            with _client(client.base_url) as c2:
                c2.upload_result(deal_id, local.result_dir, self.config.private_key)
        except LilypadError as exc:
            if not pinned:
                raise
            log_event(log, "solver_upload_failed", deal_id=deal_id, error=f"{type(exc).__name__}: {exc}",
                      note="the result is pinned on IPFS: posting it anyway")
            self._set(deal_id, JobStatus.UPLOADED, "pinned on IPFS (the solver upload failed)", ipfs_pinned=True)
            return
        self._set(deal_id, JobStatus.UPLOADED, "pinned on IPFS and uploaded to the solver" if pinned
                  else "uploaded to the solver", ipfs_pinned=pinned)

    def _run_job(self, solver_url: str, deal_id: str, deal: Deal | None = None) -> None:
        """In a worker thread: fetch the job, run it, keep its result."""
        from lilypad.protocol.allowlist import Allowlist
        from lilypad.provider.execution import run_deal_job
        from lilypad.provider.logic import claimable_instructions
        from lilypad.results.cid import directory_cid
        from lilypad.settings import DataLayout

        started, outcome = time.monotonic(), "failed"
        try:
            layout = DataLayout(self.config.data_dir)
            allowlist = Allowlist.parse(list(self.config.modules)) if self.config.modules else None
            with _client(solver_url) as client:
                job = client.job(deal_id)
                log_event(log, "job_started", deal_id=deal_id, module=job.module.ref,
                          inputs_cid=job.inputs_cid)
                prepared, result = run_deal_job(job, cache_dir=layout.module_cache_dir, runs_dir=layout.runs_dir,
                                                allowlist=allowlist, client=client, ipfs=self.config.ipfs,
                                                executor=self.executor, **self._executor_options(deal_id))
            metered = prepared.spec.verification.metering.claim(result.duration_s)
            if self.config.fault == "inflate-instructions":
                metered *= 10
            instructions = claimable_instructions(metered, deal) if deal is not None else metered
            cid = result.cid
            if self.config.fault in ("wrong-result", "forge-json"):
                _tamper(Path(result.result_dir), self.config.fault)
                cid = directory_cid(result.result_dir)
            self._set(deal_id, JobStatus.RAN, f"exit code {result.exit_code}", result_cid=cid,
                      result_dir=str(result.result_dir), exit_code=result.exit_code, instructions=instructions,
                      metered_instructions=metered, duration_s=round(result.duration_s, 3))
            outcome = "succeeded" if result.exit_code == 0 else "nonzero_exit"
        except Exception as exc:
            self._run_failed(deal_id, exc)
        finally:
            self.metrics.job_finished(time.monotonic() - started, outcome)
            self.loop.wake()


    def _executor_options(self, deal_id: str) -> dict[str, Any]:
        """For ``--executor bacalhau``: the Bacalhau job id kept for this deal (a restarted
        provider follows that job instead of submitting another) and the hook that keeps it."""
        if self.executor is None:
            return {}
        stored = self.store.get(deal_id)

        def submitted(bacalhau_job_id: str) -> None:
            self.store.put(deal_id, JobStatus.RUNNING.value, bacalhau_job_id=bacalhau_job_id)
            log_event(log, "bacalhau_job_submitted", deal_id=deal_id, bacalhau_job_id=bacalhau_job_id)

        return {"bacalhau_job_id": (stored[1] if stored else {}).get("bacalhau_job_id"), "on_submitted": submitted}

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

    def _module_problem(self, client: Any, deal_id: str, deal: Deal) -> str | None:
        """Why we will not run this deal's job (``None``: the deal is bound to the
        job the solver shows (:mod:`lilypad.protocol.binding`) and its module
        resolves to the offer's signed commit)."""
        from lilypad.protocol.allowlist import Allowlist
        from lilypad.provider.execution import binding_problems, module_problem
        from lilypad.settings import DataLayout

        job = client.job(deal_id)
        problems = binding_problems(client, deal, job, client.deal(deal_id).resource_offer_id, self.contracts)
        if problems:
            return "the deal is not bound to the job the solver shows: " + "; ".join(problems)
        layout = DataLayout(self.config.data_dir)
        allowlist = Allowlist.parse(list(self.config.modules)) if self.config.modules else None
        return module_problem(job, cache_dir=layout.module_cache_dir, allowlist=allowlist)


def _forged(value: Any) -> Any:
    """``value`` (parsed JSON) with every number plus 1.0 (``forge-json``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value + 1.0
    if isinstance(value, list):
        return [_forged(v) for v in value]
    if isinstance(value, dict):
        return {k: _forged(v) for k, v in value.items()}
    return value


def _tamper(result_dir: Path, fault: str) -> None:
    """Test-only (``LILYPAD_PROVIDER_FAULT``): forge a finished result in place."""
    import json

    if fault == "wrong-result":
        with open(result_dir / "stdout", "a", encoding="utf-8") as handle:
            handle.write("tampered by LILYPAD_PROVIDER_FAULT=wrong-result\n")
        return
    for path in sorted((result_dir / "outputs").rglob("*.json")):  # forge-json
        path.write_text(json.dumps(_forged(json.loads(path.read_text()))))


def _client(url: str) -> Any:
    from lilypad.client import SolverClient

    return SolverClient(url)
