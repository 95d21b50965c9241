"""Retrying calls to the chain on transient RPC failures, and only on those.

A *transient* failure is one where trying again can succeed without anything
changing on our side: the node could not be reached, a request or a receipt
wait timed out, the endpoint rate-limited us or answered 502/503/504, or a
transaction lost a nonce race with another sender on the same account (ape
fetches a fresh nonce on the next try). A contract revert
(:class:`ape.exceptions.ContractLogicError`, including every custom error
such as ``WrongState``) is never transient: it is raised at once, unchanged,
so callers can branch on the custom error's class.

Retrying a state-changing call is safe for lilypad's contracts: every
controller and job-creator function checks the deal's (or job's) state
first, so a second copy of a transaction that did land reverts with
``WrongState``/``AlreadyAgreed``/``WrongJobState`` instead of acting twice,
and ``approve`` sets an absolute amount.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from lilypad.exceptions import TransactionRetriesExhaustedError

__all__ = ["is_custom_error", "is_transient", "send_with_retries", "NONCE_RACE_MESSAGES"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Node messages for a transaction that lost a race for its nonce.
NONCE_RACE_MESSAGES = (
    "nonce too low",
    "replacement transaction underpriced",
    "already known",
    "nonce has already been used",
)
# ape rewrites the node's "nonce too low" as "Nonce 'N' is too low".
_APE_NONCE_RE = re.compile(r"nonce '?\d+'? is too low")

_TRANSIENT_HTTP_STATUS = {429, 502, 503, 504}


def _transient_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import requests

        types += [requests.exceptions.ConnectionError, requests.exceptions.Timeout]
    except ImportError:  # pragma: no cover - requests comes with web3
        pass
    try:
        from web3 import exceptions as w3

        types += [w3.ProviderConnectionError, w3.TooManyRequests, w3.TimeExhausted, w3.RequestTimedOut]
    except ImportError:  # pragma: no cover
        pass
    try:
        from ape.exceptions import TransactionNotFoundError

        # A receipt that never showed up (dropped, or the wait timed out).
        types.append(TransactionNotFoundError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def _rpc_error_types() -> tuple[type[BaseException], ...]:
    """Errors whose message is the node's: the only ones read for nonce races."""
    from ape.exceptions import ProviderError, TransactionError

    types: list[type[BaseException]] = [ProviderError, TransactionError]
    try:
        from web3.exceptions import Web3Exception

        types.append(Web3Exception)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def _revert_types() -> tuple[type[BaseException], ...]:
    from ape.exceptions import ContractLogicError

    types: list[type[BaseException]] = [ContractLogicError]
    try:
        from web3.exceptions import ContractLogicError as Web3ContractLogicError

        types.append(Web3ContractLogicError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the errors it was raised from, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen) and len(seen) < 16:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a transient RPC failure (see the module's docstring).

    A revert anywhere in the chain of causes makes it *not* transient.
    """
    chain = _chain(exc)
    reverts = _revert_types()
    if any(isinstance(e, reverts) for e in chain):
        return False
    transient = _transient_types()
    rpc_errors = _rpc_error_types()
    for e in chain:
        if isinstance(e, transient):
            return True
        response = getattr(e, "response", None)
        if getattr(response, "status_code", None) in _TRANSIENT_HTTP_STATUS:
            return True
        if isinstance(e, rpc_errors):
            message = str(e).lower()
            if any(m in message for m in NONCE_RACE_MESSAGES) or _APE_NONCE_RE.search(message):
                return True
    return False


def is_custom_error(err: BaseException, instance: Any, name: str) -> bool:
    """Whether a revert is the custom error ``name`` of the ape contract
    ``instance``. ape decodes custom errors of transactions into classes named
    after them, but a reverting view call may come back undecoded as
    ``custom error 0x<selector>: <data>``: then the selector decides."""
    if type(err).__name__ == name:
        return True
    from eth_utils import keccak

    for abi in instance.contract_type.errors:
        if abi.name == name:
            selector = "0x" + keccak(text=abi.selector)[:4].hex()
            return selector in str(err).lower()
    return False


def _describe(fn: Callable[..., Any]) -> str:
    """A short name for a callable: ``LilypadController.agree`` for an ape contract method."""
    abis = getattr(fn, "abis", None)
    contract = getattr(fn, "contract", None)
    if abis and contract is not None:
        name = getattr(getattr(contract, "contract_type", None), "name", None) or str(contract.address)
        return f"{name}.{abis[0].name}"
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__)


def send_with_retries(
    fn: Callable[..., T],
    *args: Any,
    retries: int = 3,
    backoff: float = 0.5,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)``, tried again up to ``retries`` times on transient errors.

    Waits ``backoff * 2**n`` seconds before retry ``n`` (0-based). Any other
    error, a contract revert above all, propagates at once and unchanged.
    When every attempt failed transiently, raises
    :class:`~lilypad.exceptions.TransactionRetriesExhaustedError` from the
    last error.
    """
    if retries < 0:
        raise ValueError("retries must be >= 0")
    what = _describe(fn)
    attempt = 0
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt >= retries:
                raise TransactionRetriesExhaustedError(what, attempt + 1, exc) from exc
            delay = backoff * (2**attempt)
            log.warning(
                "%s: transient failure (%s: %s); retry %d/%d in %.2fs",
                what, type(exc).__name__, exc, attempt + 1, retries, delay,
            )
            time.sleep(delay)
            attempt += 1
