"""The service kit's helpers against real components: a solver served by
uvicorn (the solver address, the ``/events`` waker) and the Docker engine
(leftover job containers)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from eth_account import Account

from lilypad.client import SolverClient, resolve_solver_address
from lilypad.exceptions import ServiceConfigError, SolverAddressUnknownError
from lilypad.protocol.offers import JobModule, JobOffer, ResourceOffer
from lilypad.protocol.signing import OfferDomain, sign_offer
from lilypad.results.store import ResultsStore
from lilypad.service import EventWaker, remove_leftover_containers
from lilypad.solver.app import create_app
from lilypad.solver.service import SolverCore
from lilypad.solver.store import SolverStore

DOMAIN = OfferDomain(chain_id=31337, verifying_contract="0x" + "c0" * 20)
PROVIDER, CREATOR, MEDIATOR = (Account.create() for _ in range(3))
SOLVER = Account.create().address
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def serve(tmp_path: Path, solver_address: str | None) -> Iterator[str]:
    """A real solver app (matching in the background) on a free port; its URL."""
    core = SolverCore(SolverStore(tmp_path / "solver.db"), DOMAIN, solver=SOLVER)
    app = create_app(core, results_store=ResultsStore(tmp_path / "results", max_result_bytes=1 << 16),
                     onchain_result=lambda _: None, max_result_bytes=1 << 16, domain=DOMAIN.as_eip712(),
                     match_interval=0.05, sse_ping_s=1, solver_address=solver_address)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", ws="none",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        core.store.close()


@pytest.fixture
def solver_url(tmp_path: Path) -> Iterator[str]:
    yield from serve(tmp_path, SOLVER)


def test_the_solver_address_is_the_given_one_or_the_reported_one(solver_url: str, tmp_path: Path) -> None:
    with SolverClient(solver_url, retries=0) as client:
        given = Account.create().address
        assert resolve_solver_address(client, given.lower()) == given  # the given one wins, checksummed
        assert resolve_solver_address(client, None) == SOLVER  # else the one /health reports
        with pytest.raises(ServiceConfigError) as info:
            resolve_solver_address(client, "0xnot-an-address")
        assert info.value.option == "--solver-address"
    for url in serve(tmp_path / "anonymous", None):
        with SolverClient(url, retries=0) as client, pytest.raises(SolverAddressUnknownError) as unknown:
            resolve_solver_address(client, None)
        assert unknown.value.url == url


def test_the_waker_wakes_on_a_deal_and_stops_when_told(solver_url: str) -> None:
    wake, stop = threading.Event(), threading.Event()
    waker = EventWaker(solver_url, wake, stop).start()
    try:
        assert waker.connected.wait(10), "the stream never opened"
        assert wake.wait(1.0), "opening the stream wakes the loop (what it missed is read by a round)"
        wake.clear()
        with SolverClient(solver_url, retries=0) as client:
            client.post_resource_offer(sign_offer(ResourceOffer(resource_provider=PROVIDER.address, solver=SOLVER,
                                                                mediators=[MEDIATOR.address]), PROVIDER, DOMAIN))
            assert not wake.wait(1.0), "an offer is no deal"
            client.post_job_offer(sign_offer(JobOffer(
                job_creator=CREATOR.address, solver=SOLVER, mediators=[MEDIATOR.address], inputs={"Message": "hi"},
                module=JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit=COMMIT)), CREATOR, DOMAIN))
            assert wake.wait(15), "the deal the background round made did not wake the loop"
            stop.set()
            # The stream notices the stop at its next event (or its 30 s read timeout).
            client.post_resource_offer(sign_offer(ResourceOffer(resource_provider=PROVIDER.address, solver=SOLVER,
                                                                mediators=[MEDIATOR.address]), PROVIDER, DOMAIN))
            waker.thread.join(10)
            assert not waker.thread.is_alive()
    finally:
        stop.set()


def test_the_waker_outlives_a_solver_that_is_not_there() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nobody listens
    wake, stop = threading.Event(), threading.Event()
    waker = EventWaker(url, wake, stop).start()
    time.sleep(1.5)
    assert waker.thread.is_alive() and not wake.is_set() and not waker.connected.is_set()
    stop.set()
    waker.thread.join(5)
    assert not waker.thread.is_alive()


def _job_container(docker_client: Any, work: Path, job_id: str) -> Any:
    from lilypad.executor.docker_runner import JOB_LABEL

    work.mkdir(parents=True)
    return docker_client.containers.create("lilypad/busybox:1", ["sleep", "60"], labels={JOB_LABEL: job_id},
                                           network_mode="none", volumes={str(work): {"bind": "/work", "mode": "rw"}})


def test_leftover_containers_of_this_service_are_removed_others_kept(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    import docker  # a runtime dependency; `make setup` starts the engine, so none is a failure, not a skip

    engine = docker.from_env(timeout=30)
    engine.ping()
    ours = _job_container(engine, tmp_path / "svc" / "runs" / "job-1", "kit-test-ours")
    ours.start()
    theirs = _job_container(engine, tmp_path / "other" / "runs" / "job-2", "kit-test-theirs")
    logger = logging.getLogger("lilypad.kit-test")
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            assert remove_leftover_containers(tmp_path / "svc", logger) == [ours.id]
        assert f'"ids": ["{ours.id[:12]}"]' in caplog.text and "leftover_containers_removed" in caplog.text
        ids = {c.id for c in engine.containers.list(all=True)}
        assert ours.id not in ids and theirs.id in ids
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=logger.name):
            assert remove_leftover_containers(tmp_path / "svc", logger) == []
        assert caplog.text == ""  # nothing left: nothing said
    finally:
        theirs.remove(force=True)


def test_an_unreachable_engine_is_logged_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    logger = logging.getLogger("lilypad.kit-test")
    with caplog.at_level(logging.INFO, logger=logger.name):
        assert remove_leftover_containers(tmp_path / "svc", logger) == []
    assert "leftover_containers_not_checked" in caplog.text and "DockerUnavailableError" in caplog.text
