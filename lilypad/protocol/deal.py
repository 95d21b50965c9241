"""Deal terms, agreement states and the deal id, as pure Python (no chain).

A deal's id is ``keccak256(abi.encode(deal))`` — exactly what
``LilypadController.getDealId`` computes — so the solver, both parties and the
contracts all derive the same id from the same terms.

A :class:`Deal` is its own wire format: ``deal.model_dump(mode="json")`` is
the JSON the solver stores and serves (``nonce`` as ``0x``-hex, addresses
checksummed, ``mediators`` a list) and ``Deal.model_validate(...)`` /
``Deal.model_validate_json(...)`` read it back.
"""

from __future__ import annotations

import enum
import secrets
from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lilypad.protocol.fields import HexBytes32

__all__ = [
    "AgreementState",
    "Deal",
    "DealMembers",
    "DealPricing",
    "DealProtocol",
    "DealTimeouts",
    "Verdict",
    "DEAL_ABI_TYPE",
    "TERMINAL_STATES",
    "TIMEOUT_FOR_STATE",
    "JobState",
    "parse_state",
    "state_name",
]

UINT32_MAX = 2**32 - 1
UINT96_MAX = 2**96 - 1

DEAL_ABI_TYPE = (
    "((address,address,address,address[]),"
    "(uint32,uint32,uint32,uint32,uint96,uint96),"
    "(uint96,uint96,uint16,uint96),"
    "bytes32,"
    "(uint8,uint32))"
)

#: Largest mediator panel a deal may ask for (``LilypadMediation.MAX_CONSORTIUM``).
MAX_CONSORTIUM = 7


class Verdict(enum.IntEnum):
    """Mirrors ``Verdict`` in ``LilypadTypes.sol``: what a mediator decides (and a panel votes on)."""

    NONE = 0
    ACCEPT = 1
    REJECT = 2
    NON_DETERMINISTIC = 3


class AgreementState(enum.IntEnum):
    """Mirrors ``AgreementState`` in ``contracts/interfaces/LilypadTypes.sol``."""

    NONE = 0
    DEAL_NEGOTIATING = 1
    DEAL_AGREED = 2
    RESULTS_SUBMITTED = 3
    RESULTS_ACCEPTED = 4
    RESULTS_CHECKED = 5
    MEDIATION_ACCEPTED = 6
    MEDIATION_REJECTED = 7
    TIMEOUT_AGREE = 8
    TIMEOUT_SUBMIT_RESULTS = 9
    TIMEOUT_JUDGE_RESULTS = 10
    TIMEOUT_MEDIATE_RESULTS = 11
    #: The mediator's own runs of the job disagreed: the job, not the provider, is at fault.
    MEDIATION_NON_DETERMINISTIC = 12

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


class JobState(enum.IntEnum):
    """Mirrors ``ILilypadJobRunner.JobState`` (``LilypadOnChainJobCreator``)."""

    NONE = 0
    OPEN = 1  # waiting for a deal, or following one
    COMPLETED = 2  # the result delivered and the money settled
    FAILED = 3  # ended without a result; the payee refunded


TERMINAL_STATES = frozenset(
    {
        AgreementState.RESULTS_ACCEPTED,
        AgreementState.MEDIATION_ACCEPTED,
        AgreementState.MEDIATION_REJECTED,
        AgreementState.TIMEOUT_AGREE,
        AgreementState.TIMEOUT_SUBMIT_RESULTS,
        AgreementState.TIMEOUT_JUDGE_RESULTS,
        AgreementState.TIMEOUT_MEDIATE_RESULTS,
        AgreementState.MEDIATION_NON_DETERMINISTIC,
    }
)

def state_name(state: AgreementState) -> str:
    """The contracts' name of ``state``: ``DEAL_AGREED`` is ``"DealAgreed"``."""
    return "".join(part.capitalize() for part in state.name.split("_"))


_STATE_NAMES = {state_name(s).lower(): s for s in AgreementState}


def parse_state(text: str | int) -> AgreementState:
    """An agreement state from its contract name (``DealAgreed``), Python name
    (``DEAL_AGREED``) or number; ``ValueError`` otherwise."""
    if isinstance(text, int) or text.strip().isdigit():
        return AgreementState(int(text))
    state = _STATE_NAMES.get(text.strip().lower().replace("_", "").replace("-", ""))
    if state is None:
        raise ValueError(f"unknown agreement state {text!r}")
    return state


