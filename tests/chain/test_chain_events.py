"""EventPoller over a SQLite LogCursor: in order, exactly once when committed, across restarts."""

from __future__ import annotations

import sqlite3
import time

import pytest
from hexbytes import HexBytes

from lilypad.chain.events import EventPoller, LogCursor, log_key
from lilypad.exceptions import CursorAheadOfChainError
from lilypad.protocol.deal import AgreementState

TOKEN = 10**18
RESULT = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"


@pytest.fixture
def db(tmp_path):
    return tmp_path / "state" / "events.sqlite"


@pytest.fixture
def start(chain):
    """Follow the chain from the next block on (earlier tests' blocks are not ours)."""
    return chain.blocks.height + 1


def tx_hash(value) -> bytes:
    return bytes(HexBytes(value))


def state_changes(contracts, receipts) -> list[tuple]:
    """What the receipts emitted, as (tx hash, log index, deal id, state)."""
    out = []
    for receipt in receipts:
        for log in receipt.events.filter(contracts.storage.AgreementStateChanged):
            out.append((tx_hash(log.transaction_hash), log.log_index, bytes(log.dealId), AgreementState(log.state)))
    return out


def as_tuples(logs) -> list[tuple]:
    return [
        (tx_hash(log.transaction_hash), log.log_index, bytes(log.dealId), AgreementState(log.state)) for log in logs
    ]


def drain(poller, seen: list) -> int:
    """Poll and commit until nothing is new; returns the number of polls."""
    polls = 0
    while True:
        polls += 1
        logs = poller.poll()
        if not logs:
            return polls
        for log in logs:
            seen.append(log)
            poller.commit(log)


def run_deal(contracts, deal, job_creator, resource_provider, *, accept: bool = True) -> list:
    receipts = [
        contracts.ensure_allowance(job_creator, deal.job_creator_deposit),
        contracts.ensure_allowance(resource_provider, deal.resource_provider_deposit + 2 * TOKEN),
        contracts.agree(deal, job_creator),
        contracts.agree(deal, resource_provider),
        contracts.add_result(deal, RESULT, 2, resource_provider),
    ]
    if accept:
        receipts.append(contracts.accept_result(deal, job_creator))
    return [r for r in receipts if r is not None]


def test_every_state_change_exactly_once_across_many_small_polls(
    contracts, make_deal, job_creator, resource_provider, db, start, chain
):
    poller = EventPoller(contracts, ["AgreementStateChanged"], LogCursor(db, "svc", start_block=start), page_size=3)
    seen: list = []
    receipts: list = []
    assert poller.poll() == []  # nothing yet
    for i in range(4):
        receipts += run_deal(contracts, make_deal(), job_creator, resource_provider, accept=i % 2 == 0)
        drain(poller, seen)  # interleaved with the activity
        chain.mine(2)  # some empty blocks between deals
    drain(poller, seen)

    expected = state_changes(contracts, receipts)
    # 4 deals x (negotiating, agreed, submitted) + 2 accepted
    assert len(expected) == 14
    assert as_tuples(seen) == expected
    assert [log_key(log) for log in seen] == sorted({log_key(log) for log in seen})  # ordered, no repeats
    # the idle blocks at the end were scanned once and skipped for good
    assert poller.cursor.position == (chain.blocks.height + 1, -1)
    assert poller.poll() == []


def test_a_poller_sees_only_its_events(contracts, make_deal, job_creator, resource_provider, db, start):
    receipts = run_deal(contracts, make_deal(), job_creator, resource_provider)
    poller = EventPoller(contracts, [contracts.controller.ResultAdded], LogCursor(db, "rp", start_block=start))
    seen: list = []
    drain(poller, seen)
    assert [(log.event_name, log.contract_address) for log in seen] == [("ResultAdded", contracts.controller.address)]
    assert tx_hash(seen[0].transaction_hash) == tx_hash(receipts[-2].txn_hash)  # the add_result transaction


def test_events_given_as_abis_names_or_contract_events_are_the_same_filter(
    contracts, make_deal, job_creator, resource_provider, db, start
):
    receipts = run_deal(contracts, make_deal(), job_creator, resource_provider)
    expected = state_changes(contracts, receipts)
    event = contracts.storage.AgreementStateChanged
    by_abi = EventPoller(contracts, [event.abi], LogCursor(db, "abi", start_block=start))
    by_name = EventPoller(contracts, ["AgreementStateChanged"], LogCursor(db, "name", start_block=start))
    by_event = EventPoller(contracts, [event], LogCursor(db, "ev", start_block=start))
    assert sorted(by_abi.addresses) == sorted(contracts.addresses.values())  # an ABI: any lilypad contract
    assert by_name.addresses == by_event.addresses == [contracts.storage.address]
    for poller in (by_abi, by_name, by_event):
        seen: list = []
        drain(poller, seen)
        assert as_tuples(seen) == expected
    with pytest.raises(TypeError, match="not an event"):
        EventPoller(contracts, [42], LogCursor(db, "bad"))


