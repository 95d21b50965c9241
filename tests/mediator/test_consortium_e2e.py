"""A consortium of three mediators on real processes: a real anvil, the contracts, the solver,
a provider and three ``lilypad mediator`` daemons voting by commit-reveal (issue 17).

* a mediator bribed by the provider (``LILYPAD_MEDIATOR_FAULT=collude``: it vouches for
  every result without re-running) is outvoted by the two honest ones on a wrong result,
  and slashed: the honest majority shares the fee and half its slashed stake, the jackpot
  gets the other half (this is what k = 3 guarantees: one colluder of three loses; two of
  three would win, see tests/contracts/test_consortium.py and docs/protocol.md);
* a mediator killed between its commit and its reveal, restarted, still reveals (its salt
  was persisted before the commit was sent);
* a mediator that commits but never reveals is slashed once the reveal window has closed,
  and the deal settles by the majority.

The protocol settings of this module: minimum mediator stake 10 LP, slash 4 LP, no tax or
audits; each mediator stakes 10 LP on start (``--stake 10``). Default deal terms:
instruction price 1 LP, payment collateral 2 LP, results collateral multiple 2, mediation fee
1 LP, judging collateral 1 wei.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "provider"))

from test_provider_daemon import (  # noqa: E402
    CREATOR,
    MEDIATOR,
    PROVIDER,
    SOLVER,
    address,
    creator_agrees,
    devnet,  # noqa: F401 - the fixture
    local_status,
    matched_deal,
    wait_state,
    wait_until,
)

from lilypad.devnet.processes import dev_private_key  # noqa: E402
from lilypad.protocol.deal import AgreementState, Deal, Verdict  # noqa: E402
from lilypad.protocol.offers import lp  # noqa: E402
from lilypad.protocol.settings import ProtocolSettings  # noqa: E402

ADMIN = 0
PANEL = (MEDIATOR, 5, 6)  # anvil test accounts 3, 5 and 6
STAKE, SLASH = lp(10), lp(4)
FEE, RESULTS_COLLATERAL = lp(1), lp(2)


@pytest.fixture
def _function_isolation() -> Iterator[None]:
    """No chain snapshot per test: the solver and the daemons remember what the chain did."""
    yield


@pytest.fixture(scope="module")
def net(devnet):  # noqa: F811
    """The devnet with this module's settings: stakes required and slashed, nothing else on."""
    from lilypad.protocol.accounts import account_from_private_key

    admin = account_from_private_key(dev_private_key(ADMIN))
    devnet.contracts.set_protocol_settings(ProtocolSettings(min_mediator_stake=STAKE, mediator_slash=SLASH), admin)
    return devnet


def _mediators(net, name: str, faults: dict[int, str]) -> dict[int, Any]:
    procs = {}
    for index in PANEL:
        extra = {"LILYPAD_MEDIATOR_FAULT": faults[index]} if index in faults else {}
        procs[index] = net.daemon("mediator", f"mediator-{name}-{index}", index, "--data-dir",
                                  str(net.root / f"med-{name}-{index}"), "--stake", "10", **extra)
    for index in PANEL:
        wait_until(f"mediator {index} staked", lambda i=index: net.contracts.mediator_stake(address(i)).amount >= STAKE,
                   net, timeout=60)
    return procs


def _provider(net, name: str, fault: str | None = None) -> Any:
    extra = {"LILYPAD_PROVIDER_FAULT": fault} if fault else {}
    return net.daemon("resource-provider", f"provider-{name}", PROVIDER, "--data-dir", str(net.root / name),
                      "--mediators", ",".join(address(i) for i in PANEL), "--solver-address", address(SOLVER),
                      "--cpu", "1000", "--ram", "1024", "--disk", "1000", "--gpu", "0",
                      "--offer-modules", "cowsay:v0.0.1",
                      # Stakes are required, so the network's defaults would ask for a results collateral of
                      # 40 job costs; this module's amounts are the original's multiple of 2. The panel size
                      # stays the default (3 under these settings: the provider's offer asks for it).
                      "--results-collateral-multiple", "2", **extra)


def _post(net, message: str) -> str:
    from lilypad.client import SolverClient
    from lilypad.modules.resolve import ModuleResolver
    from lilypad.protocol.offers import JobModule, JobOffer, ResourceSpec
    from lilypad.protocol.signing import sign_offer

    resolved = ModuleResolver(net.root / "creator-modules").resolve("cowsay:v0.0.1")
    with SolverClient(net.solver_url) as client:
        offer = JobOffer(solver=address(SOLVER), job_creator=address(CREATOR),
                         module=JobModule(ref="cowsay:v0.0.1", repo=resolved.repo, commit=resolved.commit),
                         inputs={"Message": message}, spec=ResourceSpec(cpu=100, ram=64),
                         mediators=[address(i) for i in PANEL], consortium_size=3)
        return client.post_job_offer(sign_offer(offer, dev_private_key(CREATOR), client.offer_domain()))


def _balances(net) -> dict[str, int]:
    who = {"creator": CREATOR, "provider": PROVIDER, **{f"m{i}": i for i in PANEL}}
    out = {name: net.contracts.balance_of(address(i)) for name, i in who.items()}
    out["jackpot"] = net.contracts.get_pot().jackpot
    out.update({f"stake{i}": net.contracts.mediator_stake(address(i)).amount for i in PANEL})
    return out


