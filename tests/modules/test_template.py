"""The module template renderer: Go's text/template through lilypad's Go helper.

Fidelity to plain Go is test_template_compat.py's business; here: how inputs
reach the template, the three deliberate differences, Go's errors as
TemplateError with their line, the bounds on a render, and finding or building
the helper."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lilypad.exceptions import LilypadError, ModuleError, TemplateError, TemplateHelperError
from lilypad.modules import gotemplate_helper, template
from lilypad.modules.gotemplate_helper import build_helper, default_helper_path, helper_path, helper_source_hash
from lilypad.modules.template import MAX_OUTPUT_BYTES, MAX_TEMPLATE_BYTES, parse_template, render_template

COWSAY = (Path(__file__).resolve().parents[2] / "modules" / "cowsay" / "lilypad_module.json.tmpl").read_text()


def entrypoint(inputs: dict[str, str]) -> list[str]:
    return json.loads(render_template(COWSAY, inputs))["job"]["Spec"]["Docker"]["Entrypoint"]


# --------------------------------------------------------------------------
# Inputs: JSON-encoded by Go's json.Marshal before rendering
# --------------------------------------------------------------------------


def test_value_is_json_encoded_including_quotes() -> None:
    assert render_template("{{.Message}}", {"Message": "moo"}) == '"moo"'
    assert render_template("{{.Message}}|{{ .Message }}", {"Message": ""}) == '""|""'


def test_encoding_is_go_json_marshal() -> None:
    # Go escapes <, > and & (HTML-safe), U+2028/U+2029, and keeps other non-ASCII as UTF-8.
    assert render_template("{{.A}}", {"A": "<a&b> é ✓ \u2028"}) == '"\\u003ca\\u0026b\\u003e é ✓ \\u2028"'
    assert render_template("{{.A}}", {"A": 'q"\\\n'}) == '"q\\"\\\\\\n"'


def test_json_injection_through_a_value_is_impossible() -> None:
    evil = 'moo"], "Image": "evil", "x": ["'
    assert entrypoint({"Message": evil})[-1] == evil


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200))
def test_any_value_round_trips_through_the_cowsay_template(message: str) -> None:
    assert entrypoint({"Message": message})[-1] == message


def test_undecodable_bytes_become_replacement_characters_as_in_go() -> None:
    # A lone surrogate is how Python carries an undecodable byte (surrogateescape).
    assert json.loads(render_template("[{{.A}}]", {"A": "a\udcffb"})) == ["a\ufffdb"]


def test_an_empty_value_is_set_and_true_in_if() -> None:
    template = "{{if .Seed}}set{{else}}unset{{end}}"
    assert render_template(template, {"Seed": ""}) == "set"  # the two characters "" are a non-empty string
    assert render_template(template, {}) == "unset"


# --------------------------------------------------------------------------
# The three deliberate differences
# --------------------------------------------------------------------------


def test_subst_escapes_each_value_for_a_json_string_and_keeps_the_format() -> None:
    value = 'say "hi", then } ] \\ and a\nnewline <&>'
    rendered = render_template('{"env": ["{{ subst "MESSAGE=%s" .M }}", {{ subst "\\"Q=%s\\"" .M }}]}', {"M": value})
    assert json.loads(rendered) == {"env": [f"MESSAGE={value}", f"Q={value}"]}
    assert render_template('{{ subst "%s-%v-100%%" .A .B }}', {"A": "x", "B": "y"}) == "x-y-100%"


def test_subst_formats_as_go_does() -> None:
    # Sprintf of the decoded strings: %d of a string is Go's %!d(string=...), as in the original.
    assert render_template('{{ subst "%d|%5s|%q" .N .N .N }}', {"N": "7"}) == '%!d(string=7)|    7|"7"'


def test_a_missing_input_is_empty_not_no_value() -> None:
    assert render_template("[{{.Missing}}]|{{ len .Missing }}|{{ .Missing | printf \"%q\" }}", {}) == '[]|0|""'


def test_js_writes_a_quote_as_a_json_escape() -> None:
    assert render_template("{{ js .A }}|{{ .A | js }}", {"A": "it's"}) == '\\"it\\u0027s\\"|\\"it\\u0027s\\"'
    literal = render_template("{{ js \"a'b\\\\'c\" }}", {})  # a backslash before a quote stays a backslash
    assert literal == "a\\u0027b\\\\\\u0027c"
    assert json.loads('"' + literal + '"') == "a'b\\'c"


# --------------------------------------------------------------------------
# Go's errors, with Go's line
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "construct", "line", "reason"),
    [
        ("{\n  {{ .A.B }}\n}", ".A.B", 2, "can't evaluate field B in type string"),
        ("a\n\n{{ frobnicate .X }}", "frobnicate", 3, 'function "frobnicate" not defined'),
        ("x\n\n\n{{ .X", "{{ .X", 4, "unclosed action"),
        ("{{/* unclosed", "{{/* unclosed", 1, "unclosed comment"),
        ("ok\n{{end}}", "{{end}}", 2, "unexpected {{end}}"),
        ('a\n{{ template "x" }}', '{{template "x"}}', 2, 'template "x" not defined'),
        ('{{ subst "%s" "lit" }}', 'subst "%s" "lit"', 1, "not a set input"),
        ("\n{{ call .A }}", "call .A", 2, "non-function"),
    ],
)
def test_errors_are_gos_with_its_line(text: str, construct: str, line: int, reason: str) -> None:
    with pytest.raises(TemplateError) as info:
        render_template(text, {"A": "1"})
    error = info.value
    assert (error.construct, error.line) == (construct, line)
    assert reason in error.reason
    assert f"template line {line}" in str(error)


def test_parse_template_checks_syntax_only() -> None:
    parsed = parse_template("{{ .A.B }}")  # fine syntax; fails only when rendered
    with pytest.raises(TemplateError, match="can't evaluate field B"):
        parsed.render({"A": "x"})
    with pytest.raises(TemplateError) as info:
        parse_template("{\n{{/* one\ntwo\nthree */}}\n{{ if .A }}\n{{ with .B }}{{ end }}\n{{ else }}{{ else }}")
    assert info.value.line == 7


def test_template_errors_are_module_errors_and_helper_errors_are_not() -> None:
    assert issubclass(TemplateError, ModuleError)
    assert issubclass(TemplateHelperError, LilypadError) and not issubclass(TemplateHelperError, ModuleError)


# --------------------------------------------------------------------------
# Bounds: size, output, time
# --------------------------------------------------------------------------

MANY = {f"K{i}": "x" for i in range(20)}


def test_a_template_over_the_size_limit_is_refused() -> None:
    with pytest.raises(TemplateError, match=f"larger than {MAX_TEMPLATE_BYTES} bytes"):
        render_template("x" * (MAX_TEMPLATE_BYTES + 1), {})


def test_output_is_bounded() -> None:
    big = {f"K{i}": "y" * 10_000 for i in range(25)}  # within the input limits (256 KiB); 6.25 MB out
    with pytest.raises(TemplateError, match=f"larger than {MAX_OUTPUT_BYTES} bytes") as info:
        render_template("{{range $}}{{range $}}{{.}}{{end}}{{end}}", big)
    assert info.value.line == 0 and "template:" in str(info.value)


def test_a_render_that_never_ends_is_stopped() -> None:
    # 20**8 silent iterations: without the bound this would run for hours.
    endless = "{{range $}}" * 8 + "{{end}}" * 8
    with pytest.raises(TemplateError, match="took longer than"):
        render_template(endless, MANY)


# --------------------------------------------------------------------------
# Finding and building the helper
# --------------------------------------------------------------------------


def test_the_helper_is_named_by_a_hash_of_its_source() -> None:
    path = default_helper_path()
    assert path.name == f"lilypad-gotemplate-{helper_source_hash()}" and len(helper_source_hash()) == 16
    assert path.parent.parts[-2:] == ("lilypad", "bin")


def test_lilypad_gotemplate_names_the_helper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LILYPAD_GOTEMPLATE", str(tmp_path / "nothing"))
    with pytest.raises(TemplateHelperError, match="LILYPAD_GOTEMPLATE names no executable file") as info:
        render_template("{{.A}}", {"A": "x"})
    assert "make setup" in str(info.value)
    monkeypatch.setenv("LILYPAD_GOTEMPLATE", "/bin/false")  # runs, but answers nothing sensible
    with pytest.raises(TemplateHelperError, match="rebuild it with `make setup`"):
        render_template("{{.A}}", {"A": "x"})


def test_a_helper_speaking_another_protocol_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(template, "_PROTOCOL", 99)
    with pytest.raises(TemplateHelperError, match="protocol 99 requested"):
        render_template("{{.A}}", {"A": "x"})


def test_without_go_or_a_build_the_error_says_run_make_setup(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setattr(gotemplate_helper, "_GO_CANDIDATES", ())
    with pytest.raises(TemplateHelperError, match="not built") as info:
        helper_path()
    assert "make setup" in info.value.reason and str(tmp_path / "cache" / "lilypad" / "bin") in info.value.path


def test_build_helper_builds_once_into_the_target(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "bin" / "lilypad-gotemplate"
    assert build_helper(target) == target and os.access(target, os.X_OK)
    stamp = target.stat().st_mtime_ns
    assert build_helper(target) == target and target.stat().st_mtime_ns == stamp  # already there: not rebuilt
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".tmp-")]
    monkeypatch.setenv("LILYPAD_GOTEMPLATE", str(target))
    assert render_template("{{ .A | printf \"%s\" }}", {"A": "built"}) == '"built"'
