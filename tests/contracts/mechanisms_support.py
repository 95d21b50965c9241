"""Helpers for the anti-cheating mechanism tests (consortium, audits, tax and jackpot), driven
against the contracts directly with ape:

* :class:`Settings`: one ``ProtocolSettings`` version; :func:`tax_split`, :func:`mediator_share`
  and :func:`audit_drawn` compute what LilypadController computes (same floor divisions);
* :func:`commitment`: a panel member's commit-reveal hash, as ``LilypadMediation.commitment``;
* :class:`Books`: every holder's token balance, the jackpot and treasury pot, the tracked deals'
  open escrows and the mediators' stakes, so a test asserts each party's change exactly (every
  entry not named must not have moved) and that money is conserved;
* :class:`Mechanisms`: the steps of a deal (settings, terms with a panel size, results, checks,
  the panel's draw, commits and reveals, resolving a round, seeding the jackpot).
"""

from __future__ import annotations

import secrets
from dataclasses import astuple, dataclass
from typing import Any, NamedTuple

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from lilypad.protocol.deal import AgreementState, Deal, DealProtocol, Verdict

__all__ = [
    "BPS", "CID", "GARBAGE", "MAX", "TOKEN", "Books", "Mechanisms", "Panel", "Settings", "audit_drawn", "commitment",
    "mediator_share", "tax_split", "window_open",
]

TOKEN = 10**18
BPS = 10_000
MAX = 2**256 - 1
CID = bytes.fromhex("11" * 32)  # the honest result
GARBAGE = bytes.fromhex("66" * 32)  # a lazy provider's result: no work done
ZERO = "0x" + "00" * 20
#: Windows long enough that the few seconds each transaction takes never close one by accident.
LONG = {"agree": 3600, "submit_results": 3600, "judge_results": 3600, "mediate_results": 3600}


@dataclass(frozen=True)
class Settings:
    """One ``ProtocolSettings`` version (field order is the struct's)."""

    tax_bps: int = 0
    treasury_share_bps: int = 0
    audit_bps: int = 0
    reward_bps: int = 0
    min_mediator_stake: int = 0
    mediator_slash: int = 0

    def as_tuple(self) -> tuple[int, ...]:
        return astuple(self)

    @classmethod
    def read(cls, controller: Any, version: int) -> Settings:
        s = controller.getProtocolSettings(version)
        return cls(int(s.taxBps), int(s.treasuryShareBps), int(s.auditBps), int(s.rewardBps),
                   int(s.minMediatorStake), int(s.mediatorSlash))


def tax_split(job_cost: int, s: Settings, exempt: bool = False) -> tuple[int, int, int]:
    """``(tax, to_treasury, to_jackpot)`` of a paid job cost, as LilypadController._settlePaid."""
    if exempt:
        return 0, 0, 0
    tax = job_cost * s.tax_bps // BPS
    to_treasury = tax * s.treasury_share_bps // BPS
    return tax, to_treasury, tax - to_treasury


def mediator_share(amount: int, slashed: int, winners: int) -> tuple[int, int]:
    """``(to_each, to_jackpot)``: ``winners`` share ``amount`` plus half of ``slashed``; the other
    half and the indivisible remainder go to the jackpot (LilypadController._shareAmongMediators)."""
    shared = amount + slashed // 2
    each = shared // winners
    return each, slashed - slashed // 2 + shared - each * winners


def commitment(deal_id: bytes, round_: int, mediator: str, verdict: Verdict, cid: bytes, salt: bytes) -> bytes:
    """keccak256(abi.encode(dealId, round, mediator, verdict, resultCid, salt))."""
    return keccak(encode(["bytes32", "uint8", "address", "uint8", "bytes32", "bytes32"],
                         [deal_id, round_, to_checksum_address(mediator), int(verdict), cid, salt]))


def window_open(now: int, start: int, length: int, slack: int) -> bool | None:
    """Whether a window opened at ``start`` for ``length`` seconds is still open at ``now``
    (the next block's timestamp); ``None`` within ``slack`` seconds of its deadline, where the
    timestamp the next transaction gets is not certain enough to predict the outcome."""
    deadline = start + length
    if abs(now - deadline) <= slack:
        return None
    return now < deadline


