"""All of lilypad's settings in one place, read from ``LILYPAD_*`` environment variables.

Every CLI flag has an environment-variable twin (``--data-dir`` ↔ ``LILYPAD_DATA_DIR``),
as Lilypad operators expect. ``OFFER_MODULES`` keeps the name Lilypad's docs use.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LilypadSettings", "get_settings"]


class LilypadSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LILYPAD_", extra="ignore")

    data_dir: Path = Field(Path("/tmp/lilypad/data"), description="Root of lilypad's local state.")
    offer_modules: str = Field(
        "",
        validation_alias=AliasChoices("OFFER_MODULES", "LILYPAD_OFFER_MODULES"),
        description="Comma-separated allowlist of module references a provider runs (empty: any).",
    )
    max_job_seconds: int = Field(3600, ge=1, description="Hard cap on any job's run time.")
    max_output_bytes: int = Field(1 << 30, ge=1, description="Cap on a job's result size.")

    @property
    def module_cache_dir(self) -> Path:
        return self.data_dir / "modules"

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def downloads_dir(self) -> Path:
        return self.data_dir / "downloaded-files"


def get_settings(**overrides: object) -> LilypadSettings:
    return LilypadSettings(**overrides)  # type: ignore[arg-type]
