"""Naive schedule submitter: ``import json, boto3``, a Batch client and a submit function."""

import json
from datetime import UTC, datetime
from typing import Any

import boto3

batch = boto3.client("batch")


def submit(job: dict[str, Any], scheduled_time: datetime, ids_by_name: dict[str, str]) -> str:
    name = job["jobName"].format(scheduled_time=scheduled_time)
    kwargs = {**job, "jobName": name}
    if "dependsOn" in job:
        kwargs["dependsOn"] = [
            {
                "jobId": dep.get("jobId")
                or ids_by_name[dep["jobName"].format(scheduled_time=scheduled_time)]
            }
            for dep in job["dependsOn"]
        ]
    response = batch.submit_job(**kwargs)
    ids_by_name[name] = response["jobId"]
    return response["jobId"]


def handler(event, context):
    scheduled = event.get("scheduledTime")
    scheduled_time = datetime.fromisoformat(scheduled) if scheduled else datetime.now(UTC)
    jobs = event.get("jobs", [event])
    ids_by_name: dict[str, str] = {}
    job_ids = [submit(job, scheduled_time, ids_by_name) for job in jobs]
    print(json.dumps({"message": "submitted", "jobIds": job_ids}))
    return {"jobIds": job_ids}
