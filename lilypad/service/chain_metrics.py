"""The chain figures a daemon's ``/metrics`` shows: head, balances, LP locked in escrow."""

from __future__ import annotations

from typing import Any

__all__ = ["read_chain_metrics"]


def read_chain_metrics(metrics: Any, contracts: Any, address: str, deal_ids: list[str], *, side: str) -> None:
    """Record the chain head, ``address``'s ETH and LP balances and the LP it
    has locked (``side`` of each deal's escrow) in ``metrics`` (a
    :class:`~lilypad.observability.metrics.DaemonMetrics`)."""
    from ape import chain

    # Every figure is read at the same block: a payout mined between two
    # reads would otherwise show the LP both paid out and still locked.
    head = chain.blocks.head
    at = int(head.number)
    locked = 0
    for deal_id in deal_ids:
        escrow = contracts.escrow(deal_id, block_id=at)
        if not escrow.settled:
            locked += int(getattr(escrow, side))
    metrics.chain_read(head_block=at, head_timestamp=int(head.timestamp),
                       # hex: ape-foundry passes the block id to anvil raw, and anvil refuses an int
                       eth_wei=int(chain.provider.get_balance(address, block_id=hex(at))),
                       lp_units=contracts.balance_of(address, block_id=at), locked_units=locked)
