"""A client for a kubo node's RPC API, and for IPFS HTTP gateways.

:class:`KuboClient` talks to one kubo node (``--ipfs-api http://127.0.0.1:5001``):

* :meth:`~KuboClient.add_dir` adds and pins a directory with kubo's own
  ``ipfs --api <node> add -r --cid-version=1 --pin`` (the ``ipfs`` binary,
  :func:`lilypad.toolchain.find_go_tool`): exactly the command whose CIDs
  ``tests/results/test_kubo_cid_parity.py`` checks against
  :mod:`lilypad.results.cid` (names starting with ``.`` left out on both sides,
  symlinks stored as symlink nodes). kubo's CID must equal the one
  :func:`~lilypad.results.cid.directory_cid` computes, else
  :class:`~lilypad.exceptions.IpfsCIDMismatchError` (and the caller does not use it);
* :meth:`~KuboClient.get_dir` downloads a CID as kubo's tar (``/api/v0/get``)
  and extracts it with :func:`lilypad.results.archive.unpack` (every safety rule
  of a result archive), kept only if its CID, recomputed here, is the one asked for;
* :meth:`~KuboClient.connect` (``/api/v0/swarm/connect``: to reach a peer's
  blocks, e.g. the provider's node), :meth:`~KuboClient.identity`,
  :meth:`~KuboClient.version`, :meth:`~KuboClient.pinned`,
  :meth:`~KuboClient.put_empty_block` (a kubo 0.43.1 bitswap gap, see there),
  :meth:`~KuboClient.add_bytes` / :meth:`~KuboClient.cat`.

:func:`gateway_get_dir` does what :meth:`~KuboClient.get_dir` does through an
HTTP gateway (``GET <gateway>/ipfs/<cid>?format=tar``): the gateway is not
trusted either, the CID is recomputed.

Network failures raise :class:`~lilypad.exceptions.IpfsUnavailableError`;
refusals :class:`~lilypad.exceptions.IpfsRequestError`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

import httpx

from lilypad.exceptions import (
    GoToolMissingError,
    IpfsCIDMismatchError,
    IpfsRequestError,
    IpfsUnavailableError,
)

__all__ = [
    "DEFAULT_MAX_BYTES", "DEFAULT_MAX_FILES", "EMPTY_RAW_BLOCK", "KuboClient", "api_multiaddr", "gateway_get_dir",
]

DEFAULT_MAX_BYTES = 1 << 30
"""The most bytes of files a downloaded tree may hold (lilypad's default result cap)."""
DEFAULT_MAX_FILES = 100_000
"""The most entries a downloaded tree may hold."""
EMPTY_RAW_BLOCK = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
"""The CIDv1 of zero bytes as a raw block: every empty file's CID."""
_CHUNK = 1 << 20


def api_multiaddr(url: str) -> str:
    """The multiaddr the ``ipfs`` CLI's ``--api`` takes for an RPC API URL
    (``http://127.0.0.1:5001`` → ``/ip4/127.0.0.1/tcp/5001``); a multiaddr is returned as is."""
    if url.startswith("/"):
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise IpfsRequestError(url, "parsing the API address", "expected http://HOST:PORT or a multiaddr")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    kind = "ip6" if ":" in host else "ip4" if host.replace(".", "").isdigit() else "dns"
    return f"/{kind}/{host}/tcp/{port}" + ("/https" if parts.scheme == "https" else "")


def _stream_tree(url: str, response_cm: Any, cid: str, dest: Path, *, max_bytes: int, max_files: int) -> str:
    """Spool a tar response (``response_cm``: httpx's stream context) and extract it to ``dest``."""
    from lilypad.results.archive import unpack

    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        try:
            with response_cm as response:
                if not response.is_success:
                    response.read()
                    raise IpfsRequestError(url, f"getting {cid}", f"HTTP {response.status_code}: "
                                                                  f"{response.text.strip()[:300]}")
                size = 0
                for chunk in response.iter_bytes(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes + max_files * 2048 + (1 << 20):  # data + headers
                        raise IpfsRequestError(url, f"getting {cid}", f"the tree is over {max_bytes} bytes")
                    spool.write(chunk)
        except httpx.TimeoutException as exc:
            raise IpfsUnavailableError(url, f"timed out getting {cid} ({type(exc).__name__}): is the content "
                                            "reachable from this node?") from None
        except httpx.TransportError as exc:
            raise IpfsUnavailableError(url, f"{type(exc).__name__}: {exc}") from None
        spool.seek(0)
        return unpack(cast(BinaryIO, spool), dest, expected_cid=cid, max_bytes=max_bytes, max_files=max_files,
                      tar_root=cid)


def gateway_get_dir(gateway: str, cid: str, dest: str | os.PathLike[str], *, timeout: float = 60.0,
                    max_bytes: int = DEFAULT_MAX_BYTES, max_files: int = DEFAULT_MAX_FILES) -> str:
    """Download the tree ``cid`` from the HTTP gateway ``gateway`` into the new
    directory ``dest`` (``GET /ipfs/<cid>?format=tar``); kept only if its CID is
    ``cid`` (raises :class:`~lilypad.exceptions.ResultCIDMismatchError` otherwise)."""
    from lilypad.protocol.cid import validate_cid

    validate_cid(cid)
    base = gateway.rstrip("/")
    with httpx.Client(timeout=httpx.Timeout(10.0, read=timeout)) as http:
        return _stream_tree(base, http.stream("GET", f"{base}/ipfs/{cid}", params={"format": "tar"},
                                              headers={"Accept": "application/x-tar"}),
                            cid, Path(dest), max_bytes=max_bytes, max_files=max_files)


class KuboClient:
    """One kubo node's RPC API at ``api_url`` (see the module docstring)."""

    def __init__(self, api_url: str, *, timeout: float = 60.0, binary: Path | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._binary = binary
        self._http = httpx.Client(base_url=self.api_url, timeout=httpx.Timeout(10.0, read=timeout))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KuboClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ RPC
    def _post(self, command: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.post(f"/api/v0/{command}", **kwargs)
        except httpx.TransportError as exc:
            raise IpfsUnavailableError(self.api_url, f"{type(exc).__name__}: {exc}") from None
        if not response.is_success:
            try:
                detail = str(response.json().get("Message") or response.text)
            except ValueError:
                detail = response.text
            raise IpfsRequestError(self.api_url, what, f"HTTP {response.status_code}: {detail.strip()}")
        return response

    def version(self) -> str:
        """kubo's version, e.g. ``0.43.1``."""
        return str(self._post("version", "version").json()["Version"])

    def identity(self) -> dict[str, Any]:
        """``/api/v0/id``: ``ID`` (peer id) and ``Addresses`` (multiaddrs ending in ``/p2p/<id>``)."""
        return dict(self._post("id", "id").json())

    def swarm_addresses(self) -> list[str]:
        """The multiaddrs (with ``/p2p/<peer id>``) other nodes can connect to this one by."""
        return [str(a) for a in self.identity().get("Addresses") or []]

    def connect(self, multiaddr: str) -> None:
        """Connect to the peer at ``multiaddr`` (``/ip4/.../tcp/.../p2p/<peer id>``)."""
        self._post("swarm/connect", f"connecting to {multiaddr}", params={"arg": multiaddr})

    def pinned(self, cid: str) -> bool:
        """Whether ``cid`` is pinned (recursively, or directly) on this node."""
        try:
            keys = self._post("pin/ls", f"pin ls {cid}", params={"arg": cid}).json().get("Keys") or {}
        except IpfsRequestError as exc:
            if "not pinned" in exc.detail:
                return False
            raise
        return cid in keys

    def add_bytes(self, data: bytes, name: str = "file") -> str:
        """Add (and pin) ``data`` as one file; its CIDv1."""
        answer = self._post("add", "add", params={"cid-version": "1", "pin": "true", "quieter": "true"},
                            files={"file": (name, data, "application/octet-stream")})
        return str(answer.json()["Hash"])

    def put_empty_block(self) -> str:
        """Store the empty raw block (:data:`EMPTY_RAW_BLOCK`, every empty file's
        CID) on this node. kubo 0.43.1 nodes do not send each other that
        zero-length block over bitswap (measured: a fetch of any tree holding an
        empty file, e.g. an empty ``stderr``, waits forever), so a node fetching a
        tree gets it from here first; it is the same block for every tree."""
        answer = self._post("block/put", "block put", params={"cid-codec": "raw", "mhtype": "sha2-256", "pin": "false"},
                            files={"data": ("empty", b"", "application/octet-stream")})
        key = str(answer.json()["Key"])
        if key != EMPTY_RAW_BLOCK:
            raise IpfsCIDMismatchError("the empty block", EMPTY_RAW_BLOCK, key)
        return key

    def cat(self, cid: str, max_bytes: int = 1 << 20) -> bytes:
        """The bytes of the file ``cid`` (at most ``max_bytes``)."""
        return self._post("cat", f"cat {cid}", params={"arg": cid, "length": str(max_bytes)}).content

    # ------------------------------------------------------------------ trees
    def add_dir(self, path: str | os.PathLike[str], *, expected_cid: str | None = None) -> str:
        """Add and pin the directory ``path`` (by its real path) on this node; kubo's CID.

        The CID must be ``expected_cid`` when given, else
        :func:`~lilypad.results.cid.directory_cid` of ``path``: a different one
        raises :class:`~lilypad.exceptions.IpfsCIDMismatchError`."""
        from lilypad.results.cid import directory_cid

        real = Path(path).resolve()
        ours = expected_cid or directory_cid(real)
        binary = self._binary
        if binary is None:
            from lilypad.toolchain import find_go_tool

            try:
                binary = find_go_tool("ipfs")
            except GoToolMissingError as exc:
                raise IpfsUnavailableError(self.api_url, str(exc)) from None
        with _private_ipfs_path() as ipfs_path:
            done = subprocess.run(
                [str(binary), "--api", api_multiaddr(self.api_url), "add", "-r", "--cid-version=1", "--pin",
                 "--quieter", str(real)],
                check=False, capture_output=True, text=True, timeout=self.timeout,
                env={**os.environ, "IPFS_PATH": ipfs_path, "IPFS_TELEMETRY": "off"},
            )
        if done.returncode != 0:
            err = done.stderr.strip()
            if any(s in err for s in ("cannot connect to the api", "connection refused", "no such host")):
                raise IpfsUnavailableError(self.api_url, err)
            raise IpfsRequestError(self.api_url, f"adding {real}", err or f"exit status {done.returncode}")
        theirs = done.stdout.strip()
        if theirs != ours:
            raise IpfsCIDMismatchError(str(real), ours, theirs)
        return theirs

    def get_dir(self, cid: str, dest: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                max_files: int = DEFAULT_MAX_FILES) -> str:
        """Download the tree ``cid`` through this node into the new directory
        ``dest``; kept only if its recomputed CID is ``cid`` (which is returned).
        The node fetches blocks it lacks from its connected peers; it waits
        at most the client's ``timeout`` for them."""
        from lilypad.protocol.cid import validate_cid

        validate_cid(cid)
        self.put_empty_block()
        request = self._http.stream("POST", "/api/v0/get", params={"arg": cid, "archive": "true"})
        return _stream_tree(self.api_url, request, cid, Path(dest), max_bytes=max_bytes, max_files=max_files)


@contextmanager
def _private_ipfs_path() -> Iterator[str]:
    """An empty ``IPFS_PATH`` for the ``ipfs`` CLI used as an API client: it then
    reads no local repository's config (and so no key) and talks only to ``--api``."""
    with tempfile.TemporaryDirectory(prefix="lilypad-ipfs-cli-") as path:
        yield path
