"""Chain rules: which finished-job message starts which jobs, validated before use.

A rules document is JSON::

    {"messageVariable": "DOWNLOAD_MESSAGE",
     "rules": [{"name": "feed-updated-download",
                "match": {"messageAttributes": {"event": "feed-updated"}},
                "fromMessage": {"parameters": {"feed": "feed"}},
                "submit": {"jobName": "download", "jobQueue": "feeds", "jobDefinition": "dl"}}]}

``submit`` is a job request in exactly the schedule submitter's format (one job at the top
level, or ``{"jobs": [...]}``) and is checked by the same validator. The chainer reads
several documents in order (the ``CHAIN_RULES`` and ``EXAMPLE_CHAIN_RULES`` environment
variables, then an SSM parameter; see :func:`chain_rules_from`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from batchwire.errors import (
    ConfigurationError,
    RequestError,
    describe_validation_error,
    field_path,
    validation_problem,
)
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

NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]

#: One glob (``nightly-*``) or a list of globs, any of which may match; see :func:`globs`.
Patterns = NonEmptyStr | Annotated[list[NonEmptyStr], msgspec.Meta(min_length=1)]


def globs(patterns: str | Sequence[str]) -> Sequence[str]:
    """The globs of a condition, written as one glob or as a list."""
    return [patterns] if isinstance(patterns, str) else patterns


def _check_variable_name(field: str, name: str) -> None:
    """Refuse ``name`` (given in ``field``) as an environment variable the chainer sets."""
    if not name.replace("_", "a").isalnum() or not name.isascii() or name[0].isdigit():
        raise ValueError(
            f"{field} {name!r} is not an environment variable name (letters, digits, _)"
        )
    if name.upper().startswith("AWS_BATCH"):
        raise ValueError(
            f"{field} {name!r}: names starting with AWS_BATCH are reserved by AWS Batch"
        )
    if name in (CHAIN_ID_VARIABLE, CHAIN_HOP_VARIABLE):
        raise ValueError(f"{field} {name!r} is set by the chainer itself (loop guard)")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A part of the rules document: unknown keys are refused, so a misspelt condition is
    an error rather than a rule that matches more than meant.

    Subclasses inherit this configuration; they repeat ``frozen`` and ``kw_only`` for type
    checkers.
    """


class RuleMatch(_Strict, frozen=True, kw_only=True):
    """Conditions on the incoming record; all given conditions must hold."""

    topic: Patterns | None = None
    subject: Patterns | None = None
    messageAttributes: dict[NonEmptyStr, Patterns] | None = None
    messageFields: dict[NonEmptyStr, Patterns] | None = None
    jobName: Patterns | None = None
    jobQueue: Patterns | None = None

    def __post_init__(self) -> None:
        if not any(getattr(self, field.name) for field in msgspec.structs.fields(self)):
            raise ValueError(
                "give at least one condition: topic, subject, messageAttributes, "
                "messageFields, jobName or jobQueue"
            )


class MessageMapping(_Strict, frozen=True, kw_only=True):
    """Fields of a JSON message (dotted paths) copied into parameters or environment."""

    parameters: dict[NonEmptyStr, NonEmptyStr] | None = None
    environment: dict[NonEmptyStr, NonEmptyStr] | None = None

    def __post_init__(self) -> None:
        for name in self.environment or {}:
            _check_variable_name("environment", name)


class _RuleModel(_Strict, frozen=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    match: RuleMatch
    messageVariable: NonEmptyStr | None = None
    fromMessage: MessageMapping | None = None
    submit: dict[str, Any]

    def __post_init__(self) -> None:
        if self.messageVariable is not None:
            _check_variable_name("messageVariable", self.messageVariable)


class _DocumentModel(_Strict, frozen=True, kw_only=True):
    messageVariable: NonEmptyStr = DEFAULT_MESSAGE_VARIABLE
    # no rules is allowed: a source may be empty while the others hold the rules
    rules: list[Any] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        _check_variable_name("messageVariable", self.messageVariable)


@dataclass(frozen=True)
class ChainRule:
    """A validated rule: when ``match`` holds, submit ``request`` with the message added."""

    name: str
    match: RuleMatch
    message_variable: str
    from_message: MessageMapping
    request: JobRequest


def parse_chain_rules(text: str, source: str = "CHAIN_RULES") -> tuple[ChainRule, ...]:
    """Validate the rules document; ConfigurationError names ``source`` (where the document
    came from: a variable, a parameter), each rule and field at fault."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"{source} is not valid JSON: {error}") from None
    try:
        model = msgspec.convert(document, _DocumentModel)
    except msgspec.ValidationError as error:
        parts, message = validation_problem(error, document)
        # a problem of the whole document (its messageVariable) needs no path before it
        problem = f"{field_path(parts)}: {message}" if parts else message
        raise _config_error(source, [problem]) from None

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
        raise _config_error(source, problems)
    return tuple(rules)


def chain_rules_from(documents: Sequence[tuple[str, str]]) -> tuple[ChainRule, ...]:
    """The rules of several documents, given as (source, text), in their order.

    A blank text has no rules. Each document keeps its own ``messageVariable`` default. Rule
    names must be unique across all documents, because a name is part of the idempotency key
    of the jobs its rule submits; a name in two sources is a ConfigurationError naming both.
    """
    rules: list[ChainRule] = []
    source_of: dict[str, str] = {}
    clashes: list[str] = []
    for source, text in documents:
        if not text.strip():
            continue
        for rule in parse_chain_rules(text, source):
            if rule.name in source_of:
                clashes.append(f"{rule.name!r} is in {source_of[rule.name]} and in {source}")
                continue
            source_of[rule.name] = source
            rules.append(rule)
    if clashes:
        raise ConfigurationError(
            "chain rule names must be unique across all sources (a name keys the jobs its "
            "rule submitted): " + "; ".join(clashes) + "; rename or remove one of each pair"
        )
    return tuple(rules)


def _parse_rule(raw: Any, label: str, default_variable: str) -> tuple[ChainRule | None, list[str]]:
    try:
        model = msgspec.convert(raw, _RuleModel)
    except msgspec.ValidationError as error:
        return None, describe_validation_error(error, raw, label)
    try:
        request = parse_job_request(model.submit)
    except RequestError as error:
        return None, [_under(f"{label}.submit", problem) for problem in error.problems]
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


def _under(path: str, problem: str) -> str:
    """A problem of the rule's job request, its field path put under ``path``."""
    if problem.startswith("(request): "):  # a problem of the whole job, such as a reserved tag
        return path + problem.removeprefix("(request)")
    return f"{path}.{problem}"


def _rule_label(index: int, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, Mapping) else None
    return f"rules[{index}]" + (f" ({name!r})" if isinstance(name, str) else "")


def _config_error(source: str, problems: Sequence[str]) -> ConfigurationError:
    return ConfigurationError(
        f"{source} is not a valid chain rules document: " + "; ".join(problems)
    )
