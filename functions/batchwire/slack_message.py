"""An Alert as a Slack Block Kit message, within every Slack limit.

Every text that came from a log or an event is redacted, then escaped (``&``, ``<``, ``>``)
here and nowhere else, so no reader of an Alert can forget to. The only live markup in a
message is ours: links we build and the mention a routing rule configures.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from batchwire.alerts import Alert
from batchwire.redaction import Redactor, escape_for_slack
from batchwire.slack import (
    MAX_BLOCKS,
    MAX_FALLBACK_TEXT,
    MAX_FIELD_TEXT,
    MAX_SECTION_TEXT,
    clip,
    code_block,
    context,
    fields_section,
    link,
    section,
)

SEVERITY_ICON = {
    "critical": ":red_circle:",
    "error": ":rotating_light:",
    "warning": ":warning:",
    "info": ":information_source:",
}
#: The icon of an alert saying a problem is over (an alarm back to OK).
RESOLVED_ICON = ":white_check_mark:"


def format_alert(
    alert: Alert,
    redactor: Redactor,
    *,
    suppressed: int = 0,
    window_seconds: int = 300,
    mention: str = "",
) -> dict[str, Any]:
    """The webhook payload for ``alert``: Block Kit blocks plus a plain ``text`` fallback.

    ``suppressed`` counts the same alerts held back by flood control since the last post;
    ``mention`` (``<!here>``, ``<!subteam^ID>``) comes from configuration, never from data.
    """

    def safe(text: str) -> str:
        return escape_for_slack(redactor.redact(text))

    icon = (
        RESOLVED_ICON if alert.resolves else SEVERITY_ICON.get(alert.severity, ":rotating_light:")
    )
    title = f"{icon} *{clip(safe(alert.title), 500)}*"
    lead = f"{mention} {title}" if mention else title
    blocks: list[dict[str, Any]] = [section(lead)]
    if alert.summary:
        blocks.append(section(clip(safe(alert.summary), MAX_SECTION_TEXT)))
    facts = [(label, safe(value)) for label, value in alert.facts if value]
    if alert.account:
        facts.append(("Account", safe(alert.account)))
    if alert.region:
        facts.append(("Region", safe(alert.region)))
    if facts:
        blocks.append(
            fields_section(
                [clip(f"*{label}*\n{value}", MAX_FIELD_TEXT) for label, value in facts[:10]]
            )
        )
    when = _when(alert)
    if when:
        blocks.append(context(when))
    if alert.lines:
        lines = [_inert_fences(safe(line)) for line in alert.lines]
        blocks.append(section(code_block(lines, alert.more_lines)))
    if suppressed:
        minutes = window_seconds / 60
        span = f"{minutes:g} minutes" if minutes >= 1 else f"{window_seconds} seconds"
        blocks.append(
            context(
                f":mute: {suppressed:,} more alert{'s' if suppressed != 1 else ''} like this "
                f"were suppressed since the last one (at most one per {span})"
            )
        )
    if alert.links:
        blocks.append(section(" · ".join(link(url, safe(label)) for label, url in alert.links)))
    fallback = f"{'RESOLVED' if alert.resolves else alert.severity.upper()}: {safe(alert.title)}"
    detail = alert.summary or (alert.lines[0] if alert.lines else "")
    if detail:
        fallback += f" - {safe(detail)}"
    if suppressed:
        fallback += f" ({suppressed:,} similar suppressed)"
    if mention:
        fallback = f"{mention} {fallback}"
    return {"text": clip(fallback, MAX_FALLBACK_TEXT), "blocks": blocks[:MAX_BLOCKS]}


def _when(alert: Alert) -> str:
    parts = []
    if alert.first_seen and alert.last_seen and alert.first_seen != alert.last_seen:
        parts.append(f"first {_utc(alert.first_seen)}, last {_utc(alert.last_seen)}")
    elif alert.last_seen or alert.first_seen:
        parts.append(_utc(alert.last_seen or alert.first_seen))  # type: ignore[arg-type]
    if alert.kind == "log-errors":
        parts.append(
            f"{alert.match_count:,} matching log event{'s' if alert.match_count != 1 else ''}"
        )
    return " · ".join(parts)


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _inert_fences(line: str) -> str:
    # a ``` inside a log line would close our code block early
    return line.replace("```", "`\u200b`\u200b`")
