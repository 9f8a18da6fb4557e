"""Naive task retrier: a stopped ECS task with a non-zero exit code is run again at once,
same cluster, task definition, overrides and subnet. With a delay queue in between (the
relaunch path), the queued message holds the RunTask call: run it."""

import json

import boto3

ecs = boto3.client("ecs")


def handler(event, context):
    if "Records" in event:
        for record in event["Records"]:
            ecs.run_task(**json.loads(record["body"])["request"])
        return {"retried": len(event["Records"])}
    detail = event["detail"]
    if all(container.get("exitCode") == 0 for container in detail.get("containers", [])):
        return {"retried": False}
    subnets = [
        item["value"]
        for attachment in detail.get("attachments", [])
        for item in attachment.get("details", [])
        if item["name"] == "subnetId"
    ]
    response = ecs.run_task(
        cluster=detail["clusterArn"],
        taskDefinition=detail["taskDefinitionArn"],
        launchType=detail.get("launchType", "FARGATE"),
        overrides=detail.get("overrides", {}),
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets}},
    )
    print(json.dumps({"message": "retried", "tasks": len(response.get("tasks", []))}))
    return {"retried": True}