def audit_drawn(block_hash: bytes, deal_id: bytes, audit_bps: int) -> bool:
    """The audit draw of LilypadController._isAudited for a known block hash:
    keccak256(abi.encode(blockhash(resultsBlock), dealId)) % 10000 < auditBps."""
    draw = int.from_bytes(keccak(encode(["bytes32", "bytes32"], [bytes(block_hash), deal_id])), "big")
    return draw % BPS < audit_bps


class Panel(NamedTuple):
    """ILilypadMediation.Panel (ape returns it as a bare tuple beside the members)."""

    drawBlock: int
    round: int
    size: int
    commits: int
    reveals: int
    assigned: bool
    audited: bool


def _address(who: Any) -> str:
    return to_checksum_address(str(getattr(who, "address", who)))


class Books:
    """Balances of every holder the tests involve, read from the chain.

    ``snapshot()`` maps each holder's label to its token balance, ``jackpot`` and ``treasury``
    to the pot, ``escrow`` to the tracked deals' open escrows and ``stake <label>`` to each
    mediator's stake; ``delta(before)`` is every entry that moved (so an exact comparison
    also says nothing else moved), after checking that no token left or entered the holders,
    Payments and the registry together, and that Payments holds exactly the open escrows plus
    the jackpot plus the treasury and the registry exactly the stakes.
    """

    def __init__(self, token: Any, payments: Any, registry: Any, holders: dict[str, Any],
                 stakers: dict[str, Any]) -> None:
        self.token, self.payments, self.registry = token, payments, registry
        self.holders = {label: _address(a) for label, a in holders.items()}
        self.stakers = {label: _address(a) for label, a in stakers.items()}
        self.deals: list[bytes] = []
        self._labels = {a: label for label, a in {**self.stakers, **self.holders}.items()}

    def label(self, who: Any) -> str:
        return self._labels[_address(who)]

    def track(self, *deals: Deal) -> None:
        self.deals += [d.deal_id for d in deals]

    def escrowed(self) -> int:
        total = 0
        for deal_id in self.deals:
            e = self.payments.getEscrow(deal_id)
            if not e.settled:  # a settled account holds nothing (it records what the job creator got)
                total += int(e.jobCreator) + int(e.resourceProvider)
        return total

    def snapshot(self) -> dict[str, int]:
        snap = {label: int(self.token.balanceOf(a)) for label, a in self.holders.items()}
        pot = self.payments.getPot()
        snap["jackpot"], snap["treasury"] = int(pot.jackpot), int(pot.treasury)
        snap["escrow"] = self.escrowed()
        for label, a in self.stakers.items():
            snap[f"stake {label}"] = int(self.registry.getStake(a).amount)
        snap["@payments"] = int(self.token.balanceOf(self.payments))
        snap["@registry"] = int(self.token.balanceOf(self.registry))
        return snap

    def check(self) -> dict[str, int]:
        """Payments holds open escrows + jackpot + treasury; the registry holds the stakes."""
        snap = self.snapshot()
        assert snap["@payments"] == snap["escrow"] + snap["jackpot"] + snap["treasury"], snap
        assert snap["@registry"] == sum(snap[f"stake {label}"] for label in self.stakers), snap
        return snap

    def delta(self, before: dict[str, int]) -> dict[str, int]:
        after = self.check()
        moved = {k: after[k] - before[k] for k in after if after[k] != before[k]}
        tokens = [*self.holders, "@payments", "@registry"]
        assert sum(moved.get(k, 0) for k in tokens) == 0, f"tokens created or lost: {moved}"
        return {k: v for k, v in moved.items() if not k.startswith("@")}


