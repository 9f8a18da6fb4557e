"""Naive scaler: every minute, each service's desired count from its queue's backlog."""

import json
import math
import os

import boto3

sqs = boto3.client("sqs")
ecs = boto3.client("ecs")

QUEUES = [name for name in os.environ.get("SCALER_QUEUES", "").split(",") if name]
SERVICES = [name for name in os.environ.get("SCALER_SERVICES", "").split(",") if name]
PER_TASK = int(os.environ.get("SCALER_MESSAGES_PER_TASK", "50"))
MAX_TASKS = int(os.environ.get("SCALER_MAX_TASKS", "8"))


def handler(event, context):
    counts = {}
    for queue, service in zip(QUEUES, SERVICES, strict=True):
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        backlog = sum(int(value) for value in attributes.values())
        desired = min(MAX_TASKS, math.ceil(backlog / PER_TASK))
        cluster, name = service.split("/", 1)
        ecs.update_service(cluster=cluster, service=name, desiredCount=desired)
        counts[service] = desired
    print(json.dumps({"message": "scaled", "desired": counts}))
    return counts
