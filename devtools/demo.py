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
from devtools.template import ROOT, TEMPLATE

EVENTS = ROOT / "events"


@dataclass
class DemoRun:
    """What every stage can use: the local AWS, the resources made from the template."""

    local: LocalAws
    resources: dict[str, str]
    workload: dict[str, str] = field(default_factory=dict)
    extra_environ: dict[str, str] = field(default_factory=dict)

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


STAGES: list[Callable[[DemoRun], None]] = [stage_schedule]


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    started = time.monotonic()
    say("Starting a local AWS (moto server on 127.0.0.1)")
    with moto_server() as local:
        resources = provision_template_resources(local, TEMPLATE)
        workload = create_batch_workload(local.client)
        show("endpoint", local.endpoint_url)
        show("from template.yaml", sorted(resources))
        run = DemoRun(local=local, resources=resources, workload=workload)
        for stage in STAGES:
            stage(run)
    say(f"Done in {time.monotonic() - started:.1f} s; the local AWS is stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
