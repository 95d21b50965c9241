"""Shared helpers of the security suite: a real solver app on SQLite files, signed
offers, tar.gz builders, and a tally of the hostile cases tried (printed at the end)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from fastapi import FastAPI

from lilypad.protocol.inputs import InputLimits
from lilypad.protocol.offers import JobModule, JobOffer, ResourceOffer
from lilypad.protocol.signing import OfferDomain, SignedOffer, sign_offer
from lilypad.results.store import ResultsStore
from lilypad.solver.app import create_app
from lilypad.solver.service import SolverCore
from lilypad.solver.store import SolverStore

DOMAIN = OfferDomain(chain_id=31337, verifying_contract="0x" + "c0" * 20)
PROVIDER, CREATOR, MEDIATOR, STRANGER, OTHER_MEDIATOR = (Account.create() for _ in range(5))
SOLVER = Account.create().address
COMMIT = "0123456789abcdef0123456789abcdef01234567"
MAX_RESULT_BYTES = 64 * 1024

#: Hostile cases tried, by family; written to $LILYPAD_SECURITY_TALLY (JSON) at exit if set.
TALLY: Counter[str] = Counter()


def count(family: str, n: int = 1) -> None:
    TALLY[family] += n
    target = os.environ.get("LILYPAD_SECURITY_TALLY")
    if target:
        Path(target).write_text(json.dumps(dict(TALLY), sort_keys=True))


def resource(key: Any = PROVIDER, **kw: Any) -> SignedOffer:
    base: dict[str, Any] = {"resource_provider": PROVIDER.address, "solver": SOLVER, "mediators": [MEDIATOR.address]}
    return sign_offer(ResourceOffer(**(base | kw)), key, DOMAIN)


def job(key: Any = CREATOR, **kw: Any) -> SignedOffer:
    base: dict[str, Any] = {
        "job_creator": CREATOR.address, "solver": SOLVER, "mediators": [MEDIATOR.address],
        "module": JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit=COMMIT), "inputs": {"Message": "moo"},
    }
    return sign_offer(JobOffer(**(base | kw)), key, DOMAIN)


@dataclass
class SolverUnderTest:
    core: SolverCore
    app: FastAPI
    results: ResultsStore
    inputs: ResultsStore
    onchain: dict[str, str] = field(default_factory=dict)

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a refused request must leave unchanged."""
        offers = tuple((o.id, o.state) for kind in ("resource", "job") for o in self.core.open_offers(kind))
        deals = tuple((d.deal_id, d.state) for d in self.core.deals())
        results = tuple(self.results.list()), tuple(self.inputs.list())
        return offers, deals, results, dict(self.core.counts())


def build_solver(tmp_path: Path) -> SolverUnderTest:
    core = SolverCore(SolverStore(tmp_path / "solver.db"), DOMAIN, solver=SOLVER, match_timeout=30.0)
    results = ResultsStore(tmp_path / "results", max_result_bytes=MAX_RESULT_BYTES)
    inputs = ResultsStore(tmp_path / "inputs", max_result_bytes=MAX_RESULT_BYTES)
    onchain: dict[str, str] = {}
    app = create_app(core, results_store=results, onchain_result=onchain.get, max_result_bytes=MAX_RESULT_BYTES,
                     domain=DOMAIN.as_eip712(), head_block=lambda: 42, background=False,
                     inputs_store=inputs, input_limits=InputLimits(max_total_bytes=MAX_RESULT_BYTES))
    return SolverUnderTest(core, app, results, inputs, onchain)


def tar_gz(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def entry(name: str, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE, link: str = "",
          mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    return info, None


def result_files(path: Path, text: str = "moo") -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """The members of a well-formed result (stdout, stderr, exitCode, outputs/)."""
    return [entry("stdout", text.encode()), entry("stderr"), entry("exitCode", b"0"),
            entry("outputs", kind=tarfile.DIRTYPE, mode=0o755)]
