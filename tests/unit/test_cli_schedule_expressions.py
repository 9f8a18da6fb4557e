"""Schedule expressions: firings computed by hand from the 2026 calendar, words, errors.

Firings are compared as ISO strings: they carry the UTC offset, so a daylight-saving
mistake (or the wrong one of a repeated hour) cannot hide behind wall-clock equality.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from batchwire.schedule_expressions import ScheduleExpressionError, parse_schedule


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def firings(expression: str, after: datetime, timezone: str = "UTC", **kwargs) -> list[str]:
    schedule = parse_schedule(expression, timezone, **kwargs)
    return [moment.isoformat() for moment in schedule.next_firings(after)]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # every day, and the first firing is strictly after `after`
        (
            "cron(0 10 * * ? *)",
            "2026-01-01T10:00",
            ["2026-01-02T10:00:00+00:00", "2026-01-03T10:00:00+00:00", "2026-01-04T10:00:00+00:00"],
        ),
        # weekdays: Thursday 1 January 2026, then Friday, then Monday
        (
            "cron(0 18 ? * MON-FRI *)",
            "2026-01-01T00:00",
            ["2026-01-01T18:00:00+00:00", "2026-01-02T18:00:00+00:00", "2026-01-05T18:00:00+00:00"],
        ),
        # the same with numbers (2-6 = MON-FRI)
        (
            "cron(0 18 ? * 2-6 *)",
            "2026-01-01T00:00",
            ["2026-01-01T18:00:00+00:00", "2026-01-02T18:00:00+00:00", "2026-01-05T18:00:00+00:00"],
        ),
        # steps: 0/15 in hours 9-10, crossing into the next day
        (
            "cron(0/15 9-10 * * ? *)",
            "2026-01-01T10:40",
            ["2026-01-01T10:45:00+00:00", "2026-01-02T09:00:00+00:00", "2026-01-02T09:15:00+00:00"],
        ),
        # a step from a start value: 5, 25, 45
        (
            "cron(5/20 * * * ? *)",
            "2026-01-01T00:00",
            ["2026-01-01T00:05:00+00:00", "2026-01-01T00:25:00+00:00", "2026-01-01T00:45:00+00:00"],
        ),
        # a month step: */4 is January, May, September
        (
            "cron(0 0 1 */4 ? *)",
            "2026-01-01T00:00",
            ["2026-05-01T00:00:00+00:00", "2026-09-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"],
        ),
        # names: weekends in December (Saturday 5, Sunday 6, Saturday 12)
        (
            "cron(0 8 ? DEC SAT,SUN *)",
            "2026-01-01T00:00",
            ["2026-12-05T08:00:00+00:00", "2026-12-06T08:00:00+00:00", "2026-12-12T08:00:00+00:00"],
        ),
        # a backwards range wraps: FRI-MON from Thursday 1 January
        (
            "cron(0 12 ? * FRI-MON *)",
            "2026-01-01T00:00",
            ["2026-01-02T12:00:00+00:00", "2026-01-03T12:00:00+00:00", "2026-01-04T12:00:00+00:00"],
        ),
        # a list of days of the month
        (
            "cron(30 6 1,15 * ? *)",
            "2026-01-10T00:00",
            ["2026-01-15T06:30:00+00:00", "2026-02-01T06:30:00+00:00", "2026-02-15T06:30:00+00:00"],
        ),
        # L: the last day, February included
        (
            "cron(0 0 L * ? *)",
            "2026-01-31T00:00",
            ["2026-02-28T00:00:00+00:00", "2026-03-31T00:00:00+00:00", "2026-04-30T00:00:00+00:00"],
        ),
        # L in a leap year
        (
            "cron(0 0 L * ? *)",
            "2028-01-31T00:00",
            ["2028-02-29T00:00:00+00:00", "2028-03-31T00:00:00+00:00", "2028-04-30T00:00:00+00:00"],
        ),
        # LW: May ends on a Sunday (Friday 29), June on a Tuesday, July on a Friday
        (
            "cron(0 9 LW * ? *)",
            "2026-04-30T12:00",
            ["2026-05-29T09:00:00+00:00", "2026-06-30T09:00:00+00:00", "2026-07-31T09:00:00+00:00"],
        ),
        # LW: January and October end on a Saturday (Friday 30)
        (
            "cron(0 9 LW JAN,OCT ? *)",
            "2026-01-01T00:00",
            ["2026-01-30T09:00:00+00:00", "2026-10-30T09:00:00+00:00", "2027-01-29T09:00:00+00:00"],
        ),
        # 1W: Sunday 1 February -> Monday 2; Sunday 1 March -> Monday 2; 1 April is a Wednesday
        (
            "cron(0 9 1W * ? *)",
            "2026-01-31T12:00",
            ["2026-02-02T09:00:00+00:00", "2026-03-02T09:00:00+00:00", "2026-04-01T09:00:00+00:00"],
        ),
        # 1W: Saturday 1 August cannot move back into July -> Monday 3
        (
            "cron(0 9 1W * ? *)",
            "2026-07-15T00:00",
            ["2026-08-03T09:00:00+00:00", "2026-09-01T09:00:00+00:00", "2026-10-01T09:00:00+00:00"],
        ),
        # 15W: Saturday 15 August -> Friday 14; 15 September and October are weekdays
        (
            "cron(0 9 15W * ? *)",
            "2026-07-20T00:00",
            ["2026-08-14T09:00:00+00:00", "2026-09-15T09:00:00+00:00", "2026-10-15T09:00:00+00:00"],
        ),
        # 15W: Sunday 15 February and 15 March -> Monday 16
        (
            "cron(0 9 15W * ? *)",
            "2026-02-01T00:00",
            ["2026-02-16T09:00:00+00:00", "2026-03-16T09:00:00+00:00", "2026-04-15T09:00:00+00:00"],
        ),
        # 31W: Sunday 31 May cannot move into June -> Friday 29; April and June have no 31st
        (
            "cron(0 9 31W * ? *)",
            "2026-04-01T00:00",
            ["2026-05-29T09:00:00+00:00", "2026-07-31T09:00:00+00:00", "2026-08-31T09:00:00+00:00"],
        ),
        # 6#3: the third Friday
        (
            "cron(0 9 ? * 6#3 *)",
            "2026-01-01T00:00",
            ["2026-01-16T09:00:00+00:00", "2026-02-20T09:00:00+00:00", "2026-03-20T09:00:00+00:00"],
        ),
        # FRI#3 is the same
        (
            "cron(0 9 ? * FRI#3 *)",
            "2026-01-01T00:00",
            ["2026-01-16T09:00:00+00:00", "2026-02-20T09:00:00+00:00", "2026-03-20T09:00:00+00:00"],
        ),
        # 2#5: only months with a fifth Monday fire
        (
            "cron(0 9 ? * 2#5 *)",
            "2026-01-01T00:00",
            ["2026-03-30T09:00:00+00:00", "2026-06-29T09:00:00+00:00", "2026-08-31T09:00:00+00:00"],
        ),
        # 5L: the last Thursday
        (
            "cron(0 9 ? * 5L *)",
            "2026-01-01T00:00",
            ["2026-01-29T09:00:00+00:00", "2026-02-26T09:00:00+00:00", "2026-03-26T09:00:00+00:00"],
        ),
        # 6L: the last Friday, where January ends on a Saturday
        (
            "cron(15 10 ? * 6L *)",
            "2026-01-01T00:00",
            ["2026-01-30T10:15:00+00:00", "2026-02-27T10:15:00+00:00", "2026-03-27T10:15:00+00:00"],
        ),
        # L alone in day-of-week is the last day of the week: Saturday
        (
            "cron(0 9 ? * L *)",
            "2026-01-01T00:00",
            ["2026-01-03T09:00:00+00:00", "2026-01-10T09:00:00+00:00", "2026-01-17T09:00:00+00:00"],
        ),
    ],
)
def test_cron_next_three_firings(expression: str, after: str, expected: list[str]):
    # Given a cron expression in UTC, When asked for the next firings after a moment
    result = firings(expression, utc(after))

    # Then they are the three worked out from the calendar
    assert result == expected


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # the years end: two firings, then none
        (
            "cron(0 0 1 1 ? 2027-2028)",
            "2026-06-01T00:00",
            ["2027-01-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00"],
        ),
        ("cron(0 0 * * ? 2020)", "2026-01-01T00:00", []),
        ("cron(0 0 30 FEB ? *)", "2026-01-01T00:00", []),
        ("cron(0 0 31 APR,JUN,SEP,NOV ? *)", "2026-01-01T00:00", []),
        ("cron(0 0 ? FEB 2#5 2027)", "2026-01-01T00:00", []),  # February 2027 has 4 Mondays
        ("at(2025-12-01T09:00:00)", "2026-01-01T00:00", []),
        ("at(2026-12-01T09:00:00)", "2026-12-01T09:00", []),  # not strictly after
        ("at(2026-12-01T09:00:00)", "2026-01-01T00:00", ["2026-12-01T09:00:00+00:00"]),
    ],
)
def test_schedules_that_stop_firing_return_fewer(expression: str, after: str, expected: list[str]):
    # Given a schedule with a last firing (or none at all), When asked for three
    result = firings(expression, utc(after))

    # Then only what remains comes back
    assert result == expected


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 0 30 FEB ? *)",
        "cron(0 0 31 APR,JUN,SEP,NOV ? *)",
        "cron(* * 31 2 ? *)",
        "cron(0 0 ? 2 2#5 2027)",
        "cron(0 0 * * ? 1970)",
    ],
)
def test_an_impossible_expression_gives_no_firings_quickly(expression: str):
    # Given an expression that can never fire from 2026 on
    schedule = parse_schedule(expression)

    # When asked for firings
    began = time.perf_counter()
    result = schedule.next_firings(utc("2026-01-01T00:00"))
    elapsed = time.perf_counter() - began

    # Then none, without walking minute by minute to 2199
    assert result == []
    assert elapsed < 0.25


@pytest.mark.parametrize(
    "expression",
    [
        "cron(* * * * ? *)",
        "cron(0 0 29 2 ? *)",
        "cron(59 23 L * ? *)",
        "cron(0 9 ? * 2#5 *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "cron(0 0 1 1 ? 2199)",
    ],
)
def test_next_three_firings_are_fast(expression: str):
    # Given valid expressions, some rare (29 February, the year 2199)
    schedule = parse_schedule(expression, "Europe/London")
    after = utc("2026-12-31T23:58")

    # When asked for three firings, a few times over to smooth out a busy machine
    began = time.perf_counter()
    for _ in range(10):
        result = schedule.next_firings(after)
    per_call = (time.perf_counter() - began) / 10

    # Then they come back in a few milliseconds, not seconds
    assert result
    assert per_call < 0.02


@pytest.mark.parametrize(
    ("expression", "timezone", "after", "expected"),
    [
        (
            "cron(0 9 * * ? *)",
            "America/New_York",
            "2026-01-01T00:00",
            ["2026-01-01T09:00:00-05:00", "2026-01-02T09:00:00-05:00", "2026-01-03T09:00:00-05:00"],
        ),
        # 09:00 in New York is 14:00 UTC in winter: at 14:00 UTC it has just fired
        (
            "cron(0 9 * * ? *)",
            "America/New_York",
            "2026-01-01T14:00",
            ["2026-01-02T09:00:00-05:00", "2026-01-03T09:00:00-05:00", "2026-01-04T09:00:00-05:00"],
        ),
        # Kolkata is UTC+05:30 all year: Monday 5 January 08:30 is 03:00 UTC
        (
            "cron(30 8 ? * MON *)",
            "Asia/Kolkata",
            "2026-01-01T00:00",
            ["2026-01-05T08:30:00+05:30", "2026-01-12T08:30:00+05:30", "2026-01-19T08:30:00+05:30"],
        ),
        # the local date differs from the UTC one: 23:00 UTC on the 1st is the 2nd in Kolkata
        (
            "cron(0 6 * * ? *)",
            "Asia/Kolkata",
            "2026-01-01T23:00",
            ["2026-01-02T06:00:00+05:30", "2026-01-03T06:00:00+05:30", "2026-01-04T06:00:00+05:30"],
        ),
        # London in summer is UTC+1
        (
            "cron(0 2 * * ? *)",
            "Europe/London",
            "2026-07-01T00:00",
            ["2026-07-01T02:00:00+01:00", "2026-07-02T02:00:00+01:00", "2026-07-03T02:00:00+01:00"],
        ),
        (
            "cron(0 2 * * ? *)",
            "UTC",
            "2026-07-01T00:00",
            ["2026-07-01T02:00:00+00:00", "2026-07-02T02:00:00+00:00", "2026-07-03T02:00:00+00:00"],
        ),
    ],
)
def test_cron_fires_at_wall_clock_time_in_its_zone(
    expression: str, timezone: str, after: str, expected: list[str]
):
    # Given a cron schedule in a time zone, When asked for its firings
    result = firings(expression, utc(after), timezone)

    # Then they are at the wall-clock time there, with that zone's offset
    assert result == expected


@pytest.mark.parametrize(
    ("expression", "timezone", "after", "expected"),
    [
        # London, 29 March 2026, 01:00 -> 02:00: 01:30 does not exist, so that day is skipped
        (
            "cron(30 1 * * ? *)",
            "Europe/London",
            "2026-03-27T12:00",
            ["2026-03-28T01:30:00+00:00", "2026-03-30T01:30:00+01:00", "2026-03-31T01:30:00+01:00"],
        ),
        # ... while 02:30 exists that morning (summer time) and fires
        (
            "cron(30 2 * * ? *)",
            "Europe/London",
            "2026-03-27T12:00",
            ["2026-03-28T02:30:00+00:00", "2026-03-29T02:30:00+01:00", "2026-03-30T02:30:00+01:00"],
        ),
        # London, 25 October 2026, 02:00 -> 01:00: 01:30 happens twice and fires once, first
        (
            "cron(30 1 * * ? *)",
            "Europe/London",
            "2026-10-23T12:00",
            ["2026-10-24T01:30:00+01:00", "2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"],
        ),
        (
            "cron(30 2 * * ? *)",
            "Europe/London",
            "2026-10-23T12:00",
            ["2026-10-24T02:30:00+01:00", "2026-10-25T02:30:00+00:00", "2026-10-26T02:30:00+00:00"],
        ),
        # New York, 8 March 2026, 02:00 -> 03:00: 02:30 does not exist, skipped
        (
            "cron(30 2 * * ? *)",
            "America/New_York",
            "2026-03-06T12:00",
            ["2026-03-07T02:30:00-05:00", "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"],
        ),
        (
            "cron(30 1 * * ? *)",
            "America/New_York",
            "2026-03-06T12:00",
            ["2026-03-07T01:30:00-05:00", "2026-03-08T01:30:00-05:00", "2026-03-09T01:30:00-04:00"],
        ),
        # New York, 1 November 2026, 02:00 -> 01:00: 01:30 fires once, in daylight time
        (
            "cron(30 1 * * ? *)",
            "America/New_York",
            "2026-10-30T12:00",
            ["2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
        ),
        (
            "cron(30 2 * * ? *)",
            "America/New_York",
            "2026-10-30T12:00",
            ["2026-10-31T02:30:00-04:00", "2026-11-01T02:30:00-05:00", "2026-11-02T02:30:00-05:00"],
        ),
        # every 30 minutes over London's repeated hour: 01:00 and 01:30 once each, then 02:00
        (
            "cron(0/30 * * * ? *)",
            "Europe/London",
            "2026-10-24T23:45",
            ["2026-10-25T01:00:00+01:00", "2026-10-25T01:30:00+01:00", "2026-10-25T02:00:00+00:00"],
        ),
        # asked from inside the repeated hour (01:10 GMT): 01:30 already fired in summer time
        (
            "cron(0/30 * * * ? *)",
            "Europe/London",
            "2026-10-25T01:10",
            ["2026-10-25T02:00:00+00:00", "2026-10-25T02:30:00+00:00", "2026-10-25T03:00:00+00:00"],
        ),
    ],
)
def test_daylight_saving_changes_skip_missing_times_and_fire_repeated_ones_once(
    expression: str, timezone: str, after: str, expected: list[str]
):
    # Given a daily schedule near a clock change, When asked for its firings
    result = firings(expression, utc(after), timezone)

    # Then a missing time is skipped and a repeated one fires at its first occurrence,
    # as EventBridge Scheduler documents
    assert result == expected


@pytest.mark.parametrize(
    ("expression", "timezone", "start", "after", "expected"),
    [
        # no start known: count from `after` rounded down to the minute
        (
            "rate(5 minutes)",
            "UTC",
            None,
            "2026-01-01T10:02:30",
            ["2026-01-01T10:07:00+00:00", "2026-01-01T10:12:00+00:00", "2026-01-01T10:17:00+00:00"],
        ),
        (
            "rate(1 minute)",
            "UTC",
            None,
            "2026-01-01T10:00:00",
            ["2026-01-01T10:01:00+00:00", "2026-01-01T10:02:00+00:00", "2026-01-01T10:03:00+00:00"],
        ),
        # counted from the start date
        (
            "rate(1 hour)",
            "UTC",
            "2026-01-01T09:15",
            "2026-01-01T12:00",
            ["2026-01-01T12:15:00+00:00", "2026-01-01T13:15:00+00:00", "2026-01-01T14:15:00+00:00"],
        ),
        # a start in the future is itself the first firing
        (
            "rate(1 day)",
            "UTC",
            "2026-06-01T00:00",
            "2026-01-01T00:00",
            ["2026-06-01T00:00:00+00:00", "2026-06-02T00:00:00+00:00", "2026-06-03T00:00:00+00:00"],
        ),
        # a day is 24 hours: across London's spring change, 09:00 GMT becomes 10:00 BST
        (
            "rate(2 days)",
            "Europe/London",
            "2026-03-27T09:00",
            "2026-03-27T09:00",
            ["2026-03-29T10:00:00+01:00", "2026-03-31T10:00:00+01:00", "2026-04-02T10:00:00+01:00"],
        ),
    ],
)
def test_rate_firings(
    expression: str, timezone: str, start: str | None, after: str, expected: list[str]
):
    # Given a rate schedule, with or without a known start
    schedule = parse_schedule(expression, timezone, start=utc(start) if start else None)

    # When asked for its firings
    result = [moment.isoformat() for moment in schedule.next_firings(utc(after))]

    # Then they are the start plus whole periods, strictly after `after`, in the zone
    assert result == expected


@pytest.mark.parametrize(
    ("expression", "timezone", "expected"),
    [
        ("at(2026-12-01T09:00:00)", "Asia/Kolkata", ["2026-12-01T09:00:00+05:30"]),
        ("at(2026-07-01T09:00:00)", "America/New_York", ["2026-07-01T09:00:00-04:00"]),
        # a wall time that London skips fires as much later as the gap is long
        ("at(2026-03-29T01:30:00)", "Europe/London", ["2026-03-29T02:30:00+01:00"]),
        # a wall time London has twice fires at the first
        ("at(2026-10-25T01:30:00)", "Europe/London", ["2026-10-25T01:30:00+01:00"]),
    ],
)
def test_at_fires_once_at_its_wall_clock_time(expression: str, timezone: str, expected: list[str]):
    # Given a one-time schedule in a zone, When asked for firings from well before it
    result = firings(expression, utc("2026-01-01T00:00"), timezone)

    # Then exactly one, at that time there
    assert result == expected


def test_cron_does_not_fire_before_its_start_date():
    # Given a daily schedule that starts on 1 February, at the firing time itself
    start = utc("2026-02-01T09:00")

    # When asked from January
    result = firings("cron(0 9 * * ? *)", utc("2026-01-01T00:00"), start=start)

    # Then the first firing is the start, not a January morning
    assert result == [
        "2026-02-01T09:00:00+00:00",
        "2026-02-02T09:00:00+00:00",
        "2026-02-03T09:00:00+00:00",
    ]


def test_firings_are_in_the_schedules_zone_and_count_is_honoured():
    # Given a London schedule, When asked for five firings from a UTC moment
    schedule = parse_schedule("cron(0 2 * * ? *)", "Europe/London")
    result = schedule.next_firings(utc("2026-07-01T00:00"), count=5)

    # Then five come back, each in Europe/London, in order
    assert len(result) == 5
    assert all(str(moment.tzinfo) == "Europe/London" for moment in result)
    assert result == sorted(result)


def test_a_naive_after_is_refused():
    schedule = parse_schedule("rate(5 minutes)")

    with pytest.raises(ValueError, match="no time zone"):
        schedule.next_firings(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("expression", "timezone", "start", "expected"),
    [
        ("cron(0 2 * * ? *)", "Europe/London", None, "at 02:00 every day (Europe/London)"),
        ("cron(0 9 ? * MON-FRI *)", "UTC", None, "at 09:00 Monday to Friday (UTC)"),
        ("cron(0 9 ? * SAT,SUN *)", "UTC", None, "at 09:00 on Saturday and Sunday (UTC)"),
        ("cron(0 9,17 ? * MON *)", "UTC", None, "at 09:00 and 17:00 every Monday (UTC)"),
        ("cron(0 8 1 * ? *)", "UTC", None, "at 08:00 on day 1 of every month (UTC)"),
        ("cron(0 9 1 JAN,JUL ? *)", "UTC", None, "at 09:00 on day 1 of January and July (UTC)"),
        ("cron(0 0 L * ? *)", "UTC", None, "at 00:00 on the last day of every month (UTC)"),
        ("cron(0 9 LW * ? *)", "UTC", None, "at 09:00 on the last weekday of every month (UTC)"),
        (
            "cron(0 9 15W * ? *)",
            "UTC",
            None,
            "at 09:00 on the weekday nearest day 15 of every month (UTC)",
        ),
        (
            "cron(15 10 ? * 6L *)",
            "UTC",
            None,
            "at 10:15 on the last Friday of every month (UTC)",
        ),
        (
            "cron(0 9 ? * 2#1 *)",
            "UTC",
            None,
            "at 09:00 on the first Monday of every month (UTC)",
        ),
        ("cron(0/5 * * * ? *)", "UTC", None, "every 5 minutes (UTC)"),
        ("cron(0 * * * ? *)", "UTC", None, "every hour, on the hour (UTC)"),
        ("cron(0 0/6 * * ? *)", "UTC", None, "every 6 hours, on the hour (UTC)"),
        (
            "cron(0/10 8-17 ? * MON-FRI *)",
            "UTC",
            None,
            "every 10 minutes from 08:00 to 17:50, Monday to Friday (UTC)",
        ),
        (
            "cron(0,15 8-18 ? * MON-FRI *)",
            "UTC",
            None,
            "minutes 0,15 past hours 8-18, Monday to Friday (UTC)",
        ),
        (
            "cron(0 0 1 1 ? 2027)",
            "UTC",
            None,
            "at 00:00 on day 1 of January, in year 2027 (UTC)",
        ),
        ("rate(5 minutes)", "UTC", None, "every 5 minutes (from when the schedule was created)"),
        ("rate(1 hour)", "UTC", None, "every hour (from when the schedule was created)"),
        (
            "rate(1 day)",
            "Europe/London",
            "2026-07-01T08:00",
            "every day from 2026-07-01 09:00 (Europe/London)",
        ),
        ("at(2026-12-01T09:00:00)", "UTC", None, "once, at 2026-12-01 09:00 (UTC)"),
    ],
)
def test_in_words(expression: str, timezone: str, start: str | None, expected: str):
    # Given a schedule, When put into words
    schedule = parse_schedule(expression, timezone, start=utc(start) if start else None)

    # Then the sentence says what it does and in which zone
    assert schedule.in_words() == expected


@pytest.mark.parametrize(
    ("expression", "field", "message"),
    [
        ("cron(0 0 ? * 8 *)", "day-of-week", "day-of-week: 8 is not 1-7 or SUN-SAT"),
        ("cron(0 0 ? * FUN *)", "day-of-week", "'FUN' is not 1-7 or SUN-SAT"),
        ("cron(60 0 * * ? *)", "minutes", "minutes: 60 is not 0-59"),
        ("cron(0 24 * * ? *)", "hours", "hours: 24 is not 0-23"),
        ("cron(0 0 32 * ? *)", "day-of-month", "day-of-month: 32 is not 1-31"),
        ("cron(0 0 * 13 ? *)", "month", "month: 13 is not 1-12 or JAN-DEC"),
        ("cron(0 0 * * ? 1969)", "year", "year: 1969 is not 1970-2199"),
        ("cron(0 0 * * ? 2200)", "year", "year: 2200 is not 1970-2199"),
        ("cron(0/0 * * * ? *)", "minutes", "step '0'"),
        ("cron(0 0 * * * *)", "day-of-month/day-of-week", "exactly one of the two must be '?'"),
        ("cron(0 0 ? * ? *)", "day-of-month/day-of-week", "exactly one of the two must be '?'"),
        ("cron(0 0 1 * MON *)", "day-of-month/day-of-week", "exactly one of the two must be '?'"),
        ("cron(0 0 ? * MON/2 *)", "day-of-week", "'/' is not allowed"),
        ("cron(0 0 1#2 * ? *)", "day-of-month", "'#' is not allowed"),
        ("cron(0 0 * ? ? *)", "month", "'?' is not allowed"),
        ("cron(0 0 ? * 6#6 *)", "day-of-week", "the week after '#' is not 1-5"),
        ("cron(0 0 ? * 2#1,6#3 *)", "day-of-week", "'#' allows one expression only"),
        ("cron(0 0 L,15 * ? *)", "day-of-month", "L and W stand alone"),
        ("cron(0 0 * * ?)", "cron", "5 fields"),
        ("rate(1 minutes)", "rate", "write rate(1 minute), not rate(1 minutes)"),
        ("rate(5 minute)", "rate", "write rate(5 minutes), not rate(5 minute)"),
        ("rate(0 minutes)", "rate", "'0' is not a positive whole number"),
        ("rate(2 weeks)", "rate", "'weeks' is not minute(s), hour(s) or day(s)"),
        ("at(2026-02-30T09:00:00)", "at", "not a real date and time"),
        ("at(2026-12-01 09:00)", "at", "is not yyyy-mm-ddThh:mm:ss"),
        ("every 5 minutes", "expression", "is not cron(...), rate(...) or at(...)"),
    ],
)
def test_errors_name_the_field_and_the_value(expression: str, field: str, message: str):
    # Given an expression EventBridge would refuse, When it is parsed
    with pytest.raises(ScheduleExpressionError) as raised:
        parse_schedule(expression)

    # Then the error names the field at fault and says what is wrong with the value
    assert raised.value.field == field
    assert message in str(raised.value)
    assert str(raised.value).startswith(f"{field}: ")


def test_rate_1_minute_is_accepted_where_rate_1_minutes_is_not():
    assert parse_schedule("rate(1 minute)").in_words().startswith("every minute")
    with pytest.raises(ScheduleExpressionError, match="singular"):
        parse_schedule("rate(1 minutes)")


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(ScheduleExpressionError, match="timezone: 'Mars/Olympus'"):
        parse_schedule("cron(0 9 * * ? *)", "Mars/Olympus")


def test_a_naive_start_is_refused():
    with pytest.raises(ScheduleExpressionError, match=r"start: .* no time zone"):
        parse_schedule("rate(5 minutes)", start=datetime(2026, 1, 1))


def test_the_error_is_a_value_error():
    # Callers that already catch ValueError keep working
    with pytest.raises(ValueError, match="day-of-week"):
        parse_schedule("cron(0 0 ? * 8 *)")
