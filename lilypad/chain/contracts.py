"""Typed wrappers over the seven deployed lilypad contracts.

:class:`LilypadContracts` is built from a :class:`~lilypad.protocol.deployments.Deployment`
and gives the services (solver, resource provider, job creator, mediator,
bridge) one method per protocol action, each taking a
:class:`~lilypad.protocol.deal.Deal` and the ape account that signs, and
typed reads (:class:`Agreement`, :class:`Escrow`, :class:`Reputation`)
instead of raw ABI structs. Mediation (the panel, verdicts), the
mediator registry, the protocol settings and the pot come from
:class:`~lilypad.chain.mediation.MediationActions`, which it inherits (their
types are re-exported here); smart-contract jobs (reads and relaying) from
:class:`~lilypad.chain.contract_jobs.ContractJobActions`. The raw ape contract instances stay
available as attributes (``token``, ``storage``, ``payments``, ``mediation``,
``mediator_registry``, ``controller``, ``job_creator``).

Contract types come from the lilypad ape project at the repository root
(``ape.Project(root)``, which reads ``<root>/.build/__local__.json`` and only
compiles when a source changed), never from the current directory's project,
so the wrappers work whatever the process's working directory is. The root
is found from this file's location; ``$LILYPAD_PROJECT_ROOT`` overrides it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lilypad.chain.contract_jobs import ContractJobActions
from lilypad.chain.mediation import MediationActions, MediatorStake, Panel, Pot, Vote
from lilypad.chain.tx import is_custom_error, send_with_retries
from lilypad.exceptions import ChainError
from lilypad.protocol.cid import ZERO_DIGEST, cid_to_digest, digest_to_cid
from lilypad.protocol.deal import TIMEOUT_FOR_STATE, AgreementState, Deal
from lilypad.protocol.deployments import CONTRACT_NAMES, Deployment

__all__ = [
    "UNLIMITED_ALLOWANCE",
    "Agreement",
    "DealRef",
    "Escrow",
    "LilypadContracts",
    "MediatorStake",
    "Panel",
    "Pot",
    "Reputation",
    "Vote",
    "ZERO_ADDRESS",
    "checksum_address",
    "deal_id_bytes",
    "load_contract_containers",
    "project_root",
]

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

#: A deal, or its id as 32 bytes or as hex.
DealRef = Deal | bytes | str

T = TypeVar("T")


# --------------------------------------------------------------------------
# Contract types, independent of the working directory
# --------------------------------------------------------------------------


def project_root() -> Path:
    """The lilypad repository root: ``$LILYPAD_PROJECT_ROOT`` or this package's checkout."""
    from lilypad.settings import get_settings

    configured = get_settings().project_root
    if configured is not None:
        return configured.resolve()
    return Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=4)
def _project_at(root: str) -> Any:
    from ape import Project

    return Project(root)


def load_contract_containers(project: Any | None = None) -> dict[str, Any]:
    """Deployment key (``token``, ``controller``, ...) -> ape ``ContractContainer``.

    ``project`` defaults to ``ape.Project(project_root())``; pass one to use
    another (the tests pass ape's ``project`` fixture).
    """
    if project is None:
        root = project_root()
        if not (root / "ape-config.yaml").is_file():
            raise ChainError(
                f"no lilypad ape project at {root} (no ape-config.yaml): "
                "set LILYPAD_PROJECT_ROOT to the repository checkout"
            )
        project = _project_at(str(root))
    containers: dict[str, Any] = {}
    for key, name in CONTRACT_NAMES.items():
        try:
            container = project.get_contract(name)
        except Exception as exc:  # ape raises several types for missing/uncompilable types
            raise ChainError(f"cannot load contract type {name} from {project.path}: {exc}") from exc
        if container is None:
            raise ChainError(f"contract type {name} not found in {project.path}: run `ape compile` there")
        containers[key] = container
    return containers


