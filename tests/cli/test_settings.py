"""lilypad's settings: every variable keeps its name, an empty one counts as unset, the
CLI builds one object per invocation (kept in the root context) and a bad value is a
one-line error naming the variable."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lilypad.cli import main
from lilypad.cli._common import cli_settings
from lilypad.settings import (
    DataLayout,
    LilypadSettings,
    environment_variables,
    get_settings,
)

VALUES = {
    "LILYPAD_DATA_DIR": ("data_dir", "/srv/lilypad", Path("/srv/lilypad")),
    "OFFER_MODULES": ("offer_modules", "cowsay:v0.0.1", "cowsay:v0.0.1"),
    "LILYPAD_OFFER_MODULES": ("offer_modules", "sdxl:v1", "sdxl:v1"),
    "LILYPAD_MAX_JOB_SECONDS": ("max_job_seconds", "60", 60),
    "LILYPAD_MAX_OUTPUT_BYTES": ("max_output_bytes", "1024", 1024),
    "LILYPAD_BUILTIN_MODULES_DIR": ("builtin_modules_dir", "/m", Path("/m")),
    "LILYPAD_DEPLOYMENTS_DIR": ("deployments_dir", "/d", Path("/d")),
    "LILYPAD_PROJECT_ROOT": ("project_root", "/p", Path("/p")),
    "LILYPAD_RPC_URLS": ("rpc_urls", "http://a:1,http://b:2", "http://a:1,http://b:2"),
    "WEB3_PRIVATE_KEY": ("private_key", "0x" + "11" * 32, "0x" + "11" * 32),
    "LILYPAD_LOG_FORMAT": ("log_format", "kv", "kv"),
    "LILYPAD_DEVNET_DIR": ("devnet_dir", "/n", Path("/n")),
    "LILYPAD_PROVIDER_FAULT": ("provider_fault", "wrong-result", "wrong-result"),
    "LILYPAD_BRIDGE_FAULT": ("bridge_fault", "after-seen", "after-seen"),
    "LILYPAD_MEDIATOR_FAULT": ("mediator_fault", "collude", "collude"),
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for names in environment_variables().values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_every_variable_keeps_its_name(clean_env: pytest.MonkeyPatch) -> None:
    assert set(VALUES) == {name for names in environment_variables().values() for name in names}
    for variable, (attribute, text, value) in VALUES.items():
        with clean_env.context() as env:
            env.setenv(variable, text)
            assert getattr(get_settings(), attribute) == value, variable
    clean_env.setenv("OFFER_MODULES", "cowsay")
    clean_env.setenv("LILYPAD_OFFER_MODULES", "sdxl:v1")
    assert get_settings().offer_modules == "cowsay"  # Lilypad's own name first


def test_defaults_and_empty_values(clean_env: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    assert settings.data_dir == Path("/tmp/lilypad/data") and settings.offer_modules == ""
    assert settings.devnet_dir == Path("~/.lilypad/devnet").expanduser()
    assert settings.deployments_dir is None and settings.private_key is None and settings.rpc_url_list == []
    for variable in ("LILYPAD_DEPLOYMENTS_DIR", "LILYPAD_PROJECT_ROOT", "LILYPAD_BUILTIN_MODULES_DIR",
                     "WEB3_PRIVATE_KEY", "LILYPAD_DEVNET_DIR"):
        clean_env.setenv(variable, "")
    assert get_settings() == settings
    clean_env.setenv("LILYPAD_RPC_URLS", "http://a:1, http://b:2  http://c:3")
    assert get_settings().rpc_url_list == ["http://a:1", "http://b:2", "http://c:3"]


def test_the_key_is_never_shown(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WEB3_PRIVATE_KEY", "0x" + "ab" * 32)
    settings = get_settings()
    assert "abab" not in repr(settings) and "abab" not in str(settings)
    assert settings.private_key == "0x" + "ab" * 32


def test_layout_under_a_data_dir() -> None:
    layout = DataLayout(Path("/srv/x"))
    assert (layout.module_cache_dir, layout.runs_dir, layout.results_dir, layout.downloads_dir) == (
        Path("/srv/x/modules"), Path("/srv/x/runs"), Path("/srv/x/results"), Path("/srv/x/downloaded-files"))
    assert get_settings(data_dir=Path("/srv/x")).layout == layout


def test_one_settings_object_per_invocation_in_the_root_context(clean_env: pytest.MonkeyPatch) -> None:
    root = click.Context(main)
    child = click.Context(main.commands["run"], parent=root)
    assert root.obj is None  # nothing built before a command asks
    settings = cli_settings(child)
    assert root.obj is settings and cli_settings(root) is settings and cli_settings(child) is settings


def test_commands_use_the_settings_they_are_given(tmp_path: Path) -> None:
    given = LilypadSettings(data_dir=tmp_path)
    out = CliRunner(mix_stderr=False).invoke(main, ["jobcreator", "status"], obj=given, catch_exceptions=False)
    assert out.exit_code == 1
    assert out.stderr == f"Error: no bridge state at {tmp_path}/jobcreator/bridge.db (pass the bridge's --data-dir)\n"


def test_a_bad_value_is_one_line_naming_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    runner = CliRunner(mix_stderr=False)
    env = {"LILYPAD_MAX_JOB_SECONDS": "soon", "LILYPAD_MAX_OUTPUT_BYTES": "0"}
    out = runner.invoke(main, ["addresses"], env=env, catch_exceptions=False)
    assert out.exit_code == 1 and out.stdout == ""
    assert out.stderr == ("Error: invalid settings: LILYPAD_MAX_JOB_SECONDS: Input should be a valid integer, "
                          "unable to parse string as an integer; LILYPAD_MAX_OUTPUT_BYTES: Input should be "
                          "greater than or equal to 1\n")
    # a command that needs no settings does not read them
    assert runner.invoke(main, ["version"], env=env).stdout.startswith("lilypad ")
