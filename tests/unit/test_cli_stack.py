"""The batchwire command: which stack it reads, its packaging, --help and exit codes."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchwire_cli.app import run
from batchwire_cli.stack import LOCAL_STATE_VARIABLE, NO_STACK, read_stack, resolve_target
from devtools.local_aws import LocalAws, moto_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def moto() -> Iterator[LocalAws]:
    with moto_server() as local:
        yield local


@pytest.fixture(scope="module")
def small_stack(moto: LocalAws) -> str:
    """A stack with one queue: enough to resolve and read (moto's state is per process)."""
    name = f"cli-stack-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {"FailedInvocationsQueue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"FailedInvocationsQueueUrl": {"Value": {"Ref": "FailedInvocationsQueue"}}},
    }
    moto.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


def write_state(directory: Path, stack: str, endpoint: str) -> Path:
    state = directory / ".aws-sam" / "local-stack.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"endpoint": endpoint, "stack": stack}))
    return state


# ------------------------------------------------------------------ stack resolution


def test_local_state_names_the_stack_and_endpoint(
    moto: LocalAws, small_stack: str, tmp_path: Path
) -> None:
    # Given make local-stack's state file in a parent of the current directory
    write_state(tmp_path, small_stack, moto.endpoint_url)
    below = tmp_path / "functions" / "batchwire"
    below.mkdir(parents=True)

    # When the stack is resolved without --stack from below it
    target = resolve_target(None, environ={}, cwd=below)
    stack = read_stack(target)

    # Then it is the local stack, read at the local endpoint, its resources mapped
    assert target.stack_name == small_stack
    assert target.endpoint_url == moto.endpoint_url
    queue_url = stack.physical_id("FailedInvocationsQueue")
    assert queue_url is not None
    assert f"/{small_stack}-FailedInvocationsQueue-" in queue_url
    assert stack.outputs["FailedInvocationsQueueUrl"] == queue_url
    assert stack.physical_id("NoSuchResource") is None


def test_stack_option_reads_where_boto3_points(
    moto: LocalAws, small_stack: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given AWS_ENDPOINT_URL set, and a local state naming another stack
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)
    monkeypatch.setenv(LOCAL_STATE_VARIABLE, str(write_state(tmp_path, "other", "http://x")))

    # When --stack names the stack
    target = resolve_target(small_stack, region="us-east-1")
    stack = read_stack(target)

    # Then --stack wins, and boto3's own endpoint setting is honoured
    assert target.endpoint_url is None
    assert stack.name == small_stack
    assert "FailedInvocationsQueue" in stack.resources


