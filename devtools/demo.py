"""`make demo`: the whole batchwire flow on this machine, no AWS account and no Docker.

An embedded moto server stands in for AWS and a local HTTP server for Slack; each function
runs through the same path as ``make invoke`` with the events in ``events/``. Each stage
is one function in STAGES: adding a stage is writing a function and listing it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.local_aws import (
    LocalAws,
    create_batch_workload,
    moto_server,
    provision_template_resources,
)
from devtools.slack_receiver import SlackReceiver, slack_receiver
from devtools.template import ROOT, TEMPLATE

EVENTS = ROOT / "events"


@dataclass
class DemoRun:
    """What every stage can use: the local AWS, the resources made from the template.

    ``slack`` is the local Slack stand-in; ``notifier_params()`` gives the PARAMS that point
    NotifierFunction at it, so any stage can send a notification through the notifier.
    """

    local: LocalAws
    resources: dict[str, str]
    workload: dict[str, str] = field(default_factory=dict)
    extra_environ: dict[str, str] = field(default_factory=dict)
    slack: SlackReceiver | None = None
    slack_secret_arn: str = ""

    def notifier_params(self) -> str:
        """``SlackWebhookSecretArn=...``: the stand-in's URL, stored once in Secrets Manager."""
        if self.slack is None:
            raise RuntimeError("no Slack stand-in is running for this demo")
        if not self.slack_secret_arn:
            self.slack_secret_arn = self.local.client("secretsmanager").create_secret(
                Name="batchwire/slack-webhook", SecretString=self.slack.url
            )["ARN"]
        return f"SlackWebhookSecretArn={self.slack_secret_arn}"

    def invoke(self, function: str, event: Path | dict[str, Any], params: str = "") -> Any:
        """Run a function as ``make invoke`` does; return its result (raise if it failed)."""
        if isinstance(event, dict):
            path = ROOT / ".venv" / f"demo-{function}.json"
            path.write_text(json.dumps(event))
            event = path
        completed = subprocess.run(
            [sys.executable, "-m", "devtools.invoke", function, str(event), "--params", params],
            env={**os.environ, **self.local.environ, **self.extra_environ},
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"{function} failed:\n{completed.stderr[-3000:]}")
        return json.loads(completed.stdout)


def say(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def show(label: str, value: Any) -> None:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
    print(f"    {label}: " + text.replace("\n", "\n    "), flush=True)


def stage_schedule(run: DemoRun) -> None:
    """A schedule fires; the submitter submits its jobs; the same firing again is absorbed."""
    say("EventBridge Scheduler fires events/schedule.json into SubmitterFunction")
    first = run.invoke("SubmitterFunction", EVENTS / "schedule.json")
    batch = run.local.client("batch")
    for job in first["jobs"]:
        detail = batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]
        show(
            "submitted",
            {
                "jobName": detail["jobName"],
                "jobId": detail["jobId"],
                "jobQueue": detail["jobQueue"],
                "status": detail["status"],
                "dependsOn": detail.get("dependsOn", []),
                "environment": detail.get("container", {}).get("environment", []),
                "command": detail.get("container", {}).get("command", []),
            },
        )
    say("Scheduler delivers the same firing again (at-least-once delivery)")
    second = run.invoke("SubmitterFunction", EVENTS / "schedule.json")
    same = [job["jobId"] for job in second["jobs"]] == [job["jobId"] for job in first["jobs"]]
    count = len(batch.list_jobs(jobQueue="feeds", jobStatus="SUCCEEDED")["jobSummaryList"])
    show("duplicate absorbed", f"{same} (same job ids returned; {count} jobs in the queue)")
    say("The classic cron rule fires its constant input (events/cron-constant.json)")
    cron = run.invoke("SubmitterFunction", EVENTS / "cron-constant.json")
    show("submitted", cron["jobs"])


def block_kit_builder_link(payload: dict[str, Any]) -> str:
    """A link that opens ``payload``'s blocks in Slack's Block Kit Builder for a preview."""
    blocks = json.dumps({"blocks": payload["blocks"]}, separators=(",", ":"))
    return "https://app.slack.com/block-kit-builder/#" + urllib.parse.quote(blocks, safe="")


def stage_notify(run: DemoRun) -> None:
    """A failing job's error lines and a failed task start reach the local Slack stand-in."""
    assert run.slack is not None
    say("The job's log group sends its error lines (events/cloudwatch-logs-batch-traceback.json)")
    before = len(run.slack.accepted)
    params = run.notifier_params()
    result = run.invoke("NotifierFunction", EVENTS / "cloudwatch-logs-batch-traceback.json", params)
    show("notifier", result["alerts"])
    message = run.slack.accepted[before]
    show("Slack received", message)
    show("preview in Block Kit Builder", block_kit_builder_link(message))
    say("CloudWatch Logs delivers the same batch again (at-least-once delivery)")
    run.invoke("NotifierFunction", EVENTS / "cloudwatch-logs-batch-traceback.json", params)
    reposted = len(run.slack.accepted) - before - 1
    show("new Slack posts", f"{reposted} (the first outcome is replayed)")
    say("An ECS task cannot pull its image (events/ecs-task-stopped-cannotpull.json)")
    run.invoke("NotifierFunction", EVENTS / "ecs-task-stopped-cannotpull.json", params)
    show("Slack received", run.slack.accepted[-1]["text"])


STAGES: list[Callable[[DemoRun], None]] = [stage_schedule, stage_notify]


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    started = time.monotonic()
    say("Starting a local AWS (moto server on 127.0.0.1)")
    with moto_server() as local, slack_receiver() as slack:
        resources = provision_template_resources(local, TEMPLATE)
        workload = create_batch_workload(local)
        show("endpoint", local.endpoint_url)
        show("Slack stand-in", slack.url)
        show("from template.yaml", sorted(resources))
        run = DemoRun(local=local, resources=resources, workload=workload, slack=slack)
        for stage in STAGES:
            stage(run)
    say(f"Done in {time.monotonic() - started:.1f} s; the local AWS and Slack are stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
