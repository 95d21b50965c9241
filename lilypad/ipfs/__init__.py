"""IPFS for results and input files: kubo nodes, their RPC API, gateways.

* :mod:`lilypad.ipfs.node`: :class:`KuboNode`, a private ``ipfs daemon`` on loopback;
* :mod:`lilypad.ipfs.client`: :class:`KuboClient` (add and pin a directory with
  kubo's CID checked against :mod:`lilypad.results.cid`, get a tree verified
  by its CID, connect to peers) and :func:`gateway_get_dir`;
* :mod:`lilypad.ipfs.fetch`: :class:`IpfsSources` (node, gateway, peers) with
  :func:`fetch_tree` and :func:`add_tree`, used by the provider, the mediator and
  the job creator.
"""

from __future__ import annotations

from lilypad.ipfs.client import KuboClient, api_multiaddr, gateway_get_dir
from lilypad.ipfs.fetch import IpfsSources, add_tree, fetch_tree

__all__ = ["IpfsSources", "KuboClient", "KuboNode", "add_tree", "api_multiaddr", "fetch_tree", "gateway_get_dir"]


def __getattr__(name: str) -> object:
    if name == "KuboNode":  # lazily: it imports the devnet's process helpers
        from lilypad.ipfs.node import KuboNode

        return KuboNode
    raise AttributeError(name)
