"""batchwire runs: firings and the jobs they started and chained, failures first."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from batchwire_cli.app import run
from batchwire_cli.output import progress
from batchwire_cli.runs import UNKNOWN, list_runs
from batchwire_cli.stack import LOCAL_STATE_VARIABLE, Target, read_stack, resolve_target
from devtools.local_aws import LocalAws, create_batch_workload, moto_server
from devtools.runs_table import runs_table_resource

ROOT = Path(__file__).resolve().parents[2]

#: The table as template.yaml declares it (keys pk/sk, TTL on expiresAt), named by an output.
RUNS_STACK = {
    "Resources": {"RunsTable": runs_table_resource()},
    "Outputs": {"RunsTableName": {"Value": {"Ref": "RunsTable"}}},
}
#: A stack deployed before run records existed.
OLD_STACK = {"Resources": {"FailedInvocationsQueue": {"Type": "AWS::SQS::Queue"}}}


@dataclass
class Batch:
    local: LocalAws
    queue: str

    def job(self, name: str, fail: bool = False) -> str:
        """A real moto Batch job, SUCCEEDED (or FAILED) at once; its id."""
        if fail:  # moto's Docker-free Batch fails the jobs submitted while this is set
            os.environ["MOTO_SIMPLE_BATCH_FAIL_AFTER"] = "0"
        try:
            return str(
                self.local.client("batch").submit_job(
                    jobName=name, jobQueue=self.queue, jobDefinition="feedstream-Broadbean"
                )["jobId"]
            )
        finally:
            os.environ.pop("MOTO_SIMPLE_BATCH_FAIL_AFTER", None)


@dataclass
class RunsStack:
    """A stack with a RunsTable, and the writes the submitter and chainer make to it."""

    local: LocalAws
    name: str
    table: str
    state: Path
    batch: Batch
    chains: dict[str, str] = field(default_factory=dict)  # schedule -> chain id

    def firing(self, schedule: str, scheduled: datetime, jobs: list[tuple[str, str]]) -> str:
        """Record a firing of ``schedule`` that submitted ``jobs`` (id, name); its chain id."""
        when = scheduled.astimezone(UTC).replace(microsecond=0)
        identity = f"arn:aws:scheduler:us-east-1:123456789012:schedule/g/{schedule}@{when:%FT%TZ}"
        chain_id = str(uuid.uuid4())
        self.chains[schedule] = chain_id
        self._put(
            {
                "pk": {"S": f"firing#{when:%Y-%m-%d}"},
                "sk": {"S": f"{when.isoformat()}#{identity}"},
                "kind": {"S": "firing"},
                "firing": {"S": identity},
                "schedule": {"S": schedule},
                "scheduledTime": {"S": when.isoformat()},
                "chainId": {"S": chain_id},
                "jobs": {
                    "L": [
                        {
                            "M": {
                                "jobId": {"S": job_id},
                                "jobName": {"S": name},
                                "jobQueue": {"S": "feeds"},
                                "index": {"N": str(index)},
                            }
                        }
                        for index, (job_id, name) in enumerate(jobs)
                    ]
                },
                "recordedAt": {"S": when.isoformat()},
            }
        )
        return chain_id

    def chained(self, chain_id: str, hop: int, job: tuple[str, str], upstream: str) -> None:
        """Record a job the chainer submitted at ``hop`` after ``upstream`` finished."""
        job_id, name = job
        self._put(
            {
                "pk": {"S": f"chain#{chain_id}"},
                "sk": {"S": f"{hop:04d}#{job_id}"},
                "kind": {"S": "chained"},
                "chainId": {"S": chain_id},
                "hop": {"N": str(hop)},
                "jobId": {"S": job_id},
                "jobName": {"S": name},
                "jobQueue": {"S": "feeds"},
                "upstream": {"S": upstream},
                "rule": {"S": f"after-{upstream[:8]}"},
                "recordedAt": {"S": datetime.now(UTC).replace(microsecond=0).isoformat()},
            }
        )

    def _put(self, item: dict[str, Any]) -> None:
        expires = int((datetime.now(UTC) + timedelta(days=35)).timestamp())
        self.local.client("dynamodb").put_item(
            TableName=self.table, Item={**item, "expiresAt": {"N": str(expires)}}
        )


@dataclass
class Night:
    """What a night of firings left in the table, by the name each job was given."""

    stack: RunsStack
    jobs: dict[str, str]  # job name -> job id


@pytest.fixture(scope="module")
def moto() -> Iterator[LocalAws]:
    with moto_server() as local:
        yield local


@pytest.fixture(scope="module")
def batch(moto: LocalAws) -> Batch:
    return Batch(moto, create_batch_workload(moto.client)["jobQueue"])


def create_stack(local: LocalAws, template: dict[str, Any]) -> str:
    name = f"cli-runs-{uuid.uuid4().hex[:8]}"  # moto keeps one state per process
    local.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


@pytest.fixture
def runs_stack(
    moto: LocalAws, batch: Batch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> RunsStack:
    """A new stack with an empty RunsTable, the command pointed at it as the local stack."""
    name = create_stack(moto, RUNS_STACK)
    outputs = moto.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    state = tmp_path / "local-stack.json"
    state.write_text(json.dumps({"endpoint": moto.endpoint_url, "stack": name}))
    monkeypatch.setenv(LOCAL_STATE_VARIABLE, str(state))
    return RunsStack(moto, name, outputs[0]["OutputValue"], state, batch)


@pytest.fixture
def night(runs_stack: RunsStack) -> Night:
    """Four firings: one whose chain failed at hop 1, two that did not fail, one 3 days old.

    - nightly-import, 3 h ago: import -> transform -> publish and index -> reindex (each
      chained job's upstream is a job id), all succeeded
    - hourly-report, 5 h ago: report and late-report succeeded; mail (chained with an SNS
      message id as upstream) FAILED
    - cleanup, 1 h ago: sweep, a job Batch no longer knows
    - weekly-archive, 3 days ago: archive succeeded
    """
    now = datetime.now(UTC)
    batch = runs_stack.batch
    jobs = {
        name: batch.job(name)
        for name in (
            "import",
            "transform",
            "publish",
            "index",
            "reindex",
            "report",
            "late-report",
            "archive",
        )
    }
    jobs["mail"] = batch.job("mail", fail=True)
    jobs["sweep"] = str(uuid.uuid4())  # never seen by this Batch: as if long gone

    chain = runs_stack.firing(
        "nightly-import",
        now - timedelta(hours=3),
        [(jobs["import"], "import"), (jobs["index"], "index")],
    )
    runs_stack.chained(chain, 1, (jobs["transform"], "transform"), upstream=jobs["import"])
    runs_stack.chained(chain, 1, (jobs["reindex"], "reindex"), upstream=jobs["index"])
    runs_stack.chained(chain, 2, (jobs["publish"], "publish"), upstream=jobs["transform"])
    chain = runs_stack.firing(
        "hourly-report",
        now - timedelta(hours=5),
        [(jobs["report"], "report"), (jobs["late-report"], "late-report")],
    )
    runs_stack.chained(chain, 1, (jobs["mail"], "mail"), upstream=str(uuid.uuid4()))
    runs_stack.firing("cleanup", now - timedelta(hours=1), [(jobs["sweep"], "sweep")])
    runs_stack.firing("weekly-archive", now - timedelta(days=3), [(jobs["archive"], "archive")])
    return Night(runs_stack, jobs)


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code = run([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""  # no progress written where stderr is not a terminal
    return json.loads(captured.out)


def by_schedule(listed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {firing["schedule"]: firing for firing in listed["firings"]}


# ------------------------------------------------------------------ what it lists


def test_a_failed_firing_comes_first_then_the_newest(
    night: Night, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = run_json(["runs"], capsys)

    # the failed chain (5 h ago) before the newer ones; the 3-day-old firing is outside 24h
    assert [f["schedule"] for f in listed["firings"]] == [
        "hourly-report",
        "cleanup",
        "nightly-import",
    ]
    assert [(f["outcome"], f["failed"]) for f in listed["firings"]] == [
        ("failed", True),
        ("unknown", False),
        ("succeeded", False),
    ]
    assert listed["stack"] == night.stack.name
    assert listed["table"] == night.stack.table


def test_chained_jobs_follow_their_firing_by_hop(
    night: Night, capsys: pytest.CaptureFixture[str]
) -> None:
    firings = by_schedule(run_json(["runs"], capsys))

    nightly = firings["nightly-import"]
    assert [(j["hop"], j["job_name"], j["status"]) for j in nightly["jobs"]] == [
        (0, "import", "SUCCEEDED"),
        (1, "transform", "SUCCEEDED"),
        (2, "publish", "SUCCEEDED"),
        (0, "index", "SUCCEEDED"),
        (1, "reindex", "SUCCEEDED"),
    ]
    assert nightly["chain_id"] == night.stack.chains["nightly-import"]
    assert nightly["jobs"][2]["upstream"] == night.jobs["transform"]
    # chained from a message, not a job: after the firing's own jobs, at its hop
    report = firings["hourly-report"]
    assert [(j["hop"], j["job_name"], j["status"]) for j in report["jobs"]] == [
        (0, "report", "SUCCEEDED"),
        (0, "late-report", "SUCCEEDED"),
        (1, "mail", "FAILED"),
    ]


def test_a_job_batch_no_longer_knows_is_unknown(
    night: Night, capsys: pytest.CaptureFixture[str]
) -> None:
    [sweep] = by_schedule(run_json(["runs"], capsys))["cleanup"]["jobs"]

    assert sweep["job_id"] == night.jobs["sweep"]
    assert sweep["status"] == UNKNOWN == "unknown (no longer in Batch)"
    assert sweep["duration_seconds"] is None


def test_since_excludes_older_firings_and_widens(
    night: Night, capsys: pytest.CaptureFixture[str]
) -> None:
    recent = run_json(["runs", "--since", "2h"], capsys)
    week = run_json(["runs", "--since", "7d"], capsys)

    assert [f["schedule"] for f in recent["firings"]] == ["cleanup"]
    assert [f["schedule"] for f in week["firings"]][-1] == "weekly-archive"
    assert len(week["firings"]) == 4
    since = datetime.fromisoformat(week["since"])
    until = datetime.fromisoformat(week["until"])
    assert until - since == timedelta(days=7)


def test_json_has_every_field_and_full_console_links(
    night: Night, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = run_json(["runs"], capsys)

    assert set(listed) == {"stack", "table", "region", "since", "until", "firings"}
    mail = by_schedule(listed)["hourly-report"]["jobs"][2]
    assert set(mail) == {
        "hop",
        "job_id",
        "job_name",
        "job_queue",
        "index",
        "rule",
        "upstream",
        "recorded_at",
        "status",
        "status_reason",
        "exit_code",
        "created_at",
        "started_at",
        "stopped_at",
        "duration_seconds",
        "log_stream",
        "console_url",
    }
    assert mail["console_url"] == (
        "https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1"
        f"#jobs/detail/{night.jobs['mail']}"
    )
    assert mail["log_stream"].endswith(night.jobs["mail"])  # moto's stream name
    assert mail["stopped_at"] is not None
    firing = by_schedule(listed)["hourly-report"]
    assert firing["firing"].startswith("arn:aws:scheduler:us-east-1:123456789012:schedule/g/")
    assert firing["chain_id"] == night.stack.chains["hourly-report"]
    assert firing["duration_seconds"] is not None
    assert datetime.fromisoformat(firing["scheduled_time"]).tzinfo is not None


def test_the_table_for_people(
    night: Night, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")

    assert run(["runs"]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"stack {night.stack.name} (the local stack at ")
    # failures first: the failed firing's block, with its failed job, before the others
    assert out.index("hourly-report") < out.index("cleanup") < out.index("nightly-import")
    assert "1 FAILED" in out
    assert "└─mail" in out
    assert "    └─transform" in out  # indented by hop
    assert "      └─publish" in out
    assert night.stack.chains["nightly-import"] in out
    assert "│ 1 unknown " in out  # the firing's count, then the job's status on two lines
    assert "│ unknown " in out
    assert "│ (no longer in Batch) " in out
    *table, footer = out.rstrip("\n").splitlines()
    assert not [line for line in table if "https://" in line]  # links shortened: "console"
    assert footer == (
        "console links: https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1"
        "#jobs/detail/<job id>"
    )
    assert "3 firing(s) since " in out
    assert ", 1 failed" in out


def test_on_a_terminal_console_links_are_clickable(
    night: Night, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich writes as to a terminal
    monkeypatch.setenv("COLUMNS", "200")

    assert run(["runs"]) == 0

    out = capsys.readouterr().out
    url = (
        "https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1"
        f"#jobs/detail/{night.jobs['mail']}"
    )
    assert f";{url}\x1b\\console\x1b]8;;\x1b\\" in out  # OSC 8: the word links to the job


def test_no_firings_in_the_window_says_so(
    runs_stack: RunsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["runs"]) == 0

    out = capsys.readouterr().out
    assert "no firings recorded since " in out
    assert runs_stack.table in out


def test_firings_either_side_of_utc_midnight(runs_stack: RunsStack) -> None:
    # Given firings on two UTC days (their records are in two partitions)
    job = runs_stack.batch.job("midnight")
    for schedule, scheduled in (
        ("late", datetime(2024, 12, 31, 23, 30, tzinfo=UTC)),
        ("early", datetime(2025, 1, 1, 0, 10, tzinfo=UTC)),
        ("later", datetime(2025, 1, 1, 0, 45, tzinfo=UTC)),
    ):
        runs_stack.firing(schedule, scheduled, [(job, schedule)])
    stack = read_stack(resolve_target(None))
    now = datetime(2025, 1, 1, 1, 0, tzinfo=UTC)

    # When runs are listed over 2 hours, and over 30 minutes
    both_days = list_runs(stack, timedelta(hours=2), now)
    half_hour = list_runs(stack, timedelta(minutes=30), now)

    # Then both days are read, and a window starting within a day starts there
    assert [f["schedule"] for f in both_days["firings"]] == ["later", "early", "late"]
    assert [f["schedule"] for f in half_hour["firings"]] == ["later"]


def test_more_jobs_than_one_describe_call_takes(
    runs_stack: RunsStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a firing that chained 120 jobs, and AWS's limit of 100 ids per DescribeJobs
    # (moto has none)
    chain = runs_stack.firing(
        "fan-out", datetime.now(UTC), [(runs_stack.batch.job("split"), "split")]
    )
    for number in range(120):
        job = (runs_stack.batch.job(f"part-{number}"), f"part-{number}")
        runs_stack.chained(chain, 1, job, upstream="message-1")
    calls: list[int] = []
    plain_client = Target.client

    def limited_client(self: Target, service: str) -> Any:
        client = plain_client(self, service)

        def at_most_100(params: dict[str, Any], **_: Any) -> None:
            calls.append(len(params["jobs"]))
            if len(params["jobs"]) > 100:
                raise AssertionError("DescribeJobs takes at most 100 job ids")

        client.meta.events.register("provide-client-params.batch.DescribeJobs", at_most_100)
        return client

    monkeypatch.setattr(Target, "client", limited_client)

    # When the runs are listed
    [firing] = run_json(["runs"], capsys)["firings"]

    # Then every job has its status from Batch
    assert len(firing["jobs"]) == 121
    assert {job["status"] for job in firing["jobs"]} == {"SUCCEEDED"}
    assert sorted(calls) == [21, 100]


def test_a_running_job_shows_its_time_so_far(
    runs_stack: RunsStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a firing whose job Batch reports RUNNING for 12 minutes (moto's jobs end at
    # once: Batch's answer is stood in for)
    job_id = runs_stack.batch.job("long-import")
    runs_stack.firing("slow", datetime.now(UTC), [(job_id, "long-import")])
    started = int((datetime.now(UTC) - timedelta(minutes=12, seconds=5)).timestamp() * 1000)
    running = {"jobId": job_id, "jobName": "long-import", "status": "RUNNING"}
    answer = {"jobs": [{**running, "createdAt": started, "startedAt": started}]}
    plain_client = Target.client

    def batch_says_running(self: Target, service: str) -> Any:
        client = plain_client(self, service)
        client.meta.events.register(
            "before-call.batch.DescribeJobs",
            lambda **_: (SimpleNamespace(status_code=200), answer),
        )
        return client

    monkeypatch.setattr(Target, "client", batch_says_running)
    monkeypatch.setenv("COLUMNS", "200")

    # When the runs are listed, for people and as JSON
    assert run(["runs"]) == 0
    out = capsys.readouterr().out
    [firing] = run_json(["runs"], capsys)["firings"]

    # Then the job and its firing are running, 12 minutes so far
    assert "│ RUNNING " in out
    assert out.count("12 min so far") == 2  # the job, and its firing
    assert firing["outcome"] == "running"
    assert firing["failed"] is False
    assert firing["jobs"][0]["stopped_at"] is None
    assert 12 * 60 <= firing["jobs"][0]["duration_seconds"] < 13 * 60


# ------------------------------------------------------------------ progress


def test_progress_names_what_is_being_read(night: Night) -> None:
    said: list[str] = []

    list_runs(read_stack(resolve_target(None)), timedelta(days=7), report=said.append)

    today = datetime.now(UTC).date().isoformat()
    assert f"reading the firings of {today} (day 8 of 8)" in said
    assert f"reading chain {night.stack.chains['hourly-report']} (firing " in " ".join(said)
    assert said[-1] == "asking Batch about 10 job(s): 1-10"


def test_progress_shows_on_a_terminal_only() -> None:
    terminal, pipe = io.StringIO(), io.StringIO()

    with progress("reading the runs", Console(file=terminal, force_terminal=True)) as report:
        report("reading chain c-1")
    with progress("reading the runs", Console(file=pipe, force_terminal=False)) as report:
        report("reading chain c-1")

    assert "reading chain c-1" in terminal.getvalue()
    assert pipe.getvalue() == ""


# ------------------------------------------------------------------ failures, usage


def test_a_stack_without_runs_table_predates_run_records(
    moto: LocalAws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = create_stack(moto, OLD_STACK)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)

    code = run(["--stack", name, "--region", "us-east-1", "runs"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith(f"batchwire: stack {name} has no RunsTable: it predates run records")


def test_a_stack_not_found_is_one_line(
    moto: LocalAws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)

    code = run(["runs", "--stack", "no-such-stack", "--region", "us-east-1"])

    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        "batchwire: stack no-such-stack not found in region us-east-1 at "
        f"{moto.endpoint_url} (check --stack, --region and --profile)\n"
    )


def test_no_credentials_is_one_line(
    moto: LocalAws,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)

    code = run(["runs", "--stack", "anything", "--region", "us-east-1"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "no AWS credentials" in err


def test_a_deleted_runs_table_is_named(
    runs_stack: RunsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    runs_stack.local.client("dynamodb").delete_table(TableName=runs_stack.table)

    assert run(["runs"]) == 1

    err = capsys.readouterr().err
    assert err == (
        f"batchwire: RunsTable {runs_stack.table} of stack {runs_stack.name} not found: "
        "deleted outside CloudFormation?\n"
    )


@pytest.mark.parametrize(
    ("since", "says"),
    [
        ("3x", "'3x' is not an age such as 30m, 24h or 7d"),
        ("0h", "'0h' covers no time: give 1m or more"),
        ("400d", "'400d' is more than 366d"),
        ("99999999d", "is not an age such as"),
    ],
)
def test_a_bad_since_is_a_usage_error(
    since: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["runs", "--since", since]) == 2

    err = capsys.readouterr().err
    assert says in err
    assert err.count("\n") == 1


def test_runs_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["runs", "--help"]) == 0

    out = " ".join(capsys.readouterr().out.split())
    assert "--since AGE" in out
    assert "default 24h" in out
    assert "--json" in out
    assert "--stack" in out
    assert "Firings with a FAILED job come first" in out


def test_runs_end_to_end_as_a_subprocess(night: Night) -> None:
    env = {
        **os.environ,
        LOCAL_STATE_VARIABLE: str(night.stack.state),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "cli"), os.environ.get("PYTHONPATH", "")]),
    }

    done = subprocess.run(
        [sys.executable, "-m", "batchwire_cli", "runs", "--since", "7d", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(json.loads(done.stdout)["firings"]) == 4
