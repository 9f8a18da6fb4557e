"""Powertools' Tracer, or one that records nothing and never loads the X-Ray SDK.

The X-Ray SDK costs 12 to 25 ms of CPU at each cold start (it imports asyncio and wrapt;
bench/README.md), and Powertools' Tracer loads it even when tracing is disabled. With
POWERTOOLS_TRACE_DISABLED true (template parameter PowertoolsTracer=off, the default) a
handler gets a Tracer whose provider does nothing: its decorator stays, the SDK is never
imported, and Lambda's own trace (Tracing: Active) still records each invocation.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment


class _Untraced(BaseSegment):
    """A subsegment that records nothing."""

    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: Any) -> None:
        pass

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        pass


class _NoTracing(BaseProvider):
    """A tracing provider that records nothing and patches nothing."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[BaseSegment]:
        yield _Untraced()

    @asynccontextmanager
    async def in_subsegment_async(
        self, name: str | None = None, **kwargs: Any
    ) -> AsyncIterator[BaseSegment]:
        yield _Untraced()

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def patch(self, modules: Sequence[str]) -> None:
        pass

    def patch_all(self) -> None:
        pass


def powertools_tracer(patch_modules: Sequence[str]) -> Tracer:
    """Powertools' Tracer patching ``patch_modules``, or, with POWERTOOLS_TRACE_DISABLED
    true, one that records nothing and never imports the X-Ray SDK."""
    if resolve_truthy_env_var_choice(env=os.getenv("POWERTOOLS_TRACE_DISABLED", "false")):
        return Tracer(provider=_NoTracing(), disabled=True, auto_patch=False)
    return Tracer(patch_modules=list(patch_modules))
