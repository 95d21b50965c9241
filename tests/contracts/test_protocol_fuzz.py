"""Hypothesis stateful fuzzing of the whole protocol on a real chain.

Random sequences of agree / addResult / accept / check / mediate (accept, reject or
non-deterministic) / time travel /
timeouts over several deals and parties, interleaved with mediators staking, unbonding and
withdrawing in the mediator registry and the admin changing the minimum mediator stake (each
change is a new settings version, which deals not yet agreed then name; a deal's first agree
succeeds only if every mediator it names qualifies). Deals have a panel of one mediator; a
mediation round that ends without a verdict marks the silent mediator slashed on that deal
(nothing is taken: the settings' slash is 0) and draws a new round from the others still
eligible, up to three rounds, then refunds everyone. A model predicts every outcome and
every payout from the deal terms alone; after every step we check that the
protocol's token balance equals the sum of open escrows, the registry's the sum of the stakes, that each escrow and
each party's balance is what the model says, that reputation (counters, value paid and verified) matches the
history, and that settled deals never move again. At teardown every open deal
is driven to a terminal state through the timeouts anyone can trigger.

Budget: LILYPAD_FUZZ_EXAMPLES (``make test`` uses a small one, ``make fuzz`` a large one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from ape.exceptions import ContractLogicError
from fuzz_budget import stateful_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from mechanisms_support import window_open

from lilypad.chain.mediation import Panel, Vote
from lilypad.protocol.deal import TIMEOUT_FOR_STATE, Deal, DealMembers, DealPricing, DealProtocol, DealTimeouts
from lilypad.protocol.deal import AgreementState as S

MAX = 2**256 - 1
CID = bytes.fromhex("44" * 32)
DELAY = 67 * 24 * 3600  # the registry's UNBONDING_DELAY
MAX_ROUNDS = 3  # LilypadMediation.MAX_ROUNDS
SLACK = 3  # seconds of clock uncertainty around a deadline: outcome not predicted there
#: The mediator's verdicts, by the rule's name for them.
VERDICTS = {"accept": "mediationAcceptResult", "reject": "mediationRejectResult",
            "non_deterministic": "mediationNonDeterministic"}
REP_FIELDS = ("dealsAgreed", "resultsSubmitted", "resultsAccepted", "resultsChecked",
              "mediationsPassed", "mediationsFailed", "submitTimeouts", "otherTimeouts",
              "valuePaid", "valueVerified")


@dataclass
class Model:
    deal: Deal
    state: S = S.NONE
    jc_agreed: bool = False
    rp_agreed: bool = False
    created: int = 0
    agreed_at: int = 0
    results_at: int = 0
    checked_at: int = 0  # start of the current mediation round
    rounds: int = 0  # mediation rounds started
    slashed: set = field(default_factory=set)  # mediators marked slashed on this deal
    instructions: int = 0
    escrow_jc: int = 0
    escrow_rp: int = 0
    settled: bool = False
    history: list = field(default_factory=list)


@dataclass
class StakeModel:
    amount: int = 0
    since: int = 0  # unbonding since (0: bonded)


@pytest.mark.fuzzing
def test_protocol_state_machine(chain, accounts, system, job_creator, resource_provider, stranger, payee,
                                mediators, deployer):
    token, controller, storage, payments, mediation, registry = (
        system[k] for k in ("token", "controller", "storage", "payments", "mediation", "mediator_registry"))
    for who in (payee,):
        token.approve(payments, MAX, sender=who)
    for mediator in mediators:
        token.mint(mediator, 100, sender=deployer)
        token.approve(registry, MAX, sender=mediator)
    creators = [job_creator, stranger]
    providers = [resource_provider, payee]
    everyone = {a.address: a for a in creators + providers + list(mediators)}
    reached: set[S] = set()  # every state any deal reached, to show the run was not vacuous

    class ProtocolMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self._isolation = chain.isolate()
            self._isolation.__enter__()
            self.deals: list[Model] = []
            self.balances = {a: token.balanceOf(a) for a in everyone}
            self.reputation = {p.address: dict.fromkeys(REP_FIELDS, 0) for p in providers}
            self.stakes = {m.address: StakeModel() for m in mediators}
            self.min_stake = 0
            self.version_min_stake = [0]  # each settings version's minimum mediator stake

        def teardown(self):
            try:
                for i, m in enumerate(self.deals):
                    while m.state in TIMEOUT_FOR_STATE:  # every open deal can still end
                        chain.mine(timestamp=chain.pending_timestamp + 1000)
                        before = (m.state, m.rounds)
                        self.timeout(i, TIMEOUT_FOR_STATE[m.state])
                        assert (m.state, m.rounds) != before  # it ended, or a new mediation round began
                    assert m.state == S.NONE or S(storage.getAgreement(m.deal.deal_id).state).is_terminal
                self.check_money()
                assert token.balanceOf(payments) == 0
                assert token.balanceOf(registry) == sum(st_.amount for st_ in self.stakes.values())
                reached.update(m.state for m in self.deals)
            finally:
                self._isolation.__exit__(None, None, None)

        # -------------------------------------------------------- helpers
        def _now(self) -> int:
            return chain.pending_timestamp

        def _window(self, start: int, length: int) -> bool | None:
            """True: open, False: closed, None: too close to the deadline to say."""
            return window_open(self._now(), start, length, SLACK)

        def _do(self, m: Model, fn: str, who, *args):
            try:
                receipt = getattr(controller, fn)(m.deal.as_tuple(), *args, sender=who)
            except ContractLogicError:
                return None
            m.history.append(fn)
            return receipt

        def _pay(self, m: Model, to_jc: int, to_rp: int, mediator: str | None = None, fee: int = 0):
            assert not m.settled, m.history  # each deal settles exactly once
            assert to_jc + to_rp + fee == m.escrow_jc + m.escrow_rp
            self.balances[m.deal.members.job_creator] += to_jc
            self.balances[m.deal.members.resource_provider] += to_rp
            if mediator:
                self.balances[mediator] += fee
            # A settled account records what it paid the job creator (and holds nothing).
            m.escrow_jc, m.escrow_rp = to_jc, 0
            m.settled = True

        def _rep(self, m: Model, name: str, paid: int = 0, verified: bool = False):
            """Bump the counter ``name``; a settlement that pays the provider the job cost ``paid``
            adds it to valuePaid, and to valueVerified if a mediator accepted the result."""
            rep = self.reputation[m.deal.members.resource_provider]
            rep[name] += 1
            rep["valuePaid"] += paid
            rep["valueVerified"] += paid if verified else 0

        def _ts(self, receipt) -> int:
            return chain.blocks[receipt.block_number].timestamp

        # -------------------------------------------------------- rules
        @initialize()
        def start(self):
            self.new_deal_with(0, 0, 1, 5, 2, 1, 1, 1, 200, 200, 200, 200)

        @precondition(lambda self: len(self.deals) < 4)
        @rule(jc=st.integers(0, 1), rp=st.integers(0, 1), price=st.integers(1, 3), extra=st.integers(0, 6),
              multiple=st.integers(1, 3), fee=st.integers(0, 2), submit_c=st.integers(0, 3),
              judge_c=st.integers(0, 3), ta=st.sampled_from([60, 200]), ts=st.sampled_from([60, 200]),
              tj=st.sampled_from([60, 200]), tm=st.sampled_from([60, 200]))
        def new_deal(self, jc, rp, price, extra, multiple, fee, submit_c, judge_c, ta, ts, tj, tm):
            self.new_deal_with(jc, rp, price, price + extra, multiple, fee, submit_c, judge_c, ta, ts, tj, tm)

        def new_deal_with(self, jc, rp, price, payment, multiple, fee, submit_c, judge_c, ta, ts, tj, tm):
            deal = Deal(
                members=DealMembers(solver=accounts[6], job_creator=creators[jc], resource_provider=providers[rp],
                                    mediators=mediators),
                timeouts=DealTimeouts(agree=ta, submit_results=ts, judge_results=tj, mediate_results=tm,
                                      submit_results_collateral=submit_c, judge_results_collateral=judge_c),
                pricing=DealPricing(instruction_price=price, payment_collateral=payment,
                                    results_collateral_multiple=multiple, mediation_fee=fee),
                protocol=DealProtocol(settings_version=len(self.version_min_stake) - 1),
            )
            self.deals.append(Model(deal))

        @rule(i=st.integers(0, 3), job_creator_side=st.booleans())
        def agree(self, i, job_creator_side):
            m = self.deals[i % len(self.deals)]
            who = everyone[m.deal.members.job_creator if job_creator_side else m.deal.members.resource_provider]
            already = m.jc_agreed if job_creator_side else m.rp_agreed
            if m.state == S.NONE:
                expected = all(self._qualifies(x) for x in m.deal.members.mediators)
            elif m.state == S.DEAL_NEGOTIATING and not already:
                expected = self._window(m.created, m.deal.timeouts.agree)
            else:
                expected = False
            receipt = self._do(m, "agree", who)
            if expected is not None:
                assert (receipt is not None) == expected, (m.state, m.history)
            if receipt is None:
                return
            ts = self._ts(receipt)
            if m.state == S.NONE:
                m.state, m.created = S.DEAL_NEGOTIATING, ts
            if job_creator_side:
                m.jc_agreed = True
                m.escrow_jc += m.deal.job_creator_deposit
                self.balances[who.address] -= m.deal.job_creator_deposit
            else:
                m.rp_agreed = True
                m.escrow_rp += m.deal.resource_provider_deposit
                self.balances[who.address] -= m.deal.resource_provider_deposit
            if m.jc_agreed and m.rp_agreed:
                m.state, m.agreed_at = S.DEAL_AGREED, ts
                self._rep(m, "dealsAgreed")

        @rule(i=st.integers(0, 3), count=st.integers(1, 4))
        def add_result(self, i, count):
            m = self.deals[i % len(self.deals)]
            fits = m.deal.job_cost(count) <= m.deal.pricing.payment_collateral
            expected = self._window(m.agreed_at, m.deal.timeouts.submit_results) if (
                m.state == S.DEAL_AGREED and fits) else False
            receipt = self._do(m, "addResult", everyone[m.deal.members.resource_provider], CID, count)
            if expected is not None:
                assert (receipt is not None) == expected, (m.state, m.history)
            if receipt is None:
                return
            m.state, m.results_at, m.instructions = S.RESULTS_SUBMITTED, self._ts(receipt), count
            new = m.deal.results_collateral(count)
            self.balances[m.deal.members.resource_provider] -= new - m.escrow_rp
            m.escrow_rp = new
            self._rep(m, "resultsSubmitted")

        @rule(i=st.integers(0, 3), check=st.booleans())
        def judge(self, i, check):
            m = self.deals[i % len(self.deals)]
            expected = self._window(m.results_at, m.deal.timeouts.judge_results) if (
                m.state == S.RESULTS_SUBMITTED) else False
            jc = m.deal.members.job_creator
            receipt = self._do(m, "checkResult" if check else "acceptResult", everyone[jc])
            if expected is not None:
                assert (receipt is not None) == expected, (m.state, m.history)
            if receipt is None:
                return
            if check:
                m.state, m.checked_at, m.rounds = S.RESULTS_CHECKED, self._ts(receipt), 1
                m.escrow_jc += m.deal.pricing.mediation_fee
                self.balances[jc] -= m.deal.pricing.mediation_fee
                self._rep(m, "resultsChecked")
            else:
                m.state = S.RESULTS_ACCEPTED
                cost = m.deal.job_cost(m.instructions)
                self._pay(m, m.escrow_jc - cost, m.escrow_rp + cost)
                self._rep(m, "resultsAccepted", paid=cost)

        @rule(i=st.integers(0, 3), verdict=st.sampled_from(sorted(VERDICTS)), wrong_mediator=st.booleans())
        def mediate(self, i, verdict, wrong_mediator):
            m = self.deals[i % len(self.deals)]
            if m.state != S.RESULTS_CHECKED:
                if m.state.is_terminal:  # no verdict after the end: a settled deal never pays again
                    for mediator in m.deal.members.mediators:
                        assert self._do(m, VERDICTS[verdict], everyone[mediator]) is None, (m.state, m.history)
                return
            chosen = self._drawn(m)
            if chosen is None:  # no eligible mediator left to draw: no verdict can settle this round
                who, expected = m.deal.members.mediators[0], False
            else:
                who = next(x for x in m.deal.members.mediators if x != chosen) if wrong_mediator else chosen
                expected = False if wrong_mediator else self._window(m.checked_at, m.deal.timeouts.mediate_results)
            receipt = self._do(m, VERDICTS[verdict], everyone[who])
            if expected is not None:
                assert (receipt is not None) == expected, (m.state, m.history)
            if receipt is None:
                return
            fee = m.deal.pricing.mediation_fee
            cost = m.deal.job_cost(m.instructions)
            judge_c = m.deal.timeouts.judge_results_collateral
            if verdict == "accept":
                m.state = S.MEDIATION_ACCEPTED
                self._pay(m, m.escrow_jc - fee - cost, m.escrow_rp + cost, chosen, fee)
                self._rep(m, "mediationsPassed", paid=cost, verified=True)
            elif verdict == "non_deterministic":  # the job's fault: paid as accepted, plus the judging collateral
                m.state = S.MEDIATION_NON_DETERMINISTIC
                self._pay(m, m.escrow_jc - fee - cost - judge_c, m.escrow_rp + cost + judge_c, chosen, fee)
                self._rep(m, "mediationsPassed", paid=cost)
            else:
                m.state = S.MEDIATION_REJECTED
                self._pay(m, m.escrow_jc - fee + m.escrow_rp, 0, chosen, fee)
                self._rep(m, "mediationsFailed")

        @rule(i=st.integers(0, 3), check=st.booleans(), verdict=st.sampled_from(sorted(VERDICTS)),
              count=st.integers(1, 3), steps=st.integers(1, 5))
        def progress(self, i, check, verdict, count, steps):
            """Take up to ``steps`` of a deal's next natural steps, so runs of a few dozen steps
            among fifteen rules reach the deep states (a settled deal needs four or five)."""
            m = self.deals[i % len(self.deals)]
            for _ in range(steps):
                before = (m.state, m.jc_agreed, m.rp_agreed)
                if m.state in (S.NONE, S.DEAL_NEGOTIATING):
                    self.agree(i, not m.jc_agreed)
                elif m.state == S.DEAL_AGREED:
                    self.add_result(i, count)
                elif m.state == S.RESULTS_SUBMITTED:
                    self.judge(i, check)
                elif m.state == S.RESULTS_CHECKED:
                    self.mediate(i, verdict, False)
                if (m.state, m.jc_agreed, m.rp_agreed) == before:
                    return  # refused (a window closed, a mediator not staked): the model said why

        @rule(seconds=st.sampled_from([1, 20, 50, 120]))
        def time_travel(self, seconds):
            chain.mine(timestamp=chain.pending_timestamp + seconds)

        @rule(i=st.integers(0, 3), which=st.sampled_from(sorted(TIMEOUT_FOR_STATE.values())))
        def timeout(self, i, which):
            m = self.deals[i % len(self.deals)]
            t = m.deal.timeouts
            starts = {"timeoutAgree": (S.DEAL_NEGOTIATING, m.created, t.agree),
                      "timeoutSubmitResult": (S.DEAL_AGREED, m.agreed_at, t.submit_results),
                      "timeoutJudgeResult": (S.RESULTS_SUBMITTED, m.results_at, t.judge_results),
                      "timeoutMediateResult": (S.RESULTS_CHECKED, m.checked_at, t.mediate_results)}
            state, start, length = starts[which]
            if m.state != state:
                expected = False
            else:
                window = self._window(start, length)
                expected = None if window is None else not window
            receipt = self._do(m, which, stranger)
            if expected is not None:
                assert (receipt is not None) == expected, (m.state, m.history)
            if receipt is None:
                return
            cost = m.deal.job_cost(m.instructions)
            if which == "timeoutAgree":
                m.state = S.TIMEOUT_AGREE
                self._pay(m, m.escrow_jc, m.escrow_rp)
            elif which == "timeoutSubmitResult":
                m.state = S.TIMEOUT_SUBMIT_RESULTS
                self._pay(m, m.escrow_jc + m.escrow_rp, 0)
                self._rep(m, "submitTimeouts")
            elif which == "timeoutJudgeResult":
                m.state = S.TIMEOUT_JUDGE_RESULTS
                judge_c = m.deal.timeouts.judge_results_collateral
                self._pay(m, m.escrow_jc - cost - judge_c, m.escrow_rp + cost + judge_c)
                self._rep(m, "otherTimeouts", paid=cost)
            else:
                self._round_ended(m, receipt)

        def _drawn(self, m: Model) -> str | None:
            """The mediator the current round's draw names, read on-chain (the draw
            block sealed first); ``None`` when too few mediators are eligible."""
            panel = Panel.from_chain(mediation.getPanel(m.deal.deal_id))
            if panel.assigned:
                return panel.members[0]
            if chain.blocks.head.number <= panel.draw_block:
                chain.mine()
            min_stake = self.version_min_stake[m.deal.protocol.settings_version]
            try:
                return mediation.drawPanel(m.deal.deal_id, list(m.deal.members.mediators), min_stake)[0]
            except ContractLogicError:
                return None

        def _eligible(self, m: Model) -> list[str]:
            """The deal's mediators a new round may draw: not slashed on it and, under a
            minimum stake, staked at least that much and not unbonding."""
            min_stake = self.version_min_stake[m.deal.protocol.settings_version]
            return [x for x in m.deal.members.mediators if x not in m.slashed and (
                min_stake == 0 or (self.stakes[x].amount >= min_stake and self.stakes[x].since == 0))]

        def _round_ended(self, m: Model, receipt):
            """timeoutMediateResult: the round's silent mediator (if one was drawn) is marked
            slashed; a new round starts while rounds and eligible mediators are left, else
            everyone is refunded."""
            newly = {x for x in m.deal.members.mediators
                     if x not in m.slashed and Vote.from_chain(mediation.getVote(m.deal.deal_id, x)).slashed}
            assert len(newly) <= 1, (newly, m.history)  # one silent mediator per round of one
            m.slashed |= newly
            panel = Panel.from_chain(mediation.getPanel(m.deal.deal_id))
            if m.rounds < MAX_ROUNDS and self._eligible(m):
                m.rounds += 1
                m.checked_at = self._ts(receipt)
                assert (panel.round, panel.assigned) == (m.rounds, False), m.history
                return
            m.state = S.TIMEOUT_MEDIATE_RESULTS
            self._pay(m, m.escrow_jc, m.escrow_rp)
            self._rep(m, "otherTimeouts")

        # -------------------------------------------------------- mediator stakes
        def _qualifies(self, mediator: str) -> bool:
            s_ = self.stakes[mediator]
            return self.min_stake == 0 or (s_.amount >= self.min_stake and s_.since == 0)

        @rule(k=st.integers(0, 2), amount=st.integers(0, 20))
        def stake(self, k, amount):
            who = mediators[k]
            s_ = self.stakes[who.address]
            fn = registry.addStake if s_.amount else registry.register
            expected = amount > 0 and s_.since == 0 and self.balances[who.address] >= amount
            try:
                fn(amount, sender=who)
            except ContractLogicError:
                assert not expected
                return
            assert expected
            s_.amount += amount
            self.balances[who.address] -= amount

        @rule(k=st.integers(0, 2))
        def unbond(self, k):
            who = mediators[k]
            s_ = self.stakes[who.address]
            try:
                receipt = registry.requestUnbond(sender=who)
            except ContractLogicError:
                assert s_.amount == 0 or s_.since != 0
                return
            assert s_.amount > 0 and s_.since == 0
            s_.since = self._ts(receipt)

        @rule(k=st.integers(0, 2))
        def withdraw(self, k):
            who = mediators[k]
            s_ = self.stakes[who.address]
            try:
                registry.withdraw(sender=who)
            except ContractLogicError:
                assert s_.amount == 0 or s_.since == 0 or self._now() < s_.since + DELAY + SLACK
                return
            assert s_.amount > 0 and s_.since != 0 and self._now() >= s_.since + DELAY - SLACK
            self.balances[who.address] += s_.amount
            self.stakes[who.address] = StakeModel()

        # Only between deals: a 37-day jump would time out every open deal, and with it the
        # results, verdicts and judge timeouts the run must also reach (see the check below).
        @precondition(lambda self: any(s_.since for s_ in self.stakes.values())
                      and all(m.state == S.NONE or m.state.is_terminal for m in self.deals))
        @rule()
        def wait_out_unbonding(self):
            chain.mine(timestamp=chain.pending_timestamp + DELAY)

        @rule(value=st.sampled_from([0, 0, 5, 10]))
        def set_min_stake(self, value):
            controller.setMinMediatorStake(value, sender=deployer)  # appends a settings version
            self.min_stake = value
            self.version_min_stake.append(value)
            version = len(self.version_min_stake) - 1
            assert controller.getSettingsVersion() == version
            for m in self.deals:  # terms not yet agreed are made anew under the current version
                if m.state == S.NONE:
                    m.deal = m.deal.model_copy(update={"protocol": DealProtocol(settings_version=version)})

        # -------------------------------------------------------- invariants
        @invariant()
        def check_money(self):
            open_total = 0
            for m in self.deals:
                escrow = payments.getEscrow(m.deal.deal_id)
                assert (escrow.jobCreator, escrow.resourceProvider) == (m.escrow_jc, m.escrow_rp), m.history
                assert escrow.settled == m.settled, m.history
                assert S(storage.getAgreement(m.deal.deal_id).state) == m.state, m.history
                if not escrow.settled:
                    open_total += escrow.jobCreator + escrow.resourceProvider
            assert token.balanceOf(payments) == open_total
            assert token.balanceOf(registry) == sum(s_.amount for s_ in self.stakes.values())
            for address, s_ in self.stakes.items():
                on_chain = registry.getStake(address)
                assert (int(on_chain.amount), int(on_chain.unbondingSince)) == (s_.amount, s_.since)
            for address, expected in self.balances.items():
                assert token.balanceOf(address) == expected, address

        @invariant()
        def check_reputation(self):
            for provider, counters in self.reputation.items():
                r = storage.getReputation(provider)
                assert {k: int(getattr(r, k)) for k in REP_FIELDS} == counters

    run_state_machine_as_test(ProtocolMachine, settings=stateful_settings())
    print(f"fuzzing reached: {sorted(s.name for s in reached)}")
    assert reached & {S.RESULTS_ACCEPTED, S.MEDIATION_ACCEPTED, S.MEDIATION_REJECTED, S.MEDIATION_NON_DETERMINISTIC,
                      S.TIMEOUT_JUDGE_RESULTS}
