"""A table of hostile input against the real entry points, each with the clear
error it must get and no state change.

* module references and inputs through the real CLI (``lilypad module render``,
  click's CliRunner): nothing lands in the module cache for a refused one;
* templates that fail in Go, or would hang or flood the renderer, through
  ``lilypad module render <dir>``: Go's error and line, a stop within the bounds;
  template injection through inputs renders as a literal;
* every solver endpoint (the real FastAPI app, SQLite store and results store)
  with malformed, oversized and deeply nested JSON and bad path ids; offers with
  bad or replayed signatures, someone else's address, zero or absurd prices and
  collateral; results whose files do not match the on-chain CID; archives with
  ``../`` entries, links, devices; a job and a resource offer with no shared
  mediator. The solver's offers, deals and stored results are unchanged after each.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from lilypad.cli import main
from lilypad.protocol.auth import SHA256_HEADER, SIGNATURE_HEADER, sign_upload
from lilypad.protocol.offers import ResourceOffer
from lilypad.protocol.signing import MAX_CLOCK_SKEW, OfferDomain, _signable, sign_offer
from lilypad.results.archive import pack
from lilypad.results.cid import directory_cid
from security_support import (CREATOR, DOMAIN, MAX_RESULT_BYTES, MEDIATOR, OTHER_MEDIATOR, PROVIDER, SOLVER, STRANGER,
                              SolverUnderTest, build_solver, count, entry, job, resource, result_files, tar_gz)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


# --------------------------------------------------------------------------
# Module references and inputs, through the CLI
# --------------------------------------------------------------------------

BAD_REFS: list[tuple[str, str]] = [
    ("../../../../etc/passwd", "not a directory"),
    ("/etc", "no lilypad_module.json.tmpl"),
    ("/proc/self/root", "no lilypad_module.json.tmpl"),
    ("https://user:secret@github.com/a/b:v1", "credentials"),
    ("https://token@github.com/a/b", "credentials"),
    ("user:pw@github.com/a/b", "credentials"),
    ("github.com/a/b:--upload-pack=touch", "must not start with"),
    ("github.com/a/b:-c", "must not start with"),
    ("cowsay:--upload-pack=x", "must not start with"),
    ("ext::sh -c touch% /tmp/pwned", "spaces or control characters"),
    ("ssh://git@github.com/a/b", "unsupported URL scheme 'ssh'"),
    ("file:///etc", "unsupported URL scheme 'file'"),
    ("http://github.com/a/b:v1", "unsupported URL scheme 'http'"),
    ("git@github.com:a/b", "ssh/scp-style"),
    ("github.com/../etc:v1", "'..' is not a valid repository path segment"),
    ("github.com/a/b/../../c:v1", "'..' is not a valid repository path segment"),
    ("github.com/%2e%2e/b:v1", "not a valid repository path segment"),
    ("cowsay:..", "must not start with"),
    ("cowsay:v0.0.1;rm -rf /", "spaces or control characters"),
    ("cowsay:v0.0.1$(id)", "may only contain"),
    ("cowsay:v1\nx", "spaces or control characters"),
    ("cowsay:v1\x00", "spaces or control characters"),
    ("cowsay:HEAD@{1}", "may only contain"),
    ("cowsay:v0.0.1:x", "too many ':'"),
    (".hidden:v1", "must not start with '.'"),
    ("a" * 2000, "longer than 1024 characters"),
    ("", "the module reference is empty"),
    ("cowsay:", "empty"),
    ("-", "may only contain"),
]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _render(data_dir: Path, ref: str, *inputs: str) -> Any:
    args = ["module", "render", "--data-dir", str(data_dir)]
    for item in inputs:
        args += ["-i", item]
    return CliRunner().invoke(main, [*args, "--", ref], catch_exceptions=False)


@pytest.mark.parametrize(("ref", "expected"), BAD_REFS, ids=[f"ref{i}" for i in range(len(BAD_REFS))])
def test_a_hostile_module_reference_is_refused_clearly(data_dir: Path, ref: str, expected: str) -> None:
    before = _tree(data_dir)
    result = _render(data_dir, ref)
    count("module_refs")
    assert result.exit_code == 1, result.output
    assert "Error:" in result.output and expected in result.output, result.output
    assert "Traceback" not in result.output
    assert not any(".git" in p for p in _tree(data_dir) - before), "a refused reference reached the module cache"


BAD_INPUTS: list[tuple[list[str], str]] = [
    (["noequals"], "has no '='"),
    (["=value"], "the key is empty"),
    (["1abc=x"], "keys must start with a letter"),
    (["a-b=x"], "keys must start with a letter"),
    (["$(id)=x"], "keys must start with a letter"),
    (["K" * 300 + "=x"], "longer than 256"),
    (["Message=a\x00b"], "NUL"),
    (["Message=a", "Message=b"], "given more than once"),
    (["Message=" + "x" * (64 * 1024 + 1)], "over the limit of 65536"),
    ([f"K{i}=v" for i in range(65)], "over the limit of 64"),
    ([f"K{i}=" + "x" * 60_000 for i in range(5)], "over the limit of 262144"),
]


@pytest.mark.parametrize(("items", "expected"), BAD_INPUTS, ids=[f"inputs{i}" for i in range(len(BAD_INPUTS))])
def test_bad_or_oversized_inputs_are_refused_clearly(data_dir: Path, items: list[str], expected: str) -> None:
    result = _render(data_dir, "cowsay:v0.0.1", *items)
    count("inputs")
    assert result.exit_code == 1 and expected in result.output, result.output
    assert _tree(data_dir) == set(), "inputs are checked before anything is resolved"


INJECTIONS = [
    '", "Image": "attacker/image:latest", "x": "',
    '"], "Image": "evil", "Entrypoint": ["sh',
    "{{.Message}}{{range .}}{{end}}",
    '\\"; rm -rf / #',
    "line1\nline2\r\n\t\u2028\u2029",
    "</script><script>alert(1)</script>",
    "$(touch /tmp/pwned) `id` ${HOME}",
    "\u202eevil\u202c \U0001F42E",
]


@pytest.mark.parametrize("value", INJECTIONS, ids=[f"inject{i}" for i in range(len(INJECTIONS))])
def test_template_injection_through_an_input_renders_as_one_literal_argument(data_dir: Path, value: str) -> None:
    result = CliRunner(mix_stderr=False).invoke(
        main, ["module", "render", "--data-dir", str(data_dir), "-i", f"Message={value}", "cowsay:v0.0.1"])
    count("template_injection")
    assert result.exit_code == 0, result.output
    docker = json.loads(result.stdout)["job"]["Spec"]["Docker"]
    assert docker["Entrypoint"] == ["cowsay", value]
    assert docker["Image"] == "lilypad-module/cowsay:v0.0.1"


# Go's text/template renders (the whole language is allowed); these fail in Go, and the
# error is Go's, with its line. The construct replaces the else branch of line 16 of
# cowsay's template, rendered without a Message so that the branch runs.
BAD_TEMPLATES: list[tuple[str, str, int]] = [
    ("{{range .Message}}x{{end}}", "range can't iterate over", 16),
    ('{{template "x"}}', 'template "x" not defined', 16),
    ("{{.Message.Field}}", "can't evaluate field Field in type string", 16),
    ("{{call .Message}}", "non-function .Message", 16),
    ("{{index .Message 1}}", "index out of range", 16),
    ("{{frobnicate .Message}}", 'function "frobnicate" not defined', 16),
    ('{{subst "%s" "not json"}}', "not a set input", 16),
    ("{{$x}}", 'undefined variable "$x"', 16),
    ("{{if .Message}}x", "unexpected EOF", 42),
    ("x{{end}}", "unexpected {{end}}", 16),
    ("{{else}}", "expected end; found {{else}}", 16),
    ("{{.Message", "bad character", 16),
    ("{{/* never closed", "unclosed comment", 16),
]


@pytest.mark.parametrize(("construct", "expected", "line"), BAD_TEMPLATES,
                         ids=[f"tmpl{i}" for i in range(len(BAD_TEMPLATES))])
def test_a_failing_template_is_refused_with_gos_error_and_line(tmp_path: Path, data_dir: Path, construct: str,
                                                               expected: str, line: int) -> None:
    module = _module_with(tmp_path, construct)
    result = _render(data_dir, str(module))
    count("template_constructs")
    assert result.exit_code == 1 and expected in result.output, result.output
    assert f"template line {line}:" in result.output, result.output
    assert "Traceback" not in result.output


def _module_with(tmp_path: Path, construct: str) -> Path:
    module = tmp_path / "module"
    module.mkdir()
    template = (Path(__file__).parents[2] / "modules" / "cowsay" / "lilypad_module.json.tmpl").read_text()
    (module / "lilypad_module.json.tmpl").write_text(template.replace('"Hello, Lilypad!"', construct))
    return module


# A template cannot hang or flood the process that renders it (a provider deciding on a deal).
EXHAUSTING = [
    ("{{range $}}" * 8 + "{{end}}" * 8, 20, 1, "rendering took longer than"),  # 20**8 silent iterations
    ("{{range $}}{{range $}}{{.}}{{end}}{{end}}", 60, 4000, "larger than 4194304 bytes"),  # 14 MB of output
]


@pytest.mark.parametrize(("construct", "inputs", "size", "expected"), EXHAUSTING, ids=["endless", "flood"])
def test_a_template_that_would_exhaust_the_renderer_is_stopped(tmp_path: Path, data_dir: Path, construct: str,
                                                               inputs: int, size: int, expected: str) -> None:
    module = _module_with(tmp_path, construct)
    started = time.monotonic()
    result = _render(data_dir, str(module), *(f"K{i}={'y' * size}" for i in range(inputs)))
    count("template_constructs")
    assert result.exit_code == 1 and expected in result.output, result.output
    assert time.monotonic() - started < 30


# --------------------------------------------------------------------------
# The solver's HTTP API
# --------------------------------------------------------------------------


@pytest.fixture
def solver(tmp_path: Path) -> Iterator[tuple[SolverUnderTest, TestClient]]:
    under_test = build_solver(tmp_path / "solver")
    with TestClient(under_test.app, raise_server_exceptions=False) as http:
        yield under_test, http
    under_test.core.store.close()


def _routes(app: Any) -> list[tuple[str, str]]:
    found = [(method, route.path) for route in app.routes if isinstance(route, APIRoute)
             for method in sorted(route.methods) if not route.path.endswith("/events")]
    assert len(found) >= 15, found
    return found


MALFORMED_BODIES: dict[str, bytes] = {
    "truncated": b'{"offer": {',
    "null": b"null",
    "array": b"[]",
    "string": b'"offer"',
    "not_utf8": b'\xff\xfe{"a": 1}',
    "nested_100k": b"[" * 100_000 + b"]" * 100_000,
    "int_5000_digits": b'{"created_at": ' + b"9" * 5000 + b', "signature": "0x00"}',
    "nan": b'{"created_at": NaN, "signature": "0x00"}',
    "wrong_types": b'{"offer": {"kind": 7}, "signature": 12, "created_at": "yesterday"}',
    "oversized_8MiB": b'{"signature": "' + b"a" * (8 << 20) + b'"}',
}
BAD_IDS = ["0x" + "ab" * 32, "..%2f..%2fetc%2fpasswd", "0x" + "z" * 64, "x" * 5000, "%00", "-1"]


def test_every_solver_endpoint_refuses_malformed_and_oversized_json(solver: tuple[SolverUnderTest, TestClient]) -> None:
    core, http = solver
    http.post("/api/v1/resource_offers", json=resource().model_dump(mode="json"))
    before = core.snapshot()
    tried = 0
    for method, path in _routes(core.app):
        for offer_id in BAD_IDS:
            url = path.replace("{offer_id}", offer_id).replace("{deal_id}", offer_id)
            bodies = MALFORMED_BODIES.items() if method in ("POST", "PUT", "DELETE") else [("none", b"")]
            for name, body in bodies:
                answer = http.request(method, url, content=body, headers={"content-type": "application/json"})
                tried += 1
                where = f"{method} {url[:80]} {name}"
                if "{" not in path and method == "GET":
                    assert answer.status_code == 200, where
                    continue
                assert 400 <= answer.status_code < 500, (where, answer.status_code, answer.text[:300])
                payload = answer.json()
                assert set(payload) >= {"error", "detail"} and payload["detail"], (where, payload)
                if name == "nested_100k":  # refused before parsing: deep nesting crashed the process
                    if not url.endswith(("/result", "/inputs")):  # uploads are archives, never parsed as JSON
                        assert answer.status_code == 400 and "nests" in payload["detail"], (where, payload)
                if name == "oversized_8MiB":
                    assert (answer.status_code, payload["error"]) in ((413, "too_large"), (404, "offer_not_found"),
                                                                      (404, "deal_not_found")), (where, payload)
        if "{" in path:  # once per path even when BAD_IDS is changed
            continue
        if method == "POST":  # chunked (no Content-Length): the limit holds while reading
            def chunks() -> Iterator[bytes]:
                yield b'{"signature": "'
                for _ in range(6):
                    yield b"a" * (1 << 20)
            answer = http.post(path, content=chunks(), headers={"content-type": "application/json"})
            tried += 1
            assert (answer.status_code, answer.json()["error"]) == (413, "too_large"), answer.text[:200]
    count("solver_malformed_requests", tried)
    assert core.snapshot() == before
    assert http.get("/api/v1/nope").json()["error"] == "not_found"
    assert http.patch("/api/v1/job_offers").json()["error"] == "method_not_allowed"


def _tamper(signed: Any, **changes: Any) -> dict[str, Any]:
    body = signed.model_dump(mode="json")
    for dotted, value in changes.items():
        target = body
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[part]
        target[last] = value
    return body


def _offer_cases() -> list[tuple[str, str, Any, int, str, str]]:
    """(name, endpoint, body, status, error code, text in the detail)."""
    other_domain = OfferDomain(chain_id=1, verifying_contract="0x" + "c0" * 20)
    foreign = sign_offer(ResourceOffer(resource_provider=PROVIDER.address, solver=SOLVER,
                                       mediators=[MEDIATOR.address]), PROVIDER, other_domain)
    r, j = "resource_offers", "job_offers"
    u96 = 2**96
    return [
        ("signature_zeroed", r, _tamper(resource(), signature="0x" + "00" * 65), 400, "", ""),
        ("signature_short", r, _tamper(resource(), signature="0x1234"), 400, "invalid_request", "signature"),
        ("signature_not_hex", j, _tamper(job(), signature="0x" + "zz" * 65), 400, "invalid_request", "signature"),
        ("signed_by_stranger_for_provider", r, _signed_by(STRANGER, "resource"), 400, "bad_signature", "refused"),
        ("signed_by_stranger_for_creator", j, _signed_by(STRANGER, "job"), 400, "bad_signature", "refused"),
        ("tampered_slots", r, _tamper(resource(), offer__slots=99), 400, "bad_signature", "refused"),
        ("tampered_inputs", j, _tamper(job(), offer__inputs={"Message": "evil"}), 400, "bad_signature", "refused"),
        ("tampered_price", j, _tamper(job(), offer__pricing__instruction_price=1), 400, "bad_signature", ""),
        ("other_chain_domain", r, foreign.model_dump(mode="json"), 400, "bad_signature", "refused"),
        ("stale", j, job(created_at=int(time.time()) - MAX_CLOCK_SKEW - 60).model_dump(mode="json"), 400,
         "expired", ""),
        ("from_future", j, job(created_at=int(time.time()) + MAX_CLOCK_SKEW + 600).model_dump(mode="json"), 400,
         "from_future", ""),
        ("other_solver", j, job(solver=STRANGER.address).model_dump(mode="json"), 400, "offer_refused", ""),
        ("wrong_kind", r, job().model_dump(mode="json"), 400, "wrong_kind", ""),
        ("zero_price", r, _tamper(resource(), offer__pricing__instruction_price=0), 400, "invalid_request",
         "instruction price"),
        ("negative_price", j, _tamper(job(), offer__pricing__instruction_price=-1), 400, "invalid_request", ""),
        ("price_2^256", j, _tamper(job(), offer__pricing__instruction_price=2**256), 400, "invalid_request", ""),
        ("collateral_below_price", r, _tamper(resource(), offer__pricing__payment_collateral=1), 400,
         "invalid_request", "payment collateral"),
        ("collateral_overflows_uint96", r, _tamper(resource(), offer__pricing__payment_collateral=u96,
                                                   offer__pricing__results_collateral_multiple=2), 400,
         "invalid_request", ""),
        ("multiple_zero", r, _tamper(resource(), offer__pricing__results_collateral_multiple=0), 400,
         "invalid_request", "multiple"),
        ("multiple_absurd", r, _tamper(resource(), offer__pricing__results_collateral_multiple=10**6), 400,
         "invalid_request", "multiple"),
        ("mediation_fee_overflow", j, _tamper(job(), offer__pricing__mediation_fee=u96), 400, "invalid_request", ""),
        ("timeout_zero", j, _tamper(job(), offer__timeouts__agree=0), 400, "invalid_request", "timeout"),
        ("timeout_100_years", j, _tamper(job(), offer__timeouts__submit_results=100 * 365 * 86400), 400,
         "invalid_request", "timeout"),
        ("no_mediators", j, _tamper(job(), offer__mediators=[]), 400, "invalid_request", "mediators"),
        ("zero_address_mediator", r, _tamper(resource(), offer__mediators=["0x" + "00" * 20]), 400, "", ""),
        ("not_an_address", r, _tamper(resource(), offer__resource_provider="0xnotanaddress"), 400,
         "invalid_request", ""),
        ("extra_field", j, _tamper(job(), offer__admin=True), 400, "invalid_request", "Extra inputs"),
        ("module_ref_traversal", j, _tamper(job(), offer__module__ref="../../etc/passwd"), 400, "", ""),
        ("module_commit_not_hex", j, _tamper(job(), offer__module__commit="--upload-pack=x"), 400,
         "invalid_request", ""),
        ("input_key_injection", j, _tamper(job(), offer__inputs={"$(id)": "x"}), 400, "invalid_request", ""),
        ("input_oversized", j, _tamper(job(), offer__inputs={"Message": "x" * (64 * 1024 + 1)}), 400,
         "invalid_request", ""),
    ]


def _signed_by(key: Any, kind: str) -> dict[str, Any]:
    """An offer naming the real party but signed by ``key``: the signature is someone else's."""
    honest = resource() if kind == "resource" else job()
    body = honest.model_dump(mode="json")
    body["signature"] = "0x" + bytes(key.sign_message(_signable(honest.offer, DOMAIN)).signature).hex()
    return body


