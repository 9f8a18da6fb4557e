"""EventBridge schedule expressions: what they mean in words, and when they fire next.

Reads ``cron(...)``, ``rate(...)`` and ``at(...)`` the way Amazon EventBridge Scheduler
does (and EventBridge rules, whose cron syntax is the same), without calling AWS:

- ``cron(minutes hours day-of-month month day-of-week year)``: six fields; ``, - * /``;
  JAN-DEC and SUN-SAT (day-of-week 1-7 is SUN-SAT); ``?`` in exactly one of
  day-of-month / day-of-week; ``L``, ``LW`` and ``15W`` in day-of-month (``W`` never
  leaves the month: a Saturday 1st moves to Monday the 3rd); ``L`` (Saturday, the last
  day of the week), ``5L`` (last Thursday) and ``6#3`` (third Friday) in day-of-week;
  years 1970-2199. ``/`` is refused in day-of-week and ``#`` outside it, as the AWS
  field table has it. A range written backwards (``FRI-MON``, ``22-2``) wraps round.
  ``15W`` in a month without a 15th (``31W`` in April) does not fire in that month.
- ``rate(value unit)``: minute(s), hour(s), day(s); 1 takes the singular unit and any other
  value the plural. Firings are ``start + k * rate`` in elapsed time (a day is 24 hours,
  as EventBridge Scheduler documents, so a daily rate drifts an hour against the wall
  clock across a DST change).
- ``at(yyyy-mm-ddThh:mm:ss)``: one firing at that wall-clock time in the schedule's zone.

Daylight saving time. A cron schedule fires at wall-clock times in its own zone. AWS
documents ("How can I adjust my Amazon EventBridge schedule for daylight saving?", AWS
re:Post knowledge center) that when clocks go forward an invocation that falls on a
time that does not exist is skipped, and when clocks go back a time that happens twice
runs only once. This module does the same: a nonexistent cron time does not fire that
day, and an ambiguous one fires at its first occurrence. For ``at()`` (which AWS does not
describe) a nonexistent time fires at the same elapsed time as it would have without the
change (01:30 on a 01:00->02:00 night fires at 02:30), and an ambiguous one fires at
its first occurrence.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Schedule", "ScheduleExpressionError", "parse_schedule"]


class ScheduleExpressionError(ValueError):
    """A schedule expression EventBridge would refuse, naming the field and value at fault.

    ``field`` is the part that is wrong: a cron field ("minutes", "day-of-week", ...),
    "rate", "at", "timezone", "start" or "expression".
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DAY_WORDS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_ORDINALS = ("first", "second", "third", "fourth", "fifth")
_YEAR_MIN, _YEAR_MAX = 1970, 2199


@dataclass(frozen=True)
class _FieldRule:
    name: str
    low: int
    high: int
    names: tuple[str, ...]  # names[i] stands for low + i
    operators: str  # the operators AWS lists for this field

    def refusal(self, value: object) -> str:
        if self.names:
            return f"{value} is not {self.low}-{self.high} or {self.names[0]}-{self.names[-1]}"
        return f"{value} is not {self.low}-{self.high}"


_MINUTES = _FieldRule("minutes", 0, 59, (), ",-*/")
_HOURS = _FieldRule("hours", 0, 23, (), ",-*/")
_DAY_OF_MONTH = _FieldRule("day-of-month", 1, 31, (), ",-*?/LW")
_MONTH = _FieldRule("month", 1, 12, MONTH_NAMES, ",-*/")
_DAY_OF_WEEK = _FieldRule("day-of-week", 1, 7, DAY_NAMES, ",-*?L#")
_YEAR = _FieldRule("year", _YEAR_MIN, _YEAR_MAX, (), ",-*/")

_DayKind = Literal[
    "any",  # * or ?
    "days",  # day-of-month numbers
    "last",  # L in day-of-month
    "last_weekday",  # LW
    "nearest_weekday",  # 15W
    "weekdays",  # day-of-week numbers (1 = SUN)
    "last_of_weekday",  # 5L
    "nth_weekday",  # 6#3
]


