"""The mediator's stake in LilypadMediatorRegistry, topped up on start (``lilypad mediator --stake``).

:func:`stake_plan` decides, from the registry's record and the account's LP, what
(if anything) must be sent; :func:`ensure_stake` sends it. Running it again with
the same amount sends nothing, so a restarted daemon never stakes twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lilypad.chain.contracts import MediatorStake
from lilypad.exceptions import MediatorStakeError

__all__ = ["StakePlan", "ensure_stake", "stake_plan"]


@dataclass(frozen=True)
class StakePlan:
    """``action``: ``"none"`` (already staked enough), ``"register"`` or ``"add"``;
    ``amount``: LP base units to send with it."""

    action: str
    amount: int


def stake_plan(mediator: str, wanted: int, stake: MediatorStake, balance: int) -> StakePlan:
    """What brings ``mediator``'s stake to at least ``wanted``; raises
    :class:`~lilypad.exceptions.MediatorStakeError` when it cannot be done."""
    if wanted <= 0:
        raise MediatorStakeError(mediator, wanted, "the stake must be positive")
    if stake.unbonding:
        raise MediatorStakeError(mediator, wanted, f"its stake is unbonding (withdrawable from "
                                 f"{stake.withdrawable_at}): withdraw it, then start again")
    if stake.amount >= wanted:
        return StakePlan("none", 0)
    missing = wanted - stake.amount
    if balance < missing:
        raise MediatorStakeError(mediator, wanted, f"the account holds {balance} LP base units and needs "
                                 f"{missing} more to stake (staked now: {stake.amount})")
    return StakePlan("add" if stake.registered else "register", missing)


def ensure_stake(contracts: Any, account: Any, wanted: int) -> StakePlan:
    """Register ``account`` or add to its stake so it holds at least ``wanted``
    (approving the registry for exactly what is sent); returns what was done."""
    address = str(account.address)
    plan = stake_plan(address, wanted, contracts.mediator_stake(address), contracts.balance_of(address))
    if plan.action == "none":
        return plan
    contracts.ensure_allowance(account, plan.amount, spender=contracts.mediator_registry)
    if plan.action == "register":
        contracts.register_mediator(plan.amount, account)
    else:
        contracts.add_stake(plan.amount, account)
    return plan
