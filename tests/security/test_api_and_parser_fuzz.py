"""Fuzzing: the solver's HTTP API from its own OpenAPI schema (schemathesis,
against the real ASGI app on SQLite files), and the template renderer, input
parser, module-reference parser and archive unpacker with Hypothesis.

Every case must end in an answer or a *declared* error: no 500, no other
exception, no hang (a per-example deadline). The budget is
``LILYPAD_SECURITY_EXAMPLES`` examples per operation or property (25 in
``make test``, more in ``make soak``).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from lilypad.exceptions import InputError, LilypadError, ModuleRefError, TemplateError
from lilypad.modules.inputs import format_inputs, parse_inputs
from lilypad.modules.reference import parse_module_ref
from lilypad.modules.template import parse_template, render_template
from lilypad.results.archive import unpack
from security_support import build_solver, count, job, resource

EXAMPLES = int(os.environ.get("LILYPAD_SECURITY_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=5000, suppress_health_check=list(HealthCheck), database=None)

_SOLVER = build_solver(Path(tempfile.mkdtemp(prefix="lilypad-api-fuzz-")))
_SOLVER.core.accept_offer(resource())  # some state for the fuzzer to poke at
_SOLVER.core.accept_offer(job())
schema = schemathesis.openapi.from_asgi("/openapi.json", _SOLVER.app).exclude(path_regex=r".*/events$")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_the_solver_api_never_answers_500(case: schemathesis.Case) -> None:
    before = _SOLVER.snapshot()
    response = case.call_and_validate(checks=[not_a_server_error])
    count("api_fuzz_requests")
    assert response.status_code < 500
    if response.status_code >= 400:
        body = response.json()
        assert {"error", "detail"} <= set(body), body
    if case.method.upper() != "GET" and response.status_code >= 400:
        assert _SOLVER.snapshot() == before


# --------------------------------------------------------------------------
# Template renderer
# --------------------------------------------------------------------------

_PIECES = st.sampled_from([
    "{{", "}}", "{{.X}}", "{{.Y}}", "{{if .X}}", "{{else}}", "{{else if .Y}}", "{{end}}", "{{- ", " -}}",
    "{{/*", "*/}}", '{{subst "a"}}', '{{js .X}}', "{{.X | js}}", "{{range .X}}", "{{template \"t\"}}",
    '"', "\\", "\n", "{", "}", ".", "|", "$", "(", ")", "printf", " ", "x", "\u2028",
])
_TEMPLATES = st.one_of(st.text(max_size=200), st.lists(_PIECES, max_size=40).map("".join))
_VALUES = st.text(max_size=300)


@FUZZ
@given(template=_TEMPLATES, x=_VALUES, y=_VALUES)
def test_the_template_renderer_renders_or_refuses_clearly(template: str, x: str, y: str) -> None:
    count("template_fuzz")
    try:
        rendered = render_template(template, {"X": x, "Y": y})
    except TemplateError as exc:
        assert str(exc)
        return
    assert isinstance(rendered, str)


@FUZZ
@given(value=st.text(max_size=2000).filter(lambda v: "\x00" not in v))
def test_any_input_value_renders_as_exactly_one_json_string(value: str) -> None:
    count("template_fuzz")
    template = parse_template('{"Entrypoint": ["echo", {{.X}}], "Image": "fixed"}')
    document = json.loads(template.render({"X": value}))
    assert document == {"Entrypoint": ["echo", value], "Image": "fixed"}


# --------------------------------------------------------------------------
# Input parser and module references
# --------------------------------------------------------------------------


@FUZZ
@given(items=st.lists(st.text(max_size=80), max_size=12))
def test_the_input_parser_parses_or_refuses_and_round_trips(items: list[str]) -> None:
    count("input_fuzz")
    try:
        parsed = parse_inputs(items)
    except InputError as exc:
        assert str(exc)
        return
    assert parse_inputs(format_inputs(parsed)) == parsed


@FUZZ
@given(text=st.one_of(st.text(max_size=120), st.lists(st.sampled_from([
    "https://", "github.com", "/", ":", "@", "..", "-", "--upload-pack=", "a", "v1", "~", ".", "%2e", " ", "ext::",
    "user:pw@", "file://", "\\", "\n"]), max_size=12).map("".join)))
def test_module_references_parse_to_something_safe_or_are_refused(text: str) -> None:
    count("module_ref_fuzz")
    try:
        ref = parse_module_ref(text)
    except ModuleRefError as exc:
        assert str(exc)
        return
    if ref.kind == "url":
        assert ref.location.startswith("https://") and "@" not in ref.location
        assert not any(part.startswith("-") for part in ref.location.split("/"))
    if ref.ref is not None:
        assert not ref.ref.startswith(("-", "."))


@FUZZ
@given(data=st.binary(max_size=4096))
def test_the_archive_unpacker_refuses_garbage_without_leaving_anything(data: bytes) -> None:
    count("archive_fuzz")
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "out"
        try:
            unpack(io.BytesIO(data), dest, max_bytes=1 << 20, max_files=100)
        except LilypadError:
            assert not dest.exists()
            assert os.listdir(tmp) == []


def test_the_fuzz_budget_is_what_the_note_claims() -> None:
    assert EXAMPLES >= 1
    ops = list(schema.get_all_operations())
    assert len(ops) >= 15, len(ops)
