"""Which account signs: an ape account alias, ``TEST::n``, or ``WEB3_PRIVATE_KEY``.

The private key is never logged or echoed: errors name the variable, not its value.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["account_from_private_key", "resolve_account"]


def account_from_private_key(private_key: str) -> Any:
    """An ape account that signs with a raw key held only in memory."""
    from ape_test.accounts import TestAccount
    from eth_account import Account

    from lilypad.exceptions import InvalidPrivateKeyError

    try:
        local = Account.from_key(private_key.strip())
    except Exception:  # eth-account raises several types for bad keys
        raise InvalidPrivateKeyError("WEB3_PRIVATE_KEY") from None
    return TestAccount(private_key=local.key.hex(), index=-1, address_str=local.address)


def resolve_account(account: Any | None, *, is_local: bool) -> Any:
    """``account`` if given; else ``WEB3_PRIVATE_KEY``; else TEST::0 on a local network."""
    if account is not None:
        return account
    key = os.environ.get("WEB3_PRIVATE_KEY")
    if key:
        return account_from_private_key(key)
    if is_local:
        from ape import accounts

        return accounts.test_accounts[0]
    from lilypad.exceptions import NoAccountError

    raise NoAccountError()
