"""Where a part of lilypad gets IPFS content from, and adds it to: :class:`IpfsSources`.

A job creator (``lilypad run``, ``lilypad fetch``), a mediator and a provider
(for input files) may have their own kubo node (``--ipfs-api``), an HTTP
gateway (``--ipfs-gateway``) and the multiaddrs of peers that hold the content
(``--ipfs-peer``, e.g. the provider's node). :func:`fetch_tree` tries the node
(connecting it to the peers first), then the gateway; whichever serves the
tree, its CID is recomputed (:mod:`lilypad.results.cid`) before it is kept.
:func:`add_tree` adds a directory to the node and checks kubo's CID is ours.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from lilypad.exceptions import IpfsError, IpfsUnavailableError, LilypadError
from lilypad.ipfs.client import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, KuboClient, gateway_get_dir

__all__ = ["IpfsSources", "add_tree", "fetch_tree"]

log = logging.getLogger("lilypad.ipfs")


@dataclass(frozen=True)
class IpfsSources:
    """An own kubo node's RPC API URL, a gateway URL, peers' multiaddrs (each optional)."""

    api: str | None = None
    gateway: str | None = None
    peers: tuple[str, ...] = ()
    timeout: float = 30.0

    @classmethod
    def build(cls, api: str | None = None, gateway: str | None = None, peers: str | tuple[str, ...] | list[str] = (),
              timeout: float = 30.0) -> IpfsSources:
        """From option values; ``peers`` may be one comma- or space-separated string."""
        if isinstance(peers, str):
            peers = tuple(p for p in peers.replace(",", " ").split() if p)
        return cls(api or None, gateway or None, tuple(peers), timeout)

    @property
    def enabled(self) -> bool:
        return bool(self.api or self.gateway)

    def describe(self) -> str:
        return " or ".join(s for s in (f"kubo node {self.api}" if self.api else "",
                                       f"gateway {self.gateway}" if self.gateway else "") if s) or "no IPFS source"


def fetch_tree(sources: IpfsSources, cid: str, dest: str | os.PathLike[str], *,
               max_bytes: int = DEFAULT_MAX_BYTES, max_files: int = DEFAULT_MAX_FILES) -> str:
    """Download the tree ``cid`` into the new directory ``dest`` from
    ``sources`` (node first, then gateway), verified against ``cid``. Raises
    the last failure (:class:`~lilypad.exceptions.IpfsError` or a results error
    such as :class:`~lilypad.exceptions.ResultCIDMismatchError`)."""
    if not sources.enabled:
        raise IpfsError("no IPFS node (--ipfs-api) or gateway (--ipfs-gateway) is configured")
    failure: LilypadError | None = None
    if sources.api:
        try:
            with KuboClient(sources.api, timeout=sources.timeout) as client:
                for peer in sources.peers:
                    try:
                        client.connect(peer)
                    except IpfsError as exc:  # the content may still come from another peer
                        log.warning("connecting IPFS node %s to %s failed: %s", sources.api, peer, exc)
                return client.get_dir(cid, dest, max_bytes=max_bytes, max_files=max_files)
        except LilypadError as exc:
            failure = exc
            log.warning("getting %s from kubo node %s failed: %s", cid, sources.api, exc)
    if sources.gateway:
        try:
            return gateway_get_dir(sources.gateway, cid, dest, timeout=sources.timeout, max_bytes=max_bytes,
                                   max_files=max_files)
        except LilypadError as exc:
            failure = exc
            log.warning("getting %s from gateway %s failed: %s", cid, sources.gateway, exc)
    assert failure is not None
    raise failure


def add_tree(sources: IpfsSources, path: str | os.PathLike[str], expected_cid: str | None = None) -> str:
    """Add and pin the directory ``path`` on ``sources.api``; kubo's CID, which
    is checked to equal ``expected_cid`` (or the CID lilypad computes)."""
    if not sources.api:
        raise IpfsUnavailableError("-", "no kubo node (--ipfs-api) is configured")
    with KuboClient(sources.api, timeout=sources.timeout) as client:
        return client.add_dir(Path(path), expected_cid=expected_cid)