def test_bad_offers_are_refused_and_change_nothing(solver: tuple[SolverUnderTest, TestClient]) -> None:
    core, http = solver
    replayed = job().model_dump(mode="json")
    assert http.post("/api/v1/job_offers", json=replayed).status_code == 201
    before = core.snapshot()
    cases = _offer_cases() + [("replayed", "job_offers", replayed, 400, "replayed_nonce", "")]
    for name, endpoint, body, status, code, text in cases:
        answer = http.post(f"/api/v1/{endpoint}", json=body)
        payload = answer.json()
        assert answer.status_code == status, (name, answer.status_code, payload)
        assert payload["error"] == (code or payload["error"]) and text in payload["detail"], (name, payload)
        assert core.snapshot() == before, name
    count("offers", len(cases))


def test_a_job_and_a_provider_with_no_shared_mediator_never_make_a_deal(
        solver: tuple[SolverUnderTest, TestClient]) -> None:
    core, http = solver
    assert http.post("/api/v1/resource_offers", json=resource().model_dump(mode="json")).status_code == 201
    lonely = job(mediators=[OTHER_MEDIATOR.address]).model_dump(mode="json")
    assert http.post("/api/v1/job_offers", json=lonely).status_code == 201
    for _ in range(3):
        assert core.core.match_round() == []
    assert core.core.deals() == []
    count("offers")


