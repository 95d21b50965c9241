"""The on-chain engine: deals driven through the project's real contracts on anvil.

:class:`OnChainTwin` starts an anvil, deploys the system with ``ape run deploy`` (the same
script operators use), applies one protocol settings version, registers and stakes a pool of
mediators, funds the jackpot, and then plays :class:`Plan` s: plain transactions from anvil's
unlocked accounts (no solver, no containers; what a job computed is the plan's to say). Each
played deal returns what happened on-chain (:class:`~lilypad.twin.model.DealCourse`: audited
or not, who was drawn in each round, how each voted) and every party's measured token change
(:class:`~lilypad.twin.model.Payoff`), read from balances, stakes and the pot before and after.
"""

from __future__ import annotations

import json
import random
import secrets
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from lilypad.protocol.deal import AgreementState, Deal, DealMembers, DealPricing, DealProtocol, DealTimeouts, Verdict
from lilypad.protocol.settings import ProtocolSettings
from lilypad.twin.model import DealCourse, Ending, Ledger, Payoff, Terms, settle
from lilypad.twin.strategies import Market, Strategy

__all__ = ["OnChainTwin", "Parity", "Plan", "StrategyPlay", "check_parity", "play_strategy", "random_plans"]

_GAS = 3_000_000
#: Deal windows (s): short, so advancing the clock past one costs one RPC call.
WINDOW = 100
_UNIT = 10**18


@dataclass(frozen=True)
class Plan:
    """What the scenario decides for one deal: how it ends before mediation, how many
    instructions the provider claims, and how the members of each mediation round would vote
    (in draw order; ``None``: silent). Whether an accept is audited is the chain's draw."""

    ending: Ending
    instructions: int = 1
    votes: tuple[tuple[Verdict | None, ...], ...] = ()
    #: Votes by who is drawn instead of by position (an agent's plan): the ``bribed`` mediators
    #: vote ``bribed_vote`` (``None``: silent), every other member ``honest_vote``.
    honest_vote: Verdict | None = None
    bribed: tuple[str, ...] = ()
    bribed_vote: Verdict | None = None

    def cast(self, number: int, members: tuple[str, ...]) -> tuple[tuple[str, Verdict | None], ...]:
        """How the drawn ``members`` of round ``number`` (1-based) vote."""
        if self.honest_vote is not None:
            return tuple((m, self.bribed_vote if m in self.bribed else self.honest_vote) for m in members)
        votes = self.votes[number - 1] if number - 1 < len(self.votes) else ()
        return tuple((m, votes[i] if i < len(votes) else None) for i, m in enumerate(members))