class Mechanisms:
    """The protocol's contracts and roles, and the steps of a deal under the mechanisms."""

    def __init__(self, *, chain: Any, system: dict[str, Any], deployer: Any, job_creator: Any,
                 resource_provider: Any, stranger: Any, payee: Any, panel: list[Any], make_deal: Any) -> None:
        self.chain = chain
        self.token, self.controller, self.storage = system["token"], system["controller"], system["storage"]
        self.payments, self.mediation = system["payments"], system["mediation"]
        self.registry = system["mediator_registry"]
        self.deployer, self.jc, self.rp, self.stranger, self.payee = (
            deployer, job_creator, resource_provider, stranger, payee)
        self.panel = panel
        self._make_deal = make_deal
        self._accounts = {_address(a): a for a in panel}
        self.books = Books(self.token, self.payments, self.registry,
                           {"jc": job_creator, "rp": resource_provider, "stranger": stranger, "payee": payee,
                            **{f"m{i}": m for i, m in enumerate(panel)}},
                           {f"m{i}": m for i, m in enumerate(panel)})

    # ------------------------------------------------------------ settings and terms
    def settings(self, **fields: int) -> int:
        """The admin appends a settings version (fields not named are 0); returns its number."""
        self.controller.setProtocolSettings(Settings(**fields).as_tuple(), sender=self.deployer)
        return int(self.controller.getSettingsVersion())

    def version_settings(self, deal: Deal) -> Settings:
        return Settings.read(self.controller, deal.protocol.settings_version)

    def deal(self, *, k: int = 1, version: int | None = None, mediators: list[Any] | None = None,
             timeouts: dict | None = None, pricing: dict | None = None, **members: Any) -> Deal:
        """Terms of tests/conftest.py's ``make_deal`` (price 1, payment 5, multiple 2, fee 1, submit
        collateral 2, judge collateral 3, all in LP) with hour-long windows, the whole panel as
        mediators, a panel of ``k`` and the current settings version; tracked by the books."""
        v = int(self.controller.getSettingsVersion()) if version is None else version
        d = self._make_deal(timeouts={**LONG, **(timeouts or {})}, pricing=pricing,
                            mediators=self.panel if mediators is None else mediators, **members)
        d = d.model_copy(update={"protocol": DealProtocol(consortium_size=k, settings_version=v)})
        self.books.track(d)
        return d

    def state(self, deal: Deal) -> AgreementState:
        return AgreementState(self.storage.getAgreement(deal.deal_id).state)

    def advance(self, seconds: int) -> None:
        self.chain.mine(timestamp=self.chain.pending_timestamp + seconds)

    # ------------------------------------------------------------ steps
    def agree(self, deal: Deal) -> None:
        self.controller.agree(deal.as_tuple(), sender=self.jc)
        self.controller.agree(deal.as_tuple(), sender=self.rp)

    def submit(self, deal: Deal, count: int = 3, cid: bytes = CID) -> Any:
        """Agree and add a result of ``count`` instructions; returns addResult's receipt."""
        self.agree(deal)
        return self.controller.addResult(deal.as_tuple(), cid, count, sender=self.rp)

    def audit_predicted(self, deal: Deal, receipt: Any) -> bool:
        """Whether the hash of the block that included addResult (``receipt``) draws an audit."""
        block_hash = self.chain.blocks[receipt.block_number].hash
        return audit_drawn(block_hash, deal.deal_id, self.version_settings(deal).audit_bps)

    def submit_drawn(self, make: Any, audited: bool, *, tries: int = 24, count: int = 3, cid: bytes = CID) -> Deal:
        """A deal (``make()`` gives fresh terms) whose result draws an audit, or does not: deals
        whose draw went the other way are accepted (or, if that would audit them, left open)
        until one fits. At an audit rate of 50 % the chance of ``tries`` misses is 2^-24."""
        for _ in range(tries):
            deal = make()
            receipt = self.submit(deal, count, cid)
            predicted = self.audit_predicted(deal, receipt)
            if predicted == audited:
                return deal
            if not predicted:
                self.controller.acceptResult(deal.as_tuple(), sender=self.jc)
        raise AssertionError(f"no deal with audited={audited} in {tries} draws")

    def check(self, deal: Deal) -> Any:
        """The job creator checks; a block is mined so the draw block is sealed."""
        receipt = self.controller.checkResult(deal.as_tuple(), sender=self.jc)
        self.chain.mine()
        return receipt

    def min_stake(self, deal: Deal) -> int:
        return self.version_settings(deal).min_mediator_stake

    def drawn(self, deal: Deal) -> list[Any]:
        """The current round's members (as drawn, mining a block first if the draw block is the
        newest, or as fixed on-chain)."""
        panel = self.panel_of(deal)[0]
        if not panel.assigned and self.chain.blocks.head.number <= panel.drawBlock:
            self.chain.mine()
        members = self.mediation.drawPanel(deal.deal_id, list(deal.members.mediators), self.min_stake(deal))
        return [self._accounts[_address(m)] for m in members]

    def panel_of(self, deal: Deal) -> tuple[Panel, list[Any]]:
        """The current round's panel and its fixed members (none until fixed)."""
        panel, members = self.mediation.getPanel(deal.deal_id)
        return Panel(*panel), [self._accounts[_address(m)] for m in members]

    def commit(self, deal: Deal, member: Any, verdict: Verdict, cid: bytes = CID, salt: bytes | None = None,
               round_: int | None = None) -> tuple[bytes, bytes]:
        """``member`` commits ``verdict``; returns (salt, commitment)."""
        salt = salt or secrets.token_bytes(32)
        if round_ is None:
            round_ = self.panel_of(deal)[0].round
        h = commitment(deal.deal_id, round_, member.address, verdict, cid, salt)
        self.controller.commitVerdict(deal.as_tuple(), h, sender=member)
        return salt, h

    def reveal(self, deal: Deal, member: Any, verdict: Verdict, salt: bytes, cid: bytes = CID) -> Any:
        return self.controller.revealVerdict(deal.as_tuple(), int(verdict), cid, salt, sender=member)

    def vote(self, deal: Deal, votes: dict[Any, Verdict | None], cid: bytes = CID) -> None:
        """Every member in ``votes`` commits its verdict, then every one not mapped to None reveals
        (a member mapped to None commits a verdict it never reveals)."""
        salts = {}
        for member, verdict in votes.items():
            salts[member.address] = self.commit(deal, member, verdict or Verdict.ACCEPT, cid)[0]
        if len(votes) < deal.protocol.consortium_size:
            self.advance(deal.timeouts.mediate_results)  # the reveal opens when the commit window ends
        for member, verdict in votes.items():
            if verdict is not None:
                self.reveal(deal, member, verdict, salts[member.address], cid)

    def settle_along(self, deal: Deal, path: str, count: int, *, after_check: Any = None) -> None:
        """Take a deal with one listed mediator from its terms to the end of ``path``: one of
        ``timeout_agree`` (only the job creator agrees), ``timeout_submit``, ``accept``,
        ``timeout_judge``, ``timeout_mediate`` (its only mediator stays silent),
        ``mediation_accept``, ``mediation_reject`` or ``mediation_non_deterministic``; the
        timeouts are called by a stranger. ``after_check()`` runs right after a check."""
        c, t = self.controller, deal.as_tuple()
        if path == "timeout_agree":
            c.agree(t, sender=self.jc)
            self.advance(deal.timeouts.agree)
            c.timeoutAgree(t, sender=self.stranger)
            return
        if path == "timeout_submit":
            self.agree(deal)
            self.advance(deal.timeouts.submit_results)
            c.timeoutSubmitResult(t, sender=self.stranger)
            return
        self.submit(deal, count)
        if path == "accept":
            c.acceptResult(t, sender=self.jc)
        elif path == "timeout_judge":
            self.advance(deal.timeouts.judge_results)
            c.timeoutJudgeResult(t, sender=self.stranger)
        else:
            self.check(deal)
            if after_check is not None:
                after_check()
            if path == "timeout_mediate":
                self.resolve(deal)
            else:
                verdict = {"mediation_accept": c.mediationAcceptResult,
                           "mediation_reject": c.mediationRejectResult,
                           "mediation_non_deterministic": c.mediationNonDeterministic}[path]
                verdict(t, sender=self.panel[0])

    def resolve(self, deal: Deal, *, wait: bool = True) -> Any:
        """Anyone closes the round (after both windows unless ``wait`` is False)."""
        if wait:
            self.advance(2 * deal.timeouts.mediate_results)
        return self.controller.timeoutMediateResult(deal.as_tuple(), sender=self.stranger)

    # ------------------------------------------------------------ the jackpot
    def seed_jackpot(self, amount: int) -> None:
        """Put exactly ``amount`` into the jackpot the only way there is, a taxed deal: a settings
        version with a 10 % tax all to the jackpot, a deal of job cost 10 x ``amount`` accepted.
        Leaves that version current: a test sets its own afterwards."""
        self.settings(tax_bps=1_000)
        before = int(self.payments.getPot().jackpot)
        cost = 10 * amount
        deal = self.deal(pricing={"instruction_price": cost, "payment_collateral": cost,
                                  "results_collateral_multiple": 1})
        self.submit(deal, 1)
        self.controller.acceptResult(deal.as_tuple(), sender=self.jc)
        assert int(self.payments.getPot().jackpot) == before + amount
