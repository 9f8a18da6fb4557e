"""Rule documents in SSM Parameter Store: read through the cache, parsed when they change.

The handlers' behaviour with a parameter (jobs chained, alerts routed, failures) is covered in
test_chainer.py and test_notifier_handler.py; these tests cover what they rely on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from batchwire.chain_rules import ChainRule, chain_rules_from
from batchwire.errors import ConfigurationError
from batchwire.rule_sources import (
    CurrentRules,
    Document,
    ParameterReadError,
    SsmParameter,
    ssm_parameter,
)
from devtools.local_aws import REGION
from devtools.template import ROOT

RULE = {
    "name": "feed-updated-download",
    "match": {"messageAttributes": {"event": "feed-updated"}},
    "submit": {"jobName": "download", "jobQueue": "feeds", "jobDefinition": "dl"},
}


def document(*rules: dict[str, Any]) -> str:
    return json.dumps({"rules": list(rules)})


def renamed(name: str) -> dict[str, Any]:
    return {**RULE, "name": name}


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ssm", region_name=REGION)


def new_parameter(ssm: Any, text: str) -> str:
    name = f"/batchwire/test-{uuid.uuid4().hex[:12]}/chain-rules"
    ssm.put_parameter(Name=name, Value=text, Type="String")
    return name


def parameter_of(name: str, max_age: int = 300) -> SsmParameter:
    parameter = ssm_parameter(name, "CHAIN_RULES_PARAMETER", max_age)
    assert parameter is not None
    return parameter


def count_reads(parameter: SsmParameter) -> list[str]:
    """The names of the GetParameter calls ``parameter`` makes from now on."""
    calls: list[str] = []
    parameter.provider.client.meta.events.register(
        "before-parameter-build.ssm.GetParameter", lambda params, **_: calls.append(params["Name"])
    )
    return calls


def rule_names(rules: Sequence[ChainRule]) -> list[str]:
    return [rule.name for rule in rules]


def test_within_the_cache_time_ssm_is_not_asked_again(ssm: Any) -> None:
    # Given rules read from a parameter cached 300 s
    name = new_parameter(ssm, document(RULE))
    parameter = parameter_of(name)
    current = CurrentRules(chain_rules_from, [], parameter)
    calls = count_reads(parameter)

    # When the rules are asked for at each of many invocations
    results = [current() for _ in range(50)]

    # Then they are the same, with no further call to SSM
    assert {tuple(rule_names(rules)) for rules in results} == {("feed-updated-download",)}
    assert calls == []


def test_an_unchanged_value_is_not_parsed_again(ssm: Any) -> None:
    # Given rules read from SSM at every call (cache of 0 s), parsing counted
    name = new_parameter(ssm, document(RULE))
    parsed: list[int] = []

    def parse(documents: Sequence[Document]) -> tuple[ChainRule, ...]:
        parsed.append(len(documents))
        return chain_rules_from(documents)

    current = CurrentRules(parse, [("CHAIN_RULES", "")], parameter_of(name, max_age=0))

    # When the value is read again, unchanged, then changed once
    current()
    current()
    ssm.put_parameter(Name=name, Value=document(renamed("other")), Type="String", Overwrite=True)
    rules = current()

    # Then it was parsed at the start and after the change only
    assert parsed == [2, 2]
    assert rule_names(rules) == ["other"]


def test_an_invalid_value_fails_every_call_until_it_is_corrected(ssm: Any) -> None:
    # Given valid rules read from SSM at every call
    name = new_parameter(ssm, document(RULE))
    current = CurrentRules(chain_rules_from, [], parameter_of(name, max_age=0))

    # When the value turns invalid, is asked for twice, then is corrected
    ssm.put_parameter(Name=name, Value='{"rules": [', Type="String", Overwrite=True)
    failures = []
    for _ in range(2):
        with pytest.raises(ConfigurationError) as raised:
            current()
        failures.append(str(raised.value))
    ssm.put_parameter(Name=name, Value=document(renamed("fixed")), Type="String", Overwrite=True)

    # Then both calls failed naming the parameter, and the corrected rules are used after
    assert all(
        f"SSM parameter {name} (CHAIN_RULES_PARAMETER) is not valid JSON" in f for f in failures
    )
    assert "every invocation fails until it is valid again" in failures[0]
    assert rule_names(current()) == ["fixed"]


def test_a_parameter_deleted_after_the_start_fails_the_call_naming_it(ssm: Any) -> None:
    # Given rules read from SSM at every call
    name = new_parameter(ssm, document(RULE))
    current = CurrentRules(chain_rules_from, [], parameter_of(name, max_age=0))

    # When the parameter is deleted
    ssm.delete_parameter(Name=name)

    # Then the next call fails naming it
    with pytest.raises(ConfigurationError, match=f"SSM parameter {name} .* does not exist"):
        current()


def test_a_rule_name_in_two_environment_documents_names_both() -> None:
    # Given the same rule name in the template's rules and the example workload's
    documents = [("CHAIN_RULES", document(RULE)), ("EXAMPLE_CHAIN_RULES", document(RULE))]

    # When they are combined
    with pytest.raises(ConfigurationError) as raised:
        CurrentRules(chain_rules_from, documents)

    # Then both variables are named with the rule
    assert "'feed-updated-download' is in CHAIN_RULES and in EXAMPLE_CHAIN_RULES" in str(
        raised.value
    )


def test_blank_and_empty_documents_have_no_rules() -> None:
    documents = [("CHAIN_RULES", ""), ("EXAMPLE_CHAIN_RULES", "{}"), ("MORE", '{"rules": []}')]
    assert CurrentRules(chain_rules_from, documents)() == ()


@pytest.mark.parametrize(
    ("code", "raised", "says"),
    [
        ("AccessDeniedException", ConfigurationError, "grant it ssm:GetParameter"),
        ("ThrottlingException", ParameterReadError, "could not be read"),
    ],
)
def test_a_refused_read_names_the_parameter(code: str, raised: type[Exception], says: str) -> None:
    # Given SSM answering GetParameter with an error
    parameter = parameter_of("/batchwire/chain-rules")
    with Stubber(parameter.provider.client) as stub:
        stub.add_client_error("get_parameter", service_error_code=code)

        # When the value is read
        with pytest.raises(raised) as error:
            parameter.text()

    # Then the error names the parameter and what happened
    assert "SSM parameter /batchwire/chain-rules (CHAIN_RULES_PARAMETER)" in str(error.value)
    assert says in str(error.value)


def test_without_a_parameter_the_chainer_does_not_load_the_ssm_provider() -> None:
    # Given the chainer's environment without CHAIN_RULES_PARAMETER
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)]),
        "IDEMPOTENCY_TABLE": "chainer-idempotency",
        "CHAIN_RULES": document(RULE),
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    environ.pop("CHAIN_RULES_PARAMETER", None)

    # When it starts in a fresh interpreter
    probe = (
        "import sys, chainer; print('aws_lambda_powertools.utilities.parameters' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=environ, capture_output=True, text=True, check=True
    )

    # Then Powertools' parameters utility was never imported (3 ms of cold start saved)
    assert result.stdout.strip() == "False"