def _checked_deal(net, message: str) -> tuple[str, Deal, dict[str, int]]:
    before = _balances(net)
    deal_id, deal = matched_deal(net, _post(net, message))
    assert deal.protocol.consortium_size == 3 and deal.protocol.settings_version == net.contracts.get_settings_version()
    assert sorted(deal.members.mediators) == sorted(address(i) for i in PANEL)
    creator = creator_agrees(net, deal)
    wait_state(net, deal, AgreementState.RESULTS_SUBMITTED, timeout=90)
    net.contracts.check_result(deal, creator)
    return deal_id, deal, before


def _change(net, before: dict[str, int]) -> dict[str, int]:
    after = _balances(net)
    return {k: after[k] - before[k] for k in before if after[k] != before[k]}


def _stop(*procs: Any) -> None:
    for proc in procs:
        proc.stop()


def test_a_bribed_mediator_is_outvoted_and_slashed(net):
    colluder = PANEL[2]
    mediators = _mediators(net, "bribe", {colluder: "collude"})
    provider = _provider(net, "bribe", fault="wrong-result")
    try:
        deal_id, deal, before = _checked_deal(net, "garbage")
        wait_until("the panel's verdict", lambda: net.contracts.state(deal).is_terminal, net, timeout=180)
        assert net.contracts.state(deal) == AgreementState.MEDIATION_REJECTED
        votes = dict(net.contracts.votes(deal))
        assert votes == {address(PANEL[0]): Verdict.REJECT, address(PANEL[1]): Verdict.REJECT,
                         address(colluder): Verdict.ACCEPT}
        # The creator: its escrow back plus the provider's results collateral, less the fee.
        # The honest two share the fee and half the colluder's slashed stake; the jackpot the rest.
        share = (FEE + SLASH // 2) // 2
        assert _change(net, before) == {
            "creator": RESULTS_COLLATERAL - FEE, "provider": -RESULTS_COLLATERAL,
            f"m{PANEL[0]}": share, f"m{PANEL[1]}": share, f"stake{colluder}": -SLASH,
            "jackpot": SLASH - SLASH // 2 + (FEE + SLASH // 2 - 2 * share)}
        assert net.contracts.vote(deal, address(colluder)).slashed
        for index in PANEL[:2]:
            db = net.root / f"med-bribe-{index}" / "mediator.db"
            wait_until(f"mediator {index} to see it done", lambda d=db: local_status(d, deal_id) == "done", net)
    finally:
        _stop(provider, *mediators.values())


def test_a_mediator_killed_between_commit_and_reveal_still_reveals(net):
    late = PANEL[1]
    mediators = _mediators(net, "restart", {late: "no-reveal"})
    provider = _provider(net, "restart")
    try:
        deal_id, deal, before = _checked_deal(net, "honest work")
        wait_until("every member's commitment", lambda: net.contracts.panel(deal).commits == 3, net, timeout=180)
        mediators[late].stop()  # killed after its commit, before any reveal of its own
        db = net.root / f"med-restart-{late}" / "mediator.db"
        assert local_status(db, deal_id) == "committed"
        assert net.contracts.vote(deal, address(late)).verdict == Verdict.NONE
        mediators[late] = net.daemon("mediator", f"mediator-restart-{late}-again", late, "--data-dir",
                                     str(net.root / f"med-restart-{late}"), "--stake", "10")
        wait_until("the panel's verdict", lambda: net.contracts.state(deal).is_terminal, net, timeout=120)
        assert net.contracts.state(deal) == AgreementState.MEDIATION_ACCEPTED
        assert net.contracts.vote(deal, address(late)).verdict == Verdict.ACCEPT
        share = FEE // 3
        change = _change(net, before)
        assert change == {"creator": -(lp(1) + FEE), "provider": lp(1), f"m{PANEL[0]}": share, f"m{late}": share,
                          f"m{PANEL[2]}": share, "jackpot": FEE - 3 * share}
    finally:
        _stop(provider, *mediators.values())


def test_a_mediator_that_never_reveals_is_slashed(net):
    from ape import chain

    silent = PANEL[0]
    mediators = _mediators(net, "noreveal", {silent: "no-reveal"})
    provider = _provider(net, "noreveal")
    try:
        deal_id, deal, before = _checked_deal(net, "honest again")
        wait_until("two reveals", lambda: net.contracts.panel(deal).reveals == 2, net, timeout=180)
        assert net.contracts.state(deal) == AgreementState.RESULTS_CHECKED  # waits for the reveal window
        # Past the reveal window (commit window + reveal window from the check).
        chain.mine(1, timestamp=net.contracts.chain_time() + 2 * deal.timeouts.mediate_results + 1)
        wait_until("the round resolved", lambda: net.contracts.state(deal).is_terminal, net, timeout=60)
        assert net.contracts.state(deal) == AgreementState.MEDIATION_ACCEPTED
        share = (FEE + SLASH // 2) // 2
        assert _change(net, before) == {
            "creator": -(lp(1) + FEE), "provider": lp(1), f"m{PANEL[1]}": share, f"m{PANEL[2]}": share,
            f"stake{silent}": -SLASH, "jackpot": SLASH - SLASH // 2 + (FEE + SLASH // 2 - 2 * share)}
    finally:
        _stop(provider, *mediators.values())