# --------------------------------------------------------------------------
# Typed views of the contracts' structs
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    """``LilypadStorage.getAgreement``; times are block timestamps (0: not yet).
    ``mediation_requested_at`` is the start of the current mediation round;
    ``results_block`` the block that included ``addResult`` (its hash draws the audit)."""

    state: AgreementState
    job_creator_agreed: bool
    resource_provider_agreed: bool
    created_at: int
    agreed_at: int
    results_submitted_at: int
    mediation_requested_at: int
    instruction_count: int
    results_block: int = 0

    def timeout_at(self, deal: Deal) -> int | None:
        """When the current state's timeout may be triggered (None: terminal or unknown).
        In ``ResultsChecked`` that is the end of the current mediation round
        (:attr:`~lilypad.protocol.deal.Deal.mediation_round_window`)."""
        t = deal.timeouts
        starts = {
            AgreementState.DEAL_NEGOTIATING: (self.created_at, t.agree),
            AgreementState.DEAL_AGREED: (self.agreed_at, t.submit_results),
            AgreementState.RESULTS_SUBMITTED: (self.results_submitted_at, t.judge_results),
            AgreementState.RESULTS_CHECKED: (self.mediation_requested_at, deal.mediation_round_window),
        }
        if self.state not in starts:
            return None
        start, window = starts[self.state]
        return start + window


@dataclass(frozen=True)
class Escrow:
    """``LilypadPayments.getEscrow``: what each side has in a deal's account; once ``settled``,
    ``job_creator`` is what the settlement paid the job creator (and ``resource_provider`` 0)."""

    job_creator: int
    resource_provider: int
    settled: bool


@dataclass(frozen=True)
class Reputation:
    """``LilypadStorage.getReputation``: a resource provider's counters, then the job cost (in
    LP base units) of its deals that settled paying it (``value_paid``: what the protocol tax is
    charged on) and of those a mediation panel accepted (``value_verified``). The counters are free
    to inflate by dealing with oneself; the values are not (docs/protocol.md, Reputation)."""

    deals_agreed: int
    results_submitted: int
    results_accepted: int
    results_checked: int
    mediations_passed: int
    mediations_failed: int
    submit_timeouts: int
    other_timeouts: int
    value_paid: int
    value_verified: int


def checksum_address(value: Any) -> str:
    """The checksummed address of an account, a contract or an address string."""
    from eth_utils import to_checksum_address

    return to_checksum_address(str(getattr(value, "address", value)))


_address = checksum_address


def _at(block_id: int | None) -> dict[str, int]:
    """Call keywords that pin a read to ``block_id`` (none: the latest block)."""
    return {} if block_id is None else {"block_id": block_id}


def deal_id_bytes(ref: DealRef) -> bytes:
    """A deal's id as 32 bytes, from the deal, its id's bytes or its hex (``0x`` optional)."""
    if isinstance(ref, Deal):
        return ref.deal_id
    if isinstance(ref, (bytes, bytearray)):
        raw = bytes(ref)
    elif isinstance(ref, str):
        raw = bytes.fromhex(ref[2:] if ref.startswith(("0x", "0X")) else ref)
    else:
        raise TypeError(f"expected a Deal or a deal id, got {type(ref).__name__}")
    if len(raw) != 32:
        raise ValueError(f"a deal id is 32 bytes, got {len(raw)}")
    return raw


# --------------------------------------------------------------------------
# The wrappers
# --------------------------------------------------------------------------


#: Gas limit given to an estimated transaction, in percent of the estimate: the
#: state can move between estimate and inclusion (a deal's second ``agree``
#: costs ~1.35x its first).
GAS_MARGIN_PERCENT = 150


def _sends_block_gas_limit() -> bool:
    """Whether ape would send a transaction with the whole block gas limit (its
    ``gas_limit: max`` default on local networks). anvil then fits one such
    transaction per block and, when several senders race, strands one in its
    pool until another arrives (measured: 1 of 80 concurrent transactions
    unmined after 30 s), so senders time out and re-send with the same nonce
    ("replacement transaction underpriced"). Live networks estimate already."""
    from ape import networks
    from ape.exceptions import ProviderNotConnectedError

    try:
        return networks.provider.network.gas_limit == "max"
    except ProviderNotConnectedError:  # let ape say so when sending
        return False


#: An allowance ERC-20 transfers never decrease.
UNLIMITED_ALLOWANCE = 2**256 - 1


