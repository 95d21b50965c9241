"""The docs say what the code does: the template reference renders, every
`lilypad` command and option the guides use exists, every linked file exists."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import click
import pytest

from lilypad.cli import main
from lilypad.modules.spec import check_runnable, parse_spec
from lilypad.modules.template import parse_template, render_template

ROOT = Path(__file__).resolve().parents[2]
GUIDES = ["guide-cli.md", "guide-resource-provider.md", "guide-services.md", "modules.md"]


def reference_template() -> str:
    text = (ROOT / "docs" / "modules.md").read_text()
    return _blocks(text.split("### Template reference", 1)[1], ("gotemplate",))[0]


@pytest.mark.parametrize("inputs", [
    {},
    {"Name": 'Ada "the" <first>', "Count": "3", "Prompt": "it's \"fine\"\n"},
    {"Team": "blue", "Prompt": ""},
    {"Name": "x", "Team": "y", "Count": "0", "Prompt": "}}{{"},
])
def test_template_reference_renders_a_valid_spec(inputs):
    rendered = render_template(reference_template(), inputs)
    check_runnable(parse_spec(rendered))  # raises on an invalid or unrunnable spec
    env = json.loads(rendered)["job"]["Spec"]["Docker"]["EnvironmentVariables"]
    assert any(e.startswith("GREETING=Hello, ") for e in env) and "PERCENT=100%" in env
    assert f"INPUTS={''.join(key + ' ' for key in sorted(inputs))}" in env


def test_template_reference_shows_the_constructs_modules_use():
    text = reference_template()
    for construct in ("{{/*", "{{- /*", "-}}", "{{ if .Name }}", "{{- else if .Team }}", "{{- else }}", "{{- end }}",
                      '{{ define "greeting"', '{{ template "greeting" . }}', '{{ block "image" . }}',
                      "{{- with .Count }}", "{{ range $key, $value := . }}", "{{ $who := or", "$who",
                      "(not .Team)", '{{ subst "%s" . }}', "%%", "{{ .Prompt | js }}", "{{ js .Prompt }}",
                      '{{ or .Name "\\"nobody\\"" }}'):
        assert construct in text, construct
    parse_template(text)  # Go's parser accepts it


def _blocks(text: str, langs: tuple[str, ...]) -> list[str]:
    """The fenced code blocks of ``text`` whose language is one of ``langs``."""
    blocks, current, lang = [], None, ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if current is None:
                current, lang = [], line.lstrip()[3:].strip()
            else:
                if lang in langs:
                    blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _commands(text: str):
    """(subcommand path, options) of every `lilypad ...` command line in shell code blocks."""
    for block in _blocks(text, ("bash", "sh", "")):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            match = re.search(r"(?:^|[\s/])lilypad (\w[\w-]*)((?: [^|;&#']*)?)", line)
            if match:
                words = shlex.split(match.group(2).replace("<", "").replace(">", ""), comments=True)
                yield match.group(1), words


@pytest.mark.parametrize("guide", GUIDES)
def test_guides_use_real_commands_and_options(guide):
    text = (ROOT / "docs" / guide).read_text()
    seen = 0
    for name, words in _commands(text):
        assert name in main.commands, f"{guide}: `lilypad {name}` is not a command"
        command = main.commands[name]
        if isinstance(command, click.Group):
            assert words and words[0] in command.commands, f"{guide}: lilypad {name} {words[:1]}"
            command, words = command.commands[words[0]], words[1:]
        options = {o for p in command.params if isinstance(p, click.Option) for o in p.opts + p.secondary_opts}
        for word in words:
            if word.startswith("-") and word not in ("-h", "--help"):
                assert word.split("=")[0] in options, f"{guide}: lilypad {name} has no option {word}"
        seen += 1
    assert seen, f"{guide} shows no lilypad command"


def test_readme_and_guides_link_only_existing_files():
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        prose = re.sub(r"^\s*```.*?^\s*```", "", doc.read_text(), flags=re.S | re.M)  # links are not in code
        prose = re.sub(r"`[^`\n]*`", "", prose)
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose):
            if "://" in target:
                continue
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
    readme = (ROOT / "README.md").read_text()
    for guide in GUIDES:
        assert f"(docs/{guide})" in readme, f"README's Guides list misses {guide}"


def test_verification_examples_are_valid_spec_blocks():
    from lilypad.verification.spec import VerificationSpec

    section = (ROOT / "docs" / "modules.md").read_text().split("## Verification:", 1)[1].split("\n## ", 1)[0]
    blocks = [json.loads("{" + block + "}")["verification"] for block in _blocks(section, ("json",))]
    assert len(blocks) == 2
    specs = [VerificationSpec.model_validate(block) for block in blocks]  # raises on an invalid block
    for name, spec in zip(("jitter", "verified-sort"), specs, strict=True):  # the modules' own blocks
        template = (ROOT / "modules" / name / "lilypad_module.json.tmpl").read_text()
        assert parse_spec(render_template(template, {})).verification == spec, name
