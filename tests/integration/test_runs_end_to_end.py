"""`batchwire runs` on a deployed stack: a schedule's firing, its job, and the job the
chainer started when it succeeded, as the submitter and the chainer recorded them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.local_aws import feed_chain_rules, put_chain_rules
from tests.integration.invoke import ROOT, SKIPPED_TYPES, LocalStack, deploy_stack, invoke

pytestmark = [pytest.mark.integration, SKIPPED_TYPES]


def _succeeded(batch: Any, job_id: str) -> dict[str, Any]:
    """The job once moto's Batch ran it, as the Job State Change event's detail holds it."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        [job] = batch.describe_jobs(jobs=[job_id])["jobs"]
        if job["status"] == "SUCCEEDED":
            return dict(job)
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not succeed in moto")


def test_runs_shows_a_firing_its_job_and_the_job_chained_from_it(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    # Given a stack whose chain rule starts nightly-publish when a nightly job succeeds
    rules = put_chain_rules(
        local_stack.client,
        feed_chain_rules(queue="feeds", consumer="feedstream-Broadbean"),
        f"/batchwire/it/runs-{uuid.uuid4().hex[:8]}/chain-rules",
    )
    stack = deploy_stack(
        local_stack.local, {"JobQueueNames": "feeds", "ChainRulesParameterName": rules}
    )
    scheduled = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    firing = {
        "schedule": f"arn:aws:scheduler:us-east-1:123456789012:schedule/g/{stack.name}-nightly",
        "scheduledTime": scheduled.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "jobs": [
            {
                "jobName": "nightly-{scheduled_time:%Y%m%d}",
                "jobQueue": "feeds",
                "jobDefinition": "feedstream-Broadbean",
            }
        ],
    }
    event = tmp_path / "firing.json"
    event.write_text(json.dumps(firing))

    # When the schedule fires, its job succeeds and EventBridge tells the chainer
    fired = invoke(stack, "SubmitterFunction", event)
    assert fired.returncode == 0, fired.stderr[-2000:]
    [head] = fired.result["jobs"]
    detail = _succeeded(local_stack.client("batch"), head["jobId"])
    succeeded = tmp_path / "succeeded.json"
    succeeded.write_text(
        json.dumps(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Batch Job State Change",
                "source": "aws.batch",
                "account": "123456789012",
                "time": scheduled.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": "us-east-1",
                "resources": [detail["jobArn"]],
                "detail": detail,
            }
        )
    )
    chained = invoke(stack, "ChainerFunction", succeeded)
    assert chained.returncode == 0, chained.stderr[-2000:]

    # and an operator asks what ran in the last two hours
    command = ["runs", "--since", "2h", "--json"]
    listed = subprocess.run(
        [sys.executable, "-m", "batchwire_cli", "--stack", stack.name, *command],
        env={
            **local_stack.local.environ,
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": f"{ROOT / 'cli'}:{ROOT / 'functions'}",
        },
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=120,
    )

    # Then the firing is there with its job at hop 0 and the publish job under it at hop 1
    assert listed.returncode == 0, listed.stderr[-2000:]
    runs = json.loads(listed.stdout)
    [run] = [r for r in runs["firings"] if r["firing"].startswith(firing["schedule"])]
    assert run["chain_id"] == fired.result["chainId"]
    assert [(job["job_name"], job["hop"]) for job in run["jobs"]] == [
        (f"nightly-{scheduled:%Y%m%d}", 0),
        (f"nightly-publish-{scheduled:%Y%m%d}", 1),
    ]
    assert run["jobs"][1]["upstream"] == head["jobId"]
    assert run["jobs"][1]["rule"] == "nightly-import-publish"
