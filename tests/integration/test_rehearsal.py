"""`make rehearse` deploys what CloudFormation receives, and fails on what a deploy would break.

Each test runs the rehearsal as `make rehearse` does, in a process of its own: moto keeps
one state per process, and a stack must not meet another test's resources.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools.template import ROOT, load_template

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def rehearse(template: dict[str, Any], directory: Path, variant: str) -> tuple[int, str]:
    """Run the rehearsal on ``template`` (written as JSON, which SAM reads like YAML)."""
    path = directory / "template.json"
    path.write_text(json.dumps(template))
    completed = subprocess.run(
        [sys.executable, "-m", "devtools.rehearse", "--template", str(path),
         "--variant", variant, "--no-checkov"],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=300,
    )  # fmt: skip
    return completed.returncode, completed.stdout + completed.stderr


def submit_statement(template: dict[str, Any]) -> dict[str, Any]:
    policies = template["Resources"]["SubmitterFunction"]["Properties"]["Policies"]
    statements: list[dict[str, Any]] = [
        s for p in policies for s in p["Statement"] if s.get("Action") == "batch:SubmitJob"
    ]
    [statement] = statements
    return statement


def test_the_template_deploys_and_is_wired_as_it_means(template: dict[str, Any], tmp_path: Path):
    # Given the template as it is, with ExampleWorkload=on (the most resources)
    # When it is rehearsed
    code, report = rehearse(template, tmp_path, "example")

    # Then the stack is created and every check passes
    assert code == 0, report
    assert "stack batchwire-rehearsal-example: CREATE_COMPLETE" in report
    assert "cfn-lint + serverless rules on the transformed template: 0 findings" in report
    assert "7 handlers imported" in report
    assert "handlers imported with their layers (DependenciesLayer)" in report
    assert "worked around for moto (1x): AWS::Lambda::LayerVersion" in report
    # and the types moto cannot create are named by type and count, not silently dropped
    assert "5  AWS::Scheduler::Schedule" in report
    assert "rehearsal passed" in report


def test_a_function_as_a_join_delimiter_fails_naming_the_role(
    template: dict[str, Any], tmp_path: Path
):
    # Given the submitter's SubmitJob statement joined with a !Sub delimiter
    broken = copy.deepcopy(template)
    parts = submit_statement(broken)["Resource"]["Fn::Split"][1]["Fn::Join"][1]
    parts[1]["Fn::Join"][0] = {"Fn::Sub": ",arn:${AWS::Partition}:batch:*:*:job-queue/"}

    # When it is rehearsed
    code, report = rehearse(broken, tmp_path, "default")

    # Then the rehearsal fails, naming the generated role and the rule CloudFormation applies
    assert code == 1
    assert "FAILED cfn-lint: SubmitterFunctionRole: E1018" in report


def test_an_environment_value_naming_a_removed_resource_fails_naming_it(
    template: dict[str, Any], tmp_path: Path
):
    # Given a template whose RetrierDeadLetterQueue was removed, but still named in the
    # retrier's environment
    broken = copy.deepcopy(template)
    del broken["Resources"]["RetrierDeadLetterQueue"]

    # When it is rehearsed
    code, report = rehearse(broken, tmp_path, "default")

    # Then the rehearsal fails, naming the function, the variable and the missing resource
    assert code == 1
    assert (
        "FAILED wiring: RetrierFunction: RETRIER_DEAD_LETTER_QUEUE_URL refers to "
        "RetrierDeadLetterQueue, which the template does not declare"
    ) in report


def test_an_environment_value_the_handler_refuses_fails_naming_the_variable(
    template: dict[str, Any], tmp_path: Path
):
    # Given a retrier whose deployed attempt cap is out of its range
    broken = copy.deepcopy(template)
    variables = broken["Resources"]["RetrierFunction"]["Properties"]["Environment"]["Variables"]
    variables["RETRIER_MAX_ATTEMPTS"] = "0"

    # When it is rehearsed
    code, report = rehearse(broken, tmp_path, "default")

    # Then the handler does not import with its deployed environment, and the variable is named
    assert code == 1
    assert "FAILED wiring: RetrierFunction: handler retrier.handler does not import" in report
    assert "RETRIER_MAX_ATTEMPTS" in report


def test_a_dependency_the_layer_lacks_fails_the_handlers_that_import_it(
    template: dict[str, Any], tmp_path: Path
):
    # Given a dependencies layer built from requirements that leave out msgspec (installed
    # here all the same, as every requirement is: only the layer may bring it)
    layer = tmp_path / "layer"
    layer.mkdir()
    requirements = (ROOT / "layer" / "requirements.txt").read_text().splitlines()
    (layer / "requirements.txt").write_text(
        "\n".join(line for line in requirements if not line.startswith("msgspec"))
    )
    broken = copy.deepcopy(template)
    broken["Resources"]["DependenciesLayer"]["Properties"]["Content"] = str(layer)

    # When it is rehearsed
    code, report = rehearse(broken, tmp_path, "default")

    # Then the handlers do not import from their package and layer, naming the module
    assert code == 1
    assert (
        "FAILED wiring: SubmitterFunction: handler submitter.handler does not import: "
        "ModuleNotFoundError: No module named 'msgspec'"
    ) in report


def rehearse_side_by_side(template: dict[str, Any], directory: Path) -> tuple[int, str]:
    """The whole rehearsal, whose last part deploys samconfig's dev and prod stacks."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "template.json"
    path.write_text(json.dumps(template))
    completed = subprocess.run(
        [sys.executable, "-m", "devtools.rehearse", "--template", str(path), "--no-checkov"],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=600,
    )  # fmt: skip
    return completed.returncode, completed.stdout + completed.stderr


def test_dev_and_prod_deploy_side_by_side_and_a_shared_name_fails_naming_both(
    template: dict[str, Any], tmp_path: Path
):
    # Given the template as it is, and a copy whose schedule lost its stack's group (so
    # SAM's fixed name SubmitterFunctionNightlySchedule lands in the account's default group)
    as_is = rehearse_side_by_side(template, tmp_path / "as-is")
    broken = copy.deepcopy(template)
    schedule = broken["Resources"]["SubmitterFunction"]["Properties"]["Events"]["NightlySchedule"]
    del schedule["Properties"]["GroupName"]
    shared = rehearse_side_by_side(broken, tmp_path / "shared")

    # Then samconfig's two stacks deploy into one account with no name in common
    code, report = as_is
    assert code == 0, report
    assert "stack batchwire-dev: CREATE_COMPLETE" in report
    assert "stack batchwire: CREATE_COMPLETE" in report
    assert "names of every named resource compared: no collision" in report
    # and the shared schedule name fails the second stack's deploy, naming the schedule and
    # the group, as the local Scheduler refuses it like EventBridge Scheduler does
    code, report = shared
    assert code == 1
    assert (
        "FAILED wiring: SubmitterFunctionNightlySchedule: schedule "
        "SubmitterFunctionNightlySchedule in group default already exists"
    ) in report
