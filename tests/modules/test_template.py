"""The module template renderer: the Go text/template subset of public Lilypad modules."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lilypad.exceptions import LilypadError, ModuleError, TemplateError
from lilypad.modules.template import encode_input_value, parse_template, render_template

# Shaped like lilypad-module-cowsay's lilypad_module.json.tmpl.
COWSAY = """{
  "machine": {"gpu": 0, "cpu": 1000, "ram": 100},
  "job": {
    "APIVersion": "V1beta1",
    "Spec": {
      "Deal": {"Concurrency": 1},
      "Docker": {
        "Entrypoint": ["cowsay", {{.Message}}],
        "Image": "grycap/cowsay:latest@sha256:fad516b39e3a587f33ce3dbbb1e646073ef35e0b696bcf9afb1a3e399ce2ab0b"
      },
      "Engine": "Docker",
      "Network": {"Type": "None"},
      "PublisherSpec": {"Type": "IPFS"},
      "Resources": {"GPU": ""},
      "Timeout": 1800,
      "Verifier": "Noop"
    }
  }
}
"""

# Shaped like the EnvironmentVariables of lilypad-module-ollama-pipeline / -boilerplate.
ENV_TEMPLATE = """{"env": [
  {{ if .Prompt }}"{{ subst "PROMPT=%s" .Prompt }}"{{ else }}"PROMPT=default"{{ end }},
  {{- /* the seed is optional */ -}}
  {{ if .Seed }}"{{ subst "SEED=%s" .Seed }}",{{ end }}
  "HF_HUB_OFFLINE=1"
]}"""


def render_json(template: str, inputs: dict[str, str]) -> object:
    return json.loads(render_template(template, inputs))


# --------------------------------------------------------------------------
# Values and JSON encoding
# --------------------------------------------------------------------------


def test_cowsay_template_renders_valid_json_with_message_quoted() -> None:
    rendered = render_template(COWSAY, {"Message": "moo"})
    assert '["cowsay", "moo"]' in rendered
    spec = json.loads(rendered)
    assert spec["job"]["Spec"]["Docker"]["Entrypoint"] == ["cowsay", "moo"]


def test_field_with_and_without_spaces_render_the_same() -> None:
    assert render_template("{{.A}}|{{ .A }}|{{  .A\t}}", {"A": "x"}) == '"x"|"x"|"x"'


def test_value_is_json_encoded_including_quotes() -> None:
    assert render_template("{{.Message}}", {"Message": "moo"}) == '"moo"'
    assert render_template("{{.Message}}", {"Message": ""}) == '""'


def test_json_injection_through_a_value_is_impossible() -> None:
    evil = 'moo", "rm -rf /'
    spec = render_json(COWSAY, {"Message": evil})
    assert spec["job"]["Spec"]["Docker"]["Entrypoint"] == ["cowsay", evil]


def test_encoding_matches_go_json_marshal() -> None:
    # Go escapes <, > and & (HTML-safe) and keeps non-ASCII as UTF-8.
    assert encode_input_value("<a&b>") == '"\\u003ca\\u0026b\\u003e"'
    assert encode_input_value("héllo ✓") == '"héllo ✓"'
    assert encode_input_value('q"\\\n') == '"q\\"\\\\\\n"'
    assert json.loads(encode_input_value("\u2028x")) == "\u2028x"


def test_missing_input_renders_as_empty_string() -> None:
    assert render_template("[{{.Missing}}]", {}) == "[]"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_value_round_trips_through_the_cowsay_template(message: str) -> None:
    spec = render_json(COWSAY, {"Message": message})
    assert spec["job"]["Spec"]["Docker"]["Entrypoint"] == ["cowsay", message]


def test_undecodable_bytes_become_replacement_characters_as_in_go() -> None:
    # A lone surrogate is how Python carries an undecodable byte (surrogateescape).
    assert render_json("[{{.A}}]", {"A": "a\udcffb"}) == ["a\ufffdb"]


# --------------------------------------------------------------------------
# if / else
# --------------------------------------------------------------------------


def test_if_takes_then_branch_when_set() -> None:
    template = '{{if .Message}}{{.Message}}{{else}}"default"{{end}}'
    assert render_template(template, {"Message": "hi"}) == '"hi"'


def test_missing_input_in_if_takes_else_branch() -> None:
    template = '{{if .Message}}{{.Message}}{{else}}"default"{{end}}'
    assert render_template(template, {}) == '"default"'
    assert render_template(template, {"Other": "x"}) == '"default"'


def test_empty_value_is_true_in_if_as_in_go() -> None:
    # The value is JSON-encoded first: "" (two characters), a non-empty string.
    template = "{{if .Seed}}set{{else}}unset{{end}}"
    assert render_template(template, {"Seed": ""}) == "set"
    assert render_template(template, {}) == "unset"


def test_if_without_else_renders_nothing_when_false() -> None:
    assert render_template("a{{if .X}}b{{end}}c", {}) == "ac"


def test_nested_if() -> None:
    template = "{{if .A}}A{{if .B}}B{{else}}b{{end}}{{else}}{{if .B}}-B{{else}}-b{{end}}{{end}}"
    assert render_template(template, {"A": "1", "B": "1"}) == "AB"
    assert render_template(template, {"A": "1"}) == "Ab"
    assert render_template(template, {"B": "1"}) == "-B"
    assert render_template(template, {}) == "-b"


def test_else_if_chain() -> None:
    template = "{{if .A}}a{{else if .B}}b{{else if .C}}c{{else}}none{{end}}"
    assert render_template(template, {"A": "1", "B": "1"}) == "a"
    assert render_template(template, {"B": "1", "C": "1"}) == "b"
    assert render_template(template, {"C": "1"}) == "c"
    assert render_template(template, {}) == "none"


def test_env_template_default_and_given() -> None:
    assert render_json(ENV_TEMPLATE, {}) == {"env": ["PROMPT=default", "HF_HUB_OFFLINE=1"]}
    assert render_json(ENV_TEMPLATE, {"Prompt": "a cat", "Seed": "42"}) == {
        "env": ["PROMPT=a cat", "SEED=42", "HF_HUB_OFFLINE=1"]
    }


# --------------------------------------------------------------------------
# subst
# --------------------------------------------------------------------------


def test_subst_decodes_the_value() -> None:
    assert render_template('"{{ subst "MESSAGE=%s" .Message }}"', {"Message": "moo"}) == '"MESSAGE=moo"'


def test_subst_with_a_quote_stays_valid_json() -> None:
    value = 'say "hi", then } ] \\ and a\nnewline'
    spec = render_json('{"env": ["{{ subst "MESSAGE=%s" .Message }}"]}', {"Message": value})
    assert spec == {"env": [f"MESSAGE={value}"]}


def test_subst_with_quotes_in_the_format_stays_valid_json() -> None:
    # The reference documents authors writing {{ subst "\"M=%s\"" .Message }}.
    spec = render_json('{"env": [{{ subst "\\"M=%s\\"" .Message }}]}', {"Message": 'a"b'})
    assert spec == {"env": ['M=a"b']}


def test_subst_several_arguments_and_verbs() -> None:
    rendered = render_template(
        '"{{ subst "%s-%v-%d-100%%" .A .B .C }}"', {"A": "x", "B": "y", "C": "007"}
    )
    assert rendered == '"x-y-7-100%"'


def test_subst_raw_string_format() -> None:
    assert render_template('"{{ subst `P=%s` .A }}"', {"A": "z"}) == '"P=z"'


def test_subst_format_escapes_follow_go_string_literals() -> None:
    assert render_template('{{ subst "\\u00e9\\x41\\101\\\\%s" .A }}', {"A": "z"}) == "\u00e9AA\\z"
    for bad in ("\\q", "\\xff", "\\u12", "\\ud800", "\\'"):
        with pytest.raises(TemplateError, match="escape"):
            parse_template('{{ subst "' + bad + '%s" .A }}')


def test_subst_d_rejects_non_integers() -> None:
    with pytest.raises(TemplateError, match="integer"):
        render_template('{{ subst "%d" .N }}', {"N": "seven"})


def test_subst_missing_input_is_an_error() -> None:
    with pytest.raises(TemplateError) as info:
        render_template('{{ subst "X=%s" .Seed }}', {})
    assert "Seed" in str(info.value)
    assert info.value.construct == "subst"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ('{{ subst "%q" .A }}', "unsupported format verb"),
        ('{{ subst "%5s" .A }}', "unsupported format verb"),
        ('{{ subst "%s %s" .A }}', "2 verb(s) but 1 argument"),
        ('{{ subst "%s" .A .B }}', "1 verb(s) but 2 argument"),
        ('{{ subst .A }}', "quoted format string"),
        ('{{ subst "%s" "lit" }}', "must be inputs"),
    ],
)
def test_subst_misuse_is_reported(template: str, reason: str) -> None:
    with pytest.raises(TemplateError, match="subst") as info:
        parse_template(template)
    assert reason in str(info.value)


# --------------------------------------------------------------------------
# js, trim markers, comments
# --------------------------------------------------------------------------


def test_js_pipeline_as_in_official_modules_stays_valid_json() -> None:
    # lilypad-kokoro-audio-module: "PROMPT={{ .prompt | js }}"
    value = "it's <b>\"x\"</b> = y"
    spec = render_json('{"env": ["PROMPT={{ .prompt | js }}"]}', {"prompt": value})
    assert spec == {"env": ["PROMPT=" + json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")]}
    assert json.loads(spec["env"][0].removeprefix("PROMPT=")) == value
    assert render_template("{{ js .A }}", {"A": "'"}) == render_template("{{ .A | js }}", {"A": "'"})


def test_trim_markers_remove_all_adjacent_whitespace() -> None:
    assert render_template("a \n\t {{- .X -}} \r\n b", {"X": "1"}) == 'a"1"b'
    assert render_template("a  {{- .X }}  b", {"X": "1"}) == 'a"1"  b'
    assert render_template("a  {{ .X -}}  b", {"X": "1"}) == 'a  "1"b'


def test_trim_markers_on_control_actions() -> None:
    template = "[\n  {{- if .X -}}\n  x\n  {{- else -}}\n  y\n  {{- end -}}\n]"
    assert render_template(template, {"X": "1"}) == "[x]"
    assert render_template(template, {}) == "[y]"


def test_minus_without_space_is_not_a_trim_marker() -> None:
    with pytest.raises(TemplateError):
        parse_template("{{-3}}")


def test_comments_are_dropped() -> None:
    assert render_template("a{{/* one */}}b", {}) == "ab"
    assert render_template("a {{- /* two\nlines */ -}} b", {}) == "ab"
    assert render_template("a {{/* x */ -}} b", {}) == "a b"
    assert render_template('{{/* {{.X}} "}}" */}}z', {"X": "1"}) == "z"


def test_comment_must_touch_the_delimiter_as_in_go() -> None:
    with pytest.raises(TemplateError, match="comment"):
        parse_template("{{ /* x */ }}")
    with pytest.raises(TemplateError, match="comment"):
        parse_template("{{/* x */ }}")


def test_closing_braces_inside_strings_do_not_end_the_action() -> None:
    assert render_template('"{{ subst "}}%s" .A }}"', {"A": "a"}) == '"}}a"'


def test_text_without_actions_is_unchanged() -> None:
    text = '{"a": [1, 2], "b": "}} {"}\n'
    assert render_template(text, {"a": "b"}) == text


def test_input_names() -> None:
    names = parse_template(ENV_TEMPLATE + "{{ .Other | js }}").input_names
    assert names == frozenset({"Prompt", "Seed", "Other"})


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "construct", "line"),
    [
        ("{\n  {{range .Items}}x{{end}}\n}", "range", 2),
        ("{{with .X}}x{{end}}", "with", 1),
        ('{{define "x"}}{{end}}', "define", 1),
        ('a\nb\n{{template "x"}}', "template", 3),
        ("\n{{ .X | printf }}", "|", 2),
        ('{{ printf "%s" .X }}', "printf", 1),
        ("{{ index .X 1 }}", "index", 1),
        ("{{ frobnicate .X }}", "frobnicate", 1),
        ("x\n\n\n{{ .X", "{{ .X", 4),
        ("{{/* unclosed", "/*", 1),
        ("{{if .X}}\n\n", "if", 1),
        ("ok\n{{end}}", "end", 2),
        ("{{else}}", "else", 1),
        ("{{if .A}}{{else}}{{else}}{{end}}", "else", 1),
        ("{{if}}{{end}}", "if", 1),
        ("{{if .A .B}}{{end}}", "if", 1),
        ("{{if not .A}}{{end}}", "if", 1),
        ("{{.A.B}}", ".A.B", 1),
        ("{{ . }}", ".", 1),
        ("{{ $x := .A }}", "$x", 1),
        ("{{ (.A) }}", "(", 1),
        ('{{ "lit" }}', "lit", 1),
        ("{{ 42 }}", "42", 1),
        ("{{ true }}", "true", 1),
        ("{{}}", "{{}}", 1),
        ("{{ .A .B }}", ".B", 1),
        ('{{ "unterminated }}', '"unterminated }}', 1),
        ("{{ .A ! }}", "!", 1),
        ("{{ break }}", "break", 1),
    ],
)
def test_unsupported_or_malformed_constructs_name_construct_and_line(
    template: str, construct: str, line: int
) -> None:
    with pytest.raises(TemplateError) as info:
        render_template(template, {"A": "1", "X": "1"})
    error = info.value
    assert error.construct == construct
    assert error.line == line
    message = str(error)
    assert f"line {line}" in message
    assert construct in message


def test_line_numbers_count_lines_inside_comments_and_text() -> None:
    template = "{\n{{/* one\ntwo\nthree */}}\n{{ if .A }}\n{{ with .B }}{{ end }}\n{{ end }}"
    with pytest.raises(TemplateError) as info:
        parse_template(template)
    assert (info.value.construct, info.value.line) == ("with", 6)


def test_template_error_is_a_lilypad_error() -> None:
    with pytest.raises(ModuleError):
        parse_template("{{range .X}}{{end}}")
    assert issubclass(TemplateError, LilypadError)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("{}.-/* \n\"`|$()ifelsendAXsubt%")), max_size=40))
def test_arbitrary_input_renders_or_raises_template_error(template: str) -> None:
    # Never a Python traceback: either output or a TemplateError.
    try:
        out = render_template(template, {"A": "1", "X": "x"})
    except TemplateError as error:
        assert error.line >= 1
    else:
        assert isinstance(out, str)
