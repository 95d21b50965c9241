"""The provider's result upload with a real kubo node: kubo's CID must be the provider's own,
or nothing is uploaded nor posted (the deal stays RAN, to be retried)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lilypad.exceptions import IpfsCIDMismatchError
from lilypad.ipfs import IpfsSources
from lilypad.ipfs.node import KuboNode
from lilypad.provider.daemon import ProviderConfig, ResourceProvider
from lilypad.provider.logic import JobStatus, LocalJob
from lilypad.results.cid import directory_cid


class NoSolver:
    """Fails the test if the provider talks to the solver (it must not, on a CID mismatch)."""

    base_url = "http://127.0.0.1:9"

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the solver was used ({name})")


def result(root: Path, text: str) -> Path:
    (root / "outputs").mkdir(parents=True)
    (root / "stdout").write_text(text)
    (root / "stderr").write_text("")
    (root / "exitCode").write_text("0")
    return root


def test_a_cid_kubo_does_not_agree_with_is_never_posted(tmp_path: Path) -> None:
    tree = result(tmp_path / "result", "the real result\n")
    claimed = directory_cid(result(tmp_path / "other", "another result\n"))  # what the provider thinks it ran
    with KuboNode(tmp_path / "kubo") as node:
        provider = ResourceProvider(ProviderConfig(
            network="ethereum:local:foundry", solver_url=NoSolver.base_url, private_key="0x" + "11" * 32,
            data_dir=tmp_path / "data", mediators=("0x" + "22" * 20,), ipfs=IpfsSources(api=node.api_url)))
        provider.store.put("0xdeal", JobStatus.RAN.value, result_cid=claimed, result_dir=str(tree))
        local = LocalJob(JobStatus.RAN, claimed, str(tree))
        with pytest.raises(IpfsCIDMismatchError) as info:
            provider._upload(NoSolver(), "0xdeal", local)
        assert info.value.kubo_cid == directory_cid(tree) and info.value.expected_cid == claimed
        assert provider.store.get("0xdeal")[0] == JobStatus.RAN.value, "not UPLOADED: addResult is not sent"
        with node.client() as kubo:
            assert not kubo.pinned(claimed)
