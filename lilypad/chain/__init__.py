"""Talking to the deployed contracts: typed wrappers, connections, events, retries.

* :mod:`lilypad.chain.contracts`: :class:`LilypadContracts`, one method per protocol action;
* :mod:`lilypad.chain.mediation`: its mediation, mediator-registry, settings and pot part
  (:class:`Panel`, :class:`Vote`, :class:`MediatorStake`, :class:`Pot`);
* :mod:`lilypad.chain.contract_jobs`: its smart-contract jobs part (reads, relaying);
* :mod:`lilypad.chain.connect`: :func:`connected`, network choice -> wrappers;
* :mod:`lilypad.chain.events`: :class:`EventPoller` over a persisted :class:`LogCursor`;
* :mod:`lilypad.chain.tx`: :func:`send_with_retries` on transient RPC failures only.

Result CID text <-> the bytes32 digest the contracts store is protocol
(:mod:`lilypad.protocol.cid`).

Importing this package does not import ape; the submodules import it when used.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Agreement",
    "Escrow",
    "EventPoller",
    "LilypadContracts",
    "LogCursor",
    "MediatorStake",
    "Panel",
    "Pot",
    "Reputation",
    "Vote",
    "connected",
    "is_transient",
    "send_with_retries",
]

_WHERE = {
    "Agreement": "contracts",
    "Escrow": "contracts",
    "LilypadContracts": "contracts",
    "Reputation": "contracts",
    "MediatorStake": "mediation",
    "Panel": "mediation",
    "Pot": "mediation",
    "Vote": "mediation",
    "EventPoller": "events",
    "LogCursor": "events",
    "connected": "connect",
    "is_transient": "tx",
    "send_with_retries": "tx",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"lilypad.chain.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'lilypad.chain' has no attribute {name!r}")
