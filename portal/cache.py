"""A small time-bounded cache of what pages read, shared by every viewer of a process.

Many people watch the same links: a NOC wall, a customer's staff, the portal benchmark's
fifty clients. Each figure is read from the database at most once per `ttl` however many
ask meanwhile, and concurrent misses for one key share one read (no stampede). Keys name
what was read, never who asked: authorisation happens before a key is formed, so a cached
value is only ever handed to a viewer already allowed to see it. Never caches failures.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Cache:
    def __init__(self, ttl_s: float, *, max_entries: int = 20_000) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._values: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._loading: dict[Hashable, asyncio.Future[Any]] = {}

    async def get(
        self, key: Hashable, load: Callable[[], Awaitable[T]], *, ttl_s: float | None = None
    ) -> T:
        """The value under `key`, from `load()` when missing or older than the ttl."""
        ttl = self._ttl_s if ttl_s is None else ttl_s
        if ttl <= 0:
            return await load()
        while True:
            found = self._values.get(key)
            if found is not None and time.monotonic() - found[0] < ttl:
                self._values.move_to_end(key)
                value: T = found[1]
                return value
            pending = self._loading.get(key)
            if pending is None:
                return await self._load(key, load)
            try:
                shared: T = await asyncio.shield(pending)
                return shared
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this caller was cancelled
                # The caller that was loading went away: load again.

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unshared failure is not logged
            raise
        finally:
            del self._loading[key]
        future.set_result(value)
        self._values[key] = (time.monotonic(), value)
        self._values.move_to_end(key)
        while len(self._values) > self._max:
            self._values.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget everything, e.g. after a change made through the portal itself."""
        self._values.clear()
