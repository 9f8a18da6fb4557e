"""A local ECS batch workload and the STOPPED events ECS would send about its tasks.

moto runs no containers and sends no EventBridge events: the demo and the tests play ECS's
part by building the ECS Task State Change a task would produce when it stops, exactly as
production feeds each run's STOPPED event back into the retrier.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devtools.template import ROOT

EVENTS = ROOT / "events"
CLUSTER = "batch-jobs"
FAMILY = "nightly-report"
#: The containers of the sample task definition: the job, and a non-essential log router.
CONTAINERS = (("app", True), ("log-router", False))


@dataclass(frozen=True)
class EcsWorkload:
    cluster_arn: str
    task_definition_arn: str
    subnet: str
    security_group: str


def create_network(ec2: Any, description: str) -> tuple[str, str]:
    """A VPC with a subnet and a security group for Fargate tasks: (subnet id, group id)."""
    vpc_id = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    # moto's awsvpc tasks need DNS hostnames to name their network interfaces
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(
        GroupName=f"batch-tasks-{uuid.uuid4().hex[:8]}", Description=description, VpcId=vpc_id
    )["GroupId"]
    return subnet, group


def create_ecs_workload(
    ec2: Any, ecs: Any, cluster: str = CLUSTER, family: str = FAMILY
) -> EcsWorkload:
    """A cluster, a Fargate awsvpc task definition (revision 1 on a fresh moto) and a subnet."""
    subnet, group = create_network(ec2, "batch tasks")
    cluster_arn = ecs.create_cluster(clusterName=cluster)["cluster"]["clusterArn"]
    existing = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
    if existing:
        definition_arn = existing[0]
    else:
        definition_arn = ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="512",
            memory="1024",
            containerDefinitions=[
                # moto needs a container-level memory for Fargate tasks
                {"name": name, "image": f"example/{name}", "memory": 256, "essential": essential}
                for name, essential in CONTAINERS
            ],
        )["taskDefinition"]["taskDefinitionArn"]
    return EcsWorkload(cluster_arn, definition_arn, subnet, group)


def run_scheduled_task(
    ecs: Any, workload: EcsWorkload, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Start the task as an EventBridge schedule would: with its own startedBy and tags."""
    extra = {"overrides": dict(overrides)} if overrides else {}
    task: dict[str, Any] = ecs.run_task(
        cluster=workload.cluster_arn,
        taskDefinition=workload.task_definition_arn,
        launchType="FARGATE",
        platformVersion="1.4.0",
        startedBy="events-rule/nightly-report",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [workload.subnet],
                "securityGroups": [workload.security_group],
            }
        },
        tags=[{"key": "team", "value": "reports"}],
        **extra,
    )["tasks"][0]
    return task


def sample_event(
    name: str, *, subnet: str | None = None, fresh_task: bool = False
) -> dict[str, Any]:
    """An event of ``events/``; ``subnet`` replaces the subnet, ``fresh_task`` the task id."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    detail = event["detail"]
    if subnet is not None:
        for attachment in detail.get("attachments", []):
            for item in attachment.get("details", []):
                if item["name"] == "subnetId":
                    item["value"] = subnet
    if fresh_task:
        old = detail["taskArn"]
        new = f"{old.rsplit('/', 1)[0]}/{uuid.uuid4().hex}"
        event = json.loads(json.dumps(event).replace(old, new))
        event["id"] = str(uuid.uuid4())
    return event


def stopped_event(
    task: Mapping[str, Any],
    exit_codes: Mapping[str, int | None],
    *,
    stop_code: str = "EssentialContainerExited",
    stopped_reason: str = "Essential container in task exited",
) -> dict[str, Any]:
    """The ECS Task State Change (STOPPED) of ``task`` as RunTask/DescribeTasks returned it.

    ``exit_codes`` gives each container's exit code (None: ECS reported none).
    """
    region, account = task["taskArn"].split(":")[3:5]
    attachments = []
    for attachment in task.get("attachments", []):
        item = copy.deepcopy(dict(attachment))
        item.update(type="eni", status="DELETED")
        attachments.append(item)
    containers = []
    for name, code in exit_codes.items():
        container: dict[str, Any] = {
            "name": name,
            "lastStatus": "STOPPED",
            "taskArn": task["taskArn"],
        }
        if code is not None:
            container["exitCode"] = code
        containers.append(container)
    detail: dict[str, Any] = {
        "attachments": attachments,
        "clusterArn": task["clusterArn"],
        "containers": containers,
        "desiredStatus": "STOPPED",
        "group": task.get("group"),
        "lastStatus": "STOPPED",
        "overrides": task.get("overrides", {}),
        "startedBy": task.get("startedBy"),
        "stopCode": stop_code,
        "stoppedReason": stopped_reason,
        "taskArn": task["taskArn"],
        "taskDefinitionArn": task["taskDefinitionArn"],
        "version": 6,
    }
    for key in ("launchType", "platformVersion", "capacityProviderName"):
        if task.get(key):
            detail[key] = task[key]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": account,
        "time": "2026-11-23T02:30:00Z",
        "region": region,
        "resources": [task["taskArn"]],
        "detail": detail,
    }


def delay_queue_event(*bodies: str) -> dict[str, Any]:
    """The SQS event Lambda's poller builds for messages of the retrier's delay queue."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"local-{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:RetrierDelayQueue",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def create_consumer_service(ecs: Any, workload: EcsWorkload, name: str) -> str:
    """An ECS service of long-running queue consumers at 0 tasks, as a user runs one for the
    scaler to size: ``cluster/service`` as ScalerServices names it."""
    ecs.create_service(
        cluster=workload.cluster_arn,
        serviceName=name,
        taskDefinition=workload.task_definition_arn,
        desiredCount=0,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [workload.subnet],
                "securityGroups": [workload.security_group],
            }
        },
    )
    return f"{workload.cluster_arn.rsplit('/', 1)[1]}/{name}"
