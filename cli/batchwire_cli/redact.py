"""Keep secrets out of what the command prints from queued messages.

The CLI is installed apart from ``functions/`` (pipx), so it carries its own short list:
credentials inside URLs, Slack webhook URLs, signed-URL query parameters, AWS access key
ids, and the values of fields whose name says they hold a secret.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"

_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # the whole webhook: its path is the credential
    (
        re.compile(r"https://hooks\.slack(?:-gov)?\.com/[A-Za-z0-9/_-]+"),
        REDACTED,
    ),
    # scheme://user:password@host keeps the user; the length bounds keep matching linear
    (
        re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{0,30}://[^\s:/@\"']{1,256}:)[^\s@/\"']{1,256}@"),
        rf"\g<1>{REDACTED}@",
    ),
    # presigned URLs and tokens passed as query parameters
    (
        re.compile(
            r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig"
            r"|token|access_token|api_key|apikey|key|password)=)[^&\s\"'#]+"
        ),
        rf"\g<1>{REDACTED}",
    ),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), REDACTED),
    # password=..., "token": "..." inside free text
    (
        re.compile(
            r"(?i)\b((?:password|passwd|secret|token|api_?key|webhook_?url)[\"']?\s*[:=]\s*[\"']?)"
            r"[^\s\"'&,;]+"
        ),
        rf"\g<1>{REDACTED}",
    ),
)
_SECRET_FIELD = re.compile(
    r"(?i)(password|passwd|secret|token|api_?key|authorization|webhook|credential)"
)


def redact_text(text: str) -> str:
    """``text`` with every secret these patterns know replaced by ``[REDACTED]``."""
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any) -> Any:
    """A JSON-like value with every string redacted, and the value of secret-named fields."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            redact_text(str(key)): (
                REDACTED
                if _SECRET_FIELD.search(str(key)) and isinstance(item, str | int | float) and item
                else redact(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value
