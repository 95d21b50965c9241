"""Random audits on real processes (issue 17): a lazy provider returns garbage to a job
creator that never checks, over a batch of jobs, and the audits catch it at the configured
rate.

The solver, a provider (``LILYPAD_PROVIDER_FAULT=wrong-result``: its result is not what the
module computes) and a ``lilypad mediator`` run as processes on a real anvil with the
contracts; the protocol settings of this module audit half the unchecked results
(``auditBps`` 5,000) and the jackpot is funded to pay the audits' fees. The job creator (this
test) accepts every result without looking at it. For each deal the test computes the audit
draw itself from the chain (``keccak256(blockhash(resultsBlock), dealId) % 10000 < auditBps``,
docs/protocol.md) *before* accepting, and then checks that exactly the predicted deals were
audited, that the mediator rejected every audited garbage result, and each party's money:

* not audited: the garbage is paid (job creator -1 LP, provider +1 LP), as for any
  unchecked result: the audit rate is what makes laziness cost more than it earns;
* audited: the job creator gets back all it escrowed plus the provider's results collateral
  (+2 LP), the provider loses that collateral (-2 LP), the mediator earns the fee (+1 LP),
  paid from the jackpot (-1 LP).

Over the batch the lazy provider's total is asserted to equal ``unaudited - 2 x audited`` LP:
at a 50 % audit rate and results multiple 2 its expected profit per job is
``0.5 x 1 - 0.5 x 2 = -0.5`` LP.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "provider"))

from test_provider_daemon import (  # noqa: E402
    CREATOR,
    MEDIATOR,
    PROVIDER,
    address,
    creator_agrees,
    devnet,  # noqa: F401 - the fixture
    local_status,
    matched_deal,
    post_job,
    wait_state,
    wait_until,
)

from lilypad.devnet.processes import dev_private_key  # noqa: E402
from lilypad.protocol.deal import AgreementState  # noqa: E402
from lilypad.protocol.offers import lp  # noqa: E402
from lilypad.protocol.settings import ProtocolSettings  # noqa: E402

ADMIN = 0
AUDIT_BPS = 5_000
#: The batch runs at least MIN_BATCH jobs and goes on until it has two audited and two
#: unaudited deals (at 50 % a batch of MAX_BATCH misses that with probability ~3e-6).
MIN_BATCH, MAX_BATCH = 6, 24
JOB_COST, RESULTS_COLLATERAL, FEE = lp(1), lp(2), lp(1)
#: Enough for every job of the batch to be audited.
JACKPOT = MAX_BATCH * FEE


@pytest.fixture
def _function_isolation() -> Iterator[None]:
    """No chain snapshot per test: the solver and the daemons remember what the chain did."""
    yield


@pytest.fixture(scope="module")
def net(devnet):  # noqa: F811
    """The devnet auditing half the unchecked results, with a jackpot that can pay for all of them."""
    from lilypad.protocol.accounts import account_from_private_key

    admin = account_from_private_key(dev_private_key(ADMIN))
    devnet.contracts.set_protocol_settings(ProtocolSettings(audit_bps=AUDIT_BPS), admin)
    devnet.contracts.ensure_allowance(admin, JACKPOT)
    devnet.contracts.fund_jackpot(JACKPOT, admin)
    assert devnet.contracts.get_pot().jackpot == JACKPOT
    return devnet


def _audit_drawn(results_block: int, deal_id: bytes) -> bool:
    """The contract's audit draw, computed here from the block hash."""
    from ape import chain
    from eth_abi import encode
    from eth_utils import keccak

    block_hash = bytes(chain.provider.web3.eth.get_block(results_block)["hash"])
    draw = int.from_bytes(keccak(encode(["bytes32", "bytes32"], [block_hash, deal_id])), "big")
    return draw % 10_000 < AUDIT_BPS


def _balances(net) -> dict[str, int]:
    out = {name: net.contracts.balance_of(address(i))
           for name, i in (("creator", CREATOR), ("provider", PROVIDER), ("mediator", MEDIATOR))}
    out["jackpot"] = net.contracts.get_pot().jackpot
    return out


def test_audits_catch_a_lazy_provider_at_the_configured_rate(net):
    provider = net.provider("provider-lazy", LILYPAD_PROVIDER_FAULT="wrong-result")
    mediator = net.daemon("mediator", "mediator-audits", MEDIATOR, "--data-dir", str(net.root / "med-audits"))
    outcomes: list[tuple[bool, AgreementState, dict[str, int]]] = []
    try:
        for n in range(MAX_BATCH):
            drawn = [o[0] for o in outcomes]
            if n >= MIN_BATCH and drawn.count(True) >= 2 and drawn.count(False) >= 2:
                break
            before = _balances(net)
            deal_id, deal = matched_deal(net, post_job(net, f"lazy {n}"))
            creator = creator_agrees(net, deal)
            wait_state(net, deal, AgreementState.RESULTS_SUBMITTED, timeout=90)
            agreement = net.contracts.agreement(deal)
            assert agreement.results_block > 0
            predicted = _audit_drawn(agreement.results_block, bytes(deal.deal_id))
            net.contracts.accept_result(deal, creator)  # the job creator never checks
            if predicted:
                assert net.contracts.state(deal) == AgreementState.RESULTS_CHECKED
                assert net.contracts.panel(deal).audited
                wait_until("the audit's verdict", lambda d=deal: net.contracts.state(d).is_terminal, net, timeout=120)
                db = net.root / "med-audits" / "mediator.db"
                wait_until("the mediator to record it", lambda i=deal_id: local_status(db, i) == "rejected", net)
            state = net.contracts.state(deal)
            after = _balances(net)
            outcomes.append((predicted, state, {k: after[k] - before[k] for k in before if after[k] != before[k]}))
    finally:
        mediator.stop()
        provider.stop()

    audited = [o for o in outcomes if o[0]]
    unaudited = [o for o in outcomes if not o[0]]
    for _, state, change in audited:
        assert state == AgreementState.MEDIATION_REJECTED
        assert change == {"creator": RESULTS_COLLATERAL, "provider": -RESULTS_COLLATERAL, "mediator": FEE,
                          "jackpot": -FEE}
    for _, state, change in unaudited:
        assert state == AgreementState.RESULTS_ACCEPTED
        assert change == {"creator": -JOB_COST, "provider": JOB_COST}
    assert len(audited) >= 2 and len(unaudited) >= 2, f"{len(audited)} of {len(outcomes)} audited"
    provider_total = sum(c.get("provider", 0) for _, _, c in outcomes)
    assert provider_total == len(unaudited) * JOB_COST - len(audited) * RESULTS_COLLATERAL
    assert net.contracts.get_pot().jackpot == JACKPOT - len(audited) * FEE