def test_stack_not_found_names_it(
    moto: LocalAws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)

    code = run(["--stack", "no-such-stack-here", "dlq"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "stack no-such-stack-here not found in region us-east-1" in err


def test_no_state_and_no_stack_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a directory without .aws-sam/local-stack.json above it
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LOCAL_STATE_VARIABLE, raising=False)

    code = run(["schedules"])

    assert code == 1
    assert capsys.readouterr().err == f"batchwire: {NO_STACK}\n"
    assert "run `make local-stack`, or give --stack NAME" in NO_STACK


def test_unreadable_state_file_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "local-stack.json"
    state.write_text("{not json")
    monkeypatch.setenv(LOCAL_STATE_VARIABLE, str(state))

    assert run(["dlq"]) == 1
    assert f"{state}: not a local stack state" in capsys.readouterr().err


def test_stale_local_state_says_the_stack_is_not_running(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a state file left by a local stack that has stopped (nothing listens there)
    from devtools.local_aws import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(LOCAL_STATE_VARIABLE, str(write_state(tmp_path, "gone", dead)))

    assert run(["dlq"]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach {dead}" in err
    assert "is `make local-stack` still running?" in err


def test_no_credentials_is_one_line(
    moto: LocalAws,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given no credentials anywhere boto3 looks
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)

    code = run(["--stack", "anything", "dlq"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "no AWS credentials" in err


def test_unknown_profile_is_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--stack", "s", "--profile", f"nobody-{uuid.uuid4().hex}", "dlq"]) == 1
    assert "AWS profile 'nobody-" in capsys.readouterr().err


# ------------------------------------------------------------------ --help and usage


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "failure queues and its schedules"),
        (["dlq"], "non-empty queues first"),
        (["dlq", "show"], "Nothing is deleted or consumed"),
        (["schedules"], "next three firings"),
    ],
)
def test_every_command_has_help(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([*argv, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert says in out
    assert "--json" in out
    assert "--stack" in out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["nonsense"], "invalid choice: 'nonsense'"),
        (["dlq", "--bogus"], "unrecognized arguments: --bogus"),
        (["dlq", "show"], "the following arguments are required: QUEUE"),
        (["dlq", "show", "chain", "--max", "0"], "0 is not 1 or more"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert says in err
    assert err.count("\n") == 1


def test_unknown_queue_name_is_a_usage_error_before_any_aws_call(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # no stack at all: the name is refused first
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LOCAL_STATE_VARIABLE, raising=False)

    assert run(["dlq", "show", "chains"]) == 2
    err = capsys.readouterr().err
    assert "no failure queue 'chains'" in err
    assert "failed-invocations, scheduler, chain, retrier" in err


def test_options_may_come_before_or_after_the_command(
    moto: LocalAws,
    small_stack: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)

    assert run(["--stack", small_stack, "--json", "dlq"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert run(["dlq", "--stack", small_stack, "--json"]) == 0
    after = json.loads(capsys.readouterr().out)

    assert before["stack"] == after["stack"] == small_stack
    assert [q["queue"] for q in before["queues"]] == ["FailedInvocationsQueue"]


# ------------------------------------------------------------------ end to end, packaging


def cli_subprocess(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(ROOT / "cli"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "batchwire_cli", *argv],
        env={**env, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_m_reads_the_local_stack(moto: LocalAws, small_stack: str, tmp_path: Path) -> None:
    state = write_state(tmp_path, small_stack, moto.endpoint_url)
    env = {**os.environ, LOCAL_STATE_VARIABLE: str(state)}

    done = cli_subprocess("dlq", "--json", env=env)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["queues"][0]["queue"] == "FailedInvocationsQueue"


def test_python_m_exit_codes(tmp_path: Path) -> None:
    env = {**os.environ, LOCAL_STATE_VARIABLE: str(tmp_path / "missing.json")}

    assert cli_subprocess("--help", env=env).returncode == 0
    usage = cli_subprocess("dlq", "show", env=env)
    failure = cli_subprocess("schedules", env=env)

    assert usage.returncode == 2
    assert failure.returncode == 1
    assert failure.stderr == f"batchwire: {NO_STACK}\n"


def test_console_script_is_installed_in_the_venv() -> None:
    # make test / make demo install requirements-dev.txt, whose `-e .` installs the command
    script = ROOT / ".venv" / "bin" / "batchwire"
    if not (ROOT / ".venv").is_dir():
        pytest.skip("no .venv here: the Makefile creates it")
    assert script.is_file(), "run `.venv/bin/pip install -e .` (make test does it)"
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("batchwire ")


def test_requirements_dev_installs_the_command() -> None:
    lines = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert "-e ." in lines
    assert any(line.startswith("rich==") for line in lines)


def test_functions_never_import_the_cli() -> None:
    # the CLI is outside the CodeUri: a Lambda importing it would fail at cold start
    offenders = []
    for path in sorted((ROOT / "functions").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            if any(n == "batchwire_cli" or n.startswith("batchwire_cli.") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
    assert not (ROOT / "functions" / "batchwire_cli").exists()
    assert not (ROOT / "cli" / "batchwire").exists()  # would shadow the Lambda core package
