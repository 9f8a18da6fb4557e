"""The scaler simulation (bench/scaler_sim.py): deterministic, its books balance, each strategy
sees what it would see in AWS, and the scaler's decisions are batchwire.scaler.decide's."""

from __future__ import annotations

import pytest

from batchwire import scaler
from bench.scaler_sim import (
    STEP,
    STRATEGIES,
    Consumers,
    Outcome,
    PhaseSweep,
    ScalerStrategy,
    ScalingInterval,
    StepStrategy,
    Timeline,
    acceptance,
    phase_sweep,
    report,
    simulate,
)

#: A minute of quiet, 40 messages at once, nothing more.
SMALL_BURST = Timeline(
    idle_before_seconds=60,
    burst_messages=40,
    trickle_every_seconds=0,
    trickle_for_seconds=0,
    idle_after_seconds=600,
)


def _unprotected_scaler_that_scales_in_while_busy() -> Outcome:
    # 10 messages a task, a 1-minute cooldown: it scales in while the burst still drains
    strategy = ScalerStrategy(
        "test scaler",
        scale_in_protection=False,
        messages_per_task=10,
        max_tasks=4,
        cooldown_seconds=60,
    )
    return simulate(strategy, SMALL_BURST)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda strategy: strategy.label)
def test_the_same_strategy_on_the_same_timeline_gives_the_same_outcome(
    strategy: ScalerStrategy | StepStrategy,
) -> None:
    # Given the timeline
    # When the strategy is simulated twice
    first, second = simulate(strategy), simulate(strategy)

    # Then every figure and record is the same
    assert first == second


def test_each_message_finishes_once_and_is_received_again_only_after_a_stop() -> None:
    # Given a run in which tasks are stopped while they hold messages
    outcome = _unprotected_scaler_that_scales_in_while_busy()
    assert outcome.stopped_holding_message > 0

    # Then each message was finished exactly once, received once more per stop of its task
    assert all(message.completions == 1 for message in outcome.messages)
    assert all(m.receives == 1 + m.interrupted for m in outcome.messages)
    assert sum(m.interrupted for m in outcome.messages) == outcome.stopped_holding_message


def test_task_minutes_are_the_sum_of_every_task_s_life() -> None:
    # Given a run in which tasks come and go
    outcome = _unprotected_scaler_that_scales_in_while_busy()
    assert len(outcome.task_spans) > 1

    # Then the task-minutes are what each task lived, and what the service held each second
    lived = sum(stopped - launched for launched, stopped in outcome.task_spans)
    assert outcome.task_minutes * 60 == pytest.approx(lived)
    assert sum(outcome.tasks_per_second) == lived
    assert outcome.tasks_per_second[-1] == 0


def test_a_message_started_more_than_five_minutes_after_arrival_is_late() -> None:
    # Given one task for 40 messages of 20 s each: the last ones start after 13 minutes
    strategy = ScalerStrategy("one task", max_tasks=1)

    # When it runs
    outcome = simulate(strategy, SMALL_BURST)

    # Then every message whose finished processing started after 300 s counts as late
    late = [
        m
        for m in outcome.messages
        if m.started_at is not None and m.started_at - m.arrived_at > 300
    ]
    assert outcome.late_messages == len(late) > 0


def test_the_step_policy_sees_visible_messages_only_and_stops_tasks_holding_some() -> None:
    # Given two slow messages (15 min each) and a step policy that starts 2 tasks for any
    # visible message and stops one when none is visible, its metrics on time
    strategy = StepStrategy(
        "test step",
        steps=(ScalingInterval(-1, upper=0), ScalingInterval(+2, lower=1)),
        metric_delay_seconds=0,
    )
    timeline = Timeline(
        idle_before_seconds=120,
        burst_messages=2,
        trickle_every_seconds=0,
        trickle_for_seconds=0,
        idle_after_seconds=600,
    )
    consumers = Consumers(processing_seconds=900, visibility_timeout_seconds=1200)

    # When it runs
    outcome = simulate(strategy, timeline, consumers, settle_limit_seconds=0)

    # Then its datapoints are the visible counts alone, zero while both messages are in flight
    visible = {minute: count for minute, count, _ in outcome.minute_samples}
    assert outcome.datapoints == tuple(
        (minute, visible[minute]) for minute, _ in outcome.datapoints
    )
    busy = [minute for minute, count, in_flight in outcome.minute_samples if in_flight == 2]
    assert busy
    assert all(dict(outcome.datapoints)[minute] == 0 for minute in busy)
    # ... and it stops the tasks working on them
    assert outcome.stopped_holding_message > 0


