"""Mediation, the mediator registry and the protocol settings, as typed wrappers.

:class:`MediationActions` is the part of
:class:`~lilypad.chain.contracts.LilypadContracts` (which inherits it) that
talks to ``LilypadMediation``, ``LilypadMediatorRegistry`` and the
controller's mediation verdicts, settings and pot: who judges a checked (or
audited) deal (:class:`Panel`, :meth:`~MediationActions.draw_panel`,
:meth:`~MediationActions.assign_mediator`), how a mediator voted
(:class:`Vote`), stakes (:class:`MediatorStake`), settings versions
(:class:`~lilypad.protocol.settings.ProtocolSettings`) and the jackpot and
treasury (:class:`Pot`).

**The draw.** A check (or an audit) requests a panel of
``deal.protocol.consortium_size`` mediators, drawn from the deal's list with
the hash of the block that included the request (``Panel.draw_block``), so
nobody knows it when they act. Anyone may read it once that block is sealed
(:meth:`~MediationActions.draw_panel`, the contract's ``drawPanel`` view) and
fix it with ``assignMediator`` while the EVM still knows that hash
(:data:`BLOCKHASH_WINDOW` blocks); after that the next ``assignMediator``
draws afresh from a later block (``PanelRedrawn``) instead of fixing anything.
A panel of one gives its verdict with ``mediationAcceptResult`` & co.; a larger
panel commits and reveals (``commitVerdict`` / ``revealVerdict``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from lilypad.chain.tx import is_custom_error
from lilypad.protocol.deal import Deal, Verdict
from lilypad.protocol.settings import ProtocolSettings

__all__ = ["BLOCKHASH_WINDOW", "MediationActions", "MediatorStake", "Panel", "Pot", "ProtocolView", "Vote"]

#: How many past blocks' hashes the EVM's ``BLOCKHASH`` knows: a draw not fixed
#: within this many blocks of its draw block is redrawn, never computed.
BLOCKHASH_WINDOW = 256

T = TypeVar("T")


@dataclass(frozen=True)
class MediatorStake:
    """``LilypadMediatorRegistry.getStake``: a mediator's stake (LP base units).

    ``amount`` 0: not registered. ``unbonding_since`` 0: bonded; otherwise when
    ``requestUnbond`` was sent, and the stake may be withdrawn from ``withdrawable_at``.
    """

    amount: int
    unbonding_since: int
    withdrawable_at: int | None

    @property
    def registered(self) -> bool:
        return self.amount > 0

    @property
    def unbonding(self) -> bool:
        return self.unbonding_since > 0

    def qualifies(self, min_stake: int) -> bool:
        """Whether a new deal may name this mediator under the protocol minimum ``min_stake``."""
        return min_stake == 0 or (self.registered and not self.unbonding and self.amount >= min_stake)


@dataclass(frozen=True)
class Panel:
    """``LilypadMediation.getPanel``: the current mediation round of a deal.

    ``round`` is 1-based (0: never checked nor audited); ``members`` are empty
    until the round's draw is fixed (``assigned``); ``audited``: the fee came
    from the jackpot (a random audit), not from the job creator.
    """

    draw_block: int
    round: int
    size: int
    commits: int
    reveals: int
    assigned: bool
    audited: bool
    members: tuple[str, ...]

    @classmethod
    def from_chain(cls, value: Any) -> Panel:
        """From what ``getPanel`` returns, ``(panel, members)`` (ape gives the
        struct as a plain tuple there, or as a struct with named fields)."""
        p, members = value
        draw_block, round_, size, commits, reveals, assigned, audited = _fields(
            p, ("drawBlock", "round", "size", "commits", "reveals", "assigned", "audited"))
        return cls(draw_block=int(draw_block), round=int(round_), size=int(size), commits=int(commits),
                   reveals=int(reveals), assigned=bool(assigned), audited=bool(audited),
                   members=tuple(_address(m) for m in members))

    @property
    def requested(self) -> bool:
        return self.round > 0

    def draw_forgotten(self, head: int) -> bool:
        """Whether the draw block's hash is (or by the next block will be) out of
        ``BLOCKHASH``'s reach at chain head ``head``: then the next
        ``assignMediator`` redraws instead of fixing the draw."""
        return not self.assigned and head - self.draw_block >= BLOCKHASH_WINDOW


@dataclass(frozen=True)
class Vote:
    """``LilypadMediation.getVote``: a panel member's commitment and revealed verdict."""

    commitment: bytes
    round: int
    verdict: Verdict
    slashed: bool

    @classmethod
    def from_chain(cls, value: Any) -> Vote:
        """From what ``getVote`` returns (a struct, or a plain tuple)."""
        commitment, round_, verdict, slashed = _fields(value, ("commitment", "round", "verdict", "slashed"))
        return cls(commitment=bytes(commitment), round=int(round_), verdict=Verdict(int(verdict)),
                   slashed=bool(slashed))


