"""The mediator daemon against a real anvil, contracts, solver and provider:
an honest provider's result is accepted, a tampering one's rejected."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "provider"))

from test_provider_daemon import (  # noqa: E402
    MEDIATOR,
    PROVIDER,
    _function_isolation,  # noqa: F401 - the fixture: no chain snapshot per test
    address,
    creator_agrees,
    devnet,  # noqa: F401 - the fixture
    local_status,
    matched_deal,
    post_job,
    wait_state,
    wait_until,
)

from lilypad.protocol.deal import AgreementState  # noqa: E402


def _mediate(devnet, name: str, message: str, *, fault: str | None) -> tuple:  # noqa: F811
    extra = {"LILYPAD_PROVIDER_FAULT": fault} if fault else {}
    provider = devnet.provider(f"provider-{name}", **extra)
    mediator = devnet.daemon("mediator", f"mediator-{name}", MEDIATOR, "--data-dir", str(devnet.root / f"med-{name}"))
    try:
        deal_id, deal = matched_deal(devnet, post_job(devnet, message))
        creator = creator_agrees(devnet, deal)
        wait_state(devnet, deal, AgreementState.RESULTS_SUBMITTED)
        before = devnet.contracts.balance_of(address(PROVIDER))
        devnet.contracts.check_result(deal, creator)
        wait_until("the mediator's verdict", lambda: devnet.contracts.state(deal).is_terminal, devnet, timeout=45)
        db = devnet.root / f"med-{name}" / "mediator.db"
        wait_until("the mediator to record it", lambda: local_status(db, deal_id) in ("accepted", "rejected"), devnet)
        return deal, devnet.contracts.state(deal), local_status(db, deal_id), before
    finally:
        mediator.stop()
        provider.stop()


def test_mediation_accepts_an_honest_result(devnet):  # noqa: F811
    deal, state, verdict, before = _mediate(devnet, "honest", "honest cow", fault=None)
    assert state == AgreementState.MEDIATION_ACCEPTED
    assert verdict == "accepted"
    assert devnet.contracts.balance_of(address(PROVIDER)) > before


def test_mediation_rejects_a_tampered_result(devnet):  # noqa: F811
    deal, state, verdict, before = _mediate(devnet, "tampered", "tampered cow", fault="wrong-result")
    assert state == AgreementState.MEDIATION_REJECTED
    assert verdict == "rejected"
    assert devnet.contracts.balance_of(address(PROVIDER)) == before
