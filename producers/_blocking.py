"""A blocking facade over :class:`FirebusClient` for department systems that are not async."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from producers._client import FirebusClient, Receipt
from producers._drafts import Draft

T = TypeVar("T")


class BlockingFirebusClient:
    """``with BlockingFirebusClient(settings=..., unit=...) as client: client.publish(draft)``.

    Runs the async client on a private event loop in a daemon thread; every call blocks until it is done and
    re-raises the client's own errors. Takes the same keyword arguments as :class:`FirebusClient`.
    """

    def __init__(self, *, timeout_s: float = 60.0, **client_kwargs: Any) -> None:
        self._client = FirebusClient(**client_kwargs)
        self._timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="firebus-client", daemon=True)
        self._thread.start()

    @property
    def client(self) -> FirebusClient:
        return self._client

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(self._timeout_s)

    def start(self) -> None:
        self._run(self._client.start())

    def publish(self, draft: Draft) -> Receipt:
        return self._run(self._client.publish(draft))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def __enter__(self) -> BlockingFirebusClient:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
