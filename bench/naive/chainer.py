"""Naive chainer: a finished job's message arrives (SNS, or SQS); submit the next job with
the message in its environment."""

import json
import os

import boto3

batch = boto3.client("batch")

JOB_QUEUE = os.environ.get("JOB_QUEUE", "feeds")
JOB_DEFINITION = os.environ.get("JOB_DEFINITION", "feedstream-Broadbean")


def handler(event, context):
    job_ids = []
    for record in event.get("Records", []):
        message = record["Sns"]["Message"] if "Sns" in record else record["body"]
        response = batch.submit_job(
            jobName="download",
            jobQueue=JOB_QUEUE,
            jobDefinition=JOB_DEFINITION,
            containerOverrides={"environment": [{"name": "DOWNLOAD_MESSAGE", "value": message}]},
        )
        job_ids.append(response["jobId"])
    print(json.dumps({"message": "chained", "jobIds": job_ids}))
    return {"jobIds": job_ids}