class LilypadContracts(MediationActions, ContractJobActions):
    """The deployed system, with one method per protocol action.

    Every sending method takes the signing ape ``account`` and passes extra
    keyword arguments (``gas_limit``, ``max_fee``, ...) to ape, and returns
    the receipt. Sends and reads go through
    :func:`~lilypad.chain.tx.send_with_retries` with ``retries``/``backoff``:
    transient RPC failures are retried, reverts raise ape's custom error
    (``controller.WrongState`` ...) at once.
    """

    def __init__(
        self,
        deployment: Deployment,
        *,
        project: Any | None = None,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        missing = [key for key in CONTRACT_NAMES if key not in deployment.contracts]
        if missing:
            raise ChainError(f"the deployment lacks {', '.join(missing)}")
        self.deployment = deployment
        self.retries = retries
        self.backoff = backoff
        containers = load_contract_containers(project)
        self.instances: dict[str, Any] = {
            key: containers[key].at(deployment.contracts[key], fetch_from_explorer=False, detect_proxy=False)
            for key in CONTRACT_NAMES
        }
        self.token = self.instances["token"]
        self.storage = self.instances["storage"]
        self.payments = self.instances["payments"]
        self.mediation = self.instances["mediation"]
        self.mediator_registry = self.instances["mediator_registry"]
        self.controller = self.instances["controller"]
        self.job_creator = self.instances["job_creator"]
        self._permit_domain: Any = None

    def __repr__(self) -> str:
        d = self.deployment
        return f"<LilypadContracts {d.ecosystem}:{d.network} controller={d.contracts['controller']}>"

    @property
    def addresses(self) -> dict[str, str]:
        """Deployment key -> checksummed address."""
        return {key: _address(address) for key, address in self.deployment.contracts.items()}

    def find_events(self, name: str) -> list[Any]:
        """Every deployed contract's ape ``ContractEvent`` called ``name`` (may be several)."""
        found = []
        for instance in self.instances.values():
            if any(abi.name == name for abi in instance.contract_type.events):
                found.append(getattr(instance, name))
        if not found:
            raise ChainError(f"no lilypad contract emits an event called {name!r}")
        return found

    # -------------------------------------------------------------- plumbing

    def _send(self, method: Any, *args: Any, account: Any, **tx: Any) -> Any:
        if "gas_limit" in tx or "gas" in tx or not _sends_block_gas_limit():
            return send_with_retries(method, *args, retries=self.retries, backoff=self.backoff, sender=account, **tx)

        def estimated() -> Any:
            # Each try estimates afresh (the state may have moved on since the last).
            # The estimate runs in the latest block's context: a call that only
            # works in the next block (assignMediator right after checkResult on
            # an auto-mined chain) or that reverts is sent as ape would send it,
            # so it succeeds, or reverts with its decoded custom error, as before.
            from ape.exceptions import ContractLogicError

            try:
                limit = {"gas_limit": method.estimate_gas_cost(*args, sender=account, **tx) * GAS_MARGIN_PERCENT // 100}
            except ContractLogicError:
                limit = {}
            return method(*args, sender=account, **tx, **limit)

        estimated.__qualname__ = getattr(method, "__qualname__", None) or repr(method)
        return send_with_retries(estimated, retries=self.retries, backoff=self.backoff)

    def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return send_with_retries(fn, *args, retries=self.retries, backoff=self.backoff, **kwargs)

    def head_block(self) -> int:
        """The chain head's block number (read; ``chain.blocks.height`` answers 0 offline)."""
        from ape import chain

        return int(self._read(lambda: chain.blocks.head.number))

    def chain_time(self) -> int:
        """The chain head's timestamp: the clock every deal window is measured by."""
        from ape import chain

        return int(self._read(lambda: chain.blocks.head.timestamp))

    # -------------------------------------------------------------- deal actions

    def agree(self, deal: Deal, account: Any, **tx: Any) -> Any:
        """Agree to ``deal`` as its job creator or resource provider (escrows the deposit:
        ``deal.job_creator_deposit`` / ``deal.resource_provider_deposit``, see
        :meth:`ensure_allowance`)."""
        return self._send(self.controller.agree, deal.as_tuple(), account=account, **tx)

    def agree_paying(self, deal: Deal, account: Any, amount: int, **tx: Any) -> Any:
        """Agree to ``deal`` and escrow ``amount``: a plain ``agree`` when the
        allowance already covers it, else ``agreeWithPermit`` with an EIP-2612
        permit for exactly ``amount`` signed by ``account`` (no approval
        transaction). Should the permit not take (a concurrent permit used the
        nonce), it falls back to approve + agree."""
        return self._send_paying(self.controller.agree, self.controller.agreeWithPermit, deal, account, amount, **tx)

    def check_result_paying(self, deal: Deal, account: Any, amount: int, **tx: Any) -> Any:
        """:meth:`check_result`, paying the mediation fee as :meth:`agree_paying` pays the deposit."""
        return self._send_paying(self.controller.checkResult, self.controller.checkResultWithPermit, deal, account,
                                 amount, **tx)

    def _send_paying(self, plain: Any, with_permit: Any, deal: Deal, account: Any, amount: int, **tx: Any) -> Any:
        from ape.exceptions import ContractLogicError

        if amount == 0 or self.allowance(account) >= amount:
            return self._send(plain, deal.as_tuple(), account=account, **tx)
        permit = self.sign_permit(account, amount)
        try:
            return self._send(with_permit, deal.as_tuple(), permit.value, permit.deadline, permit.v, permit.r,
                              permit.s, account=account, **tx)
        except ContractLogicError as err:
            if not is_custom_error(err, self.token, "ERC20InsufficientAllowance"):
                raise
        self.ensure_allowance(account, amount, **tx)
        return self._send(plain, deal.as_tuple(), account=account, **tx)

    def sign_permit(self, account: Any, amount: int, *, spender: Any | None = None, valid_for: int = 3600) -> Any:
        """An EIP-2612 permit, signed by ``account``, letting ``spender`` (default:
        Payments) take ``amount`` of its tokens for ``valid_for`` seconds of chain time."""
        from ape import chain

        from lilypad.protocol.permit import sign_permit

        owner = _address(account)
        nonce = int(self._read(self.token.nonces, owner))
        deadline = int(self._read(lambda: chain.blocks.head.timestamp)) + valid_for
        return sign_permit(account, self.permit_domain(), _address(spender or self.payments), amount, nonce, deadline)

    def permit_domain(self) -> Any:
        """The token's EIP-712 domain, read once from its ``eip712Domain()`` (EIP-5267)."""
        from lilypad.protocol.permit import PermitDomain

        if self._permit_domain is None:
            d = self._read(self.token.eip712Domain)
            self._permit_domain = PermitDomain(name=str(d.name), version=str(d.version), chain_id=int(d.chainId),
                                               verifying_contract=_address(d.verifyingContract))
        return self._permit_domain

    def add_result(self, deal: Deal, data_cid_text: str, instruction_count: int, account: Any, **tx: Any) -> Any:
        """Post the result's CID (``bafy...``; stored as its sha2-256 digest) as the provider."""
        digest = cid_to_digest(data_cid_text)
        return self._send(self.controller.addResult, deal.as_tuple(), digest, instruction_count, account=account, **tx)

    def accept_result(self, deal: Deal, account: Any, **tx: Any) -> Any:
        return self._send(self.controller.acceptResult, deal.as_tuple(), account=account, **tx)

    def check_result(self, deal: Deal, account: Any, **tx: Any) -> Any:
        """Send the result to mediation as the job creator (escrows ``mediation_fee``)."""
        return self._send(self.controller.checkResult, deal.as_tuple(), account=account, **tx)

    def timeout_agree(self, deal: Deal, account: Any, **tx: Any) -> Any:
        return self._send(self.controller.timeoutAgree, deal.as_tuple(), account=account, **tx)

    def timeout_submit_result(self, deal: Deal, account: Any, **tx: Any) -> Any:
        return self._send(self.controller.timeoutSubmitResult, deal.as_tuple(), account=account, **tx)

    def timeout_judge_result(self, deal: Deal, account: Any, **tx: Any) -> Any:
        return self._send(self.controller.timeoutJudgeResult, deal.as_tuple(), account=account, **tx)

    def timeout_mediate_result(self, deal: Deal, account: Any, **tx: Any) -> Any:
        return self._send(self.controller.timeoutMediateResult, deal.as_tuple(), account=account, **tx)

    def timeout(self, deal: Deal, account: Any, **tx: Any) -> Any:
        """The timeout matching the deal's current state (raises ``ValueError`` if it has none)."""
        state = self.agreement(deal).state
        name = TIMEOUT_FOR_STATE.get(state)
        if name is None:
            raise ValueError(f"a deal in state {state.name} has no timeout")
        return self._send(getattr(self.controller, name), deal.as_tuple(), account=account, **tx)

    # -------------------------------------------------------------- deal reads

    def agreement(self, deal_id: DealRef) -> Agreement:
        a = self._read(self.storage.getAgreement, deal_id_bytes(deal_id))
        return Agreement(
            state=AgreementState(int(a.state)),
            job_creator_agreed=bool(a.jobCreatorAgreed),
            resource_provider_agreed=bool(a.resourceProviderAgreed),
            created_at=int(a.createdAt),
            agreed_at=int(a.agreedAt),
            results_submitted_at=int(a.resultsSubmittedAt),
            mediation_requested_at=int(a.mediationRequestedAt),
            instruction_count=int(a.instructionCount),
            results_block=int(a.resultsBlock),
        )

    def state(self, deal_id: DealRef) -> AgreementState:
        return self.agreement(deal_id).state

    def result(self, deal_id: DealRef) -> tuple[str | None, int]:
        """``(data CID text, instruction count)``; ``(None, 0)`` while there is no result."""
        r = self._read(self.storage.getResult, deal_id_bytes(deal_id))
        digest = bytes(r.dataCid)
        if digest == ZERO_DIGEST:
            return None, int(r.instructionCount)
        return digest_to_cid(digest), int(r.instructionCount)

    def escrow(self, deal_id: DealRef, *, block_id: int | None = None) -> Escrow:
        """The deal's escrow (as of block ``block_id``; default: the latest)."""
        e = self._read(self.payments.getEscrow, deal_id_bytes(deal_id), **_at(block_id))
        return Escrow(job_creator=int(e.jobCreator), resource_provider=int(e.resourceProvider), settled=bool(e.settled))

    def reputation(self, address: Any) -> Reputation:
        r = self._read(self.storage.getReputation, _address(address))
        return Reputation(
            deals_agreed=int(r.dealsAgreed),
            results_submitted=int(r.resultsSubmitted),
            results_accepted=int(r.resultsAccepted),
            results_checked=int(r.resultsChecked),
            mediations_passed=int(r.mediationsPassed),
            mediations_failed=int(r.mediationsFailed),
            submit_timeouts=int(r.submitTimeouts),
            other_timeouts=int(r.otherTimeouts),
            value_paid=int(r.valuePaid),
            value_verified=int(r.valueVerified),
        )

    # -------------------------------------------------------------- tokens

    def balance_of(self, who: Any, *, block_id: int | None = None) -> int:
        """Token balance of an account, a contract or an address (as of block
        ``block_id``; default: the latest)."""
        return int(self._read(self.token.balanceOf, _address(who), **_at(block_id)))

    def allowance(self, owner: Any, spender: Any | None = None) -> int:
        """What ``spender`` (default: Payments) may take from ``owner``."""
        return int(self._read(self.token.allowance, _address(owner), _address(spender or self.payments)))

    def ensure_allowance(self, account: Any, amount: int, *, spender: Any | None = None, unlimited: bool = False,
                         **tx: Any) -> Any | None:
        """Approve ``spender`` (default: Payments) for ``amount`` if the current
        allowance is below it; returns the approval's receipt, or ``None`` when
        nothing had to be sent. ``unlimited`` approves ``2**256 - 1`` instead, once
        (the long-running services do: the Payments contract moves tokens only as
        the controller's deal rules say, and an unlimited allowance saves an
        approval per deal and the allowance write in every ``transferFrom``)."""
        spender_address = _address(spender or self.payments)
        if self.allowance(account, spender_address) >= amount:
            return None
        value = UNLIMITED_ALLOWANCE if unlimited else amount
        return self._send(self.token.approve, spender_address, value, account=account, **tx)