#: The controller function that ends a deal stuck in each open state.
TIMEOUT_FOR_STATE = {
    AgreementState.DEAL_NEGOTIATING: "timeoutAgree",
    AgreementState.DEAL_AGREED: "timeoutSubmitResult",
    AgreementState.RESULTS_SUBMITTED: "timeoutJudgeResult",
    AgreementState.RESULTS_CHECKED: "timeoutMediateResult",
}


def _address(value: Any) -> str:
    return to_checksum_address(str(getattr(value, "address", value)))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class DealMembers(_Frozen):
    solver: str
    job_creator: str
    resource_provider: str
    mediators: tuple[str, ...]

    @field_validator("solver", "job_creator", "resource_provider", mode="before")
    @classmethod
    def _checksum(cls, value: Any) -> str:
        return _address(value)

    @field_validator("mediators", mode="before")
    @classmethod
    def _checksum_all(cls, value: Any) -> tuple[str, ...]:
        return tuple(_address(v) for v in value)


class DealTimeouts(_Frozen):
    """Windows in seconds; collateral in token base units."""

    agree: int = Field(3600, ge=0, le=UINT32_MAX)
    submit_results: int = Field(900, ge=0, le=UINT32_MAX)
    judge_results: int = Field(3600, ge=0, le=UINT32_MAX)
    mediate_results: int = Field(3600, ge=0, le=UINT32_MAX)
    submit_results_collateral: int = Field(1, ge=0, le=UINT96_MAX)
    judge_results_collateral: int = Field(1, ge=0, le=UINT96_MAX)


class DealPricing(_Frozen):
    instruction_price: int = Field(1, ge=0, le=UINT96_MAX)
    payment_collateral: int = Field(2, ge=0, le=UINT96_MAX)
    results_collateral_multiple: int = Field(2, ge=0, le=2**16 - 1)
    mediation_fee: int = Field(1, ge=0, le=UINT96_MAX)


class DealProtocol(_Frozen):
    """The protocol terms of a deal: the mediator panel's size ``k`` (1, or odd
    up to :data:`MAX_CONSORTIUM`) and the protocol settings version the deal
    is made under (must be the controller's current one at the first agree)."""

    consortium_size: int = Field(1, ge=1, le=MAX_CONSORTIUM)
    settings_version: int = Field(0, ge=0, le=UINT32_MAX)

    @field_validator("consortium_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("the mediator panel size must be odd (1, 3, 5 or 7)")
        return value


class Deal(_Frozen):
    members: DealMembers
    timeouts: DealTimeouts = DealTimeouts()
    pricing: DealPricing = DealPricing()
    nonce: HexBytes32 = Field(default_factory=lambda: secrets.token_bytes(32))
    protocol: DealProtocol = DealProtocol()

    def as_tuple(self) -> tuple:
        """The value to pass wherever the contracts take a ``Deal``."""
        m, t, p = self.members, self.timeouts, self.pricing
        return (
            (m.solver, m.job_creator, m.resource_provider, list(m.mediators)),
            (
                t.agree,
                t.submit_results,
                t.judge_results,
                t.mediate_results,
                t.submit_results_collateral,
                t.judge_results_collateral,
            ),
            (p.instruction_price, p.payment_collateral, p.results_collateral_multiple, p.mediation_fee),
            self.nonce,
            (self.protocol.consortium_size, self.protocol.settings_version),
        )

    @property
    def deal_id(self) -> bytes:
        return keccak(encode([DEAL_ABI_TYPE], [self.as_tuple()]))

    # Money, as LilypadController computes it -------------------------------
    def job_cost(self, instruction_count: int) -> int:
        return self.pricing.instruction_price * instruction_count

    def results_collateral(self, instruction_count: int) -> int:
        return self.job_cost(instruction_count) * self.pricing.results_collateral_multiple

    @property
    def mediation_round_window(self) -> int:
        """Seconds a mediation round lasts: ``mediate_results`` for a panel of
        one (its verdict), twice that for a larger panel (commit, then reveal)."""
        rounds = 1 if self.protocol.consortium_size == 1 else 2
        return rounds * self.timeouts.mediate_results

    @property
    def job_creator_deposit(self) -> int:
        """What the job creator escrows when it agrees."""
        return self.pricing.payment_collateral + self.timeouts.judge_results_collateral

    @property
    def resource_provider_deposit(self) -> int:
        """What the resource provider escrows when it agrees."""
        return self.timeouts.submit_results_collateral

