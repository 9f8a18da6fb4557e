"""Settings from environment variables and validation messages: what a person reads."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import pytest

from batchwire.config import (
    IdempotentSettings,
    RulesCacheSeconds,
    check_parameter_name,
    load_settings,
)
from batchwire.errors import ConfigurationError, describe_validation_error


class _Settings(IdempotentSettings, frozen=True, kw_only=True):
    json_variables = frozenset({"PATTERNS"})
    list_variables = frozenset({"CLUSTERS"})

    patterns: list[str] = msgspec.field(name="PATTERNS", default_factory=list)
    clusters: tuple[str, ...] = msgspec.field(name="CLUSTERS", default=())
    window: Annotated[int, msgspec.Meta(ge=1)] = msgspec.field(name="WINDOW", default=300)
    rules_parameter: str | None = msgspec.field(name="RULES_PARAMETER", default=None)
    cache_seconds: RulesCacheSeconds = msgspec.field(name="RULES_CACHE_SECONDS", default=300)

    def __post_init__(self) -> None:
        if "default" in self.clusters:
            raise ValueError("CLUSTERS: name the clusters to watch, not 'default'")
        check_parameter_name("RULES_PARAMETER", self.rules_parameter)


class _Variable(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    value: str


class _Overrides(msgspec.Struct, forbid_unknown_fields=True):
    environment: list[_Variable]


BASE = {"IDEMPOTENCY_TABLE": "batchwire-idempotency"}


def _problem(payload: Any, prefix: str = "") -> str:
    with pytest.raises(msgspec.ValidationError) as raised:
        msgspec.convert(payload, _Overrides)
    (line,) = describe_validation_error(raised.value, payload, prefix)
    return line


def test_settings_convert_text_and_keep_defaults() -> None:
    # Given numbers, a JSON list and a comma list as the environment holds them (text)
    environ = {**BASE, "WINDOW": "60", "PATTERNS": '["token=\\\\S+"]', "CLUSTERS": "a, b,"}

    # When the settings are loaded
    settings = load_settings(_Settings, environ)

    # Then each is typed, and what is not set keeps its default
    assert settings.window == 60
    assert settings.patterns == ["token=\\S+"]
    assert settings.clusters == ("a", "b")
    assert settings.idempotency_ttl_seconds == 172800


def test_an_empty_variable_takes_the_default() -> None:
    settings = load_settings(_Settings, {**BASE, "WINDOW": "", "PATTERNS": " "})
    assert (settings.window, settings.patterns) == (300, [])


def test_a_missing_variable_is_named() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(_Settings, {})
    assert str(raised.value) == (
        "_Settings cannot start: environment variable IDEMPOTENCY_TABLE is not set"
    )


def test_a_wrong_value_is_named_with_what_was_set() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(_Settings, {**BASE, "WINDOW": "0"})
    assert str(raised.value) == (
        "_Settings cannot start: environment variable WINDOW='0': Expected int >= 1"
    )


def test_a_wrong_item_of_a_json_variable_is_named_by_its_index() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(_Settings, {**BASE, "PATTERNS": '["a", 2]'})
    assert str(raised.value).endswith(
        "environment variable PATTERNS='[\"a\", 2]': [1]: Expected str, got int"
    )


def test_a_json_variable_that_is_not_json_is_named() -> None:
    with pytest.raises(ConfigurationError, match="environment variable PATTERNS is not valid JSON"):
        load_settings(_Settings, {**BASE, "PATTERNS": "[token"})


def test_a_cross_field_check_speaks_for_itself() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(_Settings, {**BASE, "CLUSTERS": "default"})
    assert str(raised.value) == (
        "_Settings cannot start: CLUSTERS: name the clusters to watch, not 'default'"
    )


@pytest.mark.parametrize("name", ["/batchwire/chain-rules", "/a", "/team_1/feeds.v2/rules"])
def test_a_full_parameter_name_is_taken(name: str) -> None:
    settings = load_settings(_Settings, {**BASE, "RULES_PARAMETER": name})
    assert settings.rules_parameter == name


@pytest.mark.parametrize(
    "name",
    ["chain-rules", "arn:aws:ssm:eu-west-1:123456789012:parameter/x", "/a//b", "/a/", "/a b"],
)
def test_a_parameter_name_that_is_not_a_full_name_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(_Settings, {**BASE, "RULES_PARAMETER": name})
    assert str(raised.value).startswith(
        f"_Settings cannot start: environment variable RULES_PARAMETER={name!r}: must be the "
        "full name of an SSM parameter, starting with /"
    )


@pytest.mark.parametrize("value", ["-1", "3601", "five"])
def test_a_rules_cache_time_out_of_range_is_named(value: str) -> None:
    with pytest.raises(
        ConfigurationError, match=f"environment variable RULES_CACHE_SECONDS='{value}'"
    ):
        load_settings(_Settings, {**BASE, "RULES_CACHE_SECONDS": value})


def test_a_problem_names_its_path_and_quotes_the_wrong_value() -> None:
    payload = {"environment": [{"name": "MODE", "value": "full"}, {"name": "N", "value": 15}]}
    assert _problem(payload) == "environment[1].value: Expected str, got int (got 15 (int))"


def test_a_prefix_places_the_problem_inside_a_larger_document() -> None:
    payload = {"environment": [{"name": "", "value": "x"}]}
    assert _problem(payload, "jobs[2].containerOverrides") == (
        "jobs[2].containerOverrides.environment[0].name: Expected str of length >= 1 (got '')"
    )


def test_missing_and_unknown_keys_are_named() -> None:
    assert _problem({}) == "environment: required, not given"
    assert _problem({"environment": [], "enviroment": []}) == (
        "enviroment: unknown key; check the spelling against the documented fields"
    )


class _Job(msgspec.Struct, forbid_unknown_fields=True):
    parameters: dict[str, str] = {}


def test_a_wrong_value_in_a_map_names_its_key() -> None:
    # Given a parameters map with one number among strings
    payload = {"parameters": {"feed": "daily", "limit": 7}}

    # When it is validated
    with pytest.raises(msgspec.ValidationError) as raised:
        msgspec.convert(payload, _Job)

    # Then the problem names the key and quotes its value
    assert describe_validation_error(raised.value, payload) == [
        "parameters.limit: Expected str, got int (got 7 (int))"
    ]
