"""Every setting lilypad reads from the environment, in one class.

:class:`LilypadSettings` declares each variable once: its name (``LILYPAD_*``,
or the name Lilypad's operators already use: ``OFFER_MODULES``,
``WEB3_PRIVATE_KEY``), type, default and meaning. The ``lilypad`` command builds
one per invocation (the first time a command needs it, kept in the root click
context's ``obj``: ``--help`` never pays for pydantic) and hands each part what
it needs. Library code used without the CLI (tests, ``ape run`` scripts, the
devnet supervisor) takes its default from a fresh :func:`get_settings`.

Command options have environment twins too (``--solver-url`` and
``LILYPAD_SOLVER_URL``), read by click; docs/configuration.md lists both kinds
and tests/docs/test_configuration.py checks it against this class and the commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DataLayout", "LilypadSettings", "environment_variables", "get_settings"]

_PREFIX = "LILYPAD_"


@dataclass(frozen=True)
class DataLayout:
    """Where things live under a data directory (a service's ``--data-dir``, or ``LILYPAD_DATA_DIR``)."""

    root: Path

    @property
    def module_cache_dir(self) -> Path:
        return self.root / "modules"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def downloads_dir(self) -> Path:
        return self.root / "downloaded-files"


class LilypadSettings(BaseSettings):
    """lilypad's settings; an empty variable counts as unset where a setting is optional."""

    model_config = SettingsConfigDict(env_prefix=_PREFIX, extra="ignore", populate_by_name=True)

    # -- local state and jobs ------------------------------------------------------------
    data_dir: Path = Field(Path("/tmp/lilypad/data"), description="Root of lilypad's local state.")
    offer_modules: str = Field(
        "",
        validation_alias=AliasChoices("OFFER_MODULES", "LILYPAD_OFFER_MODULES"),
        description="Comma-separated allowlist of module references a provider runs (empty: any).",
    )
    max_job_seconds: int = Field(3600, ge=1, description="Hard cap on any job's run time.")
    max_output_bytes: int = Field(1 << 30, ge=1, description="Cap on a job's result size.")
    builtin_modules_dir: Path | None = Field(
        None, description="Where built-in modules (cowsay, ...) come from (default: modules/ of the checkout).")
    # -- the chain -----------------------------------------------------------------------
    deployments_dir: Path | None = Field(
        None, description="Directory of deployments files, <ecosystem>-<network>.json (default: deployments/ "
                          "of the checkout).")
    project_root: Path | None = Field(
        None, description="The lilypad checkout whose ape project has the contract types (default: the one this "
                          "package runs from).")
    rpc_urls: str = Field(
        "", description="RPC endpoints tried in order (fail-over), comma- or space-separated: chain connections "
                        "and lilypad doctor.")
    web3_private_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WEB3_PRIVATE_KEY"),
        description="The account key (never logged): the commands' --web3-private-key, the account lilypad doctor "
                    "checks, and ape scripts' signer.")
    # -- logs, the devnet, test-only fault injection ---------------------------------------
    log_format: str = Field("json", description="State-change log lines: json, or kv (key=value).")
    devnet_dir: Path = Field(Path("~/.lilypad/devnet"), description="Where lilypad devnet keeps its network.")
    provider_fault: str = Field(
        "", description="Test-only: make lilypad resource-provider misbehave (wrong-result, die-mid-job).")
    bridge_fault: str = Field("", description="Test-only: make lilypad jobcreator die at a named point.")
    mediator_fault: str = Field(
        "", description="Test-only: make lilypad mediator misbehave (collude: vote accept without re-running; "
                        "no-reveal: commit but never reveal; silent: never vote).")

    @field_validator("builtin_modules_dir", "deployments_dir", "project_root", "web3_private_key", "devnet_dir",
                     mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        if value == "":
            raise PydanticUseDefault()
        return value

    @field_validator("devnet_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir)

    @property
    def module_cache_dir(self) -> Path:
        return self.layout.module_cache_dir

    @property
    def results_dir(self) -> Path:
        return self.layout.results_dir

    @property
    def runs_dir(self) -> Path:
        return self.layout.runs_dir

    @property
    def downloads_dir(self) -> Path:
        return self.layout.downloads_dir

    @property
    def rpc_url_list(self) -> list[str]:
        """:attr:`rpc_urls` split on commas and spaces, in order."""
        return [u for u in self.rpc_urls.replace(",", " ").split() if u]

    @property
    def private_key(self) -> str | None:
        """:attr:`web3_private_key` in the clear (``None`` when unset)."""
        return self.web3_private_key.get_secret_value() if self.web3_private_key is not None else None


def environment_variables() -> dict[str, tuple[str, ...]]:
    """Each setting's environment variables, first one read first."""
    names: dict[str, tuple[str, ...]] = {}
    for name, field in LilypadSettings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names[name] = tuple(str(choice) for choice in alias.choices)
        else:
            names[name] = (f"{_PREFIX}{name.upper()}",)
    return names


def get_settings(**overrides: Any) -> LilypadSettings:
    """The settings from the environment (``overrides`` win, by field name);
    :class:`~lilypad.exceptions.SettingsError` names each variable that is wrong."""
    from lilypad.exceptions import SettingsError

    try:
        return LilypadSettings(**overrides)
    except ValidationError as err:
        variables = environment_variables()
        problems = []
        for error in err.errors():
            where = str(error["loc"][0]) if error["loc"] else ""
            name = "/".join(variables.get(where, (where,)))
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError(problems) from None
