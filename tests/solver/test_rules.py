"""The solver's request rules (lilypad.solver.rules) and the SolverCore methods that
apply them, on a real SQLite store: who may upload what, in which state, and
when a result is served. The HTTP answers they become are in test_app.py and
test_job_inputs_api.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from lilypad.exceptions import (
    InputsClosedError,
    InputsNotFoundError,
    OfferKindError,
    OfferNotFoundError,
    OnChainResultMismatchError,
    ResultGoneError,
    ResultNotOnChainError,
    ResultNotUploadedError,
    UploadSignerError,
)
from lilypad.protocol.deal import AgreementState
from lilypad.protocol.auth import sign_cancel, sign_inputs_upload, sign_upload
from lilypad.solver.limits import SolverTimeouts
from lilypad.protocol.offers import JobModule, JobOffer, ResourceOffer
from lilypad.solver.rules import (
    INPUTS_UPLOAD_STATES,
    check_inputs_uploader,
    check_offer_kind,
    check_result_uploader,
    inputs_cid_of,
    servable_result,
)
from lilypad.solver.service import SolverCore
from lilypad.protocol.signing import OfferDomain, SignedOffer, sign_offer
from lilypad.solver.store import DealRecord, SolverStore

DOMAIN = OfferDomain(chain_id=31337, verifying_contract="0x" + "c0" * 20)
PROVIDER, CREATOR, MEDIATOR, STRANGER = (Account.create() for _ in range(4))
SOLVER = Account.create().address
COMMIT = "0123456789abcdef0123456789abcdef01234567"
INPUTS_CID = "bafybeib62rgxol35zac2puekdmbohqg7dsrhmhdlliio3swgnxhw7co6sm"
DIGEST = "ab" * 32
T0 = 1_800_000_000


def resource() -> SignedOffer:
    offer = ResourceOffer(resource_provider=PROVIDER.address, solver=SOLVER, mediators=[MEDIATOR.address],
                          created_at=T0)
    return sign_offer(offer, PROVIDER, DOMAIN)


def job(**kw: Any) -> SignedOffer:
    base: dict[str, Any] = {
        "job_creator": CREATOR.address, "solver": SOLVER, "mediators": [MEDIATOR.address], "created_at": T0,
        "module": JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit=COMMIT),
    }
    return sign_offer(JobOffer(**(base | kw)), CREATOR, DOMAIN)


@pytest.fixture
def core(tmp_path: Path) -> Any:
    uploaded: set[str] = set()
    core = SolverCore(SolverStore(tmp_path / "solver.db"), DOMAIN, solver=SOLVER, clock=lambda: T0,
                      timeouts=SolverTimeouts(download=3600), inputs_ready=uploaded.__contains__)
    yield core
    core.store.close()


def a_deal(core: SolverCore) -> DealRecord:
    core.accept_offer(resource())
    core.accept_offer(job())
    (deal,) = core.match_round()
    return deal


def test_an_offer_is_taken_only_where_its_kind_is(core: SolverCore) -> None:
    check_offer_kind(resource(), "resource")
    with pytest.raises(OfferKindError) as refused:
        check_offer_kind(job(), "resource")
    assert (refused.value.expected, refused.value.actual) == ("resource", "job")
    assert str(refused.value) == "this endpoint takes resource offers, not a job offer"
    with pytest.raises(OfferKindError):
        core.accept_offer(resource(), "job")
    assert core.open_offers("resource") == []
    assert core.accept_offer(resource(), "resource").kind == "resource"  # its nonce was not used up


def test_only_the_deals_provider_may_upload_its_result(core: SolverCore) -> None:
    deal = a_deal(core)
    check_result_uploader(deal, DIGEST, sign_upload(deal.deal_id, DIGEST, PROVIDER))
    with pytest.raises(UploadSignerError) as stranger:
        check_result_uploader(deal, DIGEST, sign_upload(deal.deal_id, DIGEST, STRANGER))
    assert (stranger.value.upload, stranger.value.signer, stranger.value.allowed) == (
        "result", STRANGER.address, PROVIDER.address)
    assert str(stranger.value) == (f"the upload is signed by {STRANGER.address}; only the deal's provider "
                                   f"{PROVIDER.address} may upload")
    with pytest.raises(UploadSignerError) as other_digest:  # the signature covers the digest
        check_result_uploader(deal, "cd" * 32, sign_upload(deal.deal_id, DIGEST, PROVIDER))
    assert other_digest.value.signer not in (None, PROVIDER.address)
    with pytest.raises(UploadSignerError) as malformed:
        check_result_uploader(deal, DIGEST, "0x1234")
    assert malformed.value.signer is None
    assert str(malformed.value).startswith("the upload is signed by nobody (malformed signature);")


def test_only_the_job_creator_uploads_input_files_while_the_offer_is_open_or_matched(core: SolverCore) -> None:
    record = core.accept_offer(job(inputs_cid=INPUTS_CID))
    assert core.job_inputs(record.id) == (record, INPUTS_CID)
    signature = sign_inputs_upload(record.id, DIGEST, CREATOR)
    check_inputs_uploader(record, DIGEST, signature)
    with pytest.raises(UploadSignerError) as stranger:
        check_inputs_uploader(record, DIGEST, sign_inputs_upload(record.id, DIGEST, STRANGER))
    assert str(stranger.value).endswith(f"only the job creator {CREATOR.address} may upload its input files")
    assert INPUTS_UPLOAD_STATES == ("open", "matched")
    core.cancel_offer("job", record.id, **sign_cancel("job", record.id, CREATOR, DOMAIN, created_at=T0))
    cancelled, _ = core.job_inputs(record.id)
    with pytest.raises(InputsClosedError) as closed:
        check_inputs_uploader(cancelled, DIGEST, signature)
    assert (closed.value.offer_id, closed.value.state) == (record.id, "cancelled")
    assert str(closed.value) == f"job offer {record.id} is cancelled"
    with pytest.raises(UploadSignerError):  # the signer is checked first
        check_inputs_uploader(cancelled, DIGEST, sign_inputs_upload(record.id, DIGEST, STRANGER))


def test_a_job_offer_without_input_files_has_none_to_upload_or_serve(core: SolverCore) -> None:
    record = core.accept_offer(job())
    with pytest.raises(InputsNotFoundError) as none:
        inputs_cid_of(record)
    assert (none.value.offer_id, none.value.cid) == (record.id, None)
    assert str(none.value) == f"job offer {record.id} has no input files"
    with pytest.raises(InputsNotFoundError):
        core.job_inputs(record.id)
    with pytest.raises(OfferNotFoundError):
        core.job_inputs("0x" + "11" * 32)
    assert str(InputsNotFoundError()) == "this solver takes no input files"
    assert str(InputsNotFoundError("0xab", "bafyx")) == "the input files bafyx were not uploaded yet"


def test_a_result_is_served_only_while_it_is_the_one_on_chain(core: SolverCore) -> None:
    deal = a_deal(core)
    onchain: dict[str, str] = {}
    asked: list[str] = []

    def onchain_result(deal_id: str) -> str | None:
        asked.append(deal_id)
        return onchain.get(deal_id)

    with pytest.raises(ResultNotUploadedError) as none:
        core.servable_result(deal.deal_id, onchain_result)
    assert str(none.value) == f"no result was uploaded for deal {deal.deal_id}"
    assert asked == []  # the chain is asked only once there is a result
    core.record_result(deal.deal_id, "bafy-uploaded", 10)
    with pytest.raises(ResultNotOnChainError) as not_yet:
        core.servable_result(deal.deal_id, onchain_result)
    assert str(not_yet.value) == f"no result is recorded on-chain for deal {deal.deal_id} yet"
    onchain[deal.deal_id] = "bafy-other"
    with pytest.raises(OnChainResultMismatchError) as other:
        core.servable_result(deal.deal_id, onchain_result)
    assert (other.value.onchain, other.value.uploaded) == ("bafy-other", "bafy-uploaded")
    assert str(other.value) == "the uploaded result bafy-uploaded is not the one recorded on-chain (bafy-other)"
    onchain[deal.deal_id] = "bafy-uploaded"
    assert core.servable_result(deal.deal_id, onchain_result).cid == "bafy-uploaded"


def test_a_result_missing_after_its_deal_ended_was_deleted_only_if_results_are_deleted(core: SolverCore) -> None:
    deal = a_deal(core)
    ended = core.on_chain_state(deal.deal_id, AgreementState.RESULTS_ACCEPTED, result_cid="bafy-on-chain")
    with pytest.raises(ResultGoneError) as gone:
        servable_result(ended, None, lambda _: "bafy-on-chain", 3600)
    assert str(gone.value) == (f"the result of deal {deal.deal_id} was deleted: results are kept 3600 s after "
                               f"their deal ends")
    with pytest.raises(ResultGoneError):
        core.servable_result(deal.deal_id, lambda _: "bafy-on-chain")
    with pytest.raises(ResultNotUploadedError):  # no download timeout: nothing is ever deleted
        servable_result(ended, None, lambda _: "bafy-on-chain", None)
