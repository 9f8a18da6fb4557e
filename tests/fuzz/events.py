"""Hypothesis strategies for Lambda events: real samples, mutated where it hurts, and noise.

A handler is fed three kinds of event:

- a sample of its own trigger (events/ and the shapes the unit tests build), unchanged or
  with one to three mutations at random places: a field removed, retyped, oversized, given
  awkward unicode, nested wrongly, swapped for a part of another sample, an unknown key
  added, a value emptied, a list filled with copies;
- a sample of another trigger, mutated the same way (an SNS event to the retrier, an SQS
  batch to the submitter, a CloudWatch Logs payload to the scaler...);
- random JSON, with keys the samples use so that some of it reaches past the first check.

The mutations know the documents carried inside strings: an SQS body or an SNS Message
holding JSON, and CloudWatch Logs' base64(gzip(JSON)) ``awslogs.data``. Those are decoded
before mutating and encoded again after, so a mutation lands inside them as often as
around them.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import strategies as st

from devtools.template import ROOT

EVENTS = ROOT / "events"

#: Strings that trip naive parsers: empty, blank, numbers, bad dates, markup, mentions.
AWKWARD_STRINGS = (
    "",
    " ",
    "\n",
    "\x00",
    "0",
    "-1",
    "1e309",
    "NaN",
    "null",
    "true",
    "{",
    "[]",
    "{}",
    '{"Type": "Notification"}',
    "2026-13-45T25:61:00Z",
    "2026-11-23T02:00:00",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00Z",
    "arn:aws:ecs:us-east-1:123456789012:task/",
    "arn:aws:ecs::123456789012:cluster/",
    "<!channel> & <@U123> > done",
    "a/b/c/d",
    "../../etc/passwd",
    "%s%n{0}{scheduled_time}{}",
    "{scheduled_time:%Y%m%d}",
    "Ref::since",
    "\u202etxt.exe",
    "e\u0301\u0301\u0301",
    "\U0001f525" * 3,
    "\ufeffBOM",
    "AWS_BATCH_JOB_ID",
    "aws:cloudformation:stack-name",
)

#: How long an oversized string gets: past Batch's 8,192 characters of overrides, SNS's
#: 256 KB, and (with escapes) SQS's 1 MiB.
OVERSIZED_LENGTHS = (300, 3_000, 8_193, 40_000, 270_000)


@dataclass(frozen=True)
class Embedded:
    """A document carried in a string: JSON text, or CloudWatch Logs' base64(gzip(JSON))."""

    encoding: Literal["json", "awslogs"]
    document: Any


class _Inside:
    """The step from an Embedded string into its document."""

    def __repr__(self) -> str:
        return "<inside>"


INSIDE = _Inside()
Step = str | int | _Inside
TreePath = tuple[Step, ...]


def expand(value: Any) -> Any:
    """``value`` with every string that carries a document replaced by an Embedded."""
    if isinstance(value, dict):
        return {key: expand(item) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item) for item in value]
    if isinstance(value, str):
        return _decoded(value)
    return value