class OnChainTwin:
    """The deployed contracts on a private anvil, with ``mediators`` staked mediators."""

    def __init__(self, settings: ProtocolSettings, terms: Terms, *, mediators: int = 5, stake: int = 300 * _UNIT,
                 jackpot: int = 50 * _UNIT, root: Path | None = None) -> None:
        self.settings, self.terms = settings, terms
        self.n_mediators, self.stake, self.initial_jackpot = mediators, stake, jackpot
        self.root = Path(root or tempfile.mkdtemp(prefix="lilypad-twin-"))
        self.anvil: Any = None
        self.last: dict[str, int] = {}  # the latest snapshot()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> OnChainTwin:
        from web3 import Web3

        from lilypad.devnet.processes import deploy_contracts, free_port, repo_root, start_anvil

        port = free_port()
        self.anvil = start_anvil(port, self.root / "anvil.log")
        try:
            record = deploy_contracts(port, self.root / "deployments", self.root / "deploy.log")
            self.w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 60}))
            types = json.loads((repo_root() / ".build" / "__local__.json").read_text())["contractTypes"]
            addresses = record["contracts"]

            def at(name: str, address: str) -> Any:
                return self.w3.eth.contract(address=self.w3.to_checksum_address(address), abi=types[name]["abi"])

            self.token = at("LilypadToken", addresses["token"])
            self.controller = at("LilypadController", addresses["controller"])
            self.payments = at("LilypadPayments", addresses["payments"])
            self.mediation = at("LilypadMediation", addresses["mediation"])
            self.storage = at("LilypadStorage", addresses["storage"])
            self.registry = at("LilypadMediatorRegistry", self.controller.functions.getMediatorRegistryAddress().call())
            accounts: list[str] = list(self.w3.eth.accounts)
            self.admin, self.job_creator, self.provider = accounts[0], accounts[1], accounts[2]
            self.solver = accounts[4]
            self.mediators = tuple(accounts[5:5 + self.n_mediators])
            self._setup()
            self.snapshot()
        except BaseException:
            self.anvil.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.anvil is not None:
            self.anvil.stop()

    def _setup(self) -> None:
        c, t = self.controller.functions, self.token.functions
        s = self.settings
        self._send(c.setProtocolSettings((s.tax_bps, s.treasury_share_bps, s.audit_bps, s.reward_bps,
                                          s.min_mediator_stake, s.mediator_slash)), self.admin)
        self._send(c.setTreasury(self.admin), self.admin)
        self.version = int(c.getSettingsVersion().call())
        for who in (self.admin, self.job_creator, self.provider):
            self._send(t.approve(self.payments.address, 2**256 - 1), who)
        for m in self.mediators:
            self._send(t.approve(self.registry.address, self.stake), m)
            self._send(self.registry.functions.register(self.stake), m)
        if self.initial_jackpot:
            self._send(c.fundJackpot(self.initial_jackpot), self.admin)

    def top_up(self, balance: int = 1_000 * _UNIT) -> None:
        """Restore every mediator's stake to the starting one (the admin mints what a slash
        took, the mediator adds it) and the job creator's and provider's balances to at least
        ``balance``, so that one strategy's losses do not starve the next's deals."""
        t, r = self.token.functions, self.registry.functions
        snap = self.snapshot()
        for who, key in ((self.job_creator, "job_creator"), (self.provider, "provider")):
            if snap[key] < balance:
                self._send(t.mint(who, balance - snap[key]), self.admin)
        for m, amount in self.stakes(snap).items():
            if amount < self.stake:
                self._send(t.mint(m, self.stake - amount), self.admin)
                self._send(t.approve(self.registry.address, self.stake - amount), m)
                self._send(r.addStake(self.stake - amount), m)
        self.snapshot()

    # ------------------------------------------------------------------ reads and sends

    def _send(self, call: Any, sender: str) -> Any:
        receipt = self.w3.eth.wait_for_transaction_receipt(call.transact({"from": sender, "gas": _GAS}),
                                                           timeout=60, poll_latency=0.005)
        if receipt["status"] != 1:
            raise RuntimeError(f"{call.fn_name} from {sender} reverted")
        return receipt

    def _advance(self, seconds: int) -> None:
        from web3.types import RPCEndpoint

        self.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [int(seconds)])
        self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])

    def snapshot(self) -> dict[str, int]:
        """Every balance a deal can move: parties, mediators' balances and stakes, the pot
        (one batched JSON-RPC request; kept as :attr:`last`)."""
        bal, stake = self.token.functions.balanceOf, self.registry.functions.getStake
        keys = ["job_creator", "provider"]
        with self.w3.batch_requests() as batch:
            batch.add(bal(self.job_creator))
            batch.add(bal(self.provider))
            for m in self.mediators:
                batch.add(bal(m))
                batch.add(stake(m))
                keys += [f"mediator:{m}", f"stake:{m}"]
            batch.add(self.payments.functions.getPot())
            values: list[Any] = list(batch.execute())
        out = {}
        for key, value in zip(keys, values[:-1], strict=True):
            out[key] = int(value[0]) if key.startswith("stake:") else int(value)
        out["jackpot"], out["treasury"] = (int(v) for v in values[-1])
        self.last = out
        return out

    def stakes(self, snapshot: dict[str, int] | None = None) -> dict[str, int]:
        """Each mediator's stake, from ``snapshot`` (default: a fresh one)."""
        snap = snapshot if snapshot is not None else self.snapshot()
        return {m: snap[f"stake:{m}"] for m in self.mediators}

    # ------------------------------------------------------------------ one deal

    def listable(self) -> tuple[str, ...]:
        """The mediators a new deal may name: staked at least the minimum (as the solver
        matches; a mediator slashed below it is refused at agree)."""
        least = self.settings.min_mediator_stake
        listed = tuple(m for m, amount in self.stakes(self.last).items() if amount >= least and amount > 0)
        if len(listed) < self.terms.k:
            raise RuntimeError(f"only {len(listed)} mediators still hold the minimum stake; a panel needs "
                               f"{self.terms.k} (give them more stake)")
        return listed

    def deal(self) -> Deal:
        t = self.terms
        return Deal(members=DealMembers(solver=self.solver, job_creator=self.job_creator,
                                        resource_provider=self.provider, mediators=self.listable()),
                    timeouts=DealTimeouts(agree=WINDOW, submit_results=WINDOW, judge_results=WINDOW,
                                          mediate_results=WINDOW, submit_results_collateral=t.submit_collateral,
                                          judge_results_collateral=t.judge_collateral),
                    pricing=DealPricing(instruction_price=t.instruction_price, payment_collateral=t.payment_collateral,
                                        results_collateral_multiple=t.results_collateral_multiple,
                                        mediation_fee=t.mediation_fee),
                    nonce=secrets.token_bytes(32),
                    protocol=DealProtocol(consortium_size=t.k, settings_version=self.version))

    def play(self, plan: Plan) -> tuple[DealCourse, Payoff]:
        """Drive one deal as ``plan`` says; what happened and the measured payoffs."""
        # Nothing moves money between deals: the snapshot taken after the previous one is "before".
        before, deal = self.last, self.deal()
        course = self._drive(deal, plan)
        payoff = self._payoff(before, self.snapshot())
        payoff.state = self._state(deal).name
        return course, payoff

    def _drive(self, deal: Deal, plan: Plan) -> DealCourse:
        c, d = self.controller.functions, deal.as_tuple()
        self._send(c.agree(d), self.job_creator)
        if plan.ending is Ending.AGREE_TIMEOUT:
            self._advance(WINDOW + 1)
            self._send(c.timeoutAgree(d), self.admin)
            return DealCourse(plan.ending)
        self._send(c.agree(d), self.provider)
        if plan.ending is Ending.SUBMIT_TIMEOUT:
            self._advance(WINDOW + 1)
            self._send(c.timeoutSubmitResult(d), self.admin)
            return DealCourse(plan.ending)
        self._send(c.addResult(d, secrets.token_bytes(32), plan.instructions), self.provider)
        if plan.ending is Ending.ACCEPT:
            self._send(c.acceptResult(d), self.job_creator)
        elif plan.ending is Ending.JUDGE_TIMEOUT:
            self._advance(WINDOW + 1)
            self._send(c.timeoutJudgeResult(d), self.admin)
        else:
            self._send(c.checkResult(d), self.job_creator)
        state = self._state(deal)
        if state != AgreementState.RESULTS_CHECKED:
            return DealCourse(plan.ending, plan.instructions)
        audited = plan.ending is not Ending.CHECK
        rounds = []
        for number in range(1, 4):
            cast = plan.cast(number, self._panel(deal))
            rounds.append(cast)
            self._vote(deal, number, cast)
            if self._state(deal) != AgreementState.RESULTS_CHECKED:
                break
        return DealCourse(plan.ending, plan.instructions, audited=audited, rounds=tuple(rounds))

    def _state(self, deal: Deal) -> AgreementState:
        return AgreementState(int(self.storage.functions.getAgreement(deal.deal_id).call()[0]))

    def _panel(self, deal: Deal) -> tuple[str, ...]:
        self._send(self.controller.functions.assignMediator(deal.as_tuple()), self.admin)
        _, members = self.mediation.functions.getPanel(deal.deal_id).call()
        return tuple(self.w3.to_checksum_address(m) for m in members)

    def _vote(self, deal: Deal, round_: int, cast: tuple[tuple[str, Verdict | None], ...]) -> None:
        from lilypad.mediator.panel import commitment

        c, d = self.controller.functions, deal.as_tuple()
        if self.terms.k == 1:
            (member, verdict), = cast
            if verdict is None:
                self._advance(WINDOW + 1)
                self._send(c.timeoutMediateResult(d), self.admin)
            else:
                fn = {Verdict.ACCEPT: c.mediationAcceptResult, Verdict.REJECT: c.mediationRejectResult,
                      Verdict.NON_DETERMINISTIC: c.mediationNonDeterministic}[verdict]
                self._send(fn(d), member)
            return
        digest, salts = bytes(32), {m: secrets.token_bytes(32) for m, _ in cast}
        voters = [(m, v) for m, v in cast if v is not None]
        for m, v in voters:
            self._send(c.commitVerdict(d, commitment(deal.deal_id, round_, m, v, digest, salts[m])), m)
        if len(voters) < len(cast):
            self._advance(WINDOW + 1)  # the reveal window opens when the commit window closes
        for m, v in voters:
            self._send(c.revealVerdict(d, int(v), digest, salts[m]), m)
        if len(voters) < len(cast):
            self._advance(WINDOW + 1)  # past commit + reveal windows
        self._send(c.timeoutMediateResult(d), self.admin)

    def _payoff(self, before: dict[str, int], after: dict[str, int]) -> Payoff:
        delta = {k: after[k] - before[k] for k in before}
        out = Payoff(job_creator=delta["job_creator"], provider=delta["provider"], jackpot=delta["jackpot"],
                     treasury=delta["treasury"], mediators=Counter(), stakes=Counter())
        for m in self.mediators:
            if delta[f"mediator:{m}"]:
                out.mediators[m] = delta[f"mediator:{m}"]
            if delta[f"stake:{m}"]:
                out.stakes[m] = delta[f"stake:{m}"]
        return out


