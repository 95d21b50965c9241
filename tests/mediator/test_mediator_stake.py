"""``lilypad mediator --stake``: the stake plan (pure), the stake step against a real anvil and
contracts (exact balances, idempotent across restarts), the CLI's clear error for an account
without enough LP, and ``lilypad doctor --role mediator`` reporting the stake."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lilypad.chain.contracts import MediatorStake
from lilypad.devnet.processes import dev_private_key
from lilypad.exceptions import MediatorStakeError
from lilypad.mediator.stake import StakePlan, ensure_stake, stake_plan
from lilypad.protocol.accounts import account_from_private_key

TOKEN = 10**18
FUNDED = 5  # a test account the deploy funded with 1000 LP


def _lilypad(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
    full = {k: v for k, v in os.environ.items() if k not in ("WEB3_PRIVATE_KEY", "LILYPAD_RPC_URLS")}
    full.update(env)
    return subprocess.run([exe, *args], env=full, capture_output=True, text=True, timeout=120)


def test_stake_plan_registers_tops_up_or_does_nothing():
    fresh = MediatorStake(amount=0, unbonding_since=0, withdrawable_at=None)
    assert stake_plan("0xm", 10, fresh, 10) == StakePlan("register", 10)
    assert stake_plan("0xm", 10, MediatorStake(4, 0, None), 6) == StakePlan("add", 6)
    assert stake_plan("0xm", 10, MediatorStake(12, 0, None), 0) == StakePlan("none", 0)
    with pytest.raises(MediatorStakeError, match="needs 6 more"):
        stake_plan("0xm", 10, MediatorStake(4, 0, None), 5)
    with pytest.raises(MediatorStakeError, match="unbonding"):
        stake_plan("0xm", 10, MediatorStake(12, 100, 200), 50)
    with pytest.raises(MediatorStakeError, match="positive"):
        stake_plan("0xm", 0, fresh, 50)


def test_ensure_stake_is_exact_and_idempotent(devchain, devchain_contracts):
    c = devchain_contracts
    mediator = account_from_private_key(dev_private_key(FUNDED))
    registry = c.mediator_registry.address
    before, held = c.balance_of(mediator), c.balance_of(registry)
    assert c.min_mediator_stake() == 0
    assert not c.mediator_stake(mediator).registered

    assert ensure_stake(c, mediator, 10 * TOKEN) == StakePlan("register", 10 * TOKEN)
    assert ensure_stake(c, mediator, 10 * TOKEN) == StakePlan("none", 0)  # a restart sends nothing
    assert ensure_stake(c, mediator, 4 * TOKEN) == StakePlan("none", 0)
    assert ensure_stake(c, mediator, 15 * TOKEN) == StakePlan("add", 5 * TOKEN)
    stake = c.mediator_stake(mediator)
    assert (stake.amount, stake.unbonding, stake.withdrawable_at) == (15 * TOKEN, False, None)
    assert stake.qualifies(15 * TOKEN) and not stake.qualifies(16 * TOKEN)
    assert c.balance_of(mediator) == before - 15 * TOKEN and c.balance_of(registry) == held + 15 * TOKEN

    # The doctor shows the stake and the protocol minimum.
    out = _lilypad("doctor", "--rpc", devchain.rpc_url, "--role", "mediator", "--address", mediator.address,
                   env={"LILYPAD_DEPLOYMENTS_DIR": str(devchain.deployments)})
    line = next(x for x in out.stdout.splitlines() if "mediator-stake:" in x)
    assert line.startswith("[ok  ]") and "has 15 LP staked, bonded" in line and "minimum 0 LP" in line

    c.request_unbond(mediator)
    stake = c.mediator_stake(mediator)
    assert stake.unbonding and stake.withdrawable_at == stake.unbonding_since + 67 * 24 * 3600
    assert not stake.qualifies(TOKEN) and stake.qualifies(0)
    with pytest.raises(MediatorStakeError, match="unbonding"):
        ensure_stake(c, mediator, 15 * TOKEN)


def test_mediator_without_enough_lp_stops_with_a_clear_error(devchain):
    key = dev_private_key(FUNDED + 1)
    address = account_from_private_key(key).address
    out = _lilypad("mediator", "--network", "ethereum:local:foundry", "--solver-url", "http://127.0.0.1:9",
                   "--stake", "5000", env={**devchain.env, "WEB3_PRIVATE_KEY": key})
    assert out.returncode != 0
    assert f"mediator {address} cannot stake" in out.stderr and "needs 5000000000000000000000 more" in out.stderr
