"""docs/parameters.md says what template.yaml says, and the generator drops nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from devtools.parameter_reference import REFERENCE, group_of, main, render, stale_diff
from devtools.template import load_template

TEMPLATE = load_template()


def template_from(tmp_path: Path, yaml: str) -> dict[str, Any]:
    """A small template read by the same loader as template.yaml (short tags included)."""
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(yaml))
    return load_template(path)


def sections(markdown: str, level: str = "### ") -> dict[str, str]:
    """The text under each heading of ``level``, by heading."""
    found: dict[str, str] = {}
    heading = ""
    for line in markdown.splitlines():
        if line.startswith("#"):
            heading = line[len(level) :] if line.startswith(level) else ""
            found.setdefault(heading, "")
        elif heading:
            found[heading] += line + "\n"
    found.pop("", None)
    return found


def row_of(markdown: str, name: str) -> list[str]:
    """The cells of the table row of ``name``."""
    rows = [line for line in markdown.splitlines() if line.startswith(f"| `{name}` |")]
    assert len(rows) == 1, f"{name}: expected one row, found {len(rows)}"
    return [cell.strip() for cell in rows[0].strip("|").split(" | ")]


def test_committed_reference_matches_the_template() -> None:
    # Given the template as it is now, When it is rendered
    diff = stale_diff(render(TEMPLATE), REFERENCE)
    # Then the committed docs/parameters.md is exactly that
    assert not diff, (
        "docs/parameters.md differs from what template.yaml renders: run `make docs` "
        f"and commit the result.\n{diff}"
    )


def test_every_template_name_is_in_the_committed_reference() -> None:
    # Given the committed reference
    committed = REFERENCE.read_text()
    # Then every parameter, output and rule of the template is named in it
    names = [*TEMPLATE["Parameters"], *TEMPLATE.get("Outputs", {}), *TEMPLATE.get("Rules", {})]
    missing = [name for name in names if f"`{name}`" not in committed]
    assert not missing, f"not in docs/parameters.md (run `make docs`): {missing}"


def test_a_parameter_without_default_is_required_and_an_empty_default_shows(
    tmp_path: Path,
) -> None:
    # Given a parameter with no Default and one whose Default is empty
    template = template_from(
        tmp_path,
        """
        Parameters:
          SlackWebhookSecretArn:
            Type: String
            Description: The webhook secret.
          AlarmEmail:
            Type: String
            Description: Alarm address.
            Default: ""
        """,
    )
    # When rendered
    markdown = render(template)
    # Then the first says required, in its row and in the summary; the second shows ""
    assert row_of(markdown, "SlackWebhookSecretArn")[2] == "**required**"
    assert "Required (no default): `SlackWebhookSecretArn`." in markdown
    assert row_of(markdown, "AlarmEmail")[2] == '`""`'


def test_constraints_are_shown(tmp_path: Path) -> None:
    # Given parameters with allowed values (an empty one among them), a pattern with a
    # pipe, bounds on a number and on a length
    template = template_from(
        tmp_path,
        """
        Parameters:
          DispatcherLaunchType:
            Type: String
            AllowedValues: [FARGATE, EC2, ""]
            Default: FARGATE
          ScheduleExpression:
            Type: String
            AllowedPattern: ^(cron|rate)\\(.+\\)$
            Default: rate(1 day)
          RetrierMaxAttempts:
            Type: Number
            MinValue: 1
            MaxValue: 20
            Default: 3
          RetrierBackoffRate:
            Type: Number
            MinValue: 1
            Default: 2
          DispatcherContainerName:
            Type: String
            MaxLength: 255
            Default: app
        """,
    )
    # When rendered
    markdown = render(template)
    # Then each constraint is in the parameter's "allowed" cell
    assert row_of(markdown, "DispatcherLaunchType")[3] == 'one of `FARGATE`, `EC2`, `""`'
    assert row_of(markdown, "ScheduleExpression")[3] == r"pattern `^(cron\|rate)\(.+\)$`"
    assert row_of(markdown, "RetrierMaxAttempts")[2:4] == ["`3`", "1 to 20"]
    assert row_of(markdown, "RetrierBackoffRate")[3] == "at least 1"
    assert row_of(markdown, "DispatcherContainerName")[3] == "length at most 255"


def test_a_description_is_one_escaped_line(tmp_path: Path) -> None:
    # Given a description over several lines with Markdown characters in it
    template = template_from(
        tmp_path,
        """
        Parameters:
          NotifierRoutes:
            Type: String
            Description: |
              Routes, for example
              [{"source": "/aws/batch/*", "mention": "<!here>"}] | first match wins.
            Default: "[]"
        """,
    )
    # When rendered
    description = row_of(render(template), "NotifierRoutes")[4]
    # Then it is one line, its text read as text, not as emphasis, HTML or a cell border
    assert description == (
        r'Routes, for example [{"source": "/aws/batch/\*", "mention": "\<!here>"}] \| '
        "first match wins."
    )


def test_a_new_parameter_appears_in_its_group(tmp_path: Path) -> None:
    # Given a chainer parameter added after the retrier's, and names of no known group
    template = template_from(
        tmp_path,
        """
        Parameters:
          ScheduleState: {Type: String, Default: DISABLED}
          ChainMaxHops: {Type: Number, Default: 10}
          RetrierMaxAttempts: {Type: Number, Default: 3}
          ChainJobNames: {Type: CommaDelimitedList, Default: "*"}
          PermissionsBoundaryArn: {Type: String, Default: ""}
          WorkloadTag: {Type: String, Default: ""}
          WorkTopicEnabled: {Type: String, Default: "off"}
        """,
    )
    # When rendered
    groups = sections(render(template))
    # Then groups follow the template's order, the new parameter sits in its own group
    # after its elders, and a name only starting like a group's word is General
    assert list(groups) == ["Submitter", "Chainer", "Retrier", "General", "Dispatcher"]
    chainer = groups["Chainer"]
    assert chainer.index("`ChainMaxHops`") < chainer.index("`ChainJobNames`")
    assert "`PermissionsBoundaryArn`" in groups["General"]
    assert "`WorkloadTag`" in groups["General"]
    assert "`WorkTopicEnabled`" in groups["Dispatcher"]


def test_every_parameter_of_the_template_is_rendered_once_in_its_group() -> None:
    # Given the real template, When rendered
    groups = sections(render(TEMPLATE))
    # Then each parameter has one row, under the heading of its group
    for name in TEMPLATE["Parameters"]:
        holders = [title for title, text in groups.items() if f"| `{name}` |" in text]
        assert holders == [group_of(name)], f"{name} listed under {holders}"


def test_outputs_and_rules_are_listed(tmp_path: Path) -> None:
    # Given a template with a conditional output and a rule with two assertions
    template = template_from(
        tmp_path,
        """
        Parameters:
          DispatcherTaskFamily: {Type: String, Default: ""}
          DispatcherSubnetIds: {Type: CommaDelimitedList, Default: ""}
        Rules:
          FargateTasksHaveSubnets:
            RuleCondition: !Not [!Equals [!Ref DispatcherTaskFamily, ""]]
            Assertions:
              - Assert: !Not [!Contains [!Ref DispatcherSubnetIds, ""]]
                AssertDescription: Fargate tasks need DispatcherSubnetIds.
              - Assert: !Equals [!Ref "AWS::Region", us-east-1]
        Conditions:
          CreateDispatcher: !Not [!Equals [!Ref DispatcherTaskFamily, ""]]
        Resources:
          WorkQueue: {Type: AWS::SQS::Queue, Condition: CreateDispatcher}
        Outputs:
          WorkQueueUrl:
            Condition: CreateDispatcher
            Description: SQS queue of the dispatcher.
            Value: !Ref WorkQueue
        """,
    )
    # When rendered
    parts = sections(render(template), level="## ")
    # Then the output has its description and condition
    assert row_of(parts["Outputs"], "WorkQueueUrl")[1:] == [
        "SQS queue of the dispatcher.",
        "`CreateDispatcher`",
    ]
    # And each assertion of the rule is a row naming the parameters the rule reads
    rows = [line for line in parts["Rules"].splitlines() if "`FargateTasksHaveSubnets`" in line]
    assert rows == [
        "| `FargateTasksHaveSubnets` | `DispatcherTaskFamily`, `DispatcherSubnetIds` "
        "| Fargate tasks need DispatcherSubnetIds. |",
        "| `FargateTasksHaveSubnets` | `DispatcherTaskFamily`, `DispatcherSubnetIds` "
        "| (no description) |",
    ]


def test_a_template_without_outputs_or_rules_says_so(tmp_path: Path) -> None:
    # Given a template with parameters only
    template = template_from(tmp_path, "Parameters:\n  LogRetentionDays: {Type: Number}\n")
    # When rendered, Then the two sections say there are none
    parts = sections(render(template), level="## ")
    assert parts["Outputs"].strip() == "The template declares no outputs."
    assert parts["Rules"].strip() == "The template declares no rules."


@pytest.fixture
def small_template(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text("Parameters:\n  AlarmEmail: {Type: String, Default: ''}\n")
    return path


def test_check_fails_with_a_diff_on_a_stale_reference(
    small_template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a reference edited by hand
    reference = tmp_path / "parameters.md"
    main([], template=small_template, reference=reference)
    reference.write_text(reference.read_text().replace("`AlarmEmail`", "`AlertEmail`"))
    edited = reference.read_text()
    # When checked
    status = main(["--check"], template=small_template, reference=reference)
    # Then it fails, prints the diff and what to run, and leaves the file alone
    out, err = capsys.readouterr()
    assert status == 1
    assert "-| `AlertEmail` |" in out
    assert "+| `AlarmEmail` |" in out
    assert "make docs" in err
    assert reference.read_text() == edited


def test_check_passes_once_written(small_template: Path, tmp_path: Path) -> None:
    # Given no reference yet: the check fails
    reference = tmp_path / "docs" / "parameters.md"
    assert main(["--check"], template=small_template, reference=reference) == 1
    # When it is written, Then the check passes
    assert main([], template=small_template, reference=reference) == 0
    assert main(["--check"], template=small_template, reference=reference) == 0
