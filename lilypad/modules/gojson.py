"""Pydantic models that decode JSON objects the way Go's ``encoding/json`` does.

Module specs are written for the original's Go decoder, so every model of a
spec (:mod:`lilypad.modules.spec`, :mod:`lilypad.verification.spec`) derives
from :class:`GoModel`: object keys match field names case-insensitively (the
last of several spellings wins), ``null`` means "absent" and unknown keys are
ignored. Models are frozen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["GoModel", "json_number"]


def json_number(value: Any) -> Any:
    """A ``BeforeValidator`` refusing booleans and strings where a JSON number belongs
    (pydantic's lax mode would take ``"5"`` and ``true``; Go's decoder does not)."""
    if isinstance(value, (bool, str)):
        raise ValueError(f"must be a JSON number, not {type(value).__name__}")
    return value


class GoModel(BaseModel):
    """Base model decoding JSON objects the way Go's encoding/json does."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _go_keys(cls, data: Any) -> Any:
        """Match keys case-insensitively (last one wins) and treat ``null`` as absent."""
        if not isinstance(data, Mapping):
            return data
        names = [field.alias or name for name, field in cls.model_fields.items()]
        folded = {name.lower(): name for name in names}
        out: dict[Any, Any] = {}
        for key, value in data.items():
            if value is None:
                continue
            if isinstance(key, str) and key not in names:
                key = folded.get(key.lower(), key)
            out[key] = value
        return out
