"""Chain rules are checked at cold start, with errors that name the rule and the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from batchwire.chain_rules import DEFAULT_MESSAGE_VARIABLE, chain_rules_from, parse_chain_rules
from batchwire.errors import ConfigurationError
from devtools.local_aws import feed_chain_rules
from devtools.template import function_setup


def document(*rules: dict[str, Any], **top: Any) -> str:
    return json.dumps({**top, "rules": list(rules)})


def rule(name: str = "feed-updated", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "match": {"subject": "feed-updated"},
        "submit": {"jobName": "download", "jobQueue": "feeds", "jobDefinition": "dl"},
        **fields,
    }


def test_rule_without_message_variable_uses_download_message() -> None:
    # Given a rule that names no message variable
    text = document(rule())

    # When the document is read
    [parsed] = parse_chain_rules(text)

    # Then the message goes to DOWNLOAD_MESSAGE
    assert parsed.message_variable == DEFAULT_MESSAGE_VARIABLE == "DOWNLOAD_MESSAGE"


def test_document_message_variable_applies_to_rules_without_their_own() -> None:
    # Given a document-wide message variable and one rule overriding it
    text = document(
        rule("a"), rule("b", messageVariable="FEED_EVENT"), messageVariable="CHAIN_MESSAGE"
    )

    # When the document is read
    first, second = parse_chain_rules(text)

    # Then each rule uses the nearest setting
    assert (first.message_variable, second.message_variable) == ("CHAIN_MESSAGE", "FEED_EVENT")


def test_job_request_error_names_rule_and_field() -> None:
    # Given a second rule whose job lacks a queue
    broken = rule("reports")
    del broken["submit"]["jobQueue"]

    # When the document is read
    with pytest.raises(ConfigurationError) as raised:
        parse_chain_rules(document(rule("feeds"), broken))

    # Then the error names the variable, the rule and the field path
    assert "CHAIN_RULES" in str(raised.value)
    assert "rules[1] ('reports').submit.jobQueue: required, not given" in str(raised.value)


def test_job_request_in_jobs_form_names_job_index() -> None:
    # Given a rule fanning out to two jobs, the second with a bad name
    jobs = [
        {"jobName": "one", "jobQueue": "q", "jobDefinition": "d"},
        {"jobName": "two", "jobQueue": "q", "jobDefinition": "d", "timeout": {"x": 1}},
    ]
    text = document(rule("fan-out", submit={"jobs": jobs}))

    # When the document is read
    with pytest.raises(ConfigurationError) as raised:
        parse_chain_rules(text)

    # Then the path reaches into the job of the rule
    assert "rules[0] ('fan-out').submit.jobs[1].timeout" in str(raised.value)


def test_rule_without_any_condition_is_refused() -> None:
    # Given a rule that would match every record
    text = document(rule("catch-all", match={}))

    # When the document is read
    with pytest.raises(ConfigurationError) as raised:
        parse_chain_rules(text)

    # Then the error asks for a condition on that rule's match
    assert "rules[0] ('catch-all').match" in str(raised.value)
    assert "at least one condition" in str(raised.value)


def test_unknown_match_key_is_refused() -> None:
    # Given a misspelt condition
    text = document(rule("typo", match={"subjet": "feed-updated"}))

    # When the document is read
    with pytest.raises(ConfigurationError) as raised:
        parse_chain_rules(text)

    # Then the misspelt key is named
    assert "rules[0] ('typo').match.subjet: unknown key" in str(raised.value)


def test_job_setting_the_loop_guard_variable_is_refused() -> None:
    # Given a job that writes the hop count itself
    job = {
        "jobName": "download",
        "jobQueue": "feeds",
        "jobDefinition": "dl",
        "containerOverrides": {"environment": [{"name": "BATCHWIRE_CHAIN_HOP", "value": "0"}]},
    }
    text = document(rule("sneaky", submit=job))

    # When the document is read
    with pytest.raises(ConfigurationError) as raised:
        parse_chain_rules(text)

    # Then the variable is reported as the chainer's own
    assert "rules[0] ('sneaky').submit.containerOverrides.environment" in str(raised.value)
    assert "BATCHWIRE_CHAIN_HOP is set by the chainer" in str(raised.value)


def test_reserved_message_variable_is_refused() -> None:
    # Given a message variable in Batch's reserved namespace
    text = document(rule("reserved", messageVariable="AWS_BATCH_MESSAGE"))

    # When the document is read
    with pytest.raises(ConfigurationError) as raised:
        parse_chain_rules(text)

    # Then the rule and the field are named
    assert (
        "rules[0] ('reserved'): messageVariable 'AWS_BATCH_MESSAGE': names starting with "
        "AWS_BATCH are reserved by AWS Batch"
    ) in str(raised.value)


def test_document_message_variable_set_by_the_chainer_is_refused() -> None:
    # Given a document-wide message variable that is the chainer's own hop count
    text = document(rule(), messageVariable="BATCHWIRE_CHAIN_HOP")

    # When the document is read
    with pytest.raises(ConfigurationError) as raised:
        parse_chain_rules(text)

    # Then the field is named, without a path before it
    assert (
        "CHAIN_RULES is not a valid chain rules document: messageVariable "
        "'BATCHWIRE_CHAIN_HOP' is set by the chainer itself (loop guard)"
    ) in str(raised.value)


def test_mapped_environment_name_that_is_not_a_variable_name_is_refused() -> None:
    # Given a rule mapping a field into an environment variable name that starts with a digit
    text = document(rule("digits", fromMessage={"environment": {"1FEED": "feed"}}))

    # When the document is read
    with pytest.raises(ConfigurationError) as raised:
        parse_chain_rules(text)

    # Then the rule, the mapping and the name are named
    assert (
        "rules[0] ('digits').fromMessage: environment '1FEED' is not an environment variable "
        "name (letters, digits, _)"
    ) in str(raised.value)


def test_problem_of_a_whole_job_is_named_under_submit() -> None:
    # Given a rule whose single job carries a tag in AWS's reserved namespace
    job = {
        "jobName": "download",
        "jobQueue": "feeds",
        "jobDefinition": "dl",
        "tags": {"aws:x": "1"},
    }
    text = document(rule("aws-tag", submit=job))

    # When the document is read
    with pytest.raises(ConfigurationError) as raised:
        parse_chain_rules(text)

    # Then the problem is placed under the rule's submit
    assert "rules[0] ('aws-tag').submit: tag key 'aws:x': the aws: prefix is reserved" in str(
        raised.value
    )


def test_field_mapped_onto_the_message_variable_is_refused() -> None:
    # Given a rule mapping a field into the variable that receives the whole message
    text = document(rule("overlap", fromMessage={"environment": {"DOWNLOAD_MESSAGE": "url"}}))

    # When the document is read
    with pytest.raises(ConfigurationError) as raised:
        parse_chain_rules(text)

    # Then the mapping is named
    assert "rules[0] ('overlap').fromMessage.environment.DOWNLOAD_MESSAGE" in str(raised.value)


def test_duplicate_rule_names_are_refused() -> None:
    # Given two rules with one name (the name keys the idempotency records)
    text = document(rule("same"), rule("same"))

    # When the document is read
    with pytest.raises(ConfigurationError) as raised:
        parse_chain_rules(text)

    # Then the second one is named
    assert "rules[1] ('same').name: another rule already has this name" in str(raised.value)


def test_document_that_is_not_json_is_refused() -> None:
    # Given a truncated document
    text = document(rule())[:-5]

    # When the document is read
    with pytest.raises(ConfigurationError) as raised:
        parse_chain_rules(text)

    # Then the error says it is not JSON
    assert "CHAIN_RULES is not valid JSON" in str(raised.value)


def test_template_rules_are_yours_and_the_examples_only_with_the_example() -> None:
    # Given the rules the template gives ChainerFunction, resolved as `sam local invoke` does
    defaults = function_setup("ChainerFunction").environment
    example = function_setup("ChainerFunction", {"ExampleWorkload": "on"}).environment

    def names(environment: dict[str, str]) -> list[str]:
        sources = ("CHAIN_RULES", "EXAMPLE_CHAIN_RULES")
        documents = [(name, environment.get(name, "")) for name in sources]
        return [rule.name for rule in chain_rules_from(documents)]

    # Then a stack with defaults chains nothing you did not write, and the example's two
    # rules are valid and there only with ExampleWorkload=on
    assert names(defaults) == []
    assert names(example) == ["example-feed-updated", "example-import-succeeded"]


def test_the_local_tools_rules_are_valid() -> None:
    # Given the rule set make local-stack and make demo keep in SSM
    rules = parse_chain_rules(feed_chain_rules(), "SSM parameter /batchwire/local/chain-rules")
    # Then both rules parse
    assert [rule.name for rule in rules] == ["feed-updated-download", "nightly-import-publish"]
