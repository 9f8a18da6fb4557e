"""`make demo` runs the whole flow as the README says: every stage, no AWS, no Docker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devtools.local_aws import LOCAL_CREDENTIALS
from tests.integration.invoke import ROOT

pytestmark = pytest.mark.integration


def test_make_demo_runs_every_stage_to_the_end() -> None:
    # When the demo runs as `make demo` runs it: its own moto server and Slack stand-in
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(LOCAL_CREDENTIALS, PYTHONPATH=f"{ROOT / 'functions'}{os.pathsep}{ROOT}")
    completed = subprocess.run(
        [sys.executable, "-m", "devtools.demo"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    output = completed.stdout

    # Then it finished, and each stage showed what a user would look for
    assert completed.returncode == 0, completed.stderr[-3000:]
    for seen in (
        "==> EventBridge Scheduler fires events/schedule.json into SubmitterFunction",
        '"name": "DOWNLOAD_MESSAGE"',  # the chained job got the message
        "==> The job's log group sends its error lines",
        "Slack received (saying how long it lasted): RESOLVED: OK: ",
        "In ALARM for 12 min",
        '+61 min: [\n      "demo-exports: missed",\n      "demo-reports: ok"\n    ]',
        "+66 min: nothing new",
        "Slack received: ERROR: Schedule did not fire: demo-exports - never fired",
        "==> The retrier gave up: dead-letter record (RetrierDeadLetterQueue)",
        "stops, app exited 4 (put aside): RetrierFunction",
        "a burst of 500 (50 per task, Max 8): desired count 8",
        "desired count 0: scale in 8 -> 0",
        "==> Done in ",
    ):
        assert seen in output, seen
    # and no redelivery posted twice
    assert output.count("new Slack posts: 0 (the first outcome is replayed)") >= 2
