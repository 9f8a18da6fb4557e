"""The six handlers as fixtures, and the fuzz run's summary: events per handler and outcome.

Each fuzz test records its counts as a user property, which pytest-xdist carries from the
workers to the controller; ``make fuzz`` names tests/fuzz on the command line, so this
plugin is loaded there too and prints the table at the end of the run.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.fuzz import handlers
from tests.fuzz.handlers import Subject

_counts: dict[str, Counter[str]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" or not report.passed:
        return
    for name, value in report.user_properties:
        if name == "fuzz_outcomes":
            recorded = json.loads(str(value))
            _counts.setdefault(recorded["handler"], Counter()).update(recorded["outcomes"])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _counts:
        return
    outcomes = sorted({outcome for counts in _counts.values() for outcome in counts})
    width = max(len(handler) for handler in _counts)
    terminalreporter.section("fuzzed events per handler and outcome")
    header = f"{'handler':<{width}}  {'events':>7}" + "".join(f"  {o:>15}" for o in outcomes)
    terminalreporter.write_line(header)
    for handler in sorted(_counts):
        counts = _counts[handler]
        cells = "".join(f"  {counts.get(outcome, 0):>15,}" for outcome in outcomes)
        terminalreporter.write_line(f"{handler:<{width}}  {sum(counts.values()):>7,}{cells}")


# ------------------------------------------------------------------ the handlers


@pytest.fixture
def submitter(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    with handlers.submitter(monkeypatch) as subject:
        yield subject


@pytest.fixture
def chainer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    with handlers.chainer(monkeypatch) as subject:
        yield subject


@pytest.fixture
def notifier(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    with handlers.notifier(monkeypatch) as subject:
        yield subject


@pytest.fixture
def retrier(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    with handlers.retrier(monkeypatch) as subject:
        yield subject


@pytest.fixture
def dispatcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    with handlers.dispatcher(monkeypatch) as subject:
        yield subject


@pytest.fixture
def scaler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    with handlers.scaler(monkeypatch) as subject:
        yield subject


@pytest.fixture
def watch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    with handlers.watch(monkeypatch) as subject:
        yield subject
