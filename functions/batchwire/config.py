"""Settings read once from environment variables, with errors that name the variable."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, TypeVar

import msgspec

from batchwire.errors import REQUIRED, ConfigurationError, field_path, validation_problem

SettingsT = TypeVar("SettingsT", bound="EnvSettings")

#: Seconds a rules document read from SSM Parameter Store is used before it is read again
#: (0: read at every invocation).
RulesCacheSeconds = Annotated[int, msgspec.Meta(ge=0, le=3600)]

# A full parameter name: /segment/segment..., the characters SSM allows in names
_PARAMETER_NAME = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")
_PARAMETER_NAME_MAX = 1011


class EnvSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Base of each function's settings.

    A field names its environment variable with ``msgspec.field(name="VARIABLE")``. Values
    are converted from text (``"300"`` to an int); variables listed in ``json_variables``
    hold JSON, those in ``list_variables`` comma-separated lists.
    """

    json_variables: ClassVar[frozenset[str]] = frozenset()
    list_variables: ClassVar[frozenset[str]] = frozenset()


class IdempotentSettings(EnvSettings, frozen=True, kw_only=True):
    """Settings of a function that records its side effects in the idempotency table."""

    idempotency_table: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(
        name="IDEMPOTENCY_TABLE"
    )
    idempotency_ttl_seconds: Annotated[int, msgspec.Meta(ge=3600)] = msgspec.field(
        name="IDEMPOTENCY_TTL_SECONDS", default=172800
    )


def load_settings(model: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
    """Parse ``environ`` (default: the process environment) into ``model``.

    Raises ConfigurationError naming the variable that is missing or wrong.
    """
    source = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(model):
        variable = field.encode_name
        # an empty variable is an unset one: its default applies
        if source.get(variable, "").strip():
            values[variable] = _decode(model, variable, source[variable])
    try:
        return msgspec.convert(values, model, strict=False)
    except msgspec.ValidationError as error:
        parts, detail = validation_problem(error)
        if not parts:  # a check of the settings as a whole names its variables itself
            problem = detail
        elif detail == REQUIRED:
            problem = f"environment variable {parts[0]} is not set"
        else:
            inner = field_path(parts[1:])
            detail = f"{inner}: {detail}" if inner else detail
            problem = f"environment variable {parts[0]}={source[parts[0]]!r}: {detail}"
        raise ConfigurationError(f"{model.__name__} cannot start: {problem}") from None


def check_parameter_name(variable: str, name: str | None) -> None:
    """Refuse ``name``, the value of ``variable``, unless it is a full SSM parameter name.

    For a settings model's ``__post_init__``: the ValueError's message is what the person
    starting the function reads.
    """
    if name is not None and (not _PARAMETER_NAME.match(name) or len(name) > _PARAMETER_NAME_MAX):
        raise ValueError(
            f"environment variable {variable}={name!r}: must be the full name of an SSM "
            "parameter, starting with / (for example /batchwire/chain-rules); letters, "
            f"digits and _ . - between the slashes, at most {_PARAMETER_NAME_MAX} characters"
        )


def comma_list(text: str) -> list[str]:
    """The items of a comma-separated list, blanks around them and empty items dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def _decode(model: type[EnvSettings], variable: str, text: str) -> Any:
    if variable in model.list_variables:
        return comma_list(text)
    if variable in model.json_variables:
        try:
            return json.loads(text)
        except ValueError as error:
            raise ConfigurationError(
                f"{model.__name__} cannot start: environment variable {variable} "
                f"is not valid JSON: {error}"
            ) from None
    return text
