"""A local AWS for demos and integration tests: moto in server mode over real HTTP.

The functions reach it through the standard ``AWS_ENDPOINT_URL`` variable, exactly as they
reach AWS in production without it.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from devtools.template import load_template

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"

#: Credentials moto accepts; they never leave this machine.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LocalAws:
    """A running moto server and the environment that points boto3 at it."""

    endpoint_url: str

    @property
    def environ(self) -> dict[str, str]:
        return {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url}

    def client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )


def regional_client(service: str) -> Any:
    """A boto3 client in the local region with default endpoints (for use inside mock_aws)."""
    return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


@contextmanager
def moto_server() -> Iterator[LocalAws]:
    """Start moto on a free loopback port; Batch jobs run without Docker (they succeed at once)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        request = urllib.request.Request(
            f"{endpoint}/moto-api/config",
            data=json.dumps({"batch": {"use_docker": False}}).encode(),
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).close()
        yield LocalAws(endpoint)
    finally:
        server.stop()


@contextmanager
def pointed_at(local: LocalAws) -> Iterator[None]:
    """Point this process's boto3 at ``local`` for the duration of the block."""
    saved = {name: os.environ.get(name) for name in local.environ}
    os.environ.update(local.environ)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The SQS event Lambda's event source mapping delivers for ``messages`` of ``queue_arn``.

    ``messages`` are ReceiveMessage's ``Messages``, received with ``AttributeNames=["All"]``
    and ``MessageAttributeNames=["All"]``; their message attributes take Lambda's shape
    (``stringValue``, ``binaryValue`` in base64, ``dataType``), and a message received
    without them has none.
    """
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {
                    name: _lambda_message_attribute(value)
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
            for message in messages
        ]
    }


def _lambda_message_attribute(received: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as ReceiveMessage answers it, as Lambda's SQS records carry it."""
    attribute: dict[str, Any] = {}
    if "StringValue" in received:
        attribute["stringValue"] = received["StringValue"]
    if "BinaryValue" in received:
        attribute["binaryValue"] = base64.b64encode(received["BinaryValue"]).decode()
    attribute["stringListValues"] = list(received.get("StringListValues", []))
    attribute["binaryListValues"] = [
        base64.b64encode(value).decode() for value in received.get("BinaryListValues", [])
    ]
    attribute["dataType"] = received["DataType"]
    return attribute


def provision_template_resources(local: LocalAws, template_path: Path) -> dict[str, str]:
    """Create the template's tables, queues and topics in moto, named by logical id.

    For the benchmarks only, whose handlers read template.yaml's environment as
    ``sam local invoke`` resolves it (a Ref to a resource becomes its logical id).
    ``make invoke``, ``make demo`` and the tests run deployed stacks (devtools.local_stack).
    Returns logical id -> physical identifier (table name, queue URL, topic ARN).
    """
    resources = load_template(template_path).get("Resources", {})
    created: dict[str, str] = {}
    dynamodb, sqs, sns = local.client("dynamodb"), local.client("sqs"), local.client("sns")
    for logical_id, resource in resources.items():
        kind = resource.get("Type")
        props = resource.get("Properties", {})
        if kind == "AWS::DynamoDB::Table":
            dynamodb.create_table(
                TableName=logical_id,
                AttributeDefinitions=props["AttributeDefinitions"],
                KeySchema=props["KeySchema"],
                BillingMode="PAY_PER_REQUEST",
            )
            created[logical_id] = logical_id
        elif kind == "AWS::SQS::Queue":
            attributes = {"FifoQueue": "true"} if props.get("FifoQueue") else {}
            name = f"{logical_id}.fifo" if props.get("FifoQueue") else logical_id
            created[logical_id] = sqs.create_queue(QueueName=name, Attributes=attributes)[
                "QueueUrl"
            ]
        elif kind == "AWS::SNS::Topic":
            created[logical_id] = sns.create_topic(Name=logical_id)["TopicArn"]
    return created