@dataclass(frozen=True)
class _DaySpec:
    kind: _DayKind
    values: frozenset[int] = frozenset()
    day: int = 0  # the day of month for nearest_weekday
    weekday: int = 0  # 1 = SUN .. 7 = SAT for last_of_weekday / nth_weekday
    nth: int = 0


@dataclass(frozen=True)
class _Cron:
    texts: tuple[str, str, str, str, str, str]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: _DaySpec  # whichever of day-of-month / day-of-week is not "?"
    months: tuple[int, ...]
    years: tuple[int, ...]


@dataclass(frozen=True)
class _Rate:
    value: int
    unit: str  # "minute", "hour" or "day"
    period: timedelta


@dataclass(frozen=True)
class _At:
    wall: datetime  # naive wall-clock time in the schedule's zone


@dataclass(frozen=True)
class Schedule:
    """A parsed EventBridge schedule expression in its time zone.

    Build one with :func:`parse_schedule` (constructing it directly parses and validates
    the same way). ``start`` is the schedule's StartDate, or for a rate schedule without
    one its creation time; ``None`` when the caller does not know it.
    """

    expression: str
    timezone: str = "UTC"
    start: datetime | None = None
    _parsed: _Cron | _Rate | _At = field(init=False, repr=False, compare=False)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", _zone(self.timezone))
        if self.start is not None and self.start.tzinfo is None:
            raise ScheduleExpressionError(
                "start", f"{self.start.isoformat()} has no time zone; pass an aware datetime"
            )
        object.__setattr__(self, "_parsed", _parse(self.expression))

    def next_firings(self, after: datetime, count: int = 3) -> list[datetime]:
        """The next ``count`` firings strictly after ``after`` (an aware datetime).

        Returned as aware datetimes in the schedule's time zone, earliest first. Fewer
        (or none) come back when the schedule stops firing: a past ``at()``, a last
        listed year, or a day that never exists (``cron(0 0 30 FEB ? *)``).
        """
        if after.tzinfo is None:
            raise ValueError(f"after={after.isoformat()} has no time zone; pass an aware datetime")
        if count <= 0:
            return []
        after_utc = after.astimezone(UTC)
        parsed = self._parsed
        if isinstance(parsed, _At):
            instant = _at_instant(parsed.wall, self._zone)
            return [instant] if instant.astimezone(UTC) > after_utc else []
        if isinstance(parsed, _Rate):
            return _rate_firings(parsed, self.start, after_utc, self._zone, count)
        if self.start is not None:
            # A cron schedule fires from its StartDate on; firing at the start itself counts.
            after_utc = max(after_utc, self.start.astimezone(UTC) - timedelta(microseconds=1))
        return list(_cron_firings(parsed, after_utc, self._zone, count))

    def in_words(self) -> str:
        """What the schedule does, in a sentence an operator can check against intent.

        For example "at 02:00 every day (Europe/London)", "every 5 minutes (from when the
        schedule was created)", "at 10:15 on the last Friday of every month (UTC)",
        "once, at 2026-12-01 09:00 (UTC)". Shapes without a short phrase still name
        every field: "minutes 0,15 past hours 8-18, Monday to Friday (UTC)".
        """
        parsed = self._parsed
        if isinstance(parsed, _At):
            return f"once, at {_clock(parsed.wall, with_date=True)} ({self.timezone})"
        if isinstance(parsed, _Rate):
            every = f"every {parsed.unit}" if parsed.value == 1 else f"every {parsed.value} "
            every += "" if parsed.value == 1 else f"{parsed.unit}s"
            if self.start is None:
                return f"{every} (from when the schedule was created)"
            local_start = self.start.astimezone(self._zone)
            return f"{every} from {_clock(local_start, with_date=True)} ({self.timezone})"
        return f"{_cron_words(parsed)} ({self.timezone})"


def parse_schedule(
    expression: str, timezone: str = "UTC", start: datetime | None = None
) -> Schedule:
    """Parse an EventBridge schedule expression evaluated in ``timezone`` (an IANA name).

    ``start`` is the schedule's StartDate (aware); rate schedules count from it, cron
    schedules do not fire before it. Raises :class:`ScheduleExpressionError` naming the
    field and the value at fault, e.g. "day-of-week: 8 is not 1-7 or SUN-SAT".
    """
    return Schedule(expression, timezone, start)


