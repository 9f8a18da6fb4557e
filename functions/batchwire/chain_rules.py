"""Chain rules: which finished-job message starts which jobs, validated once at cold start.

The document lives in the ``CHAIN_RULES`` environment variable as JSON::

    {"messageVariable": "DOWNLOAD_MESSAGE",
     "rules": [{"name": "feed-updated-download",
                "match": {"messageAttributes": {"event": "feed-updated"}},
                "fromMessage": {"parameters": {"feed": "feed"}},
                "submit": {"jobName": "download", "jobQueue": "feeds", "jobDefinition": "dl"}}]}

``submit`` is a job request in exactly the schedule submitter's format (one job at the top
level, or ``{"jobs": [...]}``) and is checked by the same validator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from batchwire.errors import ConfigurationError, RequestError, describe_validation_error
from batchwire.jobs import JobRequest, parse_job_request

DEFAULT_MESSAGE_VARIABLE = "DOWNLOAD_MESSAGE"

#: The chain position every chained job carries, as environment variables and as tags.
#: A job that publishes its own message copies the two variables into message attributes
#: of the same names; that is how the hop count comes back.
CHAIN_ID_VARIABLE = "BATCHWIRE_CHAIN_ID"
CHAIN_HOP_VARIABLE = "BATCHWIRE_CHAIN_HOP"
CHAIN_ID_TAG = "batchwire:chain-id"
CHAIN_HOP_TAG = "batchwire:chain-hop"
_BATCH_TAG_LIMIT = 50

NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


#: One glob (``nightly-*``) or a list of globs, any of which may match.
Patterns = Annotated[list[NonEmptyStr], BeforeValidator(_as_list), Field(min_length=1)]


def _check_variable_name(name: str) -> str:
    if not name.replace("_", "a").isalnum() or not name.isascii() or name[0].isdigit():
        raise ValueError(f"{name!r} is not an environment variable name (letters, digits, _)")
    if name.upper().startswith("AWS_BATCH"):
        raise ValueError(f"{name!r}: names starting with AWS_BATCH are reserved by AWS Batch")
    if name in (CHAIN_ID_VARIABLE, CHAIN_HOP_VARIABLE):
        raise ValueError(f"{name!r} is set by the chainer itself (loop guard)")
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleMatch(_Strict):
    """Conditions on the incoming record; all given conditions must hold."""

    topic: Patterns | None = None
    subject: Patterns | None = None
    messageAttributes: dict[NonEmptyStr, Patterns] | None = None
    messageFields: dict[NonEmptyStr, Patterns] | None = None
    jobName: Patterns | None = None
    jobQueue: Patterns | None = None

    @model_validator(mode="after")
    def _at_least_one_condition(self) -> RuleMatch:
        if not any(getattr(self, name) for name in type(self).model_fields):
            raise ValueError(
                "give at least one condition: topic, subject, messageAttributes, "
                "messageFields, jobName or jobQueue"
            )
        return self


class MessageMapping(_Strict):
    """Fields of a JSON message (dotted paths) copied into parameters or environment."""

    parameters: dict[NonEmptyStr, NonEmptyStr] | None = None
    environment: dict[NonEmptyStr, NonEmptyStr] | None = None

    @field_validator("environment")
    @classmethod
    def _variable_names(cls, environment: dict[str, str] | None) -> dict[str, str] | None:
        for name in environment or {}:
            _check_variable_name(name)
        return environment


class _RuleModel(_Strict):
    name: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    match: RuleMatch
    messageVariable: NonEmptyStr | None = None
    fromMessage: MessageMapping | None = None
    submit: dict[str, Any]

    @field_validator("messageVariable")
    @classmethod
    def _message_variable(cls, name: str | None) -> str | None:
        return None if name is None else _check_variable_name(name)


class _DocumentModel(_Strict):
    messageVariable: NonEmptyStr = DEFAULT_MESSAGE_VARIABLE
    rules: Annotated[list[Any], Field(min_length=1)]

    @field_validator("messageVariable")
    @classmethod
    def _message_variable(cls, name: str) -> str:
        return _check_variable_name(name)


@dataclass(frozen=True)
class ChainRule:
    """A validated rule: when ``match`` holds, submit ``request`` with the message added."""

    name: str
    match: RuleMatch
    message_variable: str
    from_message: MessageMapping
    request: JobRequest


def parse_chain_rules(text: str, variable: str = "CHAIN_RULES") -> tuple[ChainRule, ...]:
    """Validate the rules document; ConfigurationError names each rule and field at fault."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"{variable} is not valid JSON: {error}") from None
    try:
        model = _DocumentModel.model_validate(document)
    except ValidationError as error:
        raise _config_error(variable, describe_validation_error(error)) from None

    problems: list[str] = []
    rules: list[ChainRule] = []
    seen: set[str] = set()
    for index, raw in enumerate(model.rules):
        label = _rule_label(index, raw)
        rule, rule_problems = _parse_rule(raw, label, model.messageVariable)
        problems.extend(rule_problems)
        if rule is not None:
            if rule.name in seen:
                problems.append(f"{label}.name: another rule already has this name")
            seen.add(rule.name)
            rules.append(rule)
    if problems:
        raise _config_error(variable, problems)
    return tuple(rules)


