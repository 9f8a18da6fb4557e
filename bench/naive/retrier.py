"""Naive task retrier: a stopped ECS task with a non-zero exit code is run again."""

import json

import boto3

ecs = boto3.client("ecs")


def handler(event, context):
    detail = event["detail"]
    if all(container.get("exitCode") == 0 for container in detail.get("containers", [])):
        return {"retried": False}
    response = ecs.run_task(
        cluster=detail["clusterArn"],
        taskDefinition=detail["taskDefinitionArn"],
        launchType=detail.get("launchType", "FARGATE"),
    )
    print(json.dumps({"message": "retried", "tasks": len(response.get("tasks", []))}))
    return {"retried": True}