# --- parsing -------------------------------------------------------------------------

_EXPRESSION = re.compile(r"^(cron|rate|at)\((.*)\)$", re.DOTALL)
_AT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$")
_RATE_UNITS = {"minute": 1, "hour": 60, "day": 1440}


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleExpressionError(
            "timezone", f"{name!r} is not an IANA time zone name (such as Europe/London or UTC)"
        ) from None


def _parse(expression: str) -> _Cron | _Rate | _At:
    match = _EXPRESSION.match(expression.strip())
    if match is None:
        raise ScheduleExpressionError(
            "expression",
            f"{expression!r} is not cron(...), rate(...) or at(...)",
        )
    kind, body = match.group(1), match.group(2).strip()
    if kind == "cron":
        return _parse_cron(body)
    if kind == "rate":
        return _parse_rate(body)
    return _parse_at(body)


def _parse_at(body: str) -> _At:
    match = _AT.match(body)
    if match is None:
        raise ScheduleExpressionError(
            "at", f"{body!r} is not yyyy-mm-ddThh:mm:ss (e.g. at(2026-12-01T09:00:00))"
        )
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        wall = datetime(year, month, day, hour, minute, second)
    except ValueError as error:
        raise ScheduleExpressionError(
            "at", f"{body!r} is not a real date and time: {error}"
        ) from None
    return _At(wall)


def _parse_rate(body: str) -> _Rate:
    parts = body.split()
    if len(parts) != 2:
        raise ScheduleExpressionError(
            "rate", f"{body!r} is not 'value unit' (e.g. rate(5 minutes), rate(1 hour))"
        )
    value_text, unit_text = parts
    if not value_text.isdigit() or int(value_text) == 0:
        raise ScheduleExpressionError("rate", f"{value_text!r} is not a positive whole number")
    value, unit = int(value_text), unit_text.lower()
    singular = unit.removesuffix("s")
    if singular not in _RATE_UNITS:
        raise ScheduleExpressionError("rate", f"{unit_text!r} is not minute(s), hour(s) or day(s)")
    if value == 1 and unit != singular:
        raise ScheduleExpressionError(
            "rate",
            f"1 takes the singular unit: write rate(1 {singular}), not rate(1 {unit_text})",
        )
    if value != 1 and unit == singular:
        raise ScheduleExpressionError(
            "rate",
            f"{value} takes the plural unit: write rate({value} {singular}s), "
            f"not rate({value} {unit_text})",
        )
    return _Rate(value, singular, timedelta(minutes=value * _RATE_UNITS[singular]))


def _parse_cron(body: str) -> _Cron:
    texts = body.split()
    if len(texts) != 6:
        raise ScheduleExpressionError(
            "cron",
            f"{len(texts)} fields in {body!r}; EventBridge needs 6: "
            "minutes hours day-of-month month day-of-week year",
        )
    minute_text, hour_text, dom_text, month_text, dow_text, year_text = (t.upper() for t in texts)
    if (dom_text == "?") == (dow_text == "?"):
        raise ScheduleExpressionError(
            "day-of-month/day-of-week",
            f"{dom_text} and {dow_text}: exactly one of the two must be '?' "
            "(e.g. cron(0 9 * * ? *) or cron(0 9 ? * MON-FRI *))",
        )
    days = _parse_day_of_month(dom_text) if dow_text == "?" else _parse_day_of_week(dow_text)
    return _Cron(
        texts=(minute_text, hour_text, dom_text, month_text, dow_text, year_text),
        minutes=tuple(sorted(_parse_values(_MINUTES, minute_text))),
        hours=tuple(sorted(_parse_values(_HOURS, hour_text))),
        days=days,
        months=tuple(sorted(_parse_values(_MONTH, month_text))),
        years=tuple(sorted(_parse_values(_YEAR, year_text))),
    )


def _check_operators(rule: _FieldRule, text: str) -> None:
    for operator in ",-*/?#":
        if operator in text and operator not in rule.operators:
            raise ScheduleExpressionError(
                rule.name,
                f"{operator!r} is not allowed here (in {text!r}); "
                f"{rule.name} takes {' '.join(rule.operators)}",
            )


