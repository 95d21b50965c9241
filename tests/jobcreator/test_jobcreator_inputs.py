"""`lilypad run --inputs-path`: the directory's checks and CID, and the signed upload
(a real solver app; refusals become one clear InputFilesError)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from lilypad.client import SolverClient
from lilypad.exceptions import InputFilesError
from lilypad.jobcreator.inputs import check_inputs_path, upload_inputs
from lilypad.protocol.offers import JobModule, JobOffer
from lilypad.protocol.signing import OfferDomain, sign_offer
from lilypad.results.cid import directory_cid
from lilypad.results.store import ResultsStore
from lilypad.solver.app import create_app
from lilypad.solver.service import SolverCore
from lilypad.solver.store import SolverStore

DOMAIN = OfferDomain(chain_id=31337, verifying_contract="0x" + "c0" * 20)
CREATOR, STRANGER, MEDIATOR = (Account.create() for _ in range(3))
SOLVER = Account.create().address


def test_the_inputs_path_is_checked_and_named_by_its_cid(tmp_path: Path) -> None:
    assert check_inputs_path(None) is None
    with pytest.raises(InputFilesError, match=r"requires input files \['cat.jpg'\]"):
        check_inputs_path(None, ("cat.jpg",))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_inputs_path(empty) is None  # nothing to send
    files = tmp_path / "files"
    (files / "deep").mkdir(parents=True)
    (files / "numbers.txt").write_text("1\n2\n")
    (files / "deep" / "x.bin").write_bytes(os.urandom(1000))
    assert check_inputs_path(files, ("numbers.txt",)) == directory_cid(files)
    with pytest.raises(InputFilesError, match=r"requires \['cat.jpg'\], which are not there"):
        check_inputs_path(files, ("cat.jpg",))
    with pytest.raises(InputFilesError, match="not a directory"):
        check_inputs_path(files / "numbers.txt")
    (files / "huge.bin").write_bytes(b"\0" * (10 * 1024 * 1024 + 1))
    with pytest.raises(InputFilesError, match="capped at 10 MB"):
        check_inputs_path(files)
    (files / "huge.bin").unlink()
    os.symlink("/etc/passwd", files / "escape")
    with pytest.raises(InputFilesError, match="symbolic link"):
        check_inputs_path(files)


def test_a_refused_upload_is_a_clear_input_files_error(tmp_path: Path) -> None:
    inputs = ResultsStore(tmp_path / "solver" / "inputs")
    core = SolverCore(SolverStore(tmp_path / "solver" / "solver.db"), DOMAIN, solver=SOLVER, inputs_ready=inputs.has)
    app = create_app(core, results_store=ResultsStore(tmp_path / "solver" / "results"), max_result_bytes=1 << 20,
                     onchain_result=core.onchain_result_cid, domain=DOMAIN.as_eip712(), background=False,
                     inputs_store=inputs)
    client = SolverClient("http://testserver", http=TestClient(app), retries=0)
    try:
        files = tmp_path / "files"
        files.mkdir()
        (files / "numbers.txt").write_text("1\n2\n")
        offer = JobOffer(job_creator=CREATOR.address, solver=SOLVER, mediators=[MEDIATOR.address],
                         module=JobModule(ref="stats:v0.0.1", repo="builtin:stats", commit="0" * 40),
                         inputs_cid=check_inputs_path(files))
        offer_id = client.post_job_offer(sign_offer(offer, CREATOR, DOMAIN))
        with pytest.raises(InputFilesError, match=r"the solver refused them \(403 forbidden"):
            upload_inputs(client, offer_id, files, STRANGER)
        lines: list[str] = []
        answer = upload_inputs(client, offer_id, files, CREATOR, echo=lines.append)
        assert answer.cid == offer.inputs_cid and lines and "uploaded" in lines[0]
        assert not core.awaits_inputs(offer_id)
    finally:
        core.store.close()
