"""batchwire schedules: every schedule of a deployed stack, its meaning, next firings, jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from batchwire_cli.app import run
from batchwire_cli.schedules import attach_last_firings, list_schedules
from batchwire_cli.stack import LOCAL_STATE_VARIABLE, read_stack, resolve_target
from devtools.local_aws import ACCOUNT_ID, LocalAws, moto_server
from tests.unit.test_cli_dlq import stderr_terminal

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS::")

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@dataclass
class Deployed:
    local: LocalAws
    name: str
    group: str
    physical_ids: dict[str, str]
    state: Path


def _create_schedule(
    local: LocalAws, group: str, name: str, expression: str, target: dict[str, Any], **extra: Any
) -> None:
    local.client("scheduler").create_schedule(
        Name=name,
        GroupName=group,
        ScheduleExpression=expression,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"RoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/scheduler", **target},
        **extra,
    )


@contextmanager
def stack_with_schedules(state: Path, name: str | None = None) -> Iterator[Deployed]:
    """The stack with ExampleWorkload=on, and schedules of known inputs in its group.

    The local deploy creates the template's group and schedules through moto's Scheduler
    API (moto's CloudFormation skips them; devtools/rehearse.py). This adds schedules whose
    inputs the tests know to the letter, prefixed with the stack's name, and one whose
    expression EventBridge would refuse.
    """
    from devtools.local_stack import deploy_local_stack
    from devtools.rehearse import example_network

    name = name or f"cli-sched-{uuid.uuid4().hex[:8]}"  # moto keeps one state per process
    with moto_server() as local:
        network = example_network(local)
        parameters = {
            "ExampleWorkload": "on",
            **network,
            "ScheduleTimezone": "Europe/Berlin",
            "ScheduleExpression": "cron(0 2 * * ? *)",
        }
        stack = deploy_local_stack(local, parameters, name)
        ids = stack.physical_ids
        group = ids["ScheduleGroup"]  # made by the local deploy, named by its output
        submitter = local.client("lambda").get_function(FunctionName=ids["SubmitterFunction"])[
            "Configuration"
        ]["FunctionArn"]
        _create_schedule(
            local,
            group,
            f"{name}-Broken",
            "cron(0 2 * * ? * *)",
            {"Arn": submitter, "Input": "{}"},
        )
        state.write_text(json.dumps({"endpoint": local.endpoint_url, "stack": name}))
        yield Deployed(local, name, group, ids, state)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    with stack_with_schedules(tmp_path_factory.mktemp("state") / "local-stack.json") as stack:
        yield stack


@pytest.fixture
def on_local_stack(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Deployed:
    monkeypatch.setenv(LOCAL_STATE_VARIABLE, str(deployed.state))
    return deployed


@pytest.fixture
def rows(on_local_stack: Deployed) -> dict[str, dict[str, Any]]:
    stack = read_stack(resolve_target(None))
    return {
        row["name"].removeprefix(f"{on_local_stack.name}-"): row
        for row in list_schedules(stack, NOW)
    }


def test_every_schedule_of_the_stack_is_listed(rows: dict[str, dict[str, Any]]) -> None:
    # the six in the group (the template's five and the test's unreadable one), and the
    # stack's one rule with a ScheduleExpression (the event pattern rules of the chainer,
    # notifier and retrier are not schedules)
    assert {name.split("-")[0] for name in rows} == {
        "SubmitterFunctionNightlySchedule",
        "ScalerFunctionEveryMinute",
        "WatchFunctionEveryFiveMinutes",
        "ExampleNightlySchedule",
        "ExampleTaskSchedule",
        "Broken",
        "ExampleCronRule",
    }
    assert sum(row["kind"] == "scheduler" for row in rows.values()) == 6
    [rule] = [row for row in rows.values() if row["kind"] == "rule"]
    assert rule["logical_id"] == "ExampleCronRule"


def test_a_schedule_in_its_zone_with_its_jobs(rows: dict[str, dict[str, Any]]) -> None:
    nightly = rows["SubmitterFunctionNightlySchedule"]

    assert nightly["expression"] == "cron(0 2 * * ? *)"
    assert nightly["timezone"] == "Europe/Berlin"
    assert "Europe/Berlin" in nightly["in_words"]
    assert nightly["next_firings"] == [
        "2026-01-11T02:00:00+01:00",
        "2026-01-12T02:00:00+01:00",
        "2026-01-13T02:00:00+01:00",
    ]
    assert nightly["state"] == "DISABLED"
    # the template's input, as the Schedule* parameters fill it
    assert nightly["jobs"] == [
        {
            "jobName": "nightly-{scheduled_time:%Y%m%d}",
            "jobQueue": "feeds",
            "jobDefinition": "feedstream-Broadbean",
        }
    ]


def test_an_ecs_task_schedule_names_the_family(
    on_local_stack: Deployed, rows: dict[str, dict[str, Any]]
) -> None:
    task = rows["ExampleTaskSchedule"]

    family = on_local_stack.physical_ids["ExampleTaskDefinition"].rsplit("/", 1)[-1].split(":")[0]
    assert task["submits"] == [f"ECS task {family}"]
    assert task["jobs"] == []
    assert task["next_firings"][0] == "2026-01-11T03:00:00+01:00"


def test_a_cron_rule_runs_in_utc_with_its_constant_request(
    on_local_stack: Deployed, rows: dict[str, dict[str, Any]]
) -> None:
    [rule] = [row for row in rows.values() if row["kind"] == "rule"]

    assert rule["expression"] == "cron(30 2 * * ? *)"
    assert rule["timezone"] == "UTC"
    assert rule["next_firings"][0] == "2026-01-11T02:30:00+00:00"
    assert rule["state"] == "ENABLED"
    assert rule["jobs"] == [
        {
            "jobName": "example-cron",
            "jobQueue": on_local_stack.physical_ids["ExampleJobQueue"],
            "jobDefinition": f"{on_local_stack.name}-example-import",
        }
    ]


def test_an_unreadable_expression_is_shown_not_fatal(rows: dict[str, dict[str, Any]]) -> None:
    broken = rows["Broken"]

    assert broken["expression_error"]
    assert broken["next_firings"] == []
    assert broken["in_words"] == ""


def test_schedules_json_is_complete(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["schedules", "--json"]) == 0

    captured = capsys.readouterr()
    assert captured.err == ""  # no progress written where stderr is not a terminal
    listed = json.loads(captured.out)
    assert listed["stack"] == on_local_stack.name
    assert listed["schedule_group"] == on_local_stack.group
    assert len(listed["schedules"]) == 7  # six in the group, one cron rule
    for row in listed["schedules"]:
        assert set(row) == {
            "kind",
            "name",
            "logical_id",
            "expression",
            "in_words",
            "expression_error",
            "timezone",
            "next_firings",
            "state",
            "jobs",
            "submits",
            "last_firing",
        }


def test_schedules_table(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")

    assert run(["schedules"]) == 0

    out = capsys.readouterr().out
    assert f"stack {on_local_stack.name}" in out
    assert "ECS task" in out
    assert "example-cron on " in out
    assert "CET" in out  # firings printed in the schedule's zone
    assert "unreadable:" in out


def test_schedules_end_to_end_as_a_subprocess(on_local_stack: Deployed) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "cli"), os.environ.get("PYTHONPATH", "")]),
    }

    done = subprocess.run(
        [sys.executable, "-m", "batchwire_cli", "schedules", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # a pipe: no progress
    assert len(json.loads(done.stdout)["schedules"]) == 7


def test_reading_the_schedules_says_which_one_it_is_at(on_local_stack: Deployed) -> None:
    stack = read_stack(resolve_target(None))
    said: list[str] = []

    rows = list_schedules(stack, NOW, report=said.append)
    attach_last_firings(stack, rows, NOW, report=said.append)

    names = sorted(row["name"] for row in rows if row["kind"] == "scheduler")
    assert said[0] == f"listing the schedules of group {on_local_stack.group}"
    assert said[1 : len(names) + 1] == [
        f"reading schedule {number} of 6: {name}" for number, name in enumerate(names, start=1)
    ]
    assert any(text.endswith(": ExampleCronRule") for text in said if "rule" in text)
    assert "reading the firings of 2026-01-10 (day 9 of 9)" in said


def test_on_a_terminal_schedules_shows_what_it_reads_and_json_stays_clean(
    on_local_stack: Deployed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given what the command reads, in order
    stack = read_stack(resolve_target(None))
    said: list[str] = []
    attach_last_firings(stack, list_schedules(stack, report=said.append), report=said.append)
    terminal = stderr_terminal(monkeypatch)

    # When it runs on a terminal
    assert run(["schedules", "--json"]) == 0

    # Then the terminal is left with its last step, and stdout is the JSON alone
    assert said[-1] in terminal.getvalue()
    assert len(json.loads(capsys.readouterr().out)["schedules"]) == 7


def test_without_a_group_output_rules_are_still_listed(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # a stack without ScheduleGroupName (moto's, or an older template): the rules only
    stack = read_stack(resolve_target(None))
    stack.outputs.pop("ScheduleGroupName")

    listed = list_schedules(stack, NOW)

    assert [row["kind"] for row in listed] == ["rule"]


def test_each_schedule_shows_its_last_recorded_firing_and_its_jobs(
    on_local_stack: Deployed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the example's nightly schedule fired yesterday (its input, as Scheduler fills it)
    from datetime import timedelta

    from devtools.watched import firing_event
    from tests.integration.invoke import invoke_stack

    name = f"{on_local_stack.name}-ExampleNightlySchedule"
    schedule = on_local_stack.local.client("scheduler").get_schedule(
        Name=name, GroupName=on_local_stack.group
    )
    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)
    event = tmp_path / "firing.json"
    event.write_text(json.dumps(firing_event(schedule, yesterday)))
    fired = invoke_stack(on_local_stack.local, on_local_stack.name, "SubmitterFunction", event)
    assert fired.returncode == 0, fired.stderr[-2000:]

    # When the schedules are listed
    assert run(["schedules", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["schedules"]}

    # Then that schedule's row holds the firing, its jobs and their status; others have none
    last = rows[name]["last_firing"]
    assert last["scheduled_time"] == yesterday.isoformat()
    assert last["chain_id"] == fired.result["chainId"]
    assert [(job["job_name"], job["hop"]) for job in last["jobs"]] == [
        (job["jobName"], 0) for job in fired.result["jobs"]
    ]
    assert all(job["status"] for job in last["jobs"])
    assert rows["WatchFunctionEveryFiveMinutes"]["last_firing"] is None
