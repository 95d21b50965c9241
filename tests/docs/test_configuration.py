"""docs/configuration.md lists every environment variable lilypad reads, and only
those: its Settings table is checked against :class:`lilypad.settings.LilypadSettings`,
its Command options table against the options of every ``lilypad`` command."""

from __future__ import annotations

import re
from pathlib import Path

import click

from lilypad.cli import main
from lilypad.settings import environment_variables

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"


def section(title: str) -> str:
    text = DOC.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/configuration.md has no section {title!r}"
    return match.group(1)


def rows(title: str) -> list[list[str]]:
    """The body rows of the section's table, as cells."""
    found = []
    for line in section(title).splitlines():
        if line.startswith("| ") and not line.startswith(("| Variable", "| ---")):
            found.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return found


def names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def command_envvars() -> dict[str, dict[str, set[str]]]:
    """variable -> option -> the commands (paths under ``lilypad``) whose option reads it."""
    found: dict[str, dict[str, set[str]]] = {}
    seen: set[int] = set()

    def walk(command: click.Command, path: list[str]) -> None:
        if id(command) in seen:  # `lilypad bridge` is `lilypad jobcreator` again
            return
        seen.add(id(command))
        for param in command.params:
            if isinstance(param, click.Option) and param.envvar:
                option = "/".join([param.opts[-1] if not param.secondary_opts else param.opts[0],
                                   *param.secondary_opts])
                for variable in [param.envvar] if isinstance(param.envvar, str) else param.envvar:
                    found.setdefault(variable, {}).setdefault(option, set()).add(" ".join(path))
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])

    walk(main, [])
    return found


def test_the_settings_table_is_the_settings_class():
    listed = [tuple(names(row[0])) for row in rows("Settings")]
    actual = set(environment_variables().values())
    assert not actual - set(listed), f"settings missing from docs/configuration.md: {sorted(actual - set(listed))}"
    assert not set(listed) - actual, f"docs/configuration.md lists settings that do not exist: " \
                                     f"{sorted(set(listed) - actual)}"
    assert len(listed) == len(actual), "a setting is listed twice"


def test_the_options_table_is_every_command_option_with_a_variable():
    documented: dict[str, dict[str, set[str]]] = {}
    for row in rows("Command options"):
        (variable,), (option,), commands = names(row[0]), names(row[1]), set(names(row[2]))
        documented.setdefault(variable, {})[option] = commands
    assert documented == command_envvars()


def test_every_variable_named_in_the_package_is_documented():
    text = DOC.read_text()
    constants = set()
    literals = set()
    for path in (ROOT / "lilypad").rglob("*.py"):
        source = path.read_text()
        constants.update(re.findall(r"^([A-Z][A-Z0-9_]*)\s*[:=]", source, re.MULTILINE))
        literals.update(re.findall(r"""["']((?:LILYPAD|APE|WEB3|DOCKER)_[A-Z0-9_]*[A-Z0-9]|OFFER_MODULES)["']""",
                                   source))
    missing = sorted(name for name in literals - constants if f"`{name}`" not in text)
    assert not missing, f"read in lilypad/ but not in docs/configuration.md: {missing}"