def test_restart_resumes_after_the_last_commit_and_redelivers_the_uncommitted(
    contracts, make_deal, job_creator, resource_provider, db, start
):
    receipts = []
    for _ in range(3):
        receipts += run_deal(contracts, make_deal(), job_creator, resource_provider)
    expected = state_changes(contracts, receipts)
    assert len(expected) == 12

    first = EventPoller(contracts, ["AgreementStateChanged"], LogCursor(db, "svc", start_block=start), page_size=5)
    handled = []
    logs = first.poll()
    assert len(logs) >= 2
    first.commit(logs[0])
    handled.append(logs[0])
    handled.append(logs[1])  # handled, then the process died before committing it
    first.cursor.close()

    # a new process: new cursor object on the same file
    second = EventPoller(contracts, ["AgreementStateChanged"], LogCursor(db, "svc", start_block=start), page_size=5)
    assert second.cursor.position == log_key(logs[0])
    resumed: list = []
    drain(second, resumed)
    assert as_tuples(resumed)[0] == as_tuples([logs[1]])[0]  # the uncommitted one comes again
    assert as_tuples(handled[:1] + resumed) == expected  # committed ones exactly once

    third = EventPoller(contracts, ["AgreementStateChanged"], LogCursor(db, "svc", start_block=start))
    assert third.poll() == []  # everything was committed


def test_confirmations_hold_back_the_newest_blocks(contracts, make_deal, job_creator, db, start, chain):
    poller = EventPoller(contracts, ["AgreementStateChanged"], LogCursor(db, "svc", start_block=start),
                         confirmations=3)
    deal = make_deal()
    contracts.ensure_allowance(job_creator, deal.job_creator_deposit)
    receipt = contracts.agree(deal, job_creator)
    for _ in range(3):
        assert chain.blocks.height < receipt.block_number + 3
        assert poller.poll() == []
        chain.mine()
    assert poller.safe_head == receipt.block_number
    logs = poller.poll()
    assert as_tuples(logs) == state_changes(contracts, [receipt])
    poller.commit(logs[0])
    assert poller.cursor.position == (receipt.block_number + 1, -1)


def test_an_idle_chain_returns_nothing_at_once(contracts, db, start, chain):
    poller = EventPoller(contracts, ["AgreementStateChanged", "MediationRequested"],
                         LogCursor(db, "svc", start_block=start))
    chain.mine(5)
    height = chain.blocks.height
    began = time.monotonic()
    for _ in range(20):
        assert poller.poll() == []
    assert time.monotonic() - began < 5  # no waiting for new blocks
    assert chain.blocks.height == height
    assert poller.cursor.position == (height + 1, -1)  # the empty blocks are skipped for good


def test_an_empty_range_before_the_first_block(contracts, db, chain):
    head = chain.blocks.height
    cursor = LogCursor(db, "svc", start_block=head + 1)  # nothing mined since
    poller = EventPoller(contracts, ["AgreementStateChanged"], cursor, confirmations=2)
    assert poller.poll() == [] and cursor.position == (head + 1, -1)
    assert poller.poll() == []


def test_several_events_in_one_transaction(contracts, make_deal, agreed, resource_provider, db, start):
    deal = make_deal()
    agreed(deal)
    contracts.ensure_allowance(resource_provider, 2 * TOKEN)
    receipt = contracts.add_result(deal, RESULT, 2, resource_provider)
    names = ["AgreementStateChanged", "ResultStored", "ResultAdded"]
    cursor = LogCursor(db, "rp", start_block=receipt.block_number)
    poller = EventPoller(contracts, names, cursor)
    logs = poller.poll()
    assert {tx_hash(log.transaction_hash) for log in logs} == {tx_hash(receipt.txn_hash)}
    # storage emits ResultStored, then AgreementStateChanged; the controller ResultAdded
    assert [log.event_name for log in logs] == ["ResultStored", "AgreementStateChanged", "ResultAdded"]
    assert [log.event_name for log in logs] == [e.event_name for e in receipt.events if e.event_name in names]
    assert [log.log_index for log in logs] == sorted(log.log_index for log in logs)
    poller.commit(logs[0])
    cursor.close()

    again = EventPoller(contracts, names, LogCursor(db, "rp", start_block=receipt.block_number))
    rest = again.poll()
    assert [(log.event_name, log.log_index) for log in rest] == [(log.event_name, log.log_index) for log in logs[1:]]


