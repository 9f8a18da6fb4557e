"""The retrier's EventBridge rule and IAM scope, as template.yaml resolves them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern
from samcli.lib.intrinsic_resolver.intrinsic_property_resolver import IntrinsicResolver
from samcli.lib.intrinsic_resolver.intrinsics_symbol_table import IntrinsicsSymbolTable

from devtools.ecs_local import sample_event
from devtools.template import load_template


def resolved(path: list[str], **parameters: str) -> Any:
    """A part of RetrierFunction's properties with parameters (defaults + ``parameters``)."""
    template = load_template()
    values = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    values.update(parameters, **{"AWS::Region": "us-east-1"})
    symbols = IntrinsicsSymbolTable(template=template, logical_id_translator=values)
    resolver = IntrinsicResolver(template=template, symbol_resolver=symbols)
    node = template["Resources"]["RetrierFunction"]["Properties"]
    for key in path:
        node = node[key]
    return resolver.intrinsic_property_resolver(node, ignore_errors=False)


def rule_matches(event: Any, **parameters: str) -> bool:
    pattern = resolved(["Events", "TaskStopped", "Properties", "Pattern"], **parameters)
    return bool(EventPattern.load(pattern).matches_event(event))


def with_family(event: dict[str, Any], family: str) -> dict[str, Any]:
    detail = event["detail"]
    detail["taskDefinitionArn"] = detail["taskDefinitionArn"].replace("nightly-report", family)
    return event


@pytest.mark.parametrize(
    ("families", "family", "matches"),
    [
        ("*", "nightly-report", True),
        ("*", "anything", True),
        ("feeds,nightly-*", "nightly-report", True),
        ("nightly-*,feeds", "feeds", True),
        ("nightly-*,feeds", "feeds-extra", False),
        ("feeds", "nightly-report", False),
    ],
)
def test_rule_takes_stopped_tasks_of_the_configured_families(
    families: str, family: str, matches: bool
):
    # Given a STOPPED event of a task of ``family`` in the configured cluster
    event = with_family(sample_event("ecs-task-stopped-exit1.json"), family)

    # When the rule is deployed with RetrierTaskFamilies=``families``
    # Then it delivers the event only if the family is configured
    assert rule_matches(event, RetrierTaskFamilies=families) is matches


def test_rule_ignores_other_clusters_and_running_tasks():
    # Given events from another cluster, and of a task still running
    elsewhere = sample_event("ecs-task-stopped-exit1.json")
    elsewhere["detail"]["clusterArn"] = elsewhere["detail"]["clusterArn"].replace(
        "batch-jobs", "web"
    )
    running = sample_event("ecs-task-stopped-exit1.json")
    running["detail"]["lastStatus"] = "RUNNING"

    # When / Then: neither reaches the retrier, while the configured clusters' do
    assert not rule_matches(elsewhere)
    assert not rule_matches(running)
    assert rule_matches(elsewhere, RetrierClusterNames="batch-jobs,web")


def test_run_task_is_allowed_on_the_configured_families_in_the_configured_clusters_only():
    # Given two families and two clusters
    statements = resolved(
        ["Policies"], RetrierTaskFamilies="nightly-*,feeds", RetrierClusterNames="a,b"
    )[0]["Statement"]

    # When the RunTask statement is resolved
    [run] = [s for s in statements if s["Action"] == "ecs:RunTask"]

    # Then it names each family's revisions, on condition of the cluster and this region
    assert run["Resource"] == [
        "arn:*:ecs:*:*:task-definition/nightly-*:*",
        "arn:*:ecs:*:*:task-definition/feeds:*",
    ]
    assert run["Condition"] == {
        "ArnLike": {"ecs:cluster": ["arn:*:ecs:*:*:cluster/a", "arn:*:ecs:*:*:cluster/b"]},
        "StringEquals": {"aws:RequestedRegion": "us-east-1"},
    }
    [pass_role] = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    assert pass_role["Resource"] == ["arn:*:iam::*:role/ecsTaskExecutionRole"]


def notifier_cluster_matches(event: Any, **parameters: str) -> bool:
    """Whether the cluster part of the notifier's EcsTaskFailed rule, deployed with
    ``parameters``, takes ``event``. (moto's matcher cannot match inside an array of
    objects such as ``containers``, so the rest of the pattern is left to EventBridge.)"""
    template = load_template()
    values = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    values.update(parameters, **{"AWS::Region": "us-east-1"})
    symbols = IntrinsicsSymbolTable(template=template, logical_id_translator=values)
    resolver = IntrinsicResolver(template=template, symbol_resolver=symbols)
    node = template["Resources"]["NotifierFunction"]["Properties"]["Events"]["EcsTaskFailed"]
    pattern = json.loads(resolver.intrinsic_property_resolver(node["Properties"]["Pattern"], False))
    clusters = {"detail": {"clusterArn": pattern["detail"]["clusterArn"]}}
    return bool(EventPattern.load(json.dumps(clusters)).matches_event(event))


@pytest.mark.parametrize(
    ("clusters", "matches"), [("batch-jobs", True), ("other,batch-jobs", True), ("other", False)]
)
def test_ecs_failure_alerts_come_only_from_the_clusters_batchwire_watches(
    clusters: str, matches: bool
):
    # Given a failed task of cluster batch-jobs
    event = sample_event("ecs-task-stopped-exit1.json")

    # When the notifier's rule is deployed with RetrierClusterNames=``clusters``
    # Then it takes the event only if the cluster is one of them
    assert notifier_cluster_matches(event, RetrierClusterNames=clusters) is matches
