"""Which account signs: an ape account alias, ``TEST::n``, or ``WEB3_PRIVATE_KEY``.

The private key is never logged or echoed: errors name the variable, not its value.

Off-chain signatures (offers, cancels, uploads) go through :func:`sign_signable`,
which takes either a raw key or an ape ``AccountAPI`` - so an ape keyfile
account (``--account ALIAS``, loaded and unlocked by :func:`load_ape_account`)
signs without its key ever leaving ape.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = [
    "account_from_private_key",
    "is_ape_account",
    "local_account_from_private_key",
    "load_ape_account",
    "passphrase_variable",
    "resolve_account",
    "sign_signable",
    "signer_address",
]


def passphrase_variable(alias: str) -> str:
    """The environment variable ape reads a keyfile account's passphrase from."""
    return f"APE_ACCOUNTS_{alias}_PASSPHRASE"


def is_ape_account(signer: Any) -> bool:
    """Whether ``signer`` is an ape account (it signs through ``sign_message``)
    rather than a raw key or an eth-account ``LocalAccount``."""
    return not isinstance(signer, (str, bytes, bytearray)) and not hasattr(signer, "key") \
        and callable(getattr(signer, "sign_message", None)) and hasattr(signer, "address")


def load_ape_account(alias: str, *, interactive: bool | None = None) -> Any:
    """The ape account ``alias`` (``ape accounts list``), unlocked to sign
    without asking for each signature.

    A keyfile account's passphrase comes from ``APE_ACCOUNTS_<alias>_PASSPHRASE``;
    without it the passphrase is prompted for when ``interactive`` (default:
    stdin is a terminal), else :class:`~lilypad.exceptions.AccountAliasError`.
    """
    from ape import accounts

    from lilypad.exceptions import AccountAliasError

    try:
        account = accounts.load(alias)
    except Exception:  # ape raises IndexError / AccountsError for an unknown alias
        raise AccountAliasError(alias, "there is no ape account with this alias (see `ape accounts list`)") from None
    if callable(getattr(account, "set_autosign", None)):
        passphrase = os.environ.get(passphrase_variable(alias))
        if interactive is None:
            interactive = sys.stdin is not None and sys.stdin.isatty()
        if passphrase is None and not interactive:
            raise AccountAliasError(alias, f"set {passphrase_variable(alias)} to unlock it without a terminal")
        try:
            account.set_autosign(True, passphrase=passphrase)
        except Exception as exc:  # ape's InvalidPasswordError / AccountsError
            raise AccountAliasError(alias, f"cannot unlock it ({type(exc).__name__}: wrong passphrase?)") from None
    return account


def signer_address(signer: Any) -> str:
    """The checksummed address of ``signer`` (a raw key, a ``LocalAccount`` or
    an ape account); :class:`~lilypad.exceptions.InvalidPrivateKeyError` for a bad key."""
    from eth_account import Account
    from eth_utils import to_checksum_address

    from lilypad.exceptions import InvalidPrivateKeyError

    if is_ape_account(signer):
        return to_checksum_address(str(signer.address))
    try:
        return Account.from_key(getattr(signer, "key", signer)).address
    except (ValueError, TypeError):
        raise InvalidPrivateKeyError("the signing key") from None


def sign_signable(signer: Any, message: Any) -> bytes:
    """The 65-byte ``r || s || v`` signature of an eth-account ``SignableMessage``
    (EIP-191 or EIP-712) by ``signer``: a raw key (hex or bytes), an object
    with ``.key`` (eth-account ``LocalAccount``), or an ape account, which
    signs it itself (a keyfile account must be unlocked, see :func:`load_ape_account`)."""
    from eth_account import Account

    from lilypad.exceptions import InvalidPrivateKeyError, SigningRefusedError

    if is_ape_account(signer):
        signature = signer.sign_message(message)
        if signature is None:
            raise SigningRefusedError(str(signer.address))
        return bytes(signature.encode_rsv())
    try:
        signed = Account.sign_message(message, getattr(signer, "key", signer))
    except (ValueError, TypeError):
        raise InvalidPrivateKeyError("the signing key") from None
    return bytes(signed.signature)


def local_account_from_private_key(private_key: str) -> Any:
    """An eth-account ``LocalAccount`` for a raw key (held only in memory): what the lean
    client (:class:`lilypad.client.chain.JobCreatorChain`) signs with, without ape."""
    from eth_account import Account

    from lilypad.exceptions import InvalidPrivateKeyError

    try:
        return Account.from_key(private_key.strip())
    except Exception:  # eth-account raises several types for bad keys
        raise InvalidPrivateKeyError("WEB3_PRIVATE_KEY") from None


def account_from_private_key(private_key: str) -> Any:
    """An ape account that signs with a raw key held only in memory."""
    from ape_test.accounts import TestAccount

    local = local_account_from_private_key(private_key)
    return TestAccount(private_key=local.key.hex(), index=-1, address_str=local.address)


def resolve_account(account: Any | None, *, is_local: bool) -> Any:
    """``account`` if given; else ``WEB3_PRIVATE_KEY``; else TEST::0 on a local network."""
    if account is not None:
        return account
    from lilypad.settings import get_settings

    key = get_settings().private_key
    if key:
        return account_from_private_key(key)
    if is_local:
        from ape import accounts

        return accounts.test_accounts[0]
    from lilypad.exceptions import NoAccountError

    raise NoAccountError()