def _value(rule: _FieldRule, token: str) -> int:
    if token.isdigit():
        number = int(token)
    elif token in rule.names:
        number = rule.low + rule.names.index(token)
    else:
        raise ScheduleExpressionError(rule.name, rule.refusal(repr(token)))
    if not rule.low <= number <= rule.high:
        raise ScheduleExpressionError(rule.name, rule.refusal(number))
    return number


def _span(rule: _FieldRule, first: int, last: int, step: int) -> list[int]:
    if first <= last:
        return list(range(first, last + 1, step))
    if rule is _YEAR:
        raise ScheduleExpressionError(rule.name, f"range {first}-{last} runs backwards")
    # A backwards range wraps round the end of the field (FRI-MON, 22-2).
    cycle = rule.high - rule.low + 1
    length = (last - first) % cycle + 1
    return [rule.low + (first - rule.low + i) % cycle for i in range(0, length, step)]


def _parse_values(rule: _FieldRule, text: str) -> set[int]:
    _check_operators(rule, text)
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or not 1 <= int(step_text) <= rule.high - rule.low + 1:
                raise ScheduleExpressionError(
                    rule.name,
                    f"step {step_text!r} in {part!r} is not 1-{rule.high - rule.low + 1}",
                )
            step = int(step_text)
        if base in ("*", "?"):
            first, last = rule.low, rule.high
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first, last = _value(rule, first_text), _value(rule, last_text)
        else:
            first = _value(rule, base)
            last = rule.high if slash else first
        values.update(_span(rule, first, last, step))
    return values


_NEAREST_WEEKDAY = re.compile(r"^(\d+)W$")


def _parse_day_of_month(text: str) -> _DaySpec:
    if text == "*":
        return _DaySpec("any")
    if text == "L":
        return _DaySpec("last")
    if text == "LW":
        return _DaySpec("last_weekday")
    nearest = _NEAREST_WEEKDAY.match(text)
    if nearest is not None:
        return _DaySpec("nearest_weekday", day=_value(_DAY_OF_MONTH, nearest.group(1)))
    if "L" in text or "W" in text:
        raise ScheduleExpressionError(
            "day-of-month",
            f"{text!r}: L and W stand alone (L, LW, or one day such as 15W), not in a list",
        )
    return _DaySpec("days", frozenset(_parse_values(_DAY_OF_MONTH, text)))


def _parse_day_of_week(text: str) -> _DaySpec:
    _check_operators(_DAY_OF_WEEK, text)
    if text == "*":
        return _DaySpec("any")
    if text == "L":  # the last day of the week
        return _DaySpec("weekdays", frozenset({7}))
    if "#" in text:
        weekday_text, _, nth_text = text.partition("#")
        if "," in text or "-" in text:
            raise ScheduleExpressionError(
                "day-of-week", f"{text!r}: '#' allows one expression only (e.g. 6#3)"
            )
        if not nth_text.isdigit() or not 1 <= int(nth_text) <= 5:
            raise ScheduleExpressionError("day-of-week", f"{text!r}: the week after '#' is not 1-5")
        return _DaySpec(
            "nth_weekday", weekday=_value(_DAY_OF_WEEK, weekday_text), nth=int(nth_text)
        )
    if text.endswith("L") and "," not in text and "-" not in text:
        return _DaySpec("last_of_weekday", weekday=_value(_DAY_OF_WEEK, text[:-1]))
    return _DaySpec("weekdays", frozenset(_parse_values(_DAY_OF_WEEK, text)))


# --- firings -------------------------------------------------------------------------


def _aws_weekday(day: date) -> int:
    """1 = Sunday .. 7 = Saturday, as EventBridge numbers them."""
    return (day.weekday() + 1) % 7 + 1


