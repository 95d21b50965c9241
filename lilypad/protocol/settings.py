"""The controller's protocol settings, as pure Python (no chain).

:class:`ProtocolSettings` mirrors ``ProtocolSettings`` in
``contracts/interfaces/LilypadTypes.sol``: the tax, its treasury share, the
audit rate, the catch reward, the minimum mediator stake and the slash per
offence. The controller keeps them as versions (the admin appends one with
``setProtocolSettings``; version 0, made by its constructor, switches every
mechanism off); a deal names the version it is made under
(:class:`~lilypad.protocol.deal.DealProtocol`) and keeps it for life. The
bounds here are the controller's ``MAX_*`` constants, so a value accepted here
is one ``setProtocolSettings`` accepts. (Not to be confused with
:mod:`lilypad.settings`, the services' own configuration.)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEVNET_DEAL_DEFAULTS",
    "DealDefaults",
    "NETWORK_DEAL_DEFAULTS",
    "MAX_AUDIT_BPS",
    "MAX_MIN_MEDIATOR_STAKE",
    "MAX_REWARD_BPS",
    "MAX_TAX_BPS",
    "NETWORK_SETTINGS",
    "ProtocolSettings",
    "deal_defaults",
]

#: Basis points in one (100 %).
BPS = 10_000
#: ``LilypadController.MAX_TAX_BPS``: 10 % of a job's cost.
MAX_TAX_BPS = 1_000
#: ``LilypadController.MAX_AUDIT_BPS``: one deal in two.
MAX_AUDIT_BPS = 5_000
#: ``LilypadController.MAX_REWARD_BPS``: half the jackpot.
MAX_REWARD_BPS = 5_000
#: ``LilypadController.MAX_MIN_MEDIATOR_STAKE`` (bounds ``mediatorSlash`` too): one million LP.
MAX_MIN_MEDIATOR_STAKE = 1_000_000 * 10**18


class ProtocolSettings(BaseModel):
    """One version of the protocol settings. Amounts in LP base units, rates in
    basis points; the defaults are version 0's (everything off)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Of each paid job cost, taken from the provider's payment.
    tax_bps: int = Field(0, ge=0, le=MAX_TAX_BPS)
    #: Of the tax, to the treasury; the rest goes to the jackpot.
    treasury_share_bps: int = Field(0, ge=0, le=BPS)
    #: Chance that an unchecked result is audited (mediated at the jackpot's cost).
    audit_bps: int = Field(0, ge=0, le=MAX_AUDIT_BPS)
    #: Of the jackpot, paid out when a mediation rejects a result.
    reward_bps: int = Field(0, ge=0, le=MAX_REWARD_BPS)
    #: Stake every mediator a new deal names must hold at its first agree (0: no check).
    min_mediator_stake: int = Field(0, ge=0, le=MAX_MIN_MEDIATOR_STAKE)
    #: Taken from a mediator's stake per offence on a deal (silent, or in the minority).
    mediator_slash: int = Field(0, ge=0, le=MAX_MIN_MEDIATOR_STAKE)

    def as_tuple(self) -> tuple[int, int, int, int, int, int]:
        """The value to pass wherever the contracts take a ``ProtocolSettings``."""
        return (self.tax_bps, self.treasury_share_bps, self.audit_bps, self.reward_bps,
                self.min_mediator_stake, self.mediator_slash)

    @classmethod
    def from_chain(cls, value: Any) -> ProtocolSettings:
        """From the struct ``getProtocolSettings`` returns (ape's struct, or a plain tuple)."""
        if hasattr(value, "taxBps"):
            return cls(tax_bps=int(value.taxBps), treasury_share_bps=int(value.treasuryShareBps),
                       audit_bps=int(value.auditBps), reward_bps=int(value.rewardBps),
                       min_mediator_stake=int(value.minMediatorStake), mediator_slash=int(value.mediatorSlash))
        tax, share, audit, reward, min_stake, slash = (int(v) for v in value)
        return cls(tax_bps=tax, treasury_share_bps=share, audit_bps=audit, reward_bps=reward,
                   min_mediator_stake=min_stake, mediator_slash=slash)

    @property
    def all_off(self) -> bool:
        """Whether every mechanism is off (version 0's values)."""
        return self == ProtocolSettings()


#: What ``ape run deploy`` applies on a public network (docs/protocol.md, "Protocol settings"),
#: chosen with the twin (docs/twin.md, "The defaults"): 4 % tax, a fifth of it to the treasury
#: (the rest, 3.2 % of each job cost, funds the audits), 2.5 % audits, a 1 % catch reward, 100 LP
#: of stake and 50 LP slashed per offence. The local devnet keeps version 0.
NETWORK_SETTINGS = ProtocolSettings(
    tax_bps=400,
    treasury_share_bps=2_000,
    audit_bps=250,
    reward_bps=100,
    min_mediator_stake=100 * 10**18,
    mediator_slash=50 * 10**18,
)


class DealDefaults(BaseModel):
    """The deal terms an honest party asks for by default under some protocol settings: the
    smallest results-collateral multiple a job creator accepts (a provider offers it) and the
    mediator panel size ``k`` (a job creator asks for it; a provider accepts no smaller one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    results_collateral_multiple: int = Field(ge=1, le=100)
    consortium_size: int = Field(ge=1, le=7)


#: Without staked mediators (the devnet's version 0): the original's multiple of 2 and one
#: mediator (nothing at stake makes a panel no safer than one member).
DEVNET_DEAL_DEFAULTS = DealDefaults(results_collateral_multiple=2, consortium_size=1)
#: With staked mediators (:data:`NETWORK_SETTINGS`), from the twin: a fake result loses
#: ``audit rate * (multiple + 1)`` of a job cost = 1.025 job costs per deal in expectation, more
#: than the work it saves; a panel of 3 outvotes and slashes one bribed mediator.
NETWORK_DEAL_DEFAULTS = DealDefaults(results_collateral_multiple=40, consortium_size=3)


def deal_defaults(settings: ProtocolSettings) -> DealDefaults:
    """The default deal terms under ``settings``: the network's when mediators must stake,
    the devnet's otherwise."""
    return NETWORK_DEAL_DEFAULTS if settings.min_mediator_stake > 0 else DEVNET_DEAL_DEFAULTS
