"""Redact secrets from log text before it leaves AWS, and escape it for Slack.

Redaction runs on the raw text, before Slack escaping, so a secret cannot slip through
because escaping split it. Each built-in pattern keeps what helps a reader (``password=``,
``Bearer``) and replaces only the secret with ``[REDACTED]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from batchwire.errors import ConfigurationError

REDACTED = "[REDACTED]"

#: (name, pattern, replacement). Replacements may refer to groups of their pattern.
BUILTIN_PATTERNS: tuple[tuple[str, str, str], ...] = (
    (
        "slack-webhook-url",
        r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+",
        REDACTED,
    ),
    ("aws-access-key-id", r"\b(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b", REDACTED),
    (
        # aws_secret_access_key = ..., "SecretAccessKey": "...", AWS_SECRET_ACCESS_KEY=...
        "aws-secret-access-key",
        r"(?i)(secret_?access_?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{40}",
        rf"\g<1>{REDACTED}",
    ),
    (
        # an unlabelled secret key: exactly 40 base64 characters (checked in _secret_key_shape)
        "aws-secret-key-shape",
        r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])",
        "_secret_key_shape",
    ),
    ("bearer-token", r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}", rf"\g<1>{REDACTED}"),
    (
        # bounded scheme and user, so a long run of letters cannot make matching quadratic
        "url-password",
        r"\b([A-Za-z][A-Za-z0-9+.-]{0,30}://[^\s:/@]{1,256}:)[^\s@/]{1,256}(@)",
        rf"\g<1>{REDACTED}\g<2>",
    ),
    (
        # password=..., secret: ..., "token": "...", api_key=..., client_secret=...
        "key-value-secret",
        r"(?i)((?:password|passwd|pwd|secret|token|api_?key|client_secret|access_token)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;]+",
        rf"\g<1>{REDACTED}",
    ),
)


@dataclass(frozen=True)
class Redactor:
    """Applies the built-in patterns and any configured ones to a text."""

    patterns: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...]

    def redact(self, text: str) -> str:
        """``text`` with every secret the patterns know replaced by ``[REDACTED]``."""
        for pattern, replacement in self.patterns:
            text = pattern.sub(replacement, text)
        return text


def _secret_key_shape(match: re.Match[str]) -> str:
    # a secret key mixes cases and holds / or +; paths, hashes and words rarely do all three
    token = match.group(0)
    looks_secret = (
        any(c in "/+" for c in token)
        and any(c.islower() for c in token)
        and any(c.isupper() for c in token)
        and any(c.isdigit() for c in token)
    )
    return REDACTED if looks_secret else token


_REPLACERS: dict[str, Callable[[re.Match[str]], str]] = {"_secret_key_shape": _secret_key_shape}


def build_redactor(extra_patterns: Iterable[str] = (), source: str = "REDACT_PATTERNS") -> Redactor:
    """A Redactor with the built-in patterns plus ``extra_patterns`` (whole match redacted).

    Raises ConfigurationError naming ``source`` and the pattern that does not compile.
    """
    compiled: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
        (re.compile(pattern), _REPLACERS.get(replacement, replacement))
        for _, pattern, replacement in BUILTIN_PATTERNS
    ]
    for index, pattern in enumerate(extra_patterns):
        try:
            compiled.append((re.compile(pattern), REDACTED))
        except re.error as error:
            raise ConfigurationError(
                f"{source}[{index}]: {pattern!r} is not a Python regular expression ({error})"
            ) from None
    return Redactor(tuple(compiled))


def escape_for_slack(text: str) -> str:
    """Escape the three characters Slack reads as markup: ``<!channel>`` stays inert text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
