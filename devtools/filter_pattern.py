"""Evaluate a CloudWatch Logs regex filter pattern (``%...%``) locally, as CloudWatch does.

moto's filter_log_events does not implement CloudWatch's filter syntax (a pattern starting
with ``%`` or ``?`` matches everything there), so the notifier's subscription filter pattern
is checked here instead: first against the documented restrictions of regex patterns
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html: only
alphanumerics, the symbols ``_ # = @ / ; , -`` and the operators ``^ $ ? [ ] { } | \\ * + .``;
no parentheses, no multi-byte characters), then by matching it, unanchored and case
sensitive, against log lines. On AWS the same check is
``aws logs test-metric-filter --filter-pattern '<pattern>' --log-event-messages '<line>' ...``.
"""

from __future__ import annotations

import re
import string

ALLOWED = set(string.ascii_letters + string.digits + "_#=@/;,-" + "^$?[]{}|\\*+.")


class UnsupportedPattern(ValueError):
    """The pattern is not a regex filter pattern CloudWatch Logs would accept."""


def compile_regex_pattern(pattern: str) -> re.Pattern[str]:
    """The Python regex equivalent of a ``%regex%`` filter pattern, or UnsupportedPattern."""
    if len(pattern) < 3 or not (pattern.startswith("%") and pattern.endswith("%")):
        raise UnsupportedPattern(f"{pattern!r}: not a %regex% filter pattern")
    body = pattern[1:-1]
    bad = sorted({char for char in body if char not in ALLOWED})
    if bad:
        raise UnsupportedPattern(f"{pattern!r}: CloudWatch Logs rejects the characters {bad}")
    return re.compile(body)


def matches(pattern: str, message: str) -> bool:
    """Whether CloudWatch Logs would pass ``message`` through a filter with ``pattern``."""
    return compile_regex_pattern(pattern).search(message) is not None
