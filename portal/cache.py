"""A small time-bounded cache of what pages read, shared by every viewer of a process.

Many people watch the same links: a NOC wall, a customer's staff, the portal benchmark's
fifty clients. Each figure is read from the database at most once per `ttl` however many
ask meanwhile, and concurrent misses for one key share one read (no stampede). A value
past its ttl but younger than ttl + `stale_s` is still answered at once while one
background read replaces it: a figure that takes seconds to compute (every link's state
for a 10,000-link NOC) then never makes a viewer wait after the first time. Keys name
what was read, never who asked: authorisation happens before a key is formed, so a cached
value is only ever handed to a viewer already allowed to see it. Never caches failures.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Cache:
    """`clock` gives the seconds that ages are measured in (a monotonic clock; tests
    pass one they move themselves)."""

    def __init__(
        self,
        ttl_s: float,
        *,
        stale_s: float | None = None,
        max_entries: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._stale_s = 5 * ttl_s if stale_s is None else stale_s
        self._max = max_entries
        self._clock = clock
        self._values: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._loading: dict[Hashable, asyncio.Future[Any]] = {}
        self._refreshing: set[asyncio.Task[Any]] = set()
        self._generation = 0  # counts `clear()`s: a read begun before one is not kept

    async def get(
        self,
        key: Hashable,
        load: Callable[[], Awaitable[T]],
        *,
        ttl_s: float | None = None,
        stale_s: float | None = None,
    ) -> T:
        """The value under `key`, from `load()` when missing or older than the ttl; a
        value older than ttl + `stale_s` (default: the cache's) is never answered."""
        ttl = self._ttl_s if ttl_s is None else ttl_s
        stale = self._stale_s if stale_s is None else stale_s
        if ttl <= 0:
            return await load()
        while True:
            found = self._values.get(key)
            if found is not None:
                age = self._clock() - found[0]
                if age < ttl + stale:
                    if age >= ttl and key not in self._loading:
                        self._refresh(key, load)
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
        return await self._fill(key, load, self._claim(key))

    def _claim(self, key: Hashable) -> asyncio.Future[Any]:
        """Mark `key` as being read, at once: whoever asks next waits for this read (or,
        holding a stale value, does not start another)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        return future

    async def _fill(
        self, key: Hashable, load: Callable[[], Awaitable[T]], future: asyncio.Future[Any]
    ) -> T:
        generation = self._generation
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
            if self._loading.get(key) is future:
                del self._loading[key]
        future.set_result(value)
        if generation != self._generation:
            return value  # read from what a clear() has since replaced: answer, don't keep
        self._values[key] = (self._clock(), value)
        self._values.move_to_end(key)
        while len(self._values) > self._max:
            self._values.popitem(last=False)
        return value

    def _refresh(self, key: Hashable, load: Callable[[], Awaitable[Any]]) -> None:
        future = self._claim(key)
        task = asyncio.create_task(self._fill(key, load, future), name=f"cache-refresh:{key!r:.60}")
        self._refreshing.add(task)
        task.add_done_callback(self._refreshed)

    def _refreshed(self, task: asyncio.Task[Any]) -> None:
        self._refreshing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The stale value stays until it ages out; the next request tries again.
            log.warning("cache refresh failed error=%s", type(task.exception()).__name__)

    def clear(self) -> None:
        """Forget everything, e.g. after a change made through the portal itself or a
        reloaded config; reads under way finish for their callers but are not kept."""
        self._values.clear()
        self._generation += 1
