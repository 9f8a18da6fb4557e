"""A local stand-in for a Slack Incoming Webhook, over real HTTP on 127.0.0.1.

It answers like Slack: ``200 ok`` for a valid JSON payload, ``400 invalid_payload`` when the
payload breaks a Block Kit limit Slack enforces (a missing top-level ``text``, more than 50
blocks, a section text outside 1..3,000 characters, more than 10 fields or a field over
2,000). Every request is recorded, valid or not. Tests and the demo script its next answers:

    with slack_receiver() as slack:
        slack.script(Reply.rate_limited(retry_after=1), Reply.ok())
        ...  # post to slack.url
        assert slack.accepted[0]["text"]
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
#: A header block's plain_text is limited to 150 characters.
MAX_HEADER_TEXT = 150
#: A context block holds at most 10 elements.
MAX_CONTEXT_ELEMENTS = 10


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, body, headers, or a pause before answering.

    ``posted`` makes a paused answer count as posted (Slack showed the message, its answer
    never arrived); ``drop`` closes the connection without any answer, nothing posted.
    """

    status: int = 200
    body: str = "ok"
    headers: tuple[tuple[str, str], ...] = ()
    delay_seconds: float = 0.0
    posted: bool = False
    drop: bool = False

    @classmethod
    def ok(cls) -> Reply:
        return cls()

    @classmethod
    def rate_limited(cls, retry_after: int = 1) -> Reply:
        return cls(429, "rate_limited", (("Retry-After", str(retry_after)),))

    @classmethod
    def server_error(cls) -> Reply:
        return cls(500, "rollup_error")

    @classmethod
    def no_service(cls) -> Reply:
        return cls(404, "no_service")

    @classmethod
    def archived(cls) -> Reply:
        return cls(410, "channel_is_archived")

    @classmethod
    def hang(cls, seconds: float) -> Reply:
        """Answer ``ok`` only after ``seconds``: past a client's timeout, it looks like a hang."""
        return cls(delay_seconds=seconds)

    @classmethod
    def posted_then_hang(cls, seconds: float) -> Reply:
        """Post the message, then answer only after ``seconds``: the answer is what got lost."""
        return cls(delay_seconds=seconds, posted=True)

    @classmethod
    def dropped(cls) -> Reply:
        """Close the connection without answering (a reset or refused connection): not posted."""
        return cls(drop=True)

    @classmethod
    def forbidden(cls) -> Reply:
        return cls(403, "action_prohibited")


def payload_problems(payload: Any) -> list[str]:
    """What Slack would refuse in ``payload`` (empty when it would accept it)."""
    if not isinstance(payload, dict):
        return ["payload is not a JSON object"]
    problems = []
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("text: missing top-level fallback text")
    blocks = payload.get("blocks", [])
    if not isinstance(blocks, list):
        return [*problems, "blocks: not a list"]
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"blocks: {len(blocks)} blocks, Slack allows {MAX_BLOCKS}")
    for index, block in enumerate(blocks):
        problems.extend(_block_problems(f"blocks[{index}]", block))
    return problems


def _block_problems(where: str, block: Any) -> list[str]:
    if not isinstance(block, dict) or "type" not in block:
        return [f"{where}: not a block"]
    problems = []
    kind = block["type"]
    if kind == "section":
        if "text" in block:
            problems.extend(_text_problems(f"{where}.text", block["text"], MAX_SECTION_TEXT))
        fields = block.get("fields", [])
        if len(fields) > MAX_FIELDS:
            problems.append(f"{where}.fields: {len(fields)} fields, Slack allows {MAX_FIELDS}")
        for number, item in enumerate(fields):
            problems.extend(_text_problems(f"{where}.fields[{number}]", item, MAX_FIELD_TEXT))
        if "text" not in block and not fields:
            problems.append(f"{where}: a section needs text or fields")
    elif kind == "header":
        problems.extend(_text_problems(f"{where}.text", block.get("text"), MAX_HEADER_TEXT))
    elif kind == "context":
        elements = block.get("elements", [])
        if not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
            problems.append(f"{where}.elements: {len(elements)} elements, Slack allows 1..10")
        for number, item in enumerate(elements):
            problems.extend(_text_problems(f"{where}.elements[{number}]", item, MAX_SECTION_TEXT))
    return problems


def _text_problems(where: str, text: Any, limit: int) -> list[str]:
    if not isinstance(text, dict) or text.get("type") not in ("mrkdwn", "plain_text"):
        return [f"{where}: not a text object"]
    value = text.get("text")
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        length = len(value) if isinstance(value, str) else "no"
        return [f"{where}: {length} characters, Slack allows 1..{limit}"]
    return []


@dataclass
class SlackReceiver:
    """The running stand-in: its URL, what it received, and the answers it will give.

    ``requests`` holds every payload received; ``accepted`` those answered ``ok``, which
    is what a Slack channel would show.
    """

    url: str = ""
    requests: list[Any] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    _script: list[Reply] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies`` in order, then ``ok`` again."""
        with self._lock:
            self._script.extend(replies)

    def forget(self, received: bool = True) -> None:
        """Drop the answers still scripted and (``received``) what was received."""
        with self._lock:
            self._script.clear()
            if received:
                self.requests.clear()
                self.accepted.clear()

    def always(self, reply: Reply, times: int = 100) -> None:
        """Answer the next ``times`` requests with ``reply`` (for example: always 500)."""
        self.script(*([reply] * times))

    def next_reply(self, payload: Any) -> Reply:
        """Record the request; the scripted answer, else 400 for a broken payload, else ok."""
        with self._lock:
            self.requests.append(payload)
            scripted = self._script.pop(0) if self._script else None
        if scripted is not None and (scripted.status != 200 or scripted.drop):
            return scripted
        problems = payload_problems(payload)
        if problems:
            return Reply(400, "invalid_payload: " + "; ".join(problems))
        return scripted or Reply.ok()

    def delivered(self, payload: Any) -> None:
        """An ``ok`` answer reached the client: the message counts as posted."""
        with self._lock:
            self.accepted.append(payload)


def _handler_for(receiver: SlackReceiver) -> type[BaseHTTPRequestHandler]:
    class WebhookHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                payload: Any = json.loads(raw)
            except ValueError:
                payload = raw.decode(errors="replace")
            reply = receiver.next_reply(payload)
            if reply.drop:
                self.close_connection = True
                return
            if reply.status == 200 and (not reply.delay_seconds or reply.posted):
                # counted before answering, so a client that got "ok" finds it recorded; a
                # hung answer is one the client timed out on: not counted as posted unless
                # scripted so (Slack posted it, only its answer was lost)
                receiver.delivered(payload)
            if reply.delay_seconds:
                threading.Event().wait(reply.delay_seconds)
            body = reply.body.encode()
            try:
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a scripted hang)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test and demo output clean

    return WebhookHandler


@contextmanager
def slack_receiver() -> Iterator[SlackReceiver]:
    """Run the stand-in on a free loopback port for the duration of the block."""
    receiver = SlackReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(receiver))
    server.daemon_threads = True
    port = server.server_address[1]
    receiver.url = f"http://127.0.0.1:{port}/services/T000LOCAL/B000LOCAL/localwebhook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