@dataclass(frozen=True)
class Pot:
    """``LilypadPayments.getPot``: the jackpot and the treasury's unclaimed balance (LP base units)."""

    jackpot: int
    treasury: int


@dataclass(frozen=True)
class ProtocolView:
    """What the status page shows of the protocol: the pot and the current settings."""

    jackpot: int
    treasury: int
    settings_version: int
    settings: ProtocolSettings


def _fields(struct: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    """A returned struct's fields in ``names`` order, by name when ape named them, else by position."""
    if all(hasattr(struct, name) for name in names):
        return tuple(getattr(struct, name) for name in names)
    values = tuple(struct)
    if len(values) != len(names):
        raise ValueError(f"expected a struct of {len(names)} fields ({', '.join(names)}), got {values!r}")
    return values


def _address(value: Any) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(str(getattr(value, "address", value)))


#: ``drawPanel`` reverts that mean "no draw to read now" rather than a fault.
_NO_DRAW_ERRORS = ("DrawNotReady", "DrawExpired", "NotEnoughMediators", "MediationNotRequested")


class MediationActions:
    """Mediation, registry, settings and pot methods of
    :class:`~lilypad.chain.contracts.LilypadContracts` (see the module docstring).
    Sending methods take the signing ape ``account`` and return the receipt
    unless they say otherwise."""

    mediation: Any
    mediator_registry: Any
    controller: Any
    payments: Any

    if TYPE_CHECKING:  # provided by LilypadContracts

        def _send(self, method: Any, *args: Any, account: Any, **tx: Any) -> Any: ...

        def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

        def head_block(self) -> int: ...

    # -------------------------------------------------------------- the panel

    def panel(self, deal: Deal, *, block_id: int | None = None) -> Panel:
        """The deal's current mediation round (as of block ``block_id``; default: the latest)."""
        at = {} if block_id is None else {"block_id": block_id}
        return Panel.from_chain(self._read(self.mediation.getPanel, deal.deal_id, **at))

    def draw_panel(self, deal: Deal) -> tuple[str, ...] | None:
        """The members of the current round: the fixed ones once assigned, else
        what the draw gives (``drawPanel``, the same rule ``assignMediator``
        fixes). ``None`` when there is nothing to read: never requested, its
        hash forgotten (the next
        ``assignMediator`` redraws), or too few eligible mediators."""
        from ape.exceptions import ContractLogicError

        panel = self.panel(deal)
        if not panel.requested:
            return None
        if panel.assigned:
            return panel.members
        # The seed is the hash of the draw block (the check's), sealed already, but a call at
        # that block would revert with DrawNotReady: read in the pending block, as an
        # assignMediator sent now would run (a chain with no other traffic mines no block
        # after the check until somebody sends one; where "pending" means the head, the
        # call reverts and this answers None until the next block).
        at = {"block_id": "pending"} if self.head_block() <= panel.draw_block else {}
        min_stake = self.get_protocol_settings(deal.protocol.settings_version).min_mediator_stake
        try:
            drawn = self._read(self.mediation.drawPanel, deal.deal_id, list(deal.members.mediators), min_stake,
                               **at)
        except ContractLogicError as err:
            if any(is_custom_error(err, self.mediation, name) for name in _NO_DRAW_ERRORS):
                return None  # includes a node behind the one that answered the head
            raise
        return tuple(_address(m) for m in drawn)

    def assign_mediator(self, deal: Deal, account: Any, **tx: Any) -> tuple[str, ...]:
        """Fix the current round's draw on-chain (anyone, once the draw block is
        sealed). Returns the members as of the transaction's block: empty when
        nothing was fixed (the draw's hash was forgotten and the round redrawn
        from that block, or too few mediators are eligible)."""
        receipt = self._send(self.controller.assignMediator, deal.as_tuple(), account=account, **tx)
        panel = self.panel(deal, block_id=int(receipt.block_number))
        return panel.members if panel.assigned else ()

    def votes(self, deal: Deal) -> tuple[tuple[str, int], ...]:
        """``(member, revealed verdict)`` for the current round's members (0: not revealed this round)."""
        panel = self.panel(deal)
        out = []
        for member in panel.members:
            v = self.vote(deal, member)
            out.append((member, int(v.verdict) if v.round == panel.round else 0))
        return tuple(out)

    def commit_verdict(self, deal: Deal, commitment: bytes, account: Any, **tx: Any) -> Any:
        """A panel member's commitment (:func:`lilypad.mediator.panel.commitment`) for the current round."""
        return self._send(self.controller.commitVerdict, deal.as_tuple(), bytes(commitment), account=account, **tx)

    def reveal_verdict(self, deal: Deal, verdict: Verdict, result_cid: bytes, salt: bytes, account: Any,
                       **tx: Any) -> Any:
        """Reveal the verdict committed this round (with the digest and salt committed)."""
        return self._send(self.controller.revealVerdict, deal.as_tuple(), int(verdict), bytes(result_cid),
                          bytes(salt), account=account, **tx)

    def vote(self, deal: Deal, mediator: Any) -> Vote:
        return Vote.from_chain(self._read(self.mediation.getVote, deal.deal_id, _address(mediator)))

    # -------------------------------------------------------------- verdicts of a panel of one

    def mediation_accept(self, deal: Deal, account: Any, **tx: Any) -> Any:
        return self._send(self.controller.mediationAcceptResult, deal.as_tuple(), account=account, **tx)

    def mediation_reject(self, deal: Deal, account: Any, **tx: Any) -> Any:
        return self._send(self.controller.mediationRejectResult, deal.as_tuple(), account=account, **tx)

    def mediation_non_deterministic(self, deal: Deal, account: Any, **tx: Any) -> Any:
        """The drawn mediator's verdict that its own runs of the job disagreed: the
        provider is paid as if accepted plus the job creator's judging collateral."""
        return self._send(self.controller.mediationNonDeterministic, deal.as_tuple(), account=account, **tx)

    # -------------------------------------------------------------- mediator registry

    def register_mediator(self, amount: int, account: Any, **tx: Any) -> Any:
        """Register ``account`` as a mediator staking ``amount`` LP base units
        (approve the registry first: :meth:`ensure_allowance` with ``spender=self.mediator_registry``)."""
        return self._send(self.mediator_registry.register, amount, account=account, **tx)

    def add_stake(self, amount: int, account: Any, **tx: Any) -> Any:
        """Add ``amount`` to a registered, bonded mediator's stake (approve the registry first)."""
        return self._send(self.mediator_registry.addStake, amount, account=account, **tx)

    def request_unbond(self, account: Any, **tx: Any) -> Any:
        """Start the unbonding delay; new deals may no longer name ``account``."""
        return self._send(self.mediator_registry.requestUnbond, account=account, **tx)

    def withdraw_stake(self, account: Any, **tx: Any) -> Any:
        """Take the whole stake back once the unbonding delay has passed."""
        return self._send(self.mediator_registry.withdraw, account=account, **tx)

    def mediator_stake(self, mediator: Any) -> MediatorStake:
        s = self._read(self.mediator_registry.getStake, _address(mediator))
        since = int(s.unbondingSince)
        delay = int(self._read(self.mediator_registry.UNBONDING_DELAY)) if since else 0
        return MediatorStake(amount=int(s.amount), unbonding_since=since,
                             withdrawable_at=since + delay if since else None)

    def min_mediator_stake(self) -> int:
        """The current settings' minimum mediator stake (LP base units; 0: any address may mediate)."""
        return int(self._read(self.controller.getMinMediatorStake))

    # -------------------------------------------------------------- protocol settings and pot

    def get_settings_version(self) -> int:
        """The settings version a new deal must name (``deal.protocol.settings_version``)."""
        return int(self._read(self.controller.getSettingsVersion))

    def get_protocol_settings(self, version: int) -> ProtocolSettings:
        """The settings of ``version`` (a version never changes once made)."""
        return ProtocolSettings.from_chain(self._read(self.controller.getProtocolSettings, version))

    def current_protocol_settings(self) -> tuple[int, ProtocolSettings]:
        """``(version, settings)`` a new deal is made under."""
        version = self.get_settings_version()
        return version, self.get_protocol_settings(version)

    def set_protocol_settings(self, settings: ProtocolSettings, account: Any, **tx: Any) -> Any:
        """Append a settings version (the admin role only); new deals must name it."""
        return self._send(self.controller.setProtocolSettings, settings.as_tuple(), account=account, **tx)

    def fund_jackpot(self, amount: int, account: Any, **tx: Any) -> Any:
        """Add ``amount`` LP base units of ``account``'s to the jackpot (approve Payments first)."""
        return self._send(self.controller.fundJackpot, amount, account=account, **tx)

    def claim_treasury(self, account: Any, **tx: Any) -> Any:
        """Pay the treasury's balance to the treasury address (anyone may)."""
        return self._send(self.controller.claimTreasury, account=account, **tx)

    def set_tax_exempt(self, job_creator: Any, exempt: bool, account: Any, **tx: Any) -> Any:
        """Switch a job creator's tax exemption for deals made from now on (the admin role only)."""
        return self._send(self.controller.setTaxExempt, _address(job_creator), bool(exempt), account=account, **tx)

    def get_pot(self, *, block_id: int | None = None) -> Pot:
        """The jackpot and the treasury's unclaimed balance (as of block ``block_id``)."""
        at = {} if block_id is None else {"block_id": block_id}
        p = self._read(self.payments.getPot, **at)
        return Pot(jackpot=int(p.jackpot), treasury=int(p.treasury))
