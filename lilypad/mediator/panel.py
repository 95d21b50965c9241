"""What a mediator does next on a checked deal: pure decisions, no I/O.

A checked (or audited) deal is judged by a panel of ``k`` mediators drawn
on-chain (``LilypadMediation``; rules in ``docs/protocol.md``). For one
mediator, the member gives its verdict directly. For a larger panel each member
commits a hash of its verdict within the round's window, reveals it in the
next window (early once all have committed), and anyone resolves the round
once all have revealed or the reveal window has closed.

:func:`next_action` maps what the chain shows (:class:`PanelView`), what this
mediator has persisted (its judgement, the rounds it committed and revealed in)
and the clock to the one thing to do now. The daemon
(:mod:`lilypad.mediator.daemon`) carries it out and persists before sending,
so that a restart between commit and reveal still reveals.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from lilypad.chain.mediation import Panel
from lilypad.protocol.deal import Verdict as ChainVerdict

__all__ = ["VERDICT_WORDS", "PanelAction", "PanelView", "chain_verdict", "commitment", "next_action"]

#: How a revealed verdict reads (0: not revealed).
VERDICT_WORDS = {0: "did not reveal", 1: "accept", 2: "reject", 3: "non-deterministic"}


@dataclass(frozen=True)
class PanelView(Panel):
    """A deal's current mediation round (:class:`lilypad.chain.mediation.Panel`) with, when read
    with them, its members' votes."""

    #: (member, revealed verdict as an int, 0 until revealed) for this round, when read with the votes
    votes: tuple[tuple[str, int], ...] = ()

    def has_member(self, address: str) -> bool:
        return address.lower() in {m.lower() for m in self.members}


class PanelAction(enum.Enum):
    ASSIGN = "assign"  # fix this round's draw on-chain (anyone may)
    NOT_CHOSEN = "not_chosen"  # not on this round's panel (a later round may draw it)
    JUDGE = "judge"  # re-run the job and judge (once per deal; kept across rounds)
    VERDICT = "verdict"  # a panel of one: send the verdict
    COMMIT = "commit"
    REVEAL = "reveal"
    RESOLVE = "resolve"  # timeoutMediateResult: settle by majority, or start the next round
    WAIT = "wait"  # nothing to do yet (or too late for this round)


def chain_verdict(verdict: str) -> ChainVerdict:
    """The on-chain ``Verdict`` for a :class:`lilypad.verification.Verdict` value."""
    return {
        "accept": ChainVerdict.ACCEPT,
        "reject": ChainVerdict.REJECT,
        "non_deterministic": ChainVerdict.NON_DETERMINISTIC,
    }[str(verdict)]


def commitment(deal_id: bytes, round: int, mediator: str, verdict: ChainVerdict, result_cid: bytes,
               salt: bytes) -> bytes:
    """``LilypadMediation.commitment``: keccak256(abi.encode(dealId, round,
    mediator, verdict, resultCid, salt)). It binds the mediator's own address,
    so another member cannot reuse it."""
    return keccak(encode(["bytes32", "uint8", "address", "uint8", "bytes32", "bytes32"],
                         [bytes(deal_id), int(round), to_checksum_address(mediator), int(verdict), bytes(result_cid),
                          bytes(salt)]))


def next_action(
    panel: PanelView | Any,
    me: str,
    *,
    judged: bool,
    committed_round: int | None,
    revealed_round: int | None,
    now: float,
    round_started_at: float,
    window: float,
) -> PanelAction:
    """The one thing mediator ``me`` should do now on a deal in ``ResultsChecked``.

    ``panel`` is a :class:`PanelView` or anything with its fields (such as
    :class:`lilypad.chain.mediation.Panel`).
    ``round_started_at`` is the agreement's ``mediationRequestedAt`` (the start
    of the current round) and ``window`` the deal's ``mediateResults``.
    """
    if not panel.assigned:
        return PanelAction.ASSIGN
    if me.lower() not in {m.lower() for m in panel.members}:
        return PanelAction.NOT_CHOSEN
    if not judged:
        return PanelAction.JUDGE
    commit_ends = round_started_at + window
    reveal_ends = commit_ends + window
    if panel.size == 1:
        return PanelAction.VERDICT if now < commit_ends else PanelAction.WAIT
    if committed_round != panel.round:
        return PanelAction.COMMIT if now < commit_ends else PanelAction.WAIT
    if revealed_round != panel.round:
        reveal_open = panel.commits >= panel.size or now >= commit_ends
        return PanelAction.REVEAL if reveal_open and now < reveal_ends else PanelAction.WAIT
    if panel.reveals >= panel.size or now >= reveal_ends:
        return PanelAction.RESOLVE
    return PanelAction.WAIT