def test_the_scaler_sets_the_count_decide_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a decide that always asks for 3 tasks, and records what it was called with
    calls: list[scaler.Reading] = []

    def three_tasks(
        reading: scaler.Reading, policy: scaler.ScalingPolicy, memory: scaler.Memory, now: float
    ) -> scaler.Decision:
        calls.append(reading)
        return scaler.Decision(3, 3, 0, 0, 0.0, "test", memory)

    monkeypatch.setattr(scaler, "decide", three_tasks)

    # When the scaler's strategy runs (at most 20 minutes past the timeline)
    outcome = simulate(ScalerStrategy("test"), SMALL_BURST, settle_limit_seconds=1200)

    # Then decide was called on every poll and the service held 3 tasks from the first one
    assert len(calls) == outcome.decisions > 0
    first_poll = ScalerStrategy("test").first_poll_second
    assert set(outcome.tasks_per_second[first_poll:]) == {3}
    assert any(reading.in_flight > 0 for reading in calls)


@pytest.mark.parametrize(("cooldown", "least", "most"), [(0, 0, 60), (600, 540, 660)])
def test_the_scaler_gets_back_to_zero_after_decide_s_cooldown(
    cooldown: int, least: int, most: int
) -> None:
    # Given the scaler with a cooldown of 0 s or 10 minutes
    strategy = ScalerStrategy("test", cooldown_seconds=cooldown)

    # When 40 messages come and go
    outcome = simulate(strategy, SMALL_BURST)

    # Then the service is back at zero tasks about one cooldown after the queue emptied
    assert outcome.back_to_zero_seconds is not None
    assert least <= outcome.back_to_zero_seconds <= most


def test_acceptance_is_a_miss_when_the_scaler_is_not_strictly_ahead() -> None:
    # Given the timeline, the scaler and the step policy
    scaler_outcome, step_outcome = simulate(STRATEGIES[0]), simulate(STEP)

    # When the scaler's figures are compared with a copy of themselves
    verdict = acceptance(scaler_outcome, scaler_outcome)

    # Then a tie is no lead; against the step policy the verdict follows the figures
    assert not verdict.passed
    assert verdict.text.startswith("MISS")
    versus_step = acceptance(scaler_outcome, step_outcome)
    assert versus_step.passed == (
        scaler_outcome.first_consumer_seconds is not None
        and step_outcome.first_consumer_seconds is not None
        and scaler_outcome.first_consumer_seconds < step_outcome.first_consumer_seconds
        and scaler_outcome.stopped_holding_message < step_outcome.stopped_holding_message
        and scaler_outcome.task_minutes <= step_outcome.task_minutes
    )


def test_the_report_prints_every_strategy_and_the_acceptance_line() -> None:
    # When the report is built
    text, rows = report()

    # Then it names every strategy, gives a PASS or MISS line, and rows for the table
    assert all(strategy.label in text for strategy in STRATEGIES)
    assert "acceptance, " in text
    assert ": PASS: " in text or ": MISS: " in text
    assert len(rows) == 7
    assert "phases of the trickle" in text


def test_the_trickle_phase_shifts_only_the_trickle_and_stays_within_one_interval() -> None:
    # Given the timeline shifted by 7 s
    plain, shifted = Timeline(), Timeline(trickle_offset_seconds=7)

    # Then the burst is where it was and every trickle message is 7 s later
    burst = [at for at, in_burst in plain.arrivals() if in_burst]
    assert burst == [at for at, in_burst in shifted.arrivals() if in_burst]
    assert [at + 7 for at, in_burst in plain.arrivals() if not in_burst] == [
        at for at, in_burst in shifted.arrivals() if not in_burst
    ]
    # and an offset of a whole interval is refused, naming the range
    with pytest.raises(ValueError, match="trickle_offset_seconds must be 0 to 19"):
        Timeline(trickle_offset_seconds=20)


def test_a_lead_that_fails_at_one_trickle_phase_is_a_miss() -> None:
    # Given outcomes where the scaler stops fewer tasks on the headline timeline
    scaler_outcome, step_outcome = simulate(STRATEGIES[0]), simulate(STEP)
    assert scaler_outcome.stopped_holding_message < step_outcome.stopped_holding_message

    # When at one phase of the trickle the scaler stops as many as the step policy's fewest
    sweep = PhaseSweep(scaler_stops=(0, 0, 2, 0), step_stops=(2, 3, 2, 2))

    # Then the acceptance is a MISS, and a sweep the scaler leads everywhere passes it
    assert not acceptance(scaler_outcome, step_outcome, sweep).passed
    ahead = PhaseSweep(scaler_stops=(0, 0, 0, 0), step_stops=(2, 3, 2, 2))
    assert acceptance(scaler_outcome, step_outcome, ahead).passed


def test_the_step_policy_stops_busy_consumers_while_the_trickle_runs_at_every_phase() -> None:
    # When both strategies run the timeline at every phase of the trickle
    sweep = phase_sweep(STRATEGIES[0], STEP)

    # Then the step policy, scaling in on visible messages alone while one consumer works,
    # stops a busy task at each phase; the scaler never does
    assert len(sweep.step_stops) == Timeline().trickle_every_seconds
    assert min(sweep.step_stops) >= 1
    assert max(sweep.scaler_stops) == 0