def _parse_rule(raw: Any, label: str, default_variable: str) -> tuple[ChainRule | None, list[str]]:
    try:
        model = _RuleModel.model_validate(raw)
    except ValidationError as error:
        return None, describe_validation_error(error, label)
    try:
        request = parse_job_request(model.submit)
    except RequestError as error:
        return None, [f"{label}.submit.{problem}" for problem in error.problems]
    rule = ChainRule(
        name=model.name,
        match=model.match,
        message_variable=model.messageVariable or default_variable,
        from_message=model.fromMessage or MessageMapping(),
        request=request,
    )
    return rule, _clashes(rule, label)


def _clashes(rule: ChainRule, label: str) -> list[str]:
    """Names the chainer adds must not already be set by the rule's own jobs."""
    problems = []
    if rule.message_variable in (rule.from_message.environment or {}):
        problems.append(
            f"{label}.fromMessage.environment.{rule.message_variable}: the message itself goes "
            "there (messageVariable); map the field to another name"
        )
    added_variables = [
        rule.message_variable,
        *(rule.from_message.environment or {}),
        CHAIN_ID_VARIABLE,
        CHAIN_HOP_VARIABLE,
    ]
    for index, job in enumerate(rule.request.jobs):
        path = f"{label}.submit." + ("" if rule.request.single else f"jobs[{index}].")
        overrides = job.containerOverrides
        written = (
            {variable.name for variable in (overrides.environment or [])} if overrides else set()
        )
        for name in added_variables:
            if name in written:
                problems.append(
                    f"{path}containerOverrides.environment: {name} is set by the chainer "
                    "(message, fromMessage or loop guard); remove it here"
                )
        for name in rule.from_message.parameters or {}:
            if name in (job.parameters or {}):
                problems.append(
                    f"{path}parameters.{name}: also mapped by fromMessage.parameters; keep one"
                )
        for tag in (CHAIN_ID_TAG, CHAIN_HOP_TAG):
            if tag in (job.tags or {}):
                problems.append(f"{path}tags.{tag}: set by the chainer (loop guard)")
        if len(job.tags or {}) + 2 > _BATCH_TAG_LIMIT:
            problems.append(
                f"{path}tags: at most {_BATCH_TAG_LIMIT - 2} tags; the chainer adds 2 "
                f"of Batch's {_BATCH_TAG_LIMIT}"
            )
    return problems


def _rule_label(index: int, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, Mapping) else None
    return f"rules[{index}]" + (f" ({name!r})" if isinstance(name, str) else "")


def _config_error(variable: str, problems: Sequence[str]) -> ConfigurationError:
    return ConfigurationError(
        f"{variable} is not a valid chain rules document: " + "; ".join(problems)
    )
