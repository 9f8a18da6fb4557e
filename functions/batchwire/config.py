"""Settings read once from environment variables, with errors that name the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batchwire.errors import ConfigurationError

SettingsT = TypeVar("SettingsT", bound="EnvSettings")


class EnvSettings(BaseModel):
    """Base of each function's settings: fields carry the environment variable name as alias."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class IdempotentSettings(EnvSettings):
    """Settings of a function that records its side effects in the idempotency table."""

    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)
    idempotency_ttl_seconds: int = Field(alias="IDEMPOTENCY_TTL_SECONDS", default=172800, ge=3600)


def load_settings(model: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
    """Parse ``environ`` (default: the process environment) into ``model``.

    Raises ConfigurationError naming each variable that is missing or wrong.
    """
    source = dict(os.environ if environ is None else environ)
    try:
        return model.model_validate(source)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            variable = ".".join(str(part) for part in item["loc"])
            if item["type"] == "missing":
                problems.append(f"environment variable {variable} is not set")
            else:
                problems.append(
                    f"environment variable {variable}={item.get('input')!r}: {item['msg']}"
                )
        raise ConfigurationError(f"{model.__name__} cannot start: " + "; ".join(problems)) from None