def _days_in_month(spec: _DaySpec, year: int, month: int) -> list[int]:
    length = calendar.monthrange(year, month)[1]
    first = _aws_weekday(date(year, month, 1))

    def weekday(day: int) -> int:
        return (first - 1 + day - 1) % 7 + 1

    if spec.kind == "any":
        return list(range(1, length + 1))
    if spec.kind == "days":
        return sorted(day for day in spec.values if day <= length)
    if spec.kind == "last":
        return [length]
    if spec.kind == "last_weekday":
        day = length
        while weekday(day) in (1, 7):
            day -= 1
        return [day]
    if spec.kind == "nearest_weekday":
        day = spec.day
        if day > length:
            return []
        if weekday(day) == 7:  # Saturday: Friday before, or Monday after if that leaves the month
            return [day - 1 if day > 1 else day + 2]
        if weekday(day) == 1:  # Sunday: Monday after, or Friday before at the month's end
            return [day + 1 if day < length else day - 2]
        return [day]
    if spec.kind == "weekdays":
        return [day for day in range(1, length + 1) if weekday(day) in spec.values]
    if spec.kind == "last_of_weekday":
        return [length - (weekday(length) - spec.weekday) % 7]
    first_match = 1 + (spec.weekday - first) % 7  # nth_weekday
    day = first_match + 7 * (spec.nth - 1)
    return [day] if day <= length else []


