"""The default deal terms follow the chain's protocol settings (issue 18, rule 4)."""

from __future__ import annotations

from lilypad.protocol.settings import (
    DEVNET_DEAL_DEFAULTS,
    NETWORK_DEAL_DEFAULTS,
    NETWORK_SETTINGS,
    ProtocolSettings,
    deal_defaults,
)


def test_where_mediators_stake_the_twins_terms_apply_and_a_devnet_keeps_the_originals() -> None:
    assert deal_defaults(ProtocolSettings()) == DEVNET_DEAL_DEFAULTS
    assert (DEVNET_DEAL_DEFAULTS.results_collateral_multiple, DEVNET_DEAL_DEFAULTS.consortium_size) == (2, 1)
    assert deal_defaults(NETWORK_SETTINGS) == NETWORK_DEAL_DEFAULTS
    # A stake is what makes a panel safer than one mediator: any required stake switches them on.
    assert deal_defaults(ProtocolSettings(min_mediator_stake=1)) == NETWORK_DEAL_DEFAULTS
    assert deal_defaults(ProtocolSettings(audit_bps=250)) == DEVNET_DEAL_DEFAULTS


def test_the_network_defaults_make_a_fake_result_cost_more_than_the_whole_job() -> None:
    # Caught with the audit rate, a fake result loses multiple x job cost and is not paid: in
    # expectation more than one job cost, more than any work it could skip.
    audit = NETWORK_SETTINGS.audit_bps / 10_000
    assert audit * (NETWORK_DEAL_DEFAULTS.results_collateral_multiple + 1) > 1
    assert NETWORK_DEAL_DEFAULTS.consortium_size >= 3
    assert NETWORK_SETTINGS.mediator_slash <= NETWORK_SETTINGS.min_mediator_stake
