"""Fixtures: a whole local network of real processes (anvil, deployed contracts,
`lilypad solver`; tests add `lilypad resource-provider` and `lilypad mediator`)."""

from __future__ import annotations

import pytest

from lilypad.devnet.network import LocalNetwork


@pytest.fixture
def network(tmp_path):
    """Anvil + contracts + solver. Tests start the providers and mediators they need."""
    net = LocalNetwork.start(tmp_path)
    try:
        yield net
    finally:
        net.stop()