def _decoded(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return Embedded("json", expand(json.loads(stripped)))
        except ValueError:
            return text
    if len(text) >= 20 and text[:4] == "H4sI":  # base64 of gzip's magic bytes
        try:
            raw = gzip.decompress(base64.b64decode(text, validate=True))
            return Embedded("awslogs", expand(json.loads(raw)))
        except (ValueError, OSError, EOFError, binascii.Error, zlib.error):
            return text
    return text


def collapse(value: Any) -> Any:
    """The JSON event an expanded tree stands for: every Embedded encoded back into its string."""
    if isinstance(value, Embedded):
        text = json.dumps(collapse(value.document))
        if value.encoding == "json":
            return text
        return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()
    if isinstance(value, dict):
        return {key: collapse(item) for key, item in value.items()}
    if isinstance(value, list):
        return [collapse(item) for item in value]
    return value


def paths(value: Any, prefix: TreePath = ()) -> Iterator[TreePath]:
    """Every place in an expanded tree, the root first."""
    yield prefix
    if isinstance(value, Embedded):
        yield from paths(value.document, (*prefix, INSIDE))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def subtrees(value: Any) -> Iterator[Any]:
    """Every value in an expanded tree (what a splice may put elsewhere)."""
    for path in paths(value):
        yield get(value, path)


def get(value: Any, path: TreePath) -> Any:
    for step in path:
        value = value.document if isinstance(step, _Inside) else value[step]
    return value


def replaced(value: Any, path: TreePath, new: Any) -> Any:
    """A copy of ``value`` with the node at ``path`` replaced by ``new`` (copied on write)."""
    if not path:
        return new
    step, rest = path[0], path[1:]
    if isinstance(step, _Inside):
        return Embedded(value.encoding, replaced(value.document, rest, new))
    if isinstance(value, dict):
        return {**value, step: replaced(value[step], rest, new)}
    copy = list(value)
    assert isinstance(step, int)
    copy[step] = replaced(value[step], rest, new)
    return copy


def removed(value: Any, path: TreePath) -> Any:
    """A copy of ``value`` without the node at ``path`` (a key or a list item)."""
    parent_path, last = path[:-1], path[-1]
    parent = get(value, parent_path)
    if isinstance(parent, dict):
        smaller: Any = {key: item for key, item in parent.items() if key != last}
    else:
        smaller = [item for index, item in enumerate(parent) if index != last]
    return replaced(value, parent_path, smaller)


def removable(value: Any, path: TreePath) -> bool:
    return bool(path) and not isinstance(path[-1], _Inside)


# ------------------------------------------------------------------ values


def keys_of(samples: Sequence[Any]) -> list[str]:
    """Every key the samples use, inside embedded documents too, in a stable order."""
    found: dict[str, None] = {}
    for sample in samples:
        for path in paths(sample):
            for step in path:
                if isinstance(step, str):
                    found[step] = None
    return list(found)


@functools.cache
def scalars() -> st.SearchStrategy[Any]:
    """A JSON scalar of any type, edge values included."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**30]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(AWKWARD_STRINGS),
    )


@functools.cache
def random_json(keys: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Any JSON value; object keys mostly from ``keys`` so that it looks like an event."""
    key = st.one_of(st.sampled_from(keys), st.text(max_size=10))
    return st.recursive(
        scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(key, children, max_size=5),
        ),
        max_leaves=12,
    )


