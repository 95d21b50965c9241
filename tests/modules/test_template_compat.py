"""lilypad renders module templates as the original Lilypad does.

Three checks against ``go_oracle`` (plain Go ``text/template`` with the
original's ``subst``, built from ``go_oracle/``):

* the hand-written collection of representative templates
  (``template_collection.py``): the same bytes, or an error at the same line,
  except where a case names a documented deliberate difference;
* a differential test over templates Hypothesis builds from the whole language
  (every action, pipelines, parentheses, variables, every built-in) with inputs
  that cannot trigger a deliberate difference: the same bytes or the same error line;
* every reproduction of issue 22's table: the template loads here, as there,
  and renders the same job.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lilypad.exceptions import SpecError, TemplateError
from lilypad.modules.spec import check_runnable, render_spec
from go_oracle_support import Oracle, OracleResult
from lilypad.modules.template import render_template
from template_collection import BUILTINS, CASES, KEYWORDS, Case


def lilypad_render(template: str, inputs: dict[str, str]) -> OracleResult:
    """lilypad's renderer, in the oracle's terms."""
    try:
        return OracleResult(render_template(template, inputs))
    except TemplateError as exc:
        return OracleResult(None, exc.line, exc.reason)


def assert_same(ours: OracleResult, go: OracleResult, template: str) -> None:
    if go.failed:
        assert ours.failed, f"plain Go fails ({go.message}), lilypad renders {ours.output!r} for {template!r}"
        assert ours.line == go.line, f"{template!r}: lilypad says line {ours.line}, Go {go.line} ({go.message})"
        if "error calling subst" not in go.message + ours.message:  # lilypad's subst explains itself in its words
            assert ours.message in go.message, (ours.message, go.message)
    else:
        assert not ours.failed, f"plain Go renders {go.output!r}, lilypad fails: line {ours.line}: {ours.message}"
        assert ours.output == go.output, template


# --------------------------------------------------------------------------
# The representative collection
# --------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_collection_renders_as_plain_go(case: Case, go_oracle: Oracle) -> None:
    ours, go = lilypad_render(case.template, case.inputs), go_oracle(case.template, case.inputs)
    if case.difference:
        assert (ours.output, go.output) == (case.lilypad, case.original), case.difference
        return
    assert_same(ours, go, case.template)
    if case.error_line is not None:
        assert (go.failed, go.line) == (True, case.error_line), go


def test_the_collection_uses_every_construct_and_built_in() -> None:
    actions = " ".join(m for case in CASES for m in re.findall(r"\{\{(.*?)\}\}", case.template, re.S))
    words = set(re.findall(r"[A-Za-z_]\w*", re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', " ", actions)))
    missing = [name for name in BUILTINS + KEYWORDS if name not in words]
    assert not missing, f"no case uses {missing}"
    for construct in ("{{-", "-}}", "{{/*", "|", "(", ":=", " = ", "$", "$.", "else if", "printf", "`"):
        assert any(construct in case.template for case in CASES), construct
    differences = {case.difference for case in CASES} - {""}
    assert len(differences) == 3, differences


# --------------------------------------------------------------------------
# Differential: Hypothesis builds templates from the whole language
# --------------------------------------------------------------------------

# No ', " or \ and no control characters in values or string literals, and no number
# that prints as ': then neither subst's escaping nor js's \u0027 can apply, and
# every field the generator names (.A .B .C) is given. What remains must be Go's.
_SAFE = "abcxyz 019<>&%{}[],:.-_éé✓"
_VALUE = st.text(alphabet=_SAFE, max_size=8)
_FIELDS = st.sampled_from([".A", ".B", ".C"])
_NUMBERS = st.sampled_from(["0", "1", "2", "3", "-1", "7", "1.5", "0x10", "1e1", "'a'", "'0'"])
_FORMATS = st.sampled_from(['"%s"', '"%v"', '"%d"', '"%q"', '"%x"', '"%s-%v"', '"%5.2f"', '"[%3s]"', '"%%"'])


def _literal(draw: Any) -> str:
    body = draw(st.text(alphabet=_SAFE, max_size=6))
    return draw(st.sampled_from([f'"{body}"', f"`{body}`"]))


@st.composite
def _operand(draw: Any, depth: int) -> str:
    choices = ["field", "field", "number", "literal", "dot", "root", "var", "const"]
    if depth > 0:
        choices += ["paren", "paren"]
    kind = draw(st.sampled_from(choices))
    if kind == "field":
        return draw(_FIELDS)
    if kind == "number":
        return draw(_NUMBERS)
    if kind == "literal":
        return _literal(draw)
    if kind == "dot":
        return "."
    if kind == "root":
        return draw(st.sampled_from(["$", "$.A", "$.B"]))
    if kind == "var":
        return draw(st.sampled_from(["$x", "$i", "$v"]))
    if kind == "const":
        return draw(st.sampled_from(["true", "false", "nil"]))
    return "(" + draw(_pipeline(depth - 1)) + ")"


_FUNCTIONS = {
    "and": (1, 3), "or": (1, 3), "not": (1, 1), "len": (1, 1), "index": (1, 3), "slice": (1, 3),
    "print": (0, 3), "println": (0, 2), "html": (1, 2), "js": (1, 2), "urlquery": (1, 2),
    "eq": (2, 3), "ne": (2, 2), "lt": (2, 2), "le": (2, 2), "gt": (2, 2), "ge": (2, 2), "call": (1, 2),
}


@st.composite
def _command(draw: Any, depth: int, piped: bool) -> str:
    kind = draw(st.sampled_from(["operand", "function", "function", "printf", "subst"]))
    if kind == "operand" and not piped:
        return draw(_operand(depth))
    if kind == "printf":
        args = draw(st.lists(_operand(depth), max_size=0 if piped else 2))
        return " ".join(["printf", draw(_FORMATS), *args])
    if kind == "subst":
        args = draw(st.lists(st.one_of(_FIELDS, _FIELDS, st.just('"lit"')), max_size=0 if piped else 2))
        return " ".join(["subst", draw(_FORMATS), *args])
    name = draw(st.sampled_from(sorted(_FUNCTIONS)))
    low, high = _FUNCTIONS[name]
    count = draw(st.integers(max(0, low - (1 if piped else 0)), max(0, high - (1 if piped else 0))))
    return " ".join([name, *(draw(_operand(depth)) for _ in range(count))])


@st.composite
def _pipeline(draw: Any, depth: int = 2) -> str:
    declare = draw(st.sampled_from(["", "", "", "$x := ", "$x = "]))
    commands = [draw(_command(depth, piped=False))]
    for _ in range(draw(st.integers(0, 2))):
        commands.append(draw(_command(depth, piped=True)))
    return declare + " | ".join(commands)


def _action(draw: Any, inner: str) -> str:
    left = draw(st.sampled_from(["{{", "{{", "{{- "]))
    right = draw(st.sampled_from(["}}", "}}", " -}}"]))
    return f"{left}{inner}{right}"


@st.composite
def _body(draw: Any, depth: int = 2, in_range: bool = False) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        kinds = ["text", "action", "action", "comment", "var"]
        if depth > 0:
            kinds += ["if", "with", "range", "define", "block"]
        if in_range:
            kinds += ["break", "continue"]
        kind = draw(st.sampled_from(kinds))
        if kind == "text":
            parts.append(draw(st.text(alphabet=_SAFE + "\n\t", max_size=6)))
        elif kind == "action":
            parts.append(_action(draw, draw(_pipeline())))
        elif kind == "comment":
            parts.append(draw(st.sampled_from(["{{/* c */}}", "{{- /* c\n */ -}}"])))
        elif kind == "var":
            parts.append(_action(draw, "$x := " + draw(_pipeline(1))))
        elif kind in ("break", "continue"):
            parts.append(_action(draw, kind))
        elif kind == "define":
            name = draw(st.sampled_from(['"t"', '"u"']))
            parts.append(f"{{{{define {name}}}}}{draw(_body(depth - 1))}{{{{end}}}}"
                         + _action(draw, f"template {name} {draw(_operand(1))}"))
        elif kind == "block":
            parts.append(_action(draw, f'block "b" {draw(_operand(1))}') + draw(_body(depth - 1)) + "{{end}}")
        else:
            head = draw(_pipeline(1))
            if kind == "range":
                head = draw(st.sampled_from(["", "$i, $v := ", "$v := "])) + head
            text = _action(draw, f"{kind} {head}") + draw(_body(depth - 1, in_range or kind == "range"))
            if kind != "range" and draw(st.booleans()):
                text += _action(draw, f"else {kind} {draw(_pipeline(1))}") + draw(_body(depth - 1, in_range))
            if draw(st.booleans()):
                text += _action(draw, "else") + draw(_body(depth - 1, in_range))
            parts.append(text + _action(draw, "end"))
    return "".join(parts)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(template=_body(), a=_VALUE, b=_VALUE, c=_VALUE)
def test_differential_against_plain_go(go_oracle: Oracle, template: str, a: str, b: str, c: str) -> None:
    inputs = {"A": a, "B": b, "C": c}
    go = go_oracle(template, inputs)
    event("plain Go fails" if go.failed else "plain Go renders")
    assert_same(lilypad_render(template, inputs), go, template)


# --------------------------------------------------------------------------
# Issue 22's reproductions: each snippet inside {"job":{"Spec":{"Docker":{"Image":"busybox", ...}}}}
# --------------------------------------------------------------------------


def in_docker(snippet: str, *, image: str = '"Image":"busybox", ') -> str:
    return '{"job":{"Spec":{"Docker":{' + image + snippet + "}}}}"


def renders_like_go(go_oracle: Oracle, template: str, inputs: dict[str, str]) -> dict[str, Any]:
    go = go_oracle(template, inputs)
    assert not go.failed, go.message
    assert render_template(template, inputs) == go.output
    return json.loads(go.output)


def test_an_environment_entry_without_equals_loads_and_runs_empty(go_oracle: Oracle) -> None:
    template = in_docker('"EnvironmentVariables":[{{ .PromptEnv }}]')
    renders_like_go(go_oracle, template, {"PromptEnv": "hello"})
    spec = render_spec(template, {"PromptEnv": "hello"})
    assert spec.docker.environment_variables == ("hello",)
    assert spec.docker.environment == {"hello": ""}  # never the provider's own $hello (docker run -e hello)
    check_runnable(spec)


def test_or_with_a_default(go_oracle: Oracle) -> None:
    template = in_docker('"Entrypoint":["echo","{{or .Message "moo"}}"]')
    renders_like_go(go_oracle, template, {})
    assert render_spec(template, {}).docker.entrypoint == ("echo", "moo")


def test_pipelines_into_printf(go_oracle: Oracle) -> None:
    template = in_docker('"Entrypoint":["echo",{{ .P | printf "%q" }},{{ printf "%s" .M }}]')
    inputs = {"P": "p", "M": "m"}
    renders_like_go(go_oracle, template, inputs)
    # %q of the JSON-encoded "p" is "\"p\"": a JSON string holding the quotes
    assert render_spec(template, inputs).docker.entrypoint == ("echo", '"p"', "m")


def test_not_and_parenthesised_arguments(go_oracle: Oracle) -> None:
    template = in_docker('"Entrypoint":["echo"{{ if not .K }},"no K"{{ end }},"{{ subst "M=%s" (printf "%s" .M) }}"]')
    renders_like_go(go_oracle, template, {"M": "moo"})
    assert render_spec(template, {"M": "moo"}).docker.entrypoint == ("echo", "no K", "M=moo")


def test_gpu_given_as_a_word_loads(go_oracle: Oracle) -> None:
    template = in_docker("", image='"Image":"busybox"') .replace('"Docker"', '"Resources":{"GPU":"all"},"Docker"')
    renders_like_go(go_oracle, template, {})
    spec = render_spec(template, {})
    assert spec.job.spec.resources.gpu_count == "all"
    check_runnable(spec)


@pytest.mark.parametrize(("snippet", "path", "reason"), [
    ('"Entrypoint":["true"]', "job.Spec.Docker.Image", "no container image"),
    ('"Image":"busybox"}, "Outputs":[{"Name":"out","Path":"outputs"}], "x":{"y":1', "job.Spec.Outputs[0].Path",
     "absolute path"),
], ids=["no-image", "relative-output-path"])
def test_checks_made_only_when_the_job_runs_load_and_fail_at_run_time(
        go_oracle: Oracle, snippet: str, path: str, reason: str) -> None:
    template = in_docker(snippet, image="")
    renders_like_go(go_oracle, template, {})
    spec = render_spec(template, {})  # loads, as in the original
    with pytest.raises(SpecError) as caught:
        check_runnable(spec)  # what run_module, the provider (before agreeing) and lilypad run call
    assert caught.value.path == path and reason in caught.value.reason


def test_execution_timeout_zero_loads_and_means_the_default(go_oracle: Oracle) -> None:
    template = '{"executionTimeoutSeconds": 0,' + in_docker('"Entrypoint":["true"]')[1:]
    renders_like_go(go_oracle, template, {})
    spec = render_spec(template, {})
    assert spec.execution_timeout_seconds == 0
    check_runnable(spec)
