"""``lilypad.ipfs.fetch``: a node that is not yet connected reaches the content through
``--ipfs-peer``; the gateway is the second source; nothing configured is a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lilypad.exceptions import IpfsError, IpfsUnavailableError
from lilypad.ipfs import IpfsSources, add_tree, fetch_tree
from lilypad.ipfs.node import KuboNode
from lilypad.results.cid import directory_cid


@pytest.fixture(scope="module")
def strangers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KuboNode, KuboNode]]:
    """Two nodes that do not know each other."""
    root = tmp_path_factory.mktemp("kubo")
    with KuboNode(root / "holder") as holder, KuboNode(root / "fetcher") as fetcher:
        yield holder, fetcher


def tree(root: Path, text: str) -> Path:
    (root / "outputs").mkdir(parents=True)
    (root / "stdout").write_text(text)
    (root / "stderr").write_text("")
    (root / "exitCode").write_text("0")
    return root


def test_sources_from_options() -> None:
    sources = IpfsSources.build("http://127.0.0.1:5001", "", "/ip4/a/p2p/x, /ip4/b/p2p/y", timeout=7)
    assert sources == IpfsSources("http://127.0.0.1:5001", None, ("/ip4/a/p2p/x", "/ip4/b/p2p/y"), 7)
    assert sources.enabled and sources.describe() == "kubo node http://127.0.0.1:5001"
    assert not IpfsSources.build(None, None).enabled


def test_a_peer_is_connected_before_fetching(strangers: tuple[KuboNode, KuboNode], tmp_path: Path) -> None:
    holder, fetcher = strangers
    cid = add_tree(IpfsSources(api=holder.api_url), tree(tmp_path / "r", "from a peer\n"))
    alone = IpfsSources(api=fetcher.api_url, timeout=3)
    with pytest.raises(IpfsUnavailableError, match="timed out"):
        fetch_tree(alone, cid, tmp_path / "not-connected")  # no peer holds it: waits, then gives up
    assert not (tmp_path / "not-connected").exists()
    peered = IpfsSources(api=fetcher.api_url, peers=(holder.multiaddr,), timeout=10)
    assert fetch_tree(peered, cid, tmp_path / "got") == cid
    assert directory_cid(tmp_path / "got") == cid and (tmp_path / "got" / "stdout").read_text() == "from a peer\n"


def test_the_gateway_is_tried_when_the_node_fails(strangers: tuple[KuboNode, KuboNode], tmp_path: Path) -> None:
    holder, _ = strangers
    cid = add_tree(IpfsSources(api=holder.api_url), tree(tmp_path / "r", "via the gateway\n"))
    both = IpfsSources(api="http://127.0.0.1:9", gateway=holder.gateway_url, timeout=10)
    assert fetch_tree(both, cid, tmp_path / "got") == cid
    with pytest.raises(IpfsUnavailableError):
        fetch_tree(IpfsSources(api="http://127.0.0.1:9"), cid, tmp_path / "none")
    with pytest.raises(IpfsError, match="no IPFS node"):
        fetch_tree(IpfsSources(), cid, tmp_path / "none")
    with pytest.raises(IpfsUnavailableError, match="no kubo node"):
        add_tree(IpfsSources(gateway=holder.gateway_url), tmp_path / "r")