@st.composite
def oversized(draw: st.DrawFn, current: Any) -> Any:
    """A string or list far longer than anything real (by repetition: cheap to build)."""
    length = draw(st.sampled_from(OVERSIZED_LENGTHS))
    if isinstance(current, list) and current:
        # a list of copies of its first item; short, or a real batch wouldn't finish
        return [current[0]] * draw(st.integers(min_value=2, max_value=60))
    unit = draw(st.one_of(st.sampled_from(["x", "é", "\U0001f525", "<"]), st.text(min_size=1)))
    text = (unit * (length // len(unit) + 1))[:length]
    if isinstance(current, str):
        return current + text
    return text


@st.composite
def unicode_variant(draw: st.DrawFn, current: Any) -> Any:
    """The string with awkward characters inserted (or a new one): combining marks,
    right-to-left overrides, zero-width joiners, emoji, NUL, Slack markup."""
    odd = draw(
        st.one_of(
            st.sampled_from(
                ["\u0301", "\u202e", "\u200d", "\ufeff", "\x00", "\n", "\t", "<!here>"]
            ),
            st.text(st.characters(codec="utf-8"), min_size=1, max_size=6),
        )
    )
    if not isinstance(current, str):
        return odd
    at = draw(st.integers(min_value=0, max_value=len(current)))
    return current[:at] + odd + current[at:]


@st.composite
def nested_wrongly(draw: st.DrawFn, current: Any, keys: Sequence[str]) -> Any:
    """One level too deep ([v], {"key": v}), or one too shallow (a container's first item)."""
    choice = draw(st.integers(min_value=0, max_value=2))
    if choice == 0:
        return [current]
    if choice == 1:
        return {draw(st.sampled_from(list(keys))): current}
    if isinstance(current, Embedded):
        current = current.document
    if isinstance(current, dict) and current:
        return next(iter(current.values()))
    if isinstance(current, list) and current:
        return current[0]
    return [current]


@st.composite
def mutation(draw: st.DrawFn, tree: Any, donors: Sequence[Any], keys: Sequence[str]) -> Any:
    """``tree`` with one node changed: which node, and how, drawn."""
    where = draw(st.sampled_from(list(paths(tree))))
    current = get(tree, where)
    kind = draw(
        st.sampled_from(
            [
                "remove",
                "retype",
                "oversize",
                "unicode",
                "nest",
                "splice",
                "add-key",
                "empty",
                "awkward",
            ]
        )
    )
    if kind == "remove" and removable(tree, where):
        return removed(tree, where)
    if kind == "oversize":
        return replaced(tree, where, draw(oversized(current)))
    if kind == "unicode":
        return replaced(tree, where, draw(unicode_variant(current)))
    if kind == "nest":
        return replaced(tree, where, draw(nested_wrongly(current, keys)))
    if kind == "splice":
        # a part of some sample where it does not belong (Records[0] where detail was...)
        donor = draw(st.sampled_from(donors))
        return replaced(tree, where, draw(st.sampled_from(list(subtrees(donor)))))
    if kind == "add-key" and isinstance(current, dict):
        key = draw(st.one_of(st.sampled_from(list(keys)), st.text(max_size=12)))
        return replaced(tree, where, {**current, key: draw(scalars())})
    if kind == "empty":
        return replaced(tree, where, draw(st.sampled_from(["", [], {}, None])))
    if kind == "awkward":
        return replaced(tree, where, draw(st.sampled_from(AWKWARD_STRINGS)))
    return replaced(tree, where, draw(scalars()))


@dataclass(frozen=True)
class EventPool:
    """The samples a handler is fuzzed from: its own trigger's and every other trigger's."""

    own: tuple[Any, ...]
    others: tuple[Any, ...]
    #: Every key the samples use: what mutations add and random JSON is made of.
    keys: tuple[str, ...]

    @classmethod
    def of(cls, own: Sequence[Any], others: Sequence[Any] | None = None) -> EventPool:
        """Expand the samples once; ``others`` defaults to every file in events/ not in ``own``."""
        if others is None:
            mine = [json.dumps(event, sort_keys=True) for event in own]
            others = [e for e in sample_files() if json.dumps(e, sort_keys=True) not in mine]
        expanded_own = tuple(expand(event) for event in own)
        expanded_others = tuple(expand(event) for event in others)
        keys = tuple(keys_of(expanded_own + expanded_others))
        return cls(expanded_own, expanded_others, keys)


def sample_files() -> list[Any]:
    """Every sample event in events/, in name order."""
    return [json.loads(path.read_text()) for path in sorted(EVENTS.glob("*.json"))]


@st.composite
def lambda_events(draw: st.DrawFn, pool: EventPool, max_mutations: int = 3) -> Any:
    """One event for a handler of ``pool``'s trigger (see the module's docstring)."""
    donors, keys = pool.own + pool.others, pool.keys
    # 0-5: its own trigger, 6-7: another trigger, 8-9: random JSON (0 shrinks to the sample)
    source = draw(st.integers(min_value=0, max_value=9))
    if source >= 8:
        return draw(random_json(keys))
    tree = draw(st.sampled_from(pool.own if source < 6 else pool.others))
    for _ in range(draw(st.integers(min_value=0, max_value=max_mutations))):
        tree = draw(mutation(tree, donors, keys))
    return collapse(tree)
