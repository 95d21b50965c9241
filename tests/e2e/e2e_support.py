"""Helpers for the end-to-end tests (the network itself is lilypad.devnet.network)."""

from __future__ import annotations

from pathlib import Path

from lilypad.devnet.network import BRIDGE, JOB_CREATOR, MEDIATOR, PROVIDER, SOLVER, LocalNetwork, address_of

__all__ = ["BRIDGE", "JOB_CREATOR", "MEDIATOR", "PROVIDER", "SOLVER", "LocalNetwork", "address_of", "run_env"]


def run_env(net: LocalNetwork, data_dir: Path) -> dict:
    return net.client_env(data_dir)
