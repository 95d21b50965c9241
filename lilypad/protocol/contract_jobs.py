"""Smart-contract jobs (``LilypadOnChainJobCreator``), as pure Python: their options, their
deals' nonces, and the check that a job offer is the one a contract job asked for.

A contract job is made by ``runJob`` (default :class:`JobOptions`) or ``runJobWithOptions``;
its ``JobTerms`` event carries its module, its ``Key=Value`` inputs and its options, indexed by
its id. The job creator contract is the job creator of the job's deals, so nobody signs its job
offers: a relayer posts one with ``contract_job_id`` set and no signature, and whoever relies on
it (the solver before matching, the provider before running, the mediator before judging)
checks it against the chain with :func:`contract_offer_problems`. A deal for the job carries
:func:`contract_deal_nonce` of the job and its attempt, which the contract requires at
``agree``: the deal id commits to the job, whose event commits to its module and inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

if TYPE_CHECKING:
    from lilypad.protocol.offers import JobOffer

__all__ = ["MAX_ATTEMPTS", "ContractJob", "JobOptions", "contract_deal_nonce", "contract_offer_problems"]

#: ``LilypadOnChainJobCreator.MAX_ATTEMPTS``: deals a job may go through before it fails.
MAX_ATTEMPTS = 3
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class JobOptions:
    """``JobOptions``: a job's terms, fixed when it is made (token base units, seconds)."""

    max_payment: int
    relayer_fee: int
    timeout: int
    callback_gas_limit: int
    check_bps: int = 0
    target: str = ZERO_ADDRESS

    def as_tuple(self) -> tuple[int, int, int, int, int, str]:
        """The value every contract call that names the job passes back."""
        return (self.max_payment, self.relayer_fee, self.timeout, self.callback_gas_limit, self.check_bps,
                self.target)

    @classmethod
    def from_chain(cls, value: Any) -> JobOptions:
        if hasattr(value, "maxPayment"):
            return cls(int(value.maxPayment), int(value.relayerFee), int(value.timeout), int(value.callbackGasLimit),
                       int(value.checkBps), to_checksum_address(str(value.target)))
        pay, fee, timeout, gas, check, target = value
        return cls(int(pay), int(fee), int(timeout), int(gas), int(check), to_checksum_address(str(target)))

    @property
    def targeted(self) -> str | None:
        return None if int(self.target, 16) == 0 else to_checksum_address(self.target)


@dataclass(frozen=True)
class ContractJob:
    """A contract job as the chain has it: what it asked for (its ``JobTerms`` event) and
    where it stands (``getJob``)."""

    id: int
    caller: str
    payee: str
    module: str
    inputs: tuple[str, ...]
    options: JobOptions
    state: int  # JobState: 0 none, 1 open, 2 completed, 3 failed
    attempts: int
    held: int
    relayer: str
    deal_id: bytes  # the live deal (32 zero bytes: none)
    created_at: int

    @property
    def open(self) -> bool:
        return self.state == 1

    @property
    def live_deal(self) -> bytes | None:
        return None if self.deal_id == bytes(32) else self.deal_id


def contract_deal_nonce(job_creator: str, job_id: int, attempt: int) -> bytes:
    """``LilypadOnChainJobCreator.dealNonce(id, attempt)`` of the contract at ``job_creator``."""
    return keccak(encode(["address", "uint256", "uint256"], [to_checksum_address(job_creator), job_id, attempt]))


def contract_offer_problems(job: ContractJob, offer: JobOffer, job_creator: str) -> list[str]:
    """Why ``offer`` is not a job offer for contract job ``job`` of the job creator contract
    at ``job_creator`` (empty: it is): its job creator, id, module and inputs must be the job's,
    its target the job's, and its nonce one of the job's deal nonces."""
    from lilypad.exceptions import InputError
    from lilypad.modules.inputs import parse_inputs

    problems = []
    if offer.job_creator.lower() != job_creator.lower():
        problems.append(f"its job creator {offer.job_creator} is not the job creator contract {job_creator}")
    if offer.contract_job_id != job.id:
        problems.append(f"it is for contract job {offer.contract_job_id}, not {job.id}")
    if offer.module.ref != job.module:
        problems.append(f"its module {offer.module.ref!r} is not the job's {job.module!r}")
    try:
        inputs = dict(parse_inputs(job.inputs))
    except InputError as exc:
        problems.append(f"the job's inputs do not parse: {exc}")
    else:
        if dict(offer.inputs) != inputs:
            problems.append("its inputs are not the job's")
    if offer.inputs_cid is not None:
        problems.append("a contract job has no input files")
    target = job.options.targeted
    if (offer.target or None) != target and not (offer.target and target and offer.target.lower() == target.lower()):
        problems.append(f"its target {offer.target} is not the job's {target}")
    nonces = {contract_deal_nonce(job_creator, job.id, a) for a in range(MAX_ATTEMPTS)}
    if bytes(offer.nonce) not in nonces:
        problems.append("its nonce is none of the job's deal nonces")
    return problems
