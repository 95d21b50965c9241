"""A hand-written collection of representative module templates: every construct
of Go's ``text/template`` and every built-in function, as module authors use
them (and misuse them). ``test_template_compat.py`` renders each with lilypad and
with plain Go and expects the same bytes, or the same error line, except where a
case names one of the three documented deliberate differences; then both
expected outputs are written out here."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BUILTINS", "CASES", "KEYWORDS", "Case"]

#: Every built-in function of text/template, plus the original's subst.
BUILTINS = ("and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js", "urlquery",
            "eq", "ne", "lt", "le", "gt", "ge", "call", "subst")
#: Every action keyword.
KEYWORDS = ("if", "else", "end", "range", "break", "continue", "with", "define", "template", "block")

# The difference names (docs/modules.md, "Deliberate differences").
SUBST_ESCAPES = "subst escapes its values"
MISSING_IS_EMPTY = "a missing input is empty"
JS_QUOTE = "js writes ' as \\u0027"


@dataclass(frozen=True)
class Case:
    """``template`` rendered with ``inputs``. ``difference`` names the deliberate
    difference that applies (then ``lilypad`` and ``original`` are the two
    outputs); ``error_line`` is where both must fail (Go's line)."""

    name: str
    template: str
    inputs: dict[str, str] = field(default_factory=dict)
    difference: str = ""
    lilypad: str | None = None
    original: str | None = None
    error_line: int | None = None


COWSAY = """{
  "machine": {"gpu": 0, "cpu": 1000, "ram": 100},
  "job": {"APIVersion": "V1beta1", "Spec": {
    "Docker": {"Entrypoint": ["cowsay", {{.Message}}], "Image": "grycap/cowsay:latest"},
    "Engine": "Docker", "Network": {"Type": "None"}, "Resources": {"GPU": ""}, "Timeout": 1800}}
}
"""

SDXL = """{
  "machine": {"gpu": 1, "cpu": 8000, "ram": 16000},
  "job": {
    "APIVersion": "V1beta1",
    "Spec": {
      "Deal": {"Concurrency": 1},
      "Docker": {},
      "EngineSpec": {
        "Params": {
          "Entrypoint": null,
          "EnvironmentVariables": [
            {{- /* optional inputs */ -}}
            {{ if .Prompt }}"{{ subst "PROMPT=%s" .Prompt }}"{{ else }}"PROMPT=question mark floating in space"{{ end }},
            {{ if .Seed }}"{{ subst "RANDOM_SEED=%s" .Seed }}",{{ end }}
            "OUTPUT_DIR=/outputs/",
            "HF_HUB_OFFLINE=1"
          ],
          "Image": "zorlin/sdxl:v1.0-refiner-lilypad4",
          "WorkingDirectory": ""
        },
        "Type": "docker"
      },
      "Network": {"Type": "None"},
      "Outputs": [{"Name": "outputs", "Path": "/outputs"}],
      "Resources": {"GPU": "1", "CPU": "8", "Memory": "16Gb"},
      "Timeout": 1800
    }
  }
}
"""

# Shaped like lilypad-kokoro-audio-module: js as a function and in a pipeline.
KOKORO = """{"job": {"Spec": {"Docker": {"Image": "busybox",
  "EnvironmentVariables": ["INPUT_TEXT={{ .prompt | js }}", "VOICE={{ js .voice }}"]}}}}"""

# EnvironmentVariables entries that are not KEY=VALUE (9 public templates).
PROMPT_ENV = """{"job": {"Spec": {"Docker": {"Image": "busybox", "EnvironmentVariables": [{{ .PromptEnv }}]}}}}"""

CASES: list[Case] = [
    # --- values, JSON encoding, text -------------------------------------------------
    Case("cowsay", COWSAY, {"Message": 'moo "quoted" <b> & \u2028 é ✓'}),
    Case("cowsay-empty-value", COWSAY, {"Message": ""}),
    Case("text-only", '{"a": [1, 2], "b": "}} {"}\n'),
    Case("whole-data-map", "{{ . }}|{{ $ }}", {"A": "x", "B": "<y>"}),
    Case("env-entry-without-equals", PROMPT_ENV, {"PromptEnv": "hello"}),
    # --- if / else if / else, trim markers, comments ------------------------------------
    Case("if-else-set", '{{if .Message}}{{.Message}}{{else}}"default"{{end}}', {"Message": "hi"}),
    Case("if-empty-value-is-true", "{{if .Seed}}set{{else}}unset{{end}}", {"Seed": ""}),
    Case("else-if-chain", "{{if .A}}a{{else if .B}}b{{else if .C}}c{{else}}none{{end}}", {"C": "1"}),
    Case("trim-markers", "[\n  {{- if .X -}}\n  x\n  {{- else -}}\n  y\n  {{- end -}}\n]\n  {{- .X }} , {{ .X -}} ;",
         {"X": "1"}),
    Case("comments", 'a{{/* one */}}b {{- /* two\nlines */ -}} c {{/* {{.X}} "}}" */}}d', {"X": "1"}),
    Case("sdxl-all-inputs", SDXL, {"Prompt": "an astronaut riding a horse", "Seed": "42"}),
    Case("sdxl-defaults", SDXL),
    # --- pipelines, parentheses, functions ----------------------------------------------
    Case("printf-pipelines", '{{ .P | printf "%q" }} {{ printf "%s" .M }} {{ .M | printf "%s-%s" "x" }}',
         {"P": 'a"b', "M": "moo"}),
    Case("not-and-parentheses", '{{ if not .K }}no K{{ end }} "{{ subst "M=%s" (printf "%s" .M) }}"', {"M": "hi"}),
    Case("or-default", '"Entrypoint":["echo","{{or .Message "moo"}}"]'),
    Case("and-or-values", "{{ and .A .B }} {{ or .Missing .B }} {{ and .A (not .B) }} {{ or 0 \"\" .A }}",
         {"A": "a", "B": "b"}),
    Case("len-index-slice", '{{ len .A }} {{ index . "A" }} {{ index .A 1 }} {{ slice .A 1 3 }} {{ slice .A 2 }}',
         {"A": "hello"}),
    Case("print-family", '{{ print .A 1 true 2.5 }}|{{ println .A "x" }}|{{ printf "%v %d %5.2f %x %c" .A 42 3.14159 255 \'a\' }}',
         {"A": "v"}),
    Case("escapers", "{{ html .A }} {{ urlquery .A }} {{ .A | html | urlquery }} {{ js .B }}",
         {"A": "<a href='x'>&</a> ?=", "B": "<tag> & \"q\""}),
    Case("comparisons",
         '{{ eq .Mode "\\"fast\\"" }} {{ eq .Mode "\\"slow\\"" "\\"fast\\"" }} {{ ne .Mode "x" }} '
         '{{ lt (len .Mode) 10 }} {{ le 1 1 }} {{ gt 2.5 1.5 }} {{ ge "b" "a" }} {{ lt 1 2 }}',
         {"Mode": "fast"}),
    Case("constants", "{{ 3 }} {{ -1 }} {{ 1.5 }} {{ 0x10 }} {{ 1e3 }} {{ 'a' }} {{ true }} {{ false }} {{ \"s\" }} {{ `raw` }}"),
    # --- variables, with, range, break, continue ----------------------------------------
    Case("variables", '{{ $m := .Message }}{{ $m }} {{ $m = "x" }}{{ $m }} {{ with .Message }}{{ $.Other }}{{ end }}',
         {"Message": "hi", "Other": "o"}),
    Case("with-else", '{{ with .Seed }}"SEED={{ subst "%s" . }}"{{ else }}"SEED=42"{{ end }}', {"Seed": "7"}),
    Case("with-else-unset", '{{ with .Seed }}"SEED={{ subst "%s" . }}"{{ else }}"SEED=42"{{ end }}'),
    Case("range-over-inputs", "{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ else }}none{{ end }}",
         {"B": "2", "A": "1", "C": "3"}),
    Case("range-else-empty", "{{ range . }}{{ . }}{{ else }}no inputs{{ end }}"),
    Case("range-break-continue",
         '{{ range $k, $v := . }}{{ if eq $k "B" }}{{ continue }}{{ end }}{{ if eq $k "D" }}{{ break }}{{ end }}'
         "{{ $k }}{{ end }}",
         {"A": "1", "B": "2", "C": "3", "D": "4", "E": "5"}),
    Case("range-element-dot", "{{ range . }}[{{ . }}]{{ end }}", {"X": "a", "Y": "b"}),
    # --- define, template, block ---------------------------------------------------------
    Case("define-template",
         '{{ define "env" }}"{{ subst "PROMPT=%s" .Prompt }}"{{ end }}[{{ template "env" . }}, {{ template "env" . }}]',
         {"Prompt": "cat"}),
    Case("block-default", '{"Image": {{ block "image" . }}"busybox"{{ end }}}'),
    Case("block-overridden", '{{ define "image" }}"alpine"{{ end }}{"Image": {{ block "image" . }}"busybox"{{ end }}}'),
    Case("template-without-data", '{{ define "t" }}[{{ . }}]{{ end }}{{ template "t" }}'),
    # --- subst ------------------------------------------------------------------------------
    Case("subst-formats", '"{{ subst "%s-%v-%d-100%%" .A .B .C }}"', {"A": "x", "B": "y", "C": "7"}),
    Case("subst-raw-format", '"{{ subst `P=%s` .A }}"', {"A": "z"}),
    Case("subst-quoted-format", '[{{ subst "\\"M=%s\\"" .Message }}]', {"Message": "moo"}),
    # --- the three deliberate differences ------------------------------------------------
    Case("subst-escapes-a-quote", '["{{ subst "MESSAGE=%s" .Message }}"]', {"Message": 'say "hi", }'},
         difference=SUBST_ESCAPES, lilypad='["MESSAGE=say \\"hi\\", }"]', original='["MESSAGE=say "hi", }"]'),
    Case("subst-injection-stays-a-string", '["{{ subst "M=%s" .M }}"]', {"M": 'x", "--privileged'},
         difference=SUBST_ESCAPES, lilypad='["M=x\\", \\"--privileged"]', original='["M=x", "--privileged"]'),
    Case("missing-input", "[{{ .Missing }}]", difference=MISSING_IS_EMPTY, lilypad="[]", original="[<no value>]"),
    Case("missing-input-in-printf", '{{ printf "%v" .Missing }}', difference=MISSING_IS_EMPTY, lilypad="",
         original="<nil>"),
    Case("js-quote", KOKORO, {"prompt": "it's", "voice": "af"}, difference=JS_QUOTE,
         lilypad='{"job": {"Spec": {"Docker": {"Image": "busybox",\n'
                 '  "EnvironmentVariables": ["INPUT_TEXT=\\"it\\u0027s\\"", "VOICE=\\"af\\""]}}}}',
         original='{"job": {"Spec": {"Docker": {"Image": "busybox",\n'
                  '  "EnvironmentVariables": ["INPUT_TEXT=\\"it\\\'s\\"", "VOICE=\\"af\\""]}}}}'),
    Case("js-without-quote", KOKORO, {"prompt": "<b>\"x\"</b> = y", "voice": "af"}),
    # --- errors: both fail, at the same line -----------------------------------------------
    Case("nested-field", "{\n  {{ .A.B }}\n}", {"A": "x"}, error_line=2),
    Case("call-a-string", "x\n{{ call .A }}", {"A": "x"}, error_line=2),
    Case("range-over-a-string", '{\n  "job": {{range .Items}}x{{end}}\n}', {"Items": "x"}, error_line=2),
    Case("unknown-function", "a\n\n{{ frobnicate .X }}", error_line=3),
    Case("unclosed-action", "x\n\n\n{{ .X", error_line=4),
    Case("unclosed-comment", "{{/* unclosed", error_line=1),
    Case("missing-end", "{{if .X}}\n\n", error_line=3),
    Case("stray-end", "ok\n{{end}}", error_line=2),
    Case("subst-of-a-literal", 'a\n{{ subst "%s" "lit" }}', error_line=2),
    Case("subst-of-a-missing-input", '{{ subst "X=%s" .Seed }}', error_line=1),
    Case("undefined-variable", "{{ $x }}", error_line=1),
    Case("nil-command", "\n{{ nil }}", error_line=2),
    Case("no-such-template", 'a\n{{ template "x" }}', error_line=2),
    Case("index-out-of-range", "{{ index .A 10 }}", {"A": "ab"}, error_line=1),
    Case("break-outside-range", "{{ break }}", error_line=1),
]
