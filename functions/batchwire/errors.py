"""Errors that name what is wrong, so a person reading a failure record can fix it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec


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


_MESSAGE = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED_FIELD = re.compile(
    r"^Object (?P<kind>missing required|contains unknown) field `(?P<name>[^`]*)`$"
)
_PATH_PART = re.compile(r"\.(?P<key>[^.\[]+)|\[(?P<index>\d+|\.\.\.)\]")
_MISSING = object()


#: What a missing required field is reported as.
REQUIRED = "required, not given"


def describe_validation_error(
    error: msgspec.ValidationError, payload: Any = _MISSING, prefix: str = ""
) -> list[str]:
    """Render msgspec's error as ``["<field path>: <what is wrong>"]``, the path after
    ``prefix`` (``(request)`` for a problem of the whole document); see validation_problem."""
    parts, message = validation_problem(error, payload)
    return [f"{field_path(parts, prefix) or '(request)'}: {message}"]


def validation_problem(
    error: msgspec.ValidationError, payload: Any = _MISSING
) -> tuple[list[str], str]:
    """msgspec's error as (path parts to the wrong field, what is wrong).

    msgspec names the first problem it meets and where (`` - at `$.jobs[0].jobName` ``, parts
    ``["jobs", "0", "jobName"]``; none for the document as a whole). When ``payload`` is the
    validated input the wrong value is quoted from it.
    """
    parsed = _MESSAGE.match(str(error))
    message, path = (parsed["message"], parsed["path"] or "") if parsed else (str(error), "")
    parts = [m["key"] if m["key"] is not None else m["index"] for m in _PATH_PART.finditer(path)]
    if "..." in parts:
        parts = _name_map_key(payload, parts, message)
    named = _NAMED_FIELD.match(message)
    if named:
        parts.append(named["name"])
        message = (
            REQUIRED
            if named["kind"] == "missing required"
            else "unknown key; check the spelling against the documented fields"
        )
    else:
        message = message.replace("`", "")
        value = _value_at(payload, parts) if parts else _MISSING
        if value is not _MISSING:
            message += f" (got {_short_repr(value)})"
    return parts, message


def field_path(parts: Iterable[str], prefix: str = "") -> str:
    """Render path parts as ``a.b[0].c`` after ``prefix`` (digits and ``...`` become indexes)."""
    path = prefix
    for part in parts:
        if part.isdigit() or part == "...":
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return path


_GOT = re.compile(r", got `(?P<kind>[a-z]+)`$")
_JSON_KINDS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (float,),
    "bool": (bool,),
    "null": (type(None),),
    "object": (Mapping,),
    "array": (list, tuple),
}


def _name_map_key(payload: Any, parts: list[str], message: str) -> list[str]:
    # msgspec writes a key-to-value map's entry as [...]; a wrong type is enough to find it
    at = parts.index("...")
    mapping = _value_at(payload, parts[:at])
    got = _GOT.search(message)
    if not isinstance(mapping, Mapping) or got is None or got["kind"] not in _JSON_KINDS:
        return parts
    kinds = _JSON_KINDS[got["kind"]]
    for key, value in mapping.items():
        # bool is an int in Python, not in JSON
        if isinstance(value, kinds) and not (got["kind"] == "int" and isinstance(value, bool)):
            return [*parts[:at], str(key), *parts[at + 1 :]]
    return parts


def _value_at(payload: Any, parts: Sequence[str]) -> Any:
    value = payload
    for part in parts:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, Sequence) and not isinstance(value, str) and part.isdigit():
            index = int(part)
            if index >= len(value):
                return _MISSING
            value = value[index]
        else:
            return _MISSING
    return value


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    if isinstance(value, (int, float, bool)) and not isinstance(value, str):
        text = f"{text} ({type(value).__name__})"
    return text if len(text) <= limit else text[: limit - 1] + "…"