def test_several_transactions_in_one_block(contracts, make_deal, job_creator, db, start, chain):
    deals = [make_deal() for _ in range(3)]
    contracts.ensure_allowance(job_creator, sum(d.job_creator_deposit for d in deals))
    first = chain.blocks.height + 1
    nonce = job_creator.nonce
    chain.provider.auto_mine = False
    try:
        hashes = []
        for i, deal in enumerate(deals):
            # an explicit gas limit: ape's local default (the block's whole limit) fits one per block
            txn = contracts.controller.agree.as_transaction(deal.as_tuple(), sender=job_creator, gas_limit=1_000_000)
            txn.nonce = nonce + i
            hashes.append(chain.provider.web3.eth.send_raw_transaction(
                job_creator.sign_transaction(txn).serialize_transaction()))
        chain.mine()
    finally:
        chain.provider.auto_mine = True
    assert chain.blocks.height == first
    assert [contracts.state(d) for d in deals] == [AgreementState.DEAL_NEGOTIATING] * 3

    poller = EventPoller(contracts, ["AgreementStateChanged"], LogCursor(db, "svc", start_block=first))
    logs = poller.poll()
    assert [log.block_number for log in logs] == [first] * 3
    assert [bytes(log.dealId) for log in logs] == [d.deal_id for d in deals]
    assert [tx_hash(log.transaction_hash) for log in logs] == [tx_hash(h) for h in hashes]
    poller.commit(logs[0])
    poller.commit(logs[1])
    assert poller.cursor.position == log_key(logs[1])  # mid-block
    restarted = EventPoller(contracts, ["AgreementStateChanged"], LogCursor(db, "svc", start_block=first))
    rest = restarted.poll()
    assert [log_key(log) for log in rest] == [log_key(logs[2])]


def test_commit_in_order_and_idempotently(contracts, make_deal, job_creator, resource_provider, db, start):
    run_deal(contracts, make_deal(), job_creator, resource_provider)
    poller = EventPoller(contracts, ["AgreementStateChanged"], LogCursor(db, "svc", start_block=start), page_size=100)
    logs = poller.poll()
    assert len(logs) == 4 and poller.pending == 4
    with pytest.raises(ValueError, match="in the order"):
        poller.commit(logs[1])
    poller.commit(logs[0])
    poller.commit(logs[0])  # again: nothing happens
    assert poller.pending == 3 and poller.cursor.position == log_key(logs[0])
    assert poller.poll() == logs[1:]  # polling again returns the uncommitted ones


def test_chain_reset_below_the_cursor_is_an_error(contracts, make_deal, job_creator, resource_provider, db, start,
                                                  chain):
    snapshot = chain.snapshot()
    run_deal(contracts, make_deal(), job_creator, resource_provider)
    poller = EventPoller(contracts, ["AgreementStateChanged"], LogCursor(db, "svc", start_block=start))
    drain(poller, [])
    handled = poller.cursor.last_handled_block
    chain.restore(snapshot)  # the chain loses the blocks the cursor handled
    assert chain.blocks.height < handled
    with pytest.raises(CursorAheadOfChainError, match="was reset") as raised:
        poller.poll()
    assert raised.value.block == handled and raised.value.head == chain.blocks.height
    poller.cursor.reset()
    assert poller.poll() == []


def test_cursor_persists_and_never_moves_back(db):
    cursor = LogCursor(db, "a", start_block=7)
    assert cursor.position == (7, -1) and cursor.last_handled_block == 6
    cursor.advance(9, 2)
    other = LogCursor(db, "b")
    other.advance(3, 0)
    with pytest.raises(ValueError, match="cannot move back"):
        cursor.advance(9, 1)
    cursor.close()
    other.close()
    assert LogCursor(db, "a", start_block=7).position == (9, 2)
    assert LogCursor(db, "b").position == (3, 0)
    rows = sqlite3.connect(db).execute("SELECT name, block, log_index FROM cursors ORDER BY name").fetchall()
    assert rows == [("a", 9, 2), ("b", 3, 0)]
