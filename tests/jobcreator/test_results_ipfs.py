"""``download_verified`` with IPFS (real kubo nodes): the result by its on-chain CID from IPFS
first, verified; the solver as the fallback; both failing is one clear problem."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lilypad.client import SolverClient
from lilypad.devnet.processes import free_port
from lilypad.ipfs import IpfsSources
from lilypad.ipfs.node import KuboNode
from lilypad.jobcreator.results import download_verified
from lilypad.results.cid import directory_cid

DEAL = "0x" + "ab" * 32


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KuboNode, KuboNode, str]]:
    """A provider's node holding a result, a client's node peered with it, the result's CID."""
    root = tmp_path_factory.mktemp("kubo")
    result = root / "result"
    (result / "outputs").mkdir(parents=True)
    (result / "stdout").write_text("the result\n")
    (result / "stderr").write_text("")
    (result / "exitCode").write_text("0")
    with KuboNode(root / "provider") as provider:
        client = KuboNode(root / "client").init(peers=[provider.multiaddr])
        with client, provider.client() as kubo:
            yield provider, client, kubo.add_dir(result)


def test_from_ipfs_without_any_solver(pinned: tuple[KuboNode, KuboNode, str], tmp_path: Path) -> None:
    _, client, cid = pinned
    got = download_verified(None, DEAL, cid, tmp_path, ipfs=IpfsSources(api=client.api_url))
    assert got.verified and got.source == "ipfs" and got.ipfs_problem is None
    assert got.path == tmp_path / "downloaded-files" / DEAL and directory_cid(got.path) == cid
    again = download_verified(None, DEAL, cid, tmp_path, ipfs=IpfsSources(api="http://127.0.0.1:9"))
    assert again.source == "local", "an already verified download is kept"


def test_ipfs_and_solver_down_is_one_clear_problem(pinned: tuple[KuboNode, KuboNode, str], tmp_path: Path) -> None:
    _, _, cid = pinned
    dead_api, dead_solver = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    with SolverClient(dead_solver, retries=0) as solver:
        got = download_verified(solver, DEAL, cid, tmp_path, ipfs=IpfsSources(api=dead_api, timeout=5))
    assert not got.verified and not got.final
    assert got.problem is not None and got.problem.startswith(f"IPFS (kubo node {dead_api}) could not serve it: "
                                                              f"IpfsUnavailableError: IPFS node {dead_api}")
    assert dead_solver in got.problem
    assert not list((tmp_path / "downloaded-files").iterdir()), "nothing half-downloaded is left"
