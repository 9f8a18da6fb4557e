"""Naive chainer: an SNS message names the next job; submit it."""

import json

import boto3

batch = boto3.client("batch")


def handler(event, context):
    job_ids = []
    for record in event.get("Records", []):
        message = json.loads(record["Sns"]["Message"])
        response = batch.submit_job(
            jobName=message["jobName"],
            jobQueue=message["jobQueue"],
            jobDefinition=message["jobDefinition"],
        )
        job_ids.append(response["jobId"])
    print(json.dumps({"message": "chained", "jobIds": job_ids}))
    return {"jobIds": job_ids}