_VOTES = (Verdict.ACCEPT, Verdict.REJECT, Verdict.NON_DETERMINISTIC, None)


def random_plans(terms: Terms, rng: random.Random, deals: int) -> list[Plan]:
    """``deals`` plans over every ending, with honest, dissenting and silent votes for up to
    three rounds, and instruction counts the payment collateral covers."""
    most = max(1, min(4, terms.payment_collateral // max(terms.instruction_price, 1)))
    plans = []
    for _ in range(deals):
        ending = rng.choices(list(Ending), weights=[1, 1, 5, 2, 4])[0]
        votes = tuple(tuple(rng.choices(_VOTES, weights=[5, 3, 2, 2])[0] for _ in range(terms.k)) for _ in range(3))
        plans.append(Plan(ending, rng.randint(1, most), votes))
    return plans


@dataclass(frozen=True)
class Parity:
    """Deals played on-chain and settled by the fast model: how many, how many differed, how fast."""

    deals: int
    mismatches: tuple[str, ...]
    seconds: float

    @property
    def deals_per_second(self) -> float:
        return self.deals / self.seconds if self.seconds else 0.0


def check_parity(twin: OnChainTwin, plans: list[Plan]) -> Parity:
    """Play ``plans`` on ``twin`` and settle each with the fast model from what the chain
    decided; every deal whose payoffs (or the pot and stakes after it) differ is a mismatch."""
    start = twin.snapshot()
    ledger = Ledger(jackpot=start["jackpot"], treasury=start["treasury"], stakes=twin.stakes(start))
    mismatches = []
    began = time.perf_counter()
    for n, plan in enumerate(plans):
        listed = twin.listable()
        course, measured = twin.play(plan)
        modelled = settle(twin.terms, twin.settings, course, ledger, listed)
        after = twin.last
        if modelled.as_dict() != measured.as_dict() or measured.total() != 0:
            mismatches.append(f"deal {n}: {plan} -> {course}: model {modelled.as_dict()} chain {measured.as_dict()}")
        elif (ledger.jackpot, ledger.treasury, ledger.stakes) != (after["jackpot"], after["treasury"],
                                                                  twin.stakes(after)):
            mismatches.append(f"deal {n}: {plan}: pot or stakes differ after it")
    return Parity(len(plans), tuple(mismatches), time.perf_counter() - began)


@dataclass(frozen=True)
class StrategyPlay:
    """A strategy's agents driving the contracts: the owner's profit per deal over its honest
    counterpart's (LP, mean and 95 % interval over ``deals`` pairs of deals), and any deal the
    fast model settles differently."""

    deals: int
    mean: float
    low: float
    high: float
    mismatches: tuple[str, ...]
    seconds: float


def play_strategy(twin: OnChainTwin, cheat: Strategy, honest: Strategy, market: Market, deals: int,
                  seed: int) -> StrategyPlay:
    """Play ``deals`` deals of ``cheat`` and as many of ``honest`` through the contracts, the
    agents choosing as :func:`~lilypad.twin.strategies.behaviour` says (the chain draws audits
    and panels); ``market.colluders`` of the twin's mediators are the bribed ones. Each deal is
    also settled by the fast model and compared."""
    import math
    import statistics

    from lilypad.twin.strategies import behaviour, owner_profit

    bribed = twin.mediators[:market.colluders]
    mismatches: list[str] = []
    began = time.perf_counter()

    def one(strategy: Strategy, rng: random.Random) -> int:
        twin.top_up()  # a caught cheat loses 40 job costs: keep the parties able to escrow
        b = behaviour(strategy, market, rng)
        plan = Plan(b.ending, b.claimed, honest_vote=b.honest_vote, bribed=bribed if (b.bribed_vote or b.lazy) else (),
                    bribed_vote=b.bribed_vote)
        start = twin.last or twin.snapshot()
        ledger = Ledger(jackpot=start["jackpot"], treasury=start["treasury"], stakes=twin.stakes(start))
        listed = twin.listable()
        course, measured = twin.play(plan)
        modelled = settle(twin.terms, twin.settings, course, ledger, listed)
        if modelled.as_dict() != measured.as_dict():
            mismatches.append(f"{strategy.value}: {course}: model {modelled.as_dict()} chain {measured.as_dict()}")
        return owner_profit(strategy, measured, b.work, bribed)

    diffs = []
    for i in range(deals):
        diffs.append(one(cheat, random.Random(seed * 1_000_003 + i)) - one(honest, random.Random(seed * 1_000_003 + i)))
    mean = sum(diffs) / deals / _UNIT
    half = 1.96 * statistics.stdev(d / _UNIT for d in diffs) / math.sqrt(deals) if deals > 1 else math.inf
    return StrategyPlay(deals, mean, mean - half, mean + half, tuple(mismatches), time.perf_counter() - began)