def _upload(http: TestClient, deal_id: str, body: bytes, key: Any = PROVIDER) -> Any:
    digest = hashlib.sha256(body).hexdigest()
    headers = {SIGNATURE_HEADER: sign_upload(deal_id, digest, key), SHA256_HEADER: digest}
    return http.put(f"/api/v1/deals/{deal_id}/result", content=body, headers=headers)


def test_hostile_results_and_archives_are_refused(solver: tuple[SolverUnderTest, TestClient], tmp_path: Path) -> None:
    core, http = solver
    http.post("/api/v1/resource_offers", json=resource().model_dump(mode="json"))
    http.post("/api/v1/job_offers", json=job().model_dump(mode="json"))
    (deal,) = core.core.match_round()
    base = result_files(tmp_path)
    bomb = tar_gz(*base, entry("outputs/zeros", b"\0" * (MAX_RESULT_BYTES * 4)))
    archives: list[tuple[str, bytes, int, str]] = [
        ("dotdot", tar_gz(*base, entry("../escape", b"x")), 400, "unsafe_archive"),
        ("dotdot_deep", tar_gz(*base, entry("outputs/../../escape", b"x")), 400, "unsafe_archive"),
        ("absolute", tar_gz(*base, entry("/etc/cron.d/evil", b"x")), 400, "unsafe_archive"),
        ("symlink_out", tar_gz(*base, entry("outputs/l", kind=tarfile.SYMTYPE, link="/etc/passwd")), 400,
         "unsafe_archive"),
        ("symlink_up", tar_gz(*base, entry("outputs/l", kind=tarfile.SYMTYPE, link="../../../etc")), 400,
         "unsafe_archive"),
        ("write_through_link", tar_gz(*base, entry("outputs/d", kind=tarfile.SYMTYPE, link="."),
                                      entry("outputs/d/x", b"x")), 400, "unsafe_archive"),
        ("hardlink", tar_gz(*base, entry("outputs/h", kind=tarfile.LNKTYPE, link="stdout")), 400, "unsafe_archive"),
        ("device", tar_gz(*base, entry("outputs/null", kind=tarfile.CHRTYPE)), 400, "unsafe_archive"),
        ("fifo", tar_gz(*base, entry("outputs/p", kind=tarfile.FIFOTYPE)), 400, "unsafe_archive"),
        ("hidden", tar_gz(*base, entry("outputs/.bashrc", b"x")), 400, "unsafe_archive"),
        ("duplicate", tar_gz(*base, entry("stdout", b"again")), 400, "unsafe_archive"),
        ("not_gzip", b"definitely not gzip", 400, "bad_archive"),
        ("empty", b"", 400, ""),
        ("truncated", tar_gz(*base)[:40], 400, "bad_archive"),
        ("not_a_result", tar_gz(entry("just-a-file", b"x")), 400, "not_a_result"),
        ("gzip_bomb", bomb, 413, "too_large"),
    ]
    before = core.snapshot()
    for name, body, status, code in archives:
        answer = _upload(http, deal.deal_id, body)
        payload = answer.json()
        assert answer.status_code == status and payload["error"] == (code or payload["error"]), (name, payload)
        assert core.snapshot() == before, name
    assert [p.name for p in core.results.root.iterdir()] == []  # no temporary left behind
    assert _upload(http, deal.deal_id, pack(_result_dir(tmp_path / "ok")), key=STRANGER).status_code == 403
    assert http.put(f"/api/v1/deals/{deal.deal_id}/result", content=b"x").status_code == 401
    assert core.snapshot() == before

    # Files that do not match the on-chain CID are never served.
    answer = _upload(http, deal.deal_id, pack(_result_dir(tmp_path / "lie", "lies")))
    assert answer.status_code == 200
    core.onchain[deal.deal_id] = directory_cid(_result_dir(tmp_path / "truth", "truth"))
    answer = http.get(f"/api/v1/deals/{deal.deal_id}/result")
    assert (answer.status_code, answer.json()["error"]) == (409, "result_cid_mismatch")
    count("results_and_archives", len(archives) + 3)


def _result_dir(path: Path, text: str = "moo") -> Path:
    (path / "outputs").mkdir(parents=True)
    for name, value in (("stdout", text), ("stderr", ""), ("exitCode", "0")):
        (path / name).write_text(value)
    (path / "outputs" / "out.txt").write_text(text * 2)
    return path


def test_the_tally_of_hostile_cases(request: pytest.FixtureRequest) -> None:
    """The corpus is as large as the closing note claims (parametrised cases counted statically)."""
    static = len(BAD_REFS) + len(BAD_INPUTS) + len(INJECTIONS) + len(BAD_TEMPLATES) + len(_offer_cases()) + 1
    dynamic = len(MALFORMED_BODIES) * len(BAD_IDS) + 16
    assert static + dynamic >= 150, static + dynamic
    os.environ.setdefault("LILYPAD_SECURITY_CASES", str(static))