def create_batch_workload(
    client: Callable[[str], Any],
    queue: str = "feeds",
    definitions: tuple[str, ...] = ("feedstream-Broadbean", "feedstream-consumer"),
) -> dict[str, str]:
    """A Batch Fargate compute environment, a job queue and job definitions, as in the README.

    ``client`` makes a boto3 client for a service name (``LocalAws.client`` for a moto
    server, ``boto3.client`` inside ``mock_aws``). moto keeps one state per process, so
    what another caller in this process already made is reused.
    """
    ec2, iam, batch = client("ec2"), client("iam"), client("batch")
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    group_id = ec2.create_security_group(
        GroupName=f"batchwire-{queue}", Description="batchwire jobs", VpcId=vpc_id
    )["GroupId"]
    role_name = f"batchwire-{queue}-batch-service"
    existing = batch.describe_job_queues(jobQueues=[queue])["jobQueues"]
    if existing:
        role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
        environment = batch.describe_compute_environments(
            computeEnvironments=[existing[0]["computeEnvironmentOrder"][0]["computeEnvironment"]]
        )["computeEnvironments"][0]
        created = {
            "jobQueue": existing[0]["jobQueueArn"],
            "subnet": environment["computeResources"]["subnets"][0],
            "securityGroup": environment["computeResources"]["securityGroupIds"][0],
        }
        for name in definitions:
            created[name] = _register_definition(batch, name, role_arn)
        return created
    role_arn = iam.create_role(
        RoleName=role_name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "batch.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    environment_arn = batch.create_compute_environment(
        computeEnvironmentName=f"batchwire-{queue}-fargate",
        type="MANAGED",
        state="ENABLED",
        computeResources={
            "type": "FARGATE",
            "maxvCpus": 16,
            "subnets": [subnet_id],
            "securityGroupIds": [group_id],
        },
        serviceRole=role_arn,
    )["computeEnvironmentArn"]
    queue_arn = batch.create_job_queue(
        jobQueueName=queue,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment_arn}],
    )["jobQueueArn"]
    created = {"jobQueue": queue_arn, "subnet": subnet_id, "securityGroup": group_id}
    for name in definitions:
        created[name] = _register_definition(batch, name, role_arn)
    return created


def _register_definition(batch: Any, name: str, role_arn: str) -> str:
    arn: str = batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        platformCapabilities=["FARGATE"],
        containerProperties={
            "image": "public.ecr.aws/docker/library/python:3.13-slim",
            "command": ["python", "-c", "print('hello from batchwire')"],
            "resourceRequirements": [
                {"type": "VCPU", "value": "0.25"},
                {"type": "MEMORY", "value": "512"},
            ],
            "executionRoleArn": role_arn,
            "logConfiguration": {"logDriver": "awslogs"},
        },
    )["jobDefinitionArn"]
    return arn


#: Where the local tools keep the chain rules of the Batch workload above, as a user would:
#: an SSM parameter named by the stack's ChainRulesParameterName.
CHAIN_RULES_PARAMETER = "/batchwire/local/chain-rules"


def feed_chain_rules(queue: str = "feeds", consumer: str = "feedstream-consumer") -> str:
    """The chain rules of the Batch workload above (a JSON document, docs/chainer.md).

    A message announcing an updated feed (attribute ``event=feed-updated``, as in
    events/sns-job-finished.json) starts the consumer job with the message; a nightly job
    that succeeded (events/batch-job-succeeded.json) starts its publish job.
    """
    return json.dumps(
        {
            "messageVariable": "DOWNLOAD_MESSAGE",
            "rules": [
                {
                    "name": "feed-updated-download",
                    "match": {"messageAttributes": {"event": "feed-updated"}},
                    "fromMessage": {"parameters": {"feed": "feed"}},
                    "submit": {
                        "jobName": "download-{scheduled_time:%Y%m%d}",
                        "jobQueue": queue,
                        "jobDefinition": consumer,
                        "containerOverrides": {
                            "environment": [{"name": "PARALLELISM", "value": "15"}]
                        },
                    },
                },
                {
                    "name": "nightly-import-publish",
                    "match": {"jobName": "nightly-[0-9]*", "jobQueue": queue},
                    "fromMessage": {"environment": {"UPSTREAM_JOB_ID": "jobId"}},
                    "submit": {
                        "jobName": "nightly-publish-{scheduled_time:%Y%m%d}",
                        "jobQueue": queue,
                        "jobDefinition": consumer,
                    },
                },
            ],
        },
        indent=1,
    )


def put_chain_rules(
    client: Callable[[str], Any], text: str, name: str = CHAIN_RULES_PARAMETER
) -> str:
    """Store a chain rule document in SSM (overwriting), as ``aws ssm put-parameter`` does."""
    client("ssm").put_parameter(Name=name, Value=text, Type="String", Overwrite=True)
    return name
