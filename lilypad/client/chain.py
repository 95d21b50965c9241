"""A job creator's side of the chain over plain JSON-RPC (web3.py), without ape.

:class:`JobCreatorChain` answers what ``lilypad run``, ``lilypad status`` and
``lilypad fetch`` ask of the contracts (an agreement, a result, an escrow, the
mediation panel, the protocol settings) and sends the job creator's three
transactions (``agree``/``agreeWithPermit``, ``acceptResult``,
``checkResult``/``checkResultWithPermit``), with the same method names and
answers as :class:`lilypad.chain.contracts.LilypadContracts`, so the run's code
takes either. ape stays where it serves (deployments, tests, the services); a
client process starting this way never imports it: ape's network manager and
plugins were most of a ``lilypad run``'s start (``make bench``, ``overhead``).

A transaction costs four JSON-RPC requests (web3's middlewares that fill in or re-check
fields are removed: each added requests): ``eth_estimateGas`` (a revert is
raised here, decoded to the contract's custom error: :class:`ContractRevertError`),
``eth_gasPrice``, ``eth_sendRawTransaction`` and ``eth_getTransactionReceipt``
(polled every 20 ms until mined; a transaction that reverts when mined is
replayed once on its block's state for the error). The nonce is read once per account
(``eth_getTransactionCount``, pending) and counted locally after that; when it
went stale (another process sent from the same account: the node refuses the
nonce, or the account's mined nonce passes it while the transaction waits) it
is read again and the transaction re-signed, once. :attr:`JobCreatorChain.rpc_calls` counts every request by method.

The contracts' ABIs come from the ape project's compiled manifest
(``<project root>/.build/__local__.json``, written by ``ape compile``), read as
JSON: the same artifacts ape uses, never a copy that could drift.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from lilypad.chain.contracts import Agreement, Escrow, deal_id_bytes, project_root
from lilypad.chain.contracts import checksum_address as _address
from lilypad.chain.mediation import Panel, Vote
from lilypad.exceptions import ChainConnectionError, ChainError, DeploymentMismatchError
from lilypad.protocol.cid import ZERO_DIGEST, digest_to_cid
from lilypad.protocol.deal import AgreementState, Deal
from lilypad.protocol.deployments import CONTRACT_NAMES, Deployment, deployment_path, load_deployment

__all__ = ["ContractRevertError", "JobCreatorChain", "job_creator_chain", "lean_rpc_urls", "load_abis"]

#: Gas limit in percent of the estimate (as :data:`lilypad.chain.contracts.GAS_MARGIN_PERCENT`).
GAS_MARGIN_PERCENT = 150
#: How often a receipt is asked for while a transaction waits to be mined.
RECEIPT_POLL_S = 0.02
RECEIPT_TIMEOUT_S = 120.0
_NONCE_STALE = ("nonce too low", "nonce has already been used", "already known", "replacement transaction underpriced")
#: The contracts a job creator talks to (deployment key -> contract type).
_KEYS = ("token", "storage", "payments", "mediation", "controller")


class ContractRevertError(ChainError):
    """A call or transaction the contract refused; ``error`` is its custom error's name
    (``WrongState``, ``ERC20InsufficientAllowance``, ...) or ``None`` when the revert
    carried no known error, ``args`` the error's arguments, ``function`` what was called."""

    def __init__(self, function: str, error: str | None, args: tuple[Any, ...] = (), detail: str = "") -> None:
        self.function, self.error, self.args_ = function, error, args
        what = f"{error}{args!r}" if error else (detail or "reverted without a reason")
        super().__init__(f"{function} reverted: {what}")


