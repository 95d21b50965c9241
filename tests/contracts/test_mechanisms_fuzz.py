"""Hypothesis stateful fuzzing of the contracts with every anti-cheating mechanism on (issue 17).

The settings are on from the first step: a 5 % tax (a fifth of it to a treasury address that is
set), audits at 30 %, a catch reward of 10 % of the jackpot, a minimum stake of 25 LP and a slash
of 30 LP + 1 wei (odd, so halves differ) against the seven mediators' 100 LP stakes, so a stake is
slashed several times, the last time only what is left; the jackpot is funded with fundJackpot.
Up to four deals, each with a panel of k = 1, 3 or 5 drawn from k to seven listed mediators that
qualify (or, now and then, qualified or not, so that a first agree must revert), go through random
interleavings of:

* agree (either side), addResult (the honest CID or a lazy provider's garbage; sometimes more
  instructions than the payment collateral covers), acceptResult (which may draw an audit: the
  outcome is predicted from the results block's hash, the 256-block horizon and the jackpot) and
  checkResult;
* time passing (a second to a quarter of an hour; the 67-day unbonding delay, once someone unbonds
  and no deal is open), 300 blocks being mined (the draw's and the audit's block hashes
  forgotten), one deal's timeout (before or after its deadline), and a sweep that calls every
  timeout anyone can call;
* assignMediator (the panel fixed is the one ``drawPanel`` showed in the pending block, or it is
  redrawn when the hash is forgotten), direct verdicts for k = 1 (by the drawn mediator or by
  someone else), commits and reveals of random verdicts (honest, accept, reject,
  non-deterministic) by random drawn members, by outsiders, with a tampered opening, or members
  staying silent, and resolving rounds (timeoutMediateResult: early once all revealed);
* fundJackpot, claimTreasury, and mediators registering, adding stake, requesting to unbond and
  trying to withdraw.

Each action is sent only when the chain says whether it must succeed; otherwise it is checked to
revert (with an ``eth_call`` in the pending block, which ape does not trace) and not sent. After
EVERY step these invariants are read from the chain (one batch of eth_calls, no model of amounts):

* money is conserved: the total supply never changes and equals the sum of the balances of every
  holder (the parties, the mediators, the treasury and both contracts read each step; the
  accounts and contracts that never act read once before the first example and again at the end
  of each); LilypadPayments holds exactly the open escrows + jackpot + treasury; the registry
  holds exactly the stakes; the treasury's claimed + unclaimed amount never decreases;
* each deal settles exactly once: ``Settled`` events counted per deal over every receipt are 1 for
  a terminal deal and 0 otherwise, a settled escrow is empty, and a terminal state never changes;
* a stake is slashed at most once per deal: ``MediatorPenalised`` events per (deal, mediator) are
  at most 1 and match the ``Vote.slashed`` flags exactly, and each receipt's penalties add up to
  what the registry's ``MediatorSlashed`` events took; a fixed panel has k distinct listed members,
  none of them slashed on the deal.

Each round's resolution is also checked against the votes read before it: who is slashed (the
silent, and with a majority the minority, never twice), the outcome (the majority's verdict, or a
new round, or after the last round or with too few eligible mediators a refund).
At teardown every open deal is driven to a terminal state by time and the timeouts anyone can
call (no deal can be stuck), the invariants hold, and after claiming the treasury LilypadPayments
holds exactly the jackpot.

Budget: LILYPAD_FUZZ_EXAMPLES examples of LILYPAD_FUZZ_STEPS steps (as test_protocol_fuzz.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest
import requests
from ape.exceptions import ContractLogicError
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from fuzz_budget import fuzz_examples, stateful_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from mechanisms_support import CID, GARBAGE, TOKEN, Panel, Settings, audit_drawn, commitment, window_open

from lilypad.protocol.deal import TIMEOUT_FOR_STATE, Deal
from lilypad.protocol.deal import AgreementState as S
from lilypad.protocol.deal import Verdict as V

SETTINGS = Settings(tax_bps=500, treasury_share_bps=2_000, audit_bps=3_000, reward_bps=1_000,
                    min_mediator_stake=25 * TOKEN, mediator_slash=30 * TOKEN + 1)
MIN_STAKE, SLASH = SETTINGS.min_mediator_stake, SETTINGS.mediator_slash
SEED = 10 * TOKEN  # funded into the jackpot before the first step: audits can pay their fee
MAX_DEALS = 4
WINDOWS = (200, 400)  # every window of a deal (agree, submit, judge, mediate) is one of these
SLACK = 10  # seconds around a deadline where the next block's timestamp is not certain: not asserted
HORIZON = 256  # blocks whose hash the EVM keeps
FORGET = 300
DELAY = 67 * 24 * 3600  # LilypadMediatorRegistry.UNBONDING_DELAY
MAX_ROUNDS = 3  # LilypadMediation.MAX_ROUNDS
VERDICT = st.sampled_from(["honest", "accept", "reject", "non_deterministic"])
DIRECT = {V.ACCEPT: "mediationAcceptResult", V.REJECT: "mediationRejectResult",
          V.NON_DETERMINISTIC: "mediationNonDeterministic"}
OUTCOME = {V.ACCEPT: S.MEDIATION_ACCEPTED, V.REJECT: S.MEDIATION_REJECTED,
           V.NON_DETERMINISTIC: S.MEDIATION_NON_DETERMINISTIC}
DEAL = st.integers(0, MAX_DEALS - 1)
MEMBER = st.integers(0, 6)
#: the arguments of the ``progress`` rules
PROGRESS = {"i": DEAL, "steps": st.integers(1, 10), "check": st.booleans(), "garbage": st.booleans(),
            "count": st.integers(1, 5), "choices": st.lists(VERDICT, min_size=1, max_size=3),
            "quiet": st.sampled_from([0, 0, 1, 2])}

AGREEMENT = "(uint8,bool,bool,uint40,uint40,uint40,uint40,uint40,uint32)"
PANEL = ["(uint32,uint8,uint8,uint8,uint8,bool,bool)", "address[]"]  # two return values
VOTE = "(bytes32,uint8,uint8,bool)"


class Agreement(NamedTuple):
    state: int
    jc_agreed: bool
    rp_agreed: bool
    created: int
    agreed: int
    results_at: int
    mediation_at: int  # start of the current mediation round
    instructions: int
    results_block: int


class Vote(NamedTuple):
    commitment: bytes
    round: int
    verdict: int
    slashed: bool


def _fn(signature: str, *args: tuple[str, Any]) -> bytes:
    """Calldata of ``signature`` with ``args`` as (type, value) pairs."""
    return function_signature_to_4byte_selector(signature) + encode([t for t, _ in args], [v for _, v in args])


def both(*conditions: bool | None) -> bool | None:
    """False if any is False, else None (cannot tell) if any is None, else True."""
    if any(c is False for c in conditions):
        return False
    return None if any(c is None for c in conditions) else True


class Rpc:
    """Raw JSON-RPC to the test chain: a list of eth_calls in one batch (ape makes one round trip
    per call), and revert probes in the pending block (ape traces every reverted transaction it is
    asked to send, a quarter of a second each)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.session = requests.Session()

    def _post(self, payload: Any) -> Any:
        response = self.session.post(self.uri, json=payload, timeout=120)
        response.raise_for_status()
        return response.json()

    def read(self, calls: list[tuple[str, bytes, str | list[str]]], block: str = "latest") -> list[Any]:
        """Each (to, calldata, return type or types) decoded; a read that reverts gives None."""
        if not calls:
            return []
        replies = self._post([{"jsonrpc": "2.0", "id": n, "method": "eth_call",
                               "params": [{"to": to, "data": "0x" + data.hex()}, block]}
                              for n, (to, data, _) in enumerate(calls)])
        by_id = {r["id"]: r for r in replies}
        out = []
        for n, (_, _, kind) in enumerate(calls):
            reply = by_id[n]
            if "error" in reply:
                out.append(None)
                continue
            value = decode(kind if isinstance(kind, list) else [kind], bytes.fromhex(reply["result"][2:]))
            out.append(value if isinstance(kind, list) else value[0])
        return out

    def reverts(self, sender: str, to: str, data: bytes) -> bool:
        """Whether ``sender`` sending ``data`` to ``to`` in the next block would revert."""
        reply = self._post({"jsonrpc": "2.0", "id": 0, "method": "eth_call",
                            "params": [{"from": sender, "to": to, "data": "0x" + data.hex()}, "pending"]})
        return "error" in reply