def _existing(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """The instant a wall-clock time names in ``zone`` (its first, if twice), None if never."""
    local = wall.replace(tzinfo=zone, fold=0).astimezone(UTC).astimezone(zone)
    return local if local.replace(tzinfo=None, fold=0) == wall else None


def _at_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    # fold=0 reads a time in the gap with the offset from before it: it fires as late as the
    # gap is long (01:30 -> 02:30), which is the same elapsed time as on an ordinary night.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC).astimezone(zone)


def _month_starts(cron: _Cron, from_day: date) -> Iterator[tuple[int, int]]:
    for year in cron.years:
        if year < from_day.year:
            continue
        for month in cron.months:
            if (year, month) >= (from_day.year, from_day.month):
                yield year, month


def _cron_firings(
    cron: _Cron, after_utc: datetime, zone: ZoneInfo, count: int
) -> Iterator[datetime]:
    # Start a day early: a clock going back can put a later instant on an earlier date.
    from_day = after_utc.astimezone(zone).date() - timedelta(days=1)
    last_minute = cron.minutes[-1]
    found = 0
    for year, month in _month_starts(cron, from_day):
        for day in _days_in_month(cron.days, year, month):
            if date(year, month, day) < from_day:
                continue
            # Skip whole days and hours that end before `after` without trying each minute.
            if _ends_before(
                datetime(year, month, day, cron.hours[-1], last_minute), zone, after_utc
            ):
                continue
            for hour in cron.hours:
                if _ends_before(datetime(year, month, day, hour, last_minute), zone, after_utc):
                    continue
                for minute in cron.minutes:
                    firing = _existing(datetime(year, month, day, hour, minute), zone)
                    if firing is None or firing.astimezone(UTC) <= after_utc:
                        continue
                    yield firing
                    found += 1
                    if found == count:
                        return


def _ends_before(wall: datetime, zone: ZoneInfo, after_utc: datetime) -> bool:
    # A rough test that every firing up to this wall time is already past. Three hours of
    # slack cover the readings of a time in a DST gap or overlap, so it never skips too much.
    latest = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return latest + timedelta(hours=3) <= after_utc


def _rate_firings(
    rate: _Rate, start: datetime | None, after_utc: datetime, zone: ZoneInfo, count: int
) -> list[datetime]:
    # Without a known start, the schedule was created "now": `after`, to the minute.
    anchor = start.astimezone(UTC) if start else after_utc.replace(second=0, microsecond=0)
    first = 0 if anchor > after_utc else (after_utc - anchor) // rate.period + 1
    return [(anchor + rate.period * k).astimezone(zone) for k in range(first, first + count)]


# --- words ---------------------------------------------------------------------------


def _clock(moment: datetime, *, with_date: bool = False) -> str:
    text = f"{moment.hour:02d}:{moment.minute:02d}"
    if moment.second:
        text += f":{moment.second:02d}"
    return f"{moment.date().isoformat()} {text}" if with_date else text


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _runs(values: Iterable[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in sorted(values):
        if runs and runs[-1][1] == value - 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _listed(values: Iterable[int], name: tuple[str, ...] | None = None) -> str:
    """1, 3 and 5 / 1 to 7 / Monday to Friday, joining runs of three or more."""

    def say(value: int) -> str:
        return name[value - 1] if name else str(value)

    parts: list[str] = []
    for first, last in _runs(values):
        if last - first >= 2:
            parts.append(f"{say(first)} to {say(last)}")
        else:
            parts.extend(say(value) for value in range(first, last + 1))
    return _and(parts)


def _step(values: tuple[int, ...], size: int) -> int | None:
    """N when ``values`` are 0, N, 2N ... and N divides the field evenly, else None."""
    if len(values) < 2:
        return None
    step = values[1] - values[0]
    if values[0] == 0 and size % step == 0 and values == tuple(range(0, size, step)):
        return step
    return None


def _time_words(cron: _Cron) -> tuple[str, bool]:
    """The time of day, and whether it repeats within a day."""
    minutes, hours = cron.minutes, cron.hours
    every_hour = len(hours) == 24
    minute_step = 1 if len(minutes) == 60 else _step(minutes, 60)
    if minute_step is not None:
        every = "every minute" if minute_step == 1 else f"every {minute_step} minutes"
        if every_hour:
            return every, True
        if len(_runs(hours)) == 1:
            end = f"{hours[-1]:02d}:{minutes[-1]:02d}"
            return f"{every} from {hours[0]:02d}:00 to {end}", True
    if len(minutes) == 1:
        past = "on the hour" if minutes[0] == 0 else f"at {minutes[0]} minutes past"
        if every_hour:
            return f"every hour, {past}", True
        hour_step = _step(hours, 24)
        if hour_step is not None:
            return f"every {hour_step} hours, {past}", True
    if len(minutes) * len(hours) <= 6:
        times = [f"{hour:02d}:{minute:02d}" for hour in hours for minute in minutes]
        return f"at {_and(times)}", False
    where = "every hour" if every_hour else f"hours {cron.texts[1]}"
    return f"minutes {cron.texts[0]} past {where}", True


def _month_words(cron: _Cron) -> str | None:
    if len(cron.months) == 12:
        return None
    return _listed(cron.months, tuple(calendar.month_name[1:]))


def _day_words(cron: _Cron) -> str:
    spec = cron.days
    months = _month_words(cron)
    of_months = f"of {months}" if months else "of every month"
    in_months = f" in {months}" if months else ""
    if spec.kind == "any":
        return f"every day{in_months}"
    if spec.kind == "weekdays":
        days = sorted(spec.values)
        if len(days) == 1:
            return f"every {_DAY_WORDS[days[0] - 1]}{in_months}"
        if days == [1, 7]:
            return f"on Saturday and Sunday{in_months}"
        if len(_runs(days)) == 1 and len(days) >= 3:
            return f"{_listed(days, _DAY_WORDS)}{in_months}"
        return f"on {_listed(days, _DAY_WORDS)}{in_months}"
    if spec.kind == "days":
        days = sorted(spec.values)
        label = "day" if len(days) == 1 else "days"
        return f"on {label} {_listed(days)} {of_months}"
    if spec.kind == "last":
        return f"on the last day {of_months}"
    if spec.kind == "last_weekday":
        return f"on the last weekday {of_months}"
    if spec.kind == "nearest_weekday":
        return f"on the weekday nearest day {spec.day} {of_months}"
    if spec.kind == "last_of_weekday":
        return f"on the last {_DAY_WORDS[spec.weekday - 1]} {of_months}"
    return f"on the {_ORDINALS[spec.nth - 1]} {_DAY_WORDS[spec.weekday - 1]} {of_months}"


def _cron_words(cron: _Cron) -> str:
    time, repeats = _time_words(cron)
    day = _day_words(cron)
    if repeats and day == "every day":
        words = time
    elif repeats:
        words = f"{time}, {day.removeprefix('every day ')}"
    else:
        words = f"{time} {day}"
    if len(cron.years) != _YEAR_MAX - _YEAR_MIN + 1:
        label = "year" if len(cron.years) == 1 else "years"
        words += f", in {label} {_listed(cron.years)}"
    return words