@lru_cache(maxsize=4)
def _manifest(path: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ChainError(f"cannot read the compiled contracts at {path} ({exc}): run `ape compile` in the "
                         "lilypad checkout (make setup does)") from None
    return data


def load_abis(keys: Sequence[str] = _KEYS, root: Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Deployment key -> the contract's ABI, from ``<root>/.build/__local__.json``
    (root: :func:`lilypad.chain.contracts.project_root`)."""
    manifest = _manifest(str((root or project_root()) / ".build" / "__local__.json"))
    types = manifest.get("contractTypes", {})
    abis = {}
    for key in keys:
        name = CONTRACT_NAMES[key]
        if name not in types:
            raise ChainError(f"contract type {name} is not compiled in the lilypad checkout: run `ape compile`")
        abis[key] = types[name]["abi"]
    return abis


def lean_rpc_urls(network_choice: str, rpc_urls: Sequence[str] = ()) -> list[str]:
    """The JSON-RPC endpoints a client can use without ape for ``network_choice``: ``rpc_urls``
    (``LILYPAD_RPC_URLS``), else ``APE_FOUNDRY_HOST`` for a ``...:foundry`` choice when it is a URL
    (the devnet's and the bench's setting). Empty where only ape knows the node (a provider
    plugin's own configuration): the caller then connects through ape."""
    if rpc_urls:
        return list(rpc_urls)
    host = os.environ.get("APE_FOUNDRY_HOST", "")
    if network_choice.endswith(":foundry") and host.startswith(("http://", "https://")):
        return [host]
    return []


def _counting_provider(url: str, timeout: float) -> Any:
    """web3's HTTP provider, counting each request by method in ``.calls``."""
    from web3 import HTTPProvider

    class Counting(HTTPProvider):
        calls: Counter[str]

        def make_request(self, method: Any, params: Any) -> Any:
            self.calls[str(method)] += 1
            return super().make_request(method, params)

    provider = Counting(url, request_kwargs={"timeout": timeout})
    provider.calls = Counter()
    return provider


class JobCreatorChain:
    """The deployed system as a job creator sees it, over ``rpc_url`` (see the module docstring).

    ``account`` arguments are eth-account ``LocalAccount`` objects (what
    :func:`lilypad.protocol.accounts.account_from_private_key` returns).
    """

    def __init__(self, rpc_url: str, deployment: Deployment, *, abis: dict[str, list[dict[str, Any]]] | None = None,
                 timeout: float = 30.0) -> None:
        from web3 import Web3

        self.deployment = deployment
        self.rpc_url = rpc_url
        self.provider = _counting_provider(rpc_url, timeout)
        self.w3 = Web3(self.provider)
        # Transactions carry their chain id, gas, gas price and nonce, and addresses are never ENS
        # names: web3's middlewares that would fill or check those would only add requests (its
        # validation asks eth_chainId for every call and estimate; the chain id was checked once).
        for name in ("validation", "gas_estimate", "gas_price_strategy", "ens_name_to_address"):
            self.w3.middleware_onion.remove(name)
        abis = abis or load_abis()
        self.contracts = {key: self.w3.eth.contract(address=Web3.to_checksum_address(deployment.contracts[key]),
                                                    abi=abis[key]) for key in _KEYS}
        self.token, self.storage, self.payments = (self.contracts[k] for k in ("token", "storage", "payments"))
        self.mediation, self.controller = self.contracts["mediation"], self.contracts["controller"]
        self._errors = _error_table(abis)
        self._nonces: dict[str, int] = {}
        self._permit_domain: Any = None

    def __repr__(self) -> str:
        return f"<JobCreatorChain {self.rpc_url} controller={self.deployment.contracts['controller']}>"

    @property
    def rpc_calls(self) -> Counter[str]:
        """JSON-RPC requests made so far, by method."""
        calls: Counter[str] = self.provider.calls
        return calls

    def check(self) -> list[str]:
        """What does not match between the deployment and the node (empty: fine): chain id, code."""
        served = int(self.w3.eth.chain_id)
        if served != self.deployment.chain_id:
            return [f"the node serves chain id {served}, the deployment is for chain id {self.deployment.chain_id}"]
        return [f"no code at the {key} address {self.deployment.contracts[key]}"
                for key in _KEYS if not self.w3.eth.get_code(self.contracts[key].address)]

    # ------------------------------------------------------------------ reads

    def _call(self, contract: Any, name: str, *args: Any) -> Any:
        from web3.exceptions import ContractCustomError, ContractLogicError

        try:
            return getattr(contract.functions, name)(*args).call()
        except (ContractCustomError, ContractLogicError) as exc:
            raise self._revert(name, exc) from None

    def agreement(self, deal_id: Any) -> Any:
        state, jc, rp, created, agreed, submitted, requested, count, block = self._call(
            self.storage, "getAgreement", deal_id_bytes(deal_id))
        return Agreement(state=AgreementState(int(state)), job_creator_agreed=bool(jc),
                         resource_provider_agreed=bool(rp), created_at=int(created), agreed_at=int(agreed),
                         results_submitted_at=int(submitted), mediation_requested_at=int(requested),
                         instruction_count=int(count), results_block=int(block))

    def state(self, deal_id: Any) -> AgreementState:
        state: AgreementState = self.agreement(deal_id).state
        return state

    def result(self, deal_id: Any) -> tuple[str | None, int]:
        """``(data CID text, instruction count)``; ``(None, 0)`` while there is no result."""
        _, digest, count = self._call(self.storage, "getResult", deal_id_bytes(deal_id))
        digest = bytes(digest)
        return (None if digest == ZERO_DIGEST else digest_to_cid(digest)), int(count)

    def escrow(self, deal_id: Any) -> Any:
        jc, rp, settled = self._call(self.payments, "getEscrow", deal_id_bytes(deal_id))
        return Escrow(job_creator=int(jc), resource_provider=int(rp), settled=bool(settled))

    def panel(self, deal: Deal) -> Any:
        return Panel.from_chain(self._call(self.mediation, "getPanel", deal.deal_id))

    def votes(self, deal: Deal) -> tuple[tuple[str, int], ...]:
        """``(member, revealed verdict)`` for the current round's members (0: not revealed this round)."""
        panel = self.panel(deal)
        out = []
        for member in panel.members:
            v = Vote.from_chain(self._call(self.mediation, "getVote", deal.deal_id, member))
            out.append((member, int(v.verdict) if v.round == panel.round else 0))
        return tuple(out)

    def current_protocol_settings(self) -> tuple[int, Any]:
        from lilypad.protocol.settings import ProtocolSettings

        version = int(self._call(self.controller, "getSettingsVersion"))
        return version, ProtocolSettings.from_chain(self._call(self.controller, "getProtocolSettings", version))

    def allowance(self, owner: Any, spender: Any | None = None) -> int:
        return int(self._call(self.token, "allowance", _address(owner), _address(spender or self.payments)))

    def balance_of(self, who: Any) -> int:
        return int(self._call(self.token, "balanceOf", _address(who)))

    def chain_time(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    # ------------------------------------------------------------------ transactions

    def agree_paying(self, deal: Deal, account: Any, amount: int) -> Any:
        """Agree to ``deal`` escrowing ``amount``: ``agree`` when the allowance covers it, else
        ``agreeWithPermit`` with an EIP-2612 permit for exactly ``amount`` (as
        :meth:`lilypad.chain.contracts.LilypadContracts.agree_paying`)."""
        return self._send_paying("agree", "agreeWithPermit", deal, account, amount)

    def check_result_paying(self, deal: Deal, account: Any, amount: int) -> Any:
        return self._send_paying("checkResult", "checkResultWithPermit", deal, account, amount)

    def accept_result(self, deal: Deal, account: Any) -> Any:
        return self._send(self.controller, "acceptResult", (deal.as_tuple(),), account)

    def ensure_allowance(self, account: Any, amount: int) -> Any:
        if self.allowance(account) >= amount:
            return None
        return self._send(self.token, "approve", (self.payments.address, amount), account)

    def sign_permit(self, account: Any, amount: int, *, valid_for: int = 3600) -> Any:
        from lilypad.protocol.permit import sign_permit

        nonce = int(self._call(self.token, "nonces", account.address))
        return sign_permit(account, self.permit_domain(), self.payments.address, amount, nonce,
                           self.chain_time() + valid_for)

    def permit_domain(self) -> Any:
        from lilypad.protocol.permit import PermitDomain

        if self._permit_domain is None:
            _, name, version, chain_id, verifying, _, _ = self._call(self.token, "eip712Domain")
            self._permit_domain = PermitDomain(name=str(name), version=str(version), chain_id=int(chain_id),
                                               verifying_contract=_address(verifying))
        return self._permit_domain

    def _send_paying(self, plain: str, with_permit: str, deal: Deal, account: Any, amount: int) -> Any:
        if amount == 0 or self.allowance(account) >= amount:
            return self._send(self.controller, plain, (deal.as_tuple(),), account)
        permit = self.sign_permit(account, amount)
        try:
            return self._send(self.controller, with_permit,
                              (deal.as_tuple(), permit.value, permit.deadline, permit.v, permit.r, permit.s), account)
        except ContractRevertError as err:
            if err.error != "ERC20InsufficientAllowance":
                raise
        self.ensure_allowance(account, amount)  # the permit did not take (its nonce was used): approve
        return self._send(self.controller, plain, (deal.as_tuple(),), account)

    def _send(self, contract: Any, name: str, args: tuple[Any, ...], account: Any) -> Any:
        """Sign and send one call of ``contract.name(*args)`` from ``account``; its receipt."""
        from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

        sender = account.address
        tx: dict[str, Any] = {"from": sender, "to": contract.address, "value": 0, "chainId": self.deployment.chain_id,
                              "data": getattr(contract.functions, name)(*args)._encode_transaction_data()}
        try:
            tx["gas"] = int(self.w3.eth.estimate_gas(tx)) * GAS_MARGIN_PERCENT // 100  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            raise self._revert(name, exc) from None
        tx["gasPrice"] = int(self.w3.eth.gas_price)
        for attempt in (0, 1):
            if sender not in self._nonces or attempt:
                self._nonces[sender] = int(self.w3.eth.get_transaction_count(sender, "pending"))
            tx["nonce"] = self._nonces[sender]
            signed = account.sign_transaction(tx)
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except (Web3RPCError, ValueError) as exc:  # the node's JSON-RPC error
                if attempt == 0 and any(m in str(exc).lower() for m in _NONCE_STALE):
                    continue
                raise ChainError(f"{name}: the node refused the transaction ({exc})") from None
            self._nonces[sender] += 1
            receipt = self._receipt(tx_hash, name, sender, tx["nonce"])
            if receipt is None:  # another transaction of this account took the nonce
                if attempt == 0:
                    continue
                raise ChainError(f"{name}: nonce {tx['nonce']} was taken by another transaction of {sender}")
            if int(receipt["status"]) != 1:
                raise self._mined_revert(name, tx, int(receipt["blockNumber"]))
            return receipt
        raise ChainError(f"{name}: no nonce the node accepts")

    def _receipt(self, tx_hash: Any, name: str, sender: Any, nonce: int) -> Any:
        """The receipt, polled every :data:`RECEIPT_POLL_S`; ``None`` when the account's mined
        nonce has passed ``nonce`` without this transaction (checked each second: a nonce counted
        locally went stale because another process sent from the same account)."""
        from web3.exceptions import TransactionNotFound

        start = time.monotonic()
        checked = start
        while True:
            try:
                return self.w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                now = time.monotonic()
                if now - start >= RECEIPT_TIMEOUT_S:
                    raise ChainError(f"{name}: transaction {tx_hash.hex()} not mined in "
                                     f"{RECEIPT_TIMEOUT_S:.0f} s") from None
                if now - checked >= 1.0:
                    checked = now
                    if int(self.w3.eth.get_transaction_count(sender, "latest")) > nonce:
                        try:
                            return self.w3.eth.get_transaction_receipt(tx_hash)
                        except TransactionNotFound:
                            return None
                time.sleep(RECEIPT_POLL_S)

    def _mined_revert(self, name: str, tx: dict[str, Any], block: int) -> ContractRevertError:
        """The error of a transaction that passed its estimate but reverted when mined (the state
        or the clock moved in between): the call replayed on the state of its block (one
        request, only on failure) gives the contract's custom error."""
        from web3.exceptions import ContractCustomError, ContractLogicError

        call = {key: tx[key] for key in ("from", "to", "data", "value")}
        try:
            self.w3.eth.call(call, block_identifier=block)  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            error = self._revert(name, exc)
            if error.error is not None:
                return error
        except Exception:  # a node that cannot replay it: the block says enough
            pass
        return ContractRevertError(name, None, detail=f"reverted in block {block}")

    def _revert(self, function: str, exc: Exception) -> ContractRevertError:
        data = getattr(exc, "data", None)
        if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
            found = self._errors.get(data[2:10].lower())
            if found is not None:
                from eth_abi import decode

                name, types = found
                try:
                    return ContractRevertError(function, name, tuple(decode(types, bytes.fromhex(data[10:]))))
                except Exception:  # malformed arguments: the name still says what happened
                    return ContractRevertError(function, name)
        return ContractRevertError(function, None, detail=str(exc))


def _error_table(abis: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[str, list[str]]]:
    """4-byte selector (hex) -> (custom error name, argument types), over every ABI."""
    from eth_utils import function_signature_to_4byte_selector

    table = {}
    for abi in abis.values():
        for item in abi:
            if item.get("type") == "error":
                types = [_abi_type(i) for i in item.get("inputs", [])]
                selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})").hex()
                table[selector] = (item["name"], types)
    return table


def _abi_type(item: dict[str, Any]) -> str:
    kind: str = item["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + kind[len("tuple"):]
    return kind


@contextmanager
def job_creator_chain(network_choice: str, rpc_urls: Sequence[str],
                      deployments_dir: Path | None = None) -> Iterator[JobCreatorChain]:
    """A :class:`JobCreatorChain` for ``network_choice``'s deployment over the first of
    ``rpc_urls`` that serves its chain (one endpoint: that one), checked (chain id, code at every
    address) before it is used."""
    from lilypad.chain.connect import pick_rpc

    parts = network_choice.split(":")
    if len(parts) < 2 or not all(parts[:2]) or not rpc_urls:
        raise ChainConnectionError(network_choice, "not an ECOSYSTEM:NETWORK[:PROVIDER] choice with an RPC URL")
    deployment = load_deployment(parts[0], parts[1], deployments_dir)
    url: str | None = rpc_urls[0]
    if len(rpc_urls) > 1:
        url, problems = pick_rpc(rpc_urls, deployment.chain_id)
        if url is None:
            raise ChainConnectionError(network_choice, f"none of the RPC endpoints serves chain id "
                                       f"{deployment.chain_id}: " + "; ".join(problems))
    assert url is not None
    chain = JobCreatorChain(url, deployment)
    try:
        problems = chain.check()
    except Exception as exc:  # refused, timed out, not JSON-RPC
        raise ChainConnectionError(network_choice, f"{url} does not answer ({type(exc).__name__}: {exc})") from None
    if problems:
        raise DeploymentMismatchError(deployment_path(parts[0], parts[1], deployments_dir), problems)
    yield chain
