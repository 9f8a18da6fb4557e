"""Errors that name what is wrong, so a person reading a failure record can fix it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError


class BatchwireError(Exception):
    """Base class of every error batchwire raises on purpose."""


class ConfigurationError(BatchwireError):
    """An environment variable or configuration document is missing or wrong."""


class RequestError(BatchwireError):
    """The triggering event or the request it carries is invalid; no AWS call was made.

    ``problems`` holds one ``"<field path>: <what is wrong>"`` line per problem.
    """

    def __init__(self, summary: str, problems: Sequence[str] = ()) -> None:
        self.summary = summary
        self.problems = list(problems)
        detail = "; ".join(self.problems)
        super().__init__(f"{summary}: {detail}" if detail else summary)


def field_path(location: Iterable[int | str], prefix: str = "") -> str:
    """Render a pydantic error location as ``a.b[0].c`` (ints become indexes)."""
    path = prefix
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def describe_validation_error(error: ValidationError, prefix: str = "") -> list[str]:
    """One readable line per pydantic error, each starting with the field path."""
    lines = []
    for item in error.errors(include_url=False):
        location = [part for part in item["loc"] if not _is_union_tag(part)]
        path = field_path(location, prefix) or "(request)"
        message = item["msg"]
        if item["type"] not in ("missing", "extra_forbidden") and "input" in item:
            message += f" (got {_short_repr(item['input'])})"
        if item["type"] == "extra_forbidden":
            message = "unknown key; check the spelling against the documented fields"
        lines.append(f"{path}: {message}")
    return lines


def _is_union_tag(part: int | str) -> bool:
    # pydantic names the union member it tried ("function-after[...]", "str"): not a field
    return isinstance(part, str) and ("[" in part or part in {"str", "int"})


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    if isinstance(value, (int, float, bool)) and not isinstance(value, str):
        text = f"{text} ({type(value).__name__})"
    return text if len(text) <= limit else text[: limit - 1] + "…"
