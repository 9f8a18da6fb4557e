"""Every AWS call and Slack post of every function failed once, then the event redelivered:
each side effect exactly once (issue 17; the matrix is devtools/faults, its page
docs/faults.md).

One world (a moto server, the Slack stand-in, the stack deployed with every function on)
per test worker; each scenario runs all its cells in it, resetting it between cells.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devtools.faults.injection import ACCESS_DENIED, READ_TIMEOUT, THROTTLED, CallSite
from devtools.faults.matrix import run_cell, run_scenario
from devtools.faults.page import DOCS, head, section, sections_of
from devtools.faults.scenarios import SCENARIOS, SCENARIOS_BY_KEY, fresh
from devtools.faults.world import World, local_world
from devtools.slack_receiver import Reply
from tests.integration.invoke import ROOT, SKIPPED_TYPES

EVENTS = ROOT / "events"

pytestmark = [pytest.mark.integration, SKIPPED_TYPES]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with local_world() as world:
        yield world


@pytest.mark.parametrize("key", list(SCENARIOS_BY_KEY))
def test_each_fault_at_each_call_leaves_each_side_effect_once(world: World, key: str) -> None:
    # Given the scenario's clean run, and every call it makes failed once with every fault
    run = run_scenario(world, SCENARIOS_BY_KEY[key])

    # Then after the trigger's redelivery each side effect is there once, or the cell is
    # one the page names with its reason
    broken = [
        f"{cell.site.label if cell.site else '(no fault)'} "
        f"{cell.fault.name if cell.fault else ''}"
        f"{f' after {cell.reached_by[0].label}' if cell.reached_by else ''}: "
        f"{'; '.join(cell.problems)}"
        for cell in run.every_cell
        if not cell.acceptable
    ]
    assert broken == []
    assert run.sites, "the scenario made no call"
    # and docs/faults.md says what this run found
    documented = sections_of(DOCS.read_text()).get(key)
    assert documented == section(run), f"{DOCS.name} is stale for {key}: run make faults"


def test_the_page_explains_the_matrix_as_the_code_runs_it() -> None:
    assert DOCS.read_text().startswith(head()), f"{DOCS.name} is stale: run make faults"


def test_the_page_has_a_section_per_scenario_in_order() -> None:
    assert list(sections_of(DOCS.read_text())) == list(SCENARIOS_BY_KEY)


def test_every_function_of_the_stack_has_a_scenario(world: World) -> None:
    assert set(world.stack.functions()) <= {scenario.function for scenario in SCENARIOS}


def test_a_lost_answer_is_caught_as_a_side_effect_twice(world: World) -> None:
    # Given the retrier's relaunch message, sent once and its answer lost
    scenario = SCENARIOS_BY_KEY["retrier-task-failed"]
    scenario.event(world)
    clean, sites = run_cell(world, scenario, None)
    [send] = [site for site in sites if site.operation == "SendMessage"]

    # When the matrix runs that cell
    cell, _ = run_cell(world, scenario, (send, READ_TIMEOUT), clean.after_first)

    # Then it sees botocore send the message again, and two relaunch messages in the queue
    assert cell.resent == 1
    assert cell.problems == [
        "more than once: SQS message in RetrierDelayQueue: relaunch (attempt 2, placementTry 1)"
    ]
    assert cell.known_limit is not None
    assert cell.known_limit.anchor == "relaunch-message-answer-lost"


def test_a_message_with_no_room_is_put_back_and_starts_no_task(world: World) -> None:
    # Given the task family at its maximum of running tasks, and a message of WorkQueue
    scenario = SCENARIOS_BY_KEY["dispatcher-at-capacity"]

    # When the dispatcher gets it
    clean, sites = run_cell(world, scenario, None)

    # Then it defers it (ChangeMessageVisibility is a call site): no task started, and the
    # message stays in WorkQueue for its next delivery
    assert [site.label for site in sites] == ["ecs ListTasks #1", "sqs ChangeMessageVisibility #1"]
    assert clean.first.done
    assert clean.first.deferred == 1
    assert clean.after_first == Counter({"SQS message left in WorkQueue": 1})


def test_an_injected_error_reaches_the_caller_in_the_services_own_words(world: World) -> None:
    # Given the functions' session, its SQS SendMessage call to fail with access denied
    world.injector.begin((CallSite("sqs", "SendMessage", 1), ACCESS_DENIED))
    sqs = world.session.client(
        "sqs", endpoint_url=world.local.endpoint_url, region_name="us-east-1"
    )

    # When the call is made, Then it fails as SQS refuses a caller, and nothing was sent
    with pytest.raises(ClientError) as raised:
        sqs.send_message(QueueUrl=world.inbox, MessageBody="never sent")
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert world.injector.fired
    assert world.injector.resent == 0
    messages = world.client("sqs").receive_message(QueueUrl=world.inbox).get("Messages", [])
    assert messages == []


def test_a_throttled_call_is_sent_again_by_botocore(world: World) -> None:
    # Given a DynamoDB call of the functions' session that is throttled once
    table = world.physical("IdempotencyTable")
    world.injector.begin((CallSite("dynamodb", "GetItem", 1), THROTTLED))
    dynamodb = world.session.client(
        "dynamodb", endpoint_url=world.local.endpoint_url, region_name="us-east-1"
    )

    # When it is called, Then botocore's retry answers it
    answer = dynamodb.get_item(TableName=table, Key={"id": {"S": "nothing-here"}})
    assert "Item" not in answer
    assert world.injector.fired
    assert world.injector.resent == 1


def _retrier_notice(world: World) -> dict[str, Any]:
    notice: dict[str, Any] = json.loads((EVENTS / "sns-task-retries-exhausted.json").read_text())
    return notice


def _watch_notice(world: World) -> dict[str, Any]:
    """The notice the watch publishes for a missed firing, as SNS hands it to the notifier."""
    event = SCENARIOS_BY_KEY["watch-missed-firing"].event(world)
    world.injector.begin()
    done = world.invoke("WatchFunction", event, request_id=str(uuid.uuid4()), cold=False)
    assert done.status == "succeeded", done.error
    [message] = world.client("sqs").receive_message(QueueUrl=world.inbox)["Messages"]
    envelope = json.loads(message["Body"])
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{envelope['TopicArn']}:notifier",
                "Sns": envelope,
            }
        ]
    }


@pytest.mark.parametrize(
    ("notice", "shown"),
    [(_retrier_notice, "Task retries exhausted"), (_watch_notice, "Schedule did not fire")],
)
def test_a_notice_published_twice_reaches_slack_once(
    world: World, notice: Callable[[World], dict[str, Any]], shown: str
) -> None:
    # Given a notice that SNS delivers as two messages (its Publish sent again)
    world.reset()
    event = notice(world)

    # When the notifier gets both
    for number in (1, 2):
        world.injector.begin()
        done = world.invoke(
            "NotifierFunction", fresh(event, number), request_id=str(uuid.uuid4()), cold=False
        )
        assert done.status == "succeeded", done.error

    # Then Slack shows it once
    assert len(world.slack.accepted) == 1
    assert shown in json.dumps(world.slack.accepted[0])


def test_the_slack_stand_in_counts_a_post_whose_answer_was_lost(world: World) -> None:
    # Given a stand-in told to post and then answer too late, then to drop a connection
    import urllib.error
    import urllib.request

    world.reset()
    world.slack.script(Reply.posted_then_hang(0.5), Reply.dropped())
    body = json.dumps({"text": "hello"}).encode()

    # When a client that waits 0.2 s posts twice
    for _ in range(2):
        request = urllib.request.Request(world.slack.url, data=body, method="POST")
        with pytest.raises((urllib.error.URLError, TimeoutError, ConnectionError)):
            urllib.request.urlopen(request, timeout=0.2)

    # Then the first counts as posted, the second does not
    assert world.slack.accepted == [{"text": "hello"}]
    assert len(world.slack.requests) == 2