@dataclass
class Tracked:
    deal: Deal
    cid: bytes | None = None  # the result the provider added
    #: (round, mediator) -> (verdict, cid, salt) a member committed: only the member knows its opening
    openings: dict = field(default_factory=dict)
    terminal: S | None = None  # the first terminal state read


@pytest.mark.fuzzing
def test_mechanisms_state_machine(chain, accounts, mech, make_deal, system, deployer, job_creator,
                                  resource_provider, stranger):
    token, controller, storage, payments, mediation, registry = (
        mech.token, mech.controller, mech.storage, mech.payments, mech.mediation, mech.registry)
    panel = mech.panel
    rpc = Rpc(chain.provider.http_uri)
    jc, rp = job_creator, resource_provider

    # ---------------------------------------------------------------- settings on from the start
    version = mech.settings(**SETTINGS.__dict__)
    treasury = accounts.generate_test_account()
    controller.setTreasury(treasury, sender=deployer)
    controller.fundJackpot(SEED, sender=stranger)
    assert int(payments.getPot().jackpot) >= SEED and int(controller.getSettingsVersion()) == version

    panel_addresses = [m.address for m in panel]
    signer = {a.address: a for a in (jc, rp, stranger, *panel)}
    #: read after every step: every account that acts or is paid, and the two contracts that hold money
    active = [jc.address, rp.address, stranger.address, treasury.address, *panel_addresses,
              payments.address, registry.address]
    #: never act nor are paid in this machine: read once here, and again at the end of each example
    static = [a.address for a in (accounts[n] for n in range(10))
              if a.address not in active] + [
        system[k].address for k in ("token", "controller", "storage", "mediation", "job_creator")]

    def balances(who: list[str]) -> list[int]:
        return rpc.read([(token.address, _fn("balanceOf(address)", ("address", a)), "uint256") for a in who])

    supply = int(token.totalSupply())
    static_total = sum(balances(static))
    assert sum(balances(active)) + static_total == supply  # every holder is counted

    stats: Counter = Counter()

    class MechanismsMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self._isolation = chain.isolate()
            self._isolation.__enter__()
            self.deals: list[Tracked] = []
            self.settled: Counter = Counter()  # Settled events per deal id, over every receipt
            self.paid_to_jc: dict[bytes, int] = {}  # what each settlement paid its job creator
            self.penalised: Counter = Counter()  # MediatorPenalised events per (deal id, mediator)
            self.last_penalised: list[tuple[bytes, str]] = []  # those of the last receipt
            self.treasury_seen = 0  # claimed + unclaimed: never decreases
            self.unbonds = 0
            self.salts = 0

        # ------------------------------------------------------------ reading the chain
        def _now(self) -> int:
            return chain.pending_timestamp

        def _open(self, start: int, length: int) -> bool | None:
            """Whether a window is still open for the next block (None: too close to tell)."""
            return window_open(self._now(), start, length, SLACK)

        def _pick(self, i: int) -> Tracked:
            return self.deals[i % len(self.deals)]

        def _read(self, t: Tracked) -> tuple[Agreement, Panel, list[str]]:
            a, (p, members) = rpc.read([
                (storage.address, _fn("getAgreement(bytes32)", ("bytes32", t.deal.deal_id)), AGREEMENT),
                (mediation.address, _fn("getPanel(bytes32)", ("bytes32", t.deal.deal_id)), PANEL)])
            return Agreement(*a), Panel(*p), [to_checksum_address(m) for m in members]

        def _votes(self, t: Tracked, who: list[str]) -> dict[str, Vote]:
            got = rpc.read([(mediation.address, _fn("getVote(bytes32,address)", ("bytes32", t.deal.deal_id),
                                                    ("address", m)), VOTE) for m in who])
            return {m: Vote(*v) for m, v in zip(who, got, strict=True)}

        def _qualified(self, who: list[str]) -> list[bool]:
            return rpc.read([(registry.address, _fn("isStaked(address,uint256)", ("address", m),
                                                    ("uint256", MIN_STAKE)), "bool") for m in who])

        def _stake(self, who: str) -> tuple[int, int]:
            (s,) = rpc.read([(registry.address, _fn("getStake(address)", ("address", who)), "(uint96,uint40)")])
            return s

        def _pot(self) -> tuple[int, int]:
            (pot,) = rpc.read([(payments.address, _fn("getPot()"), "(uint128,uint128)")])
            return pot

        def _draw(self, t: Tracked, p: Panel, members: list[str]) -> list[str]:
            """The members the next transaction fixes (or has fixed): ``drawPanel`` in the pending
            block; empty when it cannot (the draw's hash forgotten, or too few eligible)."""
            if p.round == 0:
                return []
            if p.assigned:
                return members
            (drawn,) = rpc.read([(mediation.address, _fn(
                "drawPanel(bytes32,address[],uint256)", ("bytes32", t.deal.deal_id),
                ("address[]", list(t.deal.members.mediators)), ("uint256", MIN_STAKE)), "address[]")], "pending")
            return [] if drawn is None else [to_checksum_address(m) for m in drawn]

        # ------------------------------------------------------------ sending
        def _record(self, receipt) -> None:
            """Tally the settlements and penalties of a receipt."""
            penalties = slashed = 0
            self.last_penalised = []
            for log in receipt.decode_logs([payments.Settled, controller.MediatorPenalised,
                                            registry.MediatorSlashed, controller.DealAudited]):
                if log.event_name == "Settled":
                    assert log.contract_address == payments.address
                    self.settled[bytes(log.dealId)] += 1
                    self.paid_to_jc[bytes(log.dealId)] = int(log.toJobCreator)
                elif log.event_name == "MediatorPenalised":
                    assert log.contract_address == controller.address
                    key = (bytes(log.dealId), to_checksum_address(log.mediator))
                    self.penalised[key] += 1
                    self.last_penalised.append(key)
                    assert int(log.slashed) <= SLASH, log
                    penalties += int(log.slashed)
                    stats["slashes"] += 1
                elif log.event_name == "MediatorSlashed":
                    assert log.contract_address == registry.address
                    slashed += int(log.amount)
                else:
                    stats["audits"] += 1
            # the registry gives up stake only as a deal's penalty, and exactly what it says
            assert penalties == slashed, (penalties, slashed)

        def _tx(self, expected: bool | None, contract, name: str, *args, sender, what=lambda: ""):
            """Send ``contract.name(*args)`` from ``sender`` if it must succeed (failing if it
            reverts); if it must revert, check that it would (eth_call) and send nothing; if that
            cannot be told (a deadline this second), send it only if the probe succeeds."""
            method = getattr(contract, name)
            if expected is not True:
                would_revert = rpc.reverts(sender.address, contract.address, bytes(method.encode_input(*args)))
                if expected is False:
                    assert would_revert, f"{name} should revert but succeeds: {what()}"
                    return None
                if would_revert:
                    return None
            try:
                receipt = method(*args, sender=sender)
            except ContractLogicError as err:
                if expected:
                    raise AssertionError(f"{name} reverted ({err!r}) but should succeed: {what()}") from err
                return None
            self._record(receipt)
            stats[f"tx {name}"] += 1
            return receipt

        def _deal_tx(self, expected, t: Tracked, name: str, *args, sender):
            def what() -> str:
                a, p, members = self._read(t)
                return f"k={t.deal.protocol.consortium_size} {S(a.state).name} {a} {p} {members}"

            return self._tx(expected, controller, name, t.deal.as_tuple(), *args, sender=sender, what=what)

        def _verdict(self, t: Tracked, choice: str) -> V:
            if choice == "honest":
                return V.ACCEPT if t.cid in (None, CID) else V.REJECT
            return {"accept": V.ACCEPT, "reject": V.REJECT, "non_deterministic": V.NON_DETERMINISTIC}[choice]

        def _salt(self, t: Tracked, round_: int, member: str) -> bytes:
            self.salts += 1
            return keccak(t.deal.deal_id + bytes([round_]) + bytes.fromhex(member[2:]) + self.salts.to_bytes(8, "big"))

        # ------------------------------------------------------------ deals
        @initialize(k=st.sampled_from([1, 3, 5]), spare=st.sampled_from([0, 2, 7]),
                    fee=st.sampled_from([0, TOKEN, TOKEN + 1]), window=st.sampled_from(WINDOWS),
                    offset=st.integers(0, 6), drive=st.fixed_dictionaries(PROGRESS))
        def first_deal(self, k, spare, fee, window, offset, drive):
            """A first deal, taken ``drive["steps"]`` natural steps on (Hypothesis switches rules
            off at random in each example, ``progress`` among them, and a run should still go deep)."""
            self.treasury_seen = balances([treasury.address])[0] + self._pot()[1]
            self.new_deal(k, spare, fee, window, offset, False)
            self.progress(**{**drive, "i": 0})

        @precondition(lambda self: len(self.deals) < MAX_DEALS)
        @rule(k=st.sampled_from([1, 1, 3, 3, 5]), spare=st.sampled_from([0, 2, 7]),
              fee=st.sampled_from([0, TOKEN, TOKEN + 1]), window=st.sampled_from(WINDOWS),
              offset=st.integers(0, 6), everyone=st.booleans())
        def new_deal(self, k, spare, fee, window, offset, everyone):
            """Terms listing k or more of the mediators that qualify now (with ``everyone``, of all
            seven, so the first agree reverts if one listed does not); the current settings version."""
            pool = panel_addresses[offset:] + panel_addresses[:offset]
            qualified = [m for m, ok in zip(pool, self._qualified(pool), strict=True) if ok]
            listed = (pool if everyone or len(qualified) < k else qualified)[:k + spare]
            deal = make_deal(mediators=listed, pricing={"mediation_fee": fee},
                             timeouts={"agree": window, "submit_results": window, "judge_results": window,
                                       "mediate_results": window},
                             protocol={"consortium_size": k})
            assert deal.protocol.settings_version == version
            self.deals.append(Tracked(deal))

        @rule(i=DEAL, jc_side=st.booleans())
        def agree(self, i, jc_side):
            t = self._pick(i)
            a, _, _ = self._read(t)
            state = S(a.state)
            if state == S.NONE:  # the first agree checks every listed mediator's stake
                expected = all(self._qualified(list(t.deal.members.mediators)))
            elif state == S.DEAL_NEGOTIATING and not (a.jc_agreed if jc_side else a.rp_agreed):
                expected = self._open(a.created, t.deal.timeouts.agree)
            else:
                expected = False
            self._deal_tx(expected, t, "agree", sender=jc if jc_side else rp)

        @rule(i=DEAL, garbage=st.booleans(), count=st.integers(1, 6))
        def add_result(self, i, garbage, count):
            t = self._pick(i)
            a, _, _ = self._read(t)
            fits = t.deal.job_cost(count) <= t.deal.pricing.payment_collateral
            expected = both(S(a.state) == S.DEAL_AGREED, fits,
                            self._open(a.agreed, t.deal.timeouts.submit_results))
            cid = GARBAGE if garbage else CID
            if self._deal_tx(expected, t, "addResult", cid, count, sender=rp):
                t.cid = cid

        def _audit_predicted(self, t: Tracked, a: Agreement) -> bool:
            """Whether accepting (or timing out) in the next block audits the deal: the results
            block's hash draws it (a forgotten hash always does) and the jackpot can pay the fee."""
            next_block = chain.blocks.head.number + 1
            if next_block - a.results_block > HORIZON:
                drawn = True
            else:
                drawn = audit_drawn(chain.blocks[a.results_block].hash, t.deal.deal_id, SETTINGS.audit_bps)
            return drawn and self._pot()[0] >= t.deal.pricing.mediation_fee

        @rule(i=DEAL, check=st.booleans())
        def judge(self, i, check):
            t = self._pick(i)
            a, _, _ = self._read(t)
            expected = both(S(a.state) == S.RESULTS_SUBMITTED, self._open(a.results_at, t.deal.timeouts.judge_results))
            audited = None if check or expected is False else self._audit_predicted(t, a)
            receipt = self._deal_tx(expected, t, "checkResult" if check else "acceptResult", sender=jc)
            if receipt is None:
                return
            after, p, _ = self._read(t)
            if check:
                assert S(after.state) == S.RESULTS_CHECKED and (p.round, p.audited) == (1, False)
            else:
                assert bool(receipt.decode_logs(controller.DealAudited)) == audited, t.deal.deal_id.hex()
                assert S(after.state) == (S.RESULTS_CHECKED if audited else S.RESULTS_ACCEPTED)
                assert p.audited == audited

        # ------------------------------------------------------------ mediation
        @rule(i=DEAL)
        def assign(self, i):
            """Anyone fixes the draw: the panel the pending block showed, or a redraw once the draw
            block's hash is forgotten, or nothing while too few mediators are eligible."""
            t = self._pick(i)
            a, p, members = self._read(t)
            if S(a.state) != S.RESULTS_CHECKED:
                self._deal_tx(False, t, "assignMediator", sender=stranger)
                return
            view = self._draw(t, p, members)
            forgotten = chain.blocks.head.number + 1 - p.drawBlock > HORIZON
            receipt = self._deal_tx(True, t, "assignMediator", sender=stranger)
            _, p2, members2 = self._read(t)
            if p.assigned:
                assert (p2, members2) == (p, members)
            elif view:
                assert p2.assigned and members2 == view, (view, members2)
            elif forgotten:
                assert not p2.assigned and p2.drawBlock == receipt.block_number
                stats["redraws"] += 1
            else:
                assert p2 == p  # too few eligible: nothing fixed, the round ends at its timeout

        @rule(i=DEAL, choice=VERDICT, who=st.sampled_from(["drawn", "drawn", "other"]))
        def verdict(self, i, choice, who):
            """A panel of one: the drawn mediator's direct verdict, or anyone else's (refused)."""
            t = self._pick(i)
            a, p, members = self._read(t)
            listed = list(t.deal.members.mediators)
            v = self._verdict(t, choice)
            if S(a.state) != S.RESULTS_CHECKED or t.deal.protocol.consortium_size != 1:
                self._deal_tx(False, t, DIRECT[v], sender=signer[listed[0]])
                return
            drawn = self._draw(t, p, members)
            others = [m for m in listed if m not in drawn[:1]]
            if who == "drawn" and drawn:
                sender, expected = drawn[0], self._open(a.mediation_at, t.deal.timeouts.mediate_results)
            else:
                sender, expected = (others or listed)[0], False
            if self._deal_tx(expected, t, DIRECT[v], sender=signer[sender]):
                after, _, _ = self._read(t)
                assert S(after.state) == OUTCOME[v]
                stats[f"verdict k=1 {OUTCOME[v].name}"] += 1

        @rule(i=DEAL, pick=MEMBER, choice=VERDICT, outsider=st.booleans())
        def commit(self, i, pick, choice, outsider):
            t = self._pick(i)
            a, p, members = self._read(t)
            listed = list(t.deal.members.mediators)
            v = self._verdict(t, choice)
            cid = t.cid or CID
            if S(a.state) != S.RESULTS_CHECKED or t.deal.protocol.consortium_size == 1:
                who = listed[pick % len(listed)]
                h = commitment(t.deal.deal_id, max(p.round, 1), who, v, cid, b"\1" * 32)
                self._deal_tx(False, t, "commitVerdict", h, sender=signer[who])
                return
            drawn = self._draw(t, p, members)
            outsiders = [m for m in listed if m not in drawn]
            if outsider and outsiders:
                who, expected = outsiders[pick % len(outsiders)], False
            elif drawn:
                who = drawn[pick % len(drawn)]
                already = self._votes(t, [who])[who]
                expected = both(self._open(a.mediation_at, t.deal.timeouts.mediate_results),
                                not (already.round == p.round and already.commitment != b"\0" * 32))
            else:  # the draw cannot be fixed: nobody is on the panel
                who, expected = listed[pick % len(listed)], False
            salt = self._salt(t, p.round, who)
            h = commitment(t.deal.deal_id, p.round, who, v, cid, salt)
            if self._deal_tx(expected, t, "commitVerdict", h, sender=signer[who]):
                t.openings[(p.round, who)] = (v, cid, salt)
                _, p2, members2 = self._read(t)
                assert p2.assigned and members2 == drawn and p2.commits == p.commits + 1

        @rule(i=DEAL, pick=MEMBER, tamper=st.booleans())
        def reveal(self, i, pick, tamper):
            t = self._pick(i)
            a, p, _ = self._read(t)
            mine = [m for (r, m) in t.openings if r == p.round]
            if S(a.state) != S.RESULTS_CHECKED or not mine:  # nothing committed this round
                who = t.deal.members.mediators[pick % len(t.deal.members.mediators)]
                self._deal_tx(False, t, "revealVerdict", int(V.ACCEPT), t.cid or CID, b"\1" * 32, sender=signer[who])
                return
            who = mine[pick % len(mine)]
            v, cid, salt = t.openings[(p.round, who)]
            w = t.deal.timeouts.mediate_results
            opens = a.mediation_at + w
            started = True if p.commits == p.size else (not o if (o := self._open(a.mediation_at, w)) is not None
                                                        else None)
            unrevealed = self._votes(t, [who])[who].verdict == V.NONE
            expected = both(started, self._open(opens, w), unrevealed, not tamper)
            sent = V(int(v) % 3 + 1) if tamper else v  # another verdict than the committed one
            if self._deal_tx(expected, t, "revealVerdict", int(sent), cid, salt, sender=signer[who]):
                _, p2, _ = self._read(t)
                assert p2.reveals == p.reveals + 1

        # ------------------------------------------------------------ time and timeouts
        def _deadline(self, t: Tracked, a: Agreement, p: Panel) -> tuple[int, bool]:
            """When the deal's current timeout opens, and whether it is open already (a panel
            that has all revealed)."""
            w, state = t.deal.timeouts, S(a.state)
            if state == S.DEAL_NEGOTIATING:
                return a.created + w.agree, False
            if state == S.DEAL_AGREED:
                return a.agreed + w.submit_results, False
            if state == S.RESULTS_SUBMITTED:
                return a.results_at + w.judge_results, False
            k = t.deal.protocol.consortium_size
            return a.mediation_at + (1 if k == 1 else 2) * w.mediate_results, k > 1 and p.reveals == p.size

        def _timeout(self, t: Tracked, expected: bool | None) -> bool:
            """The deal's timeout, by a stranger; a mediation round's resolution checked against
            the votes read before it."""
            a, p, members = self._read(t)
            state = S(a.state)
            name = TIMEOUT_FOR_STATE.get(state, "timeoutMediateResult")
            audited = self._audit_predicted(t, a) if state == S.RESULTS_SUBMITTED and expected is not False else None
            if state == S.RESULTS_CHECKED:
                # who is on the round, as the resolution will fix it, and what they revealed
                drawn = self._draw(t, p, members)
                votes = self._votes(t, drawn)
                cast = {m: V(v.verdict) if v.round == p.round else V.NONE for m, v in votes.items()}
                counts = Counter(c for c in cast.values() if c != V.NONE)
                majority = next((c for c, n in counts.items() if 2 * n > p.size), None)
                offenders = {m for m in drawn if not votes[m].slashed
                             and (cast[m] == V.NONE or (majority is not None and cast[m] != majority))}
                if not p.assigned and chain.blocks.head.number + 1 - p.drawBlock > HORIZON:
                    stats["round resolved with its draw forgotten"] += 1
            receipt = self._deal_tx(expected, t, name, sender=stranger)
            if receipt is None:
                return False
            after, p2, _ = self._read(t)
            now_state = S(after.state)
            if state == S.DEAL_NEGOTIATING:
                assert now_state == S.TIMEOUT_AGREE
            elif state == S.DEAL_AGREED:
                assert now_state == S.TIMEOUT_SUBMIT_RESULTS
            elif state == S.RESULTS_SUBMITTED:
                assert now_state == (S.RESULTS_CHECKED if audited else S.TIMEOUT_JUDGE_RESULTS)
                assert bool(receipt.decode_logs(controller.DealAudited)) == audited
            else:
                slashed_now = {m for d, m in self.last_penalised if d == t.deal.deal_id}
                assert slashed_now == offenders, (slashed_now, offenders, cast)
                if majority is not None:
                    assert now_state == OUTCOME[majority], (now_state, cast)
                    stats[f"majority k={p.size} {now_state.name}"] += 1
                elif now_state == S.RESULTS_CHECKED:
                    assert p.round < MAX_ROUNDS and (p2.round, p2.assigned) == (p.round + 1, False)
                    stats[f"round {p2.round} k={p.size}"] += 1
                else:  # the last round, or too few eligible mediators left for another
                    assert now_state == S.TIMEOUT_MEDIATE_RESULTS
                    if p.round < MAX_ROUNDS:
                        eligible = int(mediation.eligibleCount(t.deal.deal_id, list(t.deal.members.mediators),
                                                               MIN_STAKE))
                        assert eligible < p.size, (eligible, p.size)
                        stats["refund: too few eligible"] += 1
            return True

        @rule(i=DEAL, every=st.booleans())
        def timeout(self, i, every):
            """One deal's timeout, which succeeds exactly when its window has passed; or (``every``)
            every timeout anyone can call now."""
            if every:
                self._sweep()
                return
            t = self._pick(i)
            a, p, _ = self._read(t)
            if S(a.state) not in TIMEOUT_FOR_STATE:
                self._timeout(t, False)
                return
            deadline, early = self._deadline(t, a, p)
            now = self._now()
            self._timeout(t, True if early else (None if abs(now - deadline) <= SLACK else now >= deadline))

        def _sweep(self):
            for t in self.deals:
                a, p, _ = self._read(t)
                if S(a.state) in TIMEOUT_FOR_STATE:
                    deadline, early = self._deadline(t, a, p)
                    if early or self._now() >= deadline + SLACK:
                        self._timeout(t, True)

        @rule(seconds=st.sampled_from([1, 30, 150, 250, 450, 900, 0]))
        def time_passes(self, seconds):
            """Seconds pass (one block), or (0) more blocks than the EVM keeps hashes of, so that
            open draws and audit draws are forgotten."""
            if seconds:
                chain.mine(timestamp=chain.pending_timestamp + seconds)
            else:
                chain.mine(FORGET)

        @rule(**PROGRESS)
        def progress(self, i, steps, check, garbage, count, choices, quiet):
            """Up to ``steps`` natural steps of a deal, the invariants checked after each, so runs
            reach the deep states: ``quiet`` drawn members stay silent, the others vote ``choices``
            in turn (the first of them the k = 1 mediator, unless it is quiet)."""
            for n in range(steps):
                if not self._next_step(i, check, garbage, count, choices[n % len(choices)], quiet):
                    return
                self.check()

        @rule(**PROGRESS)
        def progress_again(self, **kw):
            """The same: the deep states need it more often than any other rule."""
            self.progress(**kw)

        def _next_step(self, i, check, garbage, count, choice, quiet) -> bool:
            t = self._pick(i)
            a, p, members = self._read(t)
            state = S(a.state)
            if state in (S.NONE, S.DEAL_NEGOTIATING):
                self.agree(i, not a.jc_agreed)
            elif state == S.DEAL_AGREED:
                self.add_result(i, garbage, count)
            elif state == S.RESULTS_SUBMITTED:
                self.judge(i, check)
            elif (state == S.RESULTS_CHECKED and not p.assigned
                  and chain.blocks.head.number + 1 - p.drawBlock > HORIZON):
                self.assign(i)  # the draw was forgotten: someone draws the round afresh
            elif state == S.RESULTS_CHECKED and t.deal.protocol.consortium_size == 1 and not quiet:
                self.verdict(i, choice, "drawn")
            elif state == S.RESULTS_CHECKED:
                w = t.deal.timeouts.mediate_results
                drawn = self._draw(t, p, members)
                todo = [m for m in drawn[quiet:] if (p.round, m) not in t.openings]
                if todo and t.deal.protocol.consortium_size > 1 and self._open(a.mediation_at, w):
                    self.commit(i, drawn.index(todo[0]), choice, False)
                    return True
                mine = [m for (r, m) in t.openings if r == p.round]
                votes = self._votes(t, mine)
                unrevealed = [m for m in mine if votes[m].verdict == V.NONE]
                if unrevealed and self._now() < a.mediation_at + 2 * w - SLACK:
                    if p.commits < p.size and self._now() < a.mediation_at + w + SLACK:
                        chain.mine(timestamp=a.mediation_at + w + SLACK + 1)  # the reveal window opens
                    self.reveal(i, mine.index(unrevealed[0]), False)
                    return True
                deadline, early = self._deadline(t, a, p)
                if not early and self._now() < deadline + SLACK:
                    chain.mine(timestamp=deadline + SLACK + 1)
                self._timeout(t, True)
            else:
                return False
            return True

        # ------------------------------------------------------------ the pot
        @rule(amount=st.sampled_from([1, TOKEN, 3 * TOKEN, 0]))
        def pot(self, amount):
            """Anyone funds the jackpot, or (0) claims the treasury's share to the treasury address."""
            if amount:
                self.fund_jackpot(amount)
            else:
                self.claim_treasury()

        def fund_jackpot(self, amount):
            before = self._pot()[0]
            self._tx(True, controller, "fundJackpot", amount, sender=stranger)
            assert self._pot()[0] == before + amount

        def claim_treasury(self):
            owed, held = self._pot()[1], balances([treasury.address])[0]
            self._tx(True, controller, "claimTreasury", sender=stranger)
            assert (self._pot()[1], balances([treasury.address])[0]) == (0, held + owed)

        # ------------------------------------------------------------ mediators' stakes
        @rule(m=MEMBER, action=st.sampled_from(["stake", "stake", "unbond", "withdraw", "wait"]),
              amount=st.sampled_from([TOKEN, 30 * TOKEN]))
        def mediator(self, m, action, amount):
            """A mediator stakes, asks to unbond (at most two per example) or withdraws; or the
            unbonding delay passes (only while no deal is open: it would time every deal out)."""
            if action == "stake":
                self.stake(m, amount)
            elif action == "unbond" and self.unbonds < 2:
                self.unbond(m)
            elif action == "withdraw":
                self.withdraw(m)
            elif action == "wait" and self.unbonds:
                states = [S(self._read(t)[0].state) for t in self.deals]
                if all(s == S.NONE or s.is_terminal for s in states):
                    chain.mine(timestamp=chain.pending_timestamp + DELAY)

        def stake(self, m, amount):
            """Register (a stake slashed to nothing may) or add stake (refused while unbonding)."""
            who = panel[m]
            staked, since = self._stake(who.address)
            if staked == 0:
                self._tx(True, registry, "register", amount, sender=who)
            else:
                self._tx(since == 0, registry, "addStake", amount, sender=who)

        def unbond(self, m):
            who = panel[m]
            staked, since = self._stake(who.address)
            if self._tx(staked > 0 and since == 0, registry, "requestUnbond", sender=who):
                self.unbonds += 1

        def withdraw(self, m):
            who = panel[m]
            staked, since = self._stake(who.address)
            now = self._now()
            ready = None if since and abs(now - (since + DELAY)) <= SLACK else now >= since + DELAY
            self._tx(both(staked > 0, since != 0, ready), registry, "withdraw", sender=who)

        # ------------------------------------------------------------ invariants
        @invariant()
        def books(self):
            stats["steps"] += 1
            self.check()

        def check(self) -> None:
            """Money conserved, each deal settled exactly once, no stake slashed twice per deal."""
            deals = self.deals
            calls = [(token.address, _fn("totalSupply()"), "uint256")]
            calls += [(token.address, _fn("balanceOf(address)", ("address", a)), "uint256") for a in active]
            calls += [(payments.address, _fn("getPot()"), "(uint128,uint128)")]
            calls += [(registry.address, _fn("getStake(address)", ("address", m)), "(uint96,uint40)")
                      for m in panel_addresses]
            for t in deals:
                calls += [(storage.address, _fn("getAgreement(bytes32)", ("bytes32", t.deal.deal_id)), AGREEMENT),
                          (payments.address, _fn("getEscrow(bytes32)", ("bytes32", t.deal.deal_id)),
                           "(uint96,uint96,bool)"),
                          (mediation.address, _fn("getPanel(bytes32)", ("bytes32", t.deal.deal_id)), PANEL)]
                calls += [(mediation.address, _fn("getVote(bytes32,address)", ("bytes32", t.deal.deal_id),
                                                  ("address", m)), VOTE) for m in t.deal.members.mediators]
            got = iter(rpc.read(calls))
            total = next(got)
            held = {a: next(got) for a in active}
            jackpot, owed = next(got)
            stakes = [next(got)[0] for _ in panel_addresses]

            # money conserved
            assert total == supply, "tokens minted or burnt"
            assert sum(held.values()) + static_total == supply, "tokens left the holders"
            escrowed = 0
            for t in deals:
                a, (e_jc, e_rp, settled), (p, members) = Agreement(*next(got)), next(got), next(got)
                p = Panel(*p)
                members = [to_checksum_address(m) for m in members]
                votes = {m: Vote(*next(got)) for m in t.deal.members.mediators}
                escrowed += 0 if settled else e_jc + e_rp
                state, deal_id = S(a.state), t.deal.deal_id

                # each deal settles exactly once, and a terminal state never changes
                assert self.settled[deal_id] == (1 if state.is_terminal else 0), (state, self.settled[deal_id])
                assert settled == state.is_terminal, state
                if state.is_terminal:  # the account holds nothing and records what it paid the job creator
                    assert (e_jc, e_rp) == (self.paid_to_jc[deal_id], 0)
                    assert t.terminal in (None, state), (t.terminal, state)
                    t.terminal = state
                else:
                    assert t.terminal is None, (t.terminal, state)
                if state == S.NONE:
                    assert (e_jc, e_rp) == (0, 0)

                # a stake slashed at most once per deal: one penalty event per flag, no flag without one
                for m, vote in votes.items():
                    assert self.penalised[(deal_id, m)] == (1 if vote.slashed else 0), (m, vote)
                if state == S.RESULTS_CHECKED:
                    assert 1 <= p.round <= MAX_ROUNDS and p.size == t.deal.protocol.consortium_size
                    if p.assigned:  # k distinct listed members, none slashed on this deal
                        assert len(set(members)) == len(members) == p.size
                        assert set(members) <= set(t.deal.members.mediators)
                        assert not any(votes[m].slashed for m in members)
            assert all(n == 1 for n in self.penalised.values())
            assert held[payments.address] == escrowed + jackpot + owed, (
                held[payments.address], escrowed, jackpot, owed)
            assert held[registry.address] == sum(stakes), (held[registry.address], stakes)
            seen = held[treasury.address] + owed
            assert seen >= self.treasury_seen, "the treasury lost money"
            self.treasury_seen = seen

        # ------------------------------------------------------------ teardown: nothing stuck
        def teardown(self):
            try:
                for t in self.deals:
                    for _ in range(3 + 2 * MAX_ROUNDS):
                        a, p, _ = self._read(t)
                        if S(a.state) not in TIMEOUT_FOR_STATE:
                            break
                        deadline, early = self._deadline(t, a, p)
                        if not early and self._now() < deadline + SLACK:
                            chain.mine(timestamp=deadline + SLACK + 1)
                        assert self._timeout(t, True)
                    state = S(self._read(t)[0].state)
                    assert state == S.NONE or state.is_terminal, f"stuck in {state.name}"
                    stats[f"end {state.name} k={t.deal.protocol.consortium_size}"] += 1
                self.check()
                self.claim_treasury()
                jackpot, owed = self._pot()
                assert owed == 0 and balances([payments.address])[0] == jackpot  # no escrow left behind
                assert sum(balances(static)) == static_total
            finally:
                self._isolation.__exit__(None, None, None)

    examples = fuzz_examples()
    run_state_machine_as_test(MechanismsMachine, settings=stateful_settings())
    print(f"mechanisms fuzzing reached: {dict(sorted(stats.items()))}")
    if examples >= 25:  # not vacuous: rounds were resolved with slashes, and some by a verdict
        assert stats["slashes"] and any(key.startswith("end MEDIATION_") for key in stats), stats
