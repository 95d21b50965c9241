"""``lilypad.ipfs`` against real kubo daemons on loopback: add with CID parity, get verified,
peers, gateways, and the errors of a node that is down or lies."""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lilypad.exceptions import (
    IpfsCIDMismatchError,
    IpfsRequestError,
    IpfsUnavailableError,
    ResultCIDMismatchError,
    UnsafeResultError,
)
from lilypad.ipfs import KuboClient, api_multiaddr, gateway_get_dir
from lilypad.ipfs.node import KuboNode
from lilypad.results.cid import directory_cid


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KuboNode, KuboNode]]:
    """Two connected nodes: ``a`` (a provider's) and ``b`` (a client's)."""
    root = tmp_path_factory.mktemp("kubo")
    a = KuboNode(root / "a").init()
    b = KuboNode(root / "b").init(peers=[a.multiaddr])
    with a, b:
        yield a, b


def result_tree(root: Path, text: str = "hello") -> Path:
    (root / "outputs" / "deep").mkdir(parents=True)
    (root / "stdout").write_text(text + "\n")
    (root / "stderr").write_text("")
    (root / "exitCode").write_text("0")
    (root / "outputs" / "deep" / "big.bin").write_bytes(bytes(range(256)) * 2000)  # two chunks
    (root / "outputs" / "link").symlink_to("deep/big.bin")
    (root / ".hidden").write_text("not covered by the CID")
    return root


def test_api_multiaddr() -> None:
    assert api_multiaddr("http://127.0.0.1:5001") == "/ip4/127.0.0.1/tcp/5001"
    assert api_multiaddr("https://ipfs.example:443/") == "/dns/ipfs.example/tcp/443/https"
    assert api_multiaddr("/ip4/127.0.0.1/tcp/1") == "/ip4/127.0.0.1/tcp/1"
    with pytest.raises(IpfsRequestError):
        api_multiaddr("ftp://x")


def test_node_binds_loopback_only(nodes: tuple[KuboNode, KuboNode]) -> None:
    a, _ = nodes
    with a.client() as client:
        assert client.version() == "0.43.1"
        assert client.swarm_addresses() == [a.multiaddr]
    assert a.api_url.startswith("http://127.0.0.1:")


def test_add_dir_is_pinned_with_our_cid_and_fetched_by_a_peer(nodes: tuple[KuboNode, KuboNode],
                                                              tmp_path: Path) -> None:
    a, b = nodes
    tree = result_tree(tmp_path / "result")
    with a.client() as ca:
        cid = ca.add_dir(tree)
        assert cid == directory_cid(tree)
        assert ca.pinned(cid)
    with b.client() as cb:
        assert not cb.pinned(cid)
        got = cb.get_dir(cid, tmp_path / "got")  # b has no block: bitswap from its peer a
    assert got == cid
    assert (tmp_path / "got" / "stdout").read_text() == "hello\n"
    assert (tmp_path / "got" / "outputs" / "link").readlink() == Path("deep/big.bin")
    assert not (tmp_path / "got" / ".hidden").exists()
    assert directory_cid(tmp_path / "got") == cid


def test_add_dir_refuses_a_cid_that_is_not_ours(nodes: tuple[KuboNode, KuboNode], tmp_path: Path) -> None:
    a, _ = nodes
    tree = result_tree(tmp_path / "result")
    other = directory_cid(result_tree(tmp_path / "other", "other"))
    with a.client() as ca, pytest.raises(IpfsCIDMismatchError) as info:
        ca.add_dir(tree, expected_cid=other)
    assert info.value.kubo_cid == directory_cid(tree) and info.value.expected_cid == other


def test_gateway_get_dir(nodes: tuple[KuboNode, KuboNode], tmp_path: Path) -> None:
    a, b = nodes
    tree = result_tree(tmp_path / "result", "via the gateway")
    with a.client() as ca:
        cid = ca.add_dir(tree)
    assert gateway_get_dir(b.gateway_url, cid, tmp_path / "g") == cid  # b's gateway, blocks from a
    assert (tmp_path / "g" / "stdout").read_text() == "via the gateway\n"
    assert directory_cid(tmp_path / "g") == cid


def test_a_node_that_is_down_is_a_clear_error(tmp_path: Path) -> None:
    with KuboClient("http://127.0.0.1:9", timeout=5) as client:
        with pytest.raises(IpfsUnavailableError, match=r"127\.0\.0\.1:9\b"):
            client.version()
        with pytest.raises(IpfsUnavailableError):
            client.add_dir(result_tree(tmp_path / "r"))


class _LyingGateway(BaseHTTPRequestHandler):
    """Serves, for any CID, a tar of another tree (or one that escapes)."""

    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-tar")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        """Quiet: the test's output is its assertions, not the server's request lines."""


def _tar(root: str, entries: list[tuple[str, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(f"{root}/{name}" if name else root)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("case", ["other-tree", "escape"])
def test_a_lying_gateway_is_refused(tmp_path: Path, case: str) -> None:
    cid = directory_cid(result_tree(tmp_path / "r"))
    if case == "other-tree":
        body = _tar(cid, [("", None), ("stdout", b"forged\n")])
    else:
        body = _tar(cid, [("", None), ("../evil", b"x")])
    handler = type("H", (_LyingGateway,), {"body": body})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(ResultCIDMismatchError if case == "other-tree" else UnsafeResultError):
            gateway_get_dir(url, cid, tmp_path / "got")
    finally:
        server.shutdown()
    assert not (tmp_path / "got").exists()
    assert not (tmp_path / "evil").exists()
