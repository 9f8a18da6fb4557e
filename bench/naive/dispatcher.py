"""Naive queue dispatcher: one RunTask per SQS message, the message body in the container's
environment (as ``Message``), configured by the function's environment. No SNS unwrapping,
no capacity limit, no idempotency, no size check, no partial batch failures: a message
whose task does not start fails the whole batch, so SQS delivers all of it again."""

import json
import os

import boto3

ecs = boto3.client("ecs")

CLUSTER = os.environ.get("DISPATCHER_CLUSTER", "batch-jobs")
TASK_DEFINITION = os.environ.get("DISPATCHER_TASK_DEFINITION", "nightly-report")
CONTAINER = os.environ.get("DISPATCHER_CONTAINER", "app")
SUBNETS = os.environ.get("DISPATCHER_SUBNETS", "").split(",")
SECURITY_GROUPS = os.environ.get("DISPATCHER_SECURITY_GROUPS", "").split(",")


def handler(event, context):
    task_arns = []
    for record in event["Records"]:
        response = ecs.run_task(
            cluster=CLUSTER,
            taskDefinition=TASK_DEFINITION,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": SUBNETS, "securityGroups": SECURITY_GROUPS}
            },
            overrides={
                "containerOverrides": [
                    {
                        "name": CONTAINER,
                        "environment": [{"name": "Message", "value": record["body"]}],
                    }
                ]
            },
        )
        if not response["tasks"]:
            raise RuntimeError(f"RunTask started no task: {response['failures']}")
        task_arns.append(response["tasks"][0]["taskArn"])
    print(json.dumps({"message": "dispatched", "taskArns": task_arns}))
    return {"taskArns": task_arns}
