"""The portal's page cache: one read per key however many ask, fresh within its ttl, a
stale value answered at once while one background read replaces it, failures never kept.

Ages run on a clock the tests move themselves, and a slow read is one held open until the
test lets it finish, so no outcome depends on how fast a loaded machine runs."""

from __future__ import annotations

import asyncio

import pytest

from portal.cache import Cache


class Clock:
    """Monotonic seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Source:
    def __init__(self) -> None:
        self.reads = 0
        self.fail = False
        self.gate: asyncio.Event | None = None  # when given, every read waits for it

    async def load(self) -> int:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("database away")
        return self.reads


async def background_reads_done() -> None:
    """Wait for the cache's background reads (its tasks are named so); the loop is the
    session's, and other tests may have left tasks of their own on it."""
    refreshing = [t for t in asyncio.all_tasks() if t.get_name().startswith("cache-refresh:")]
    await asyncio.gather(*refreshing)


async def test_concurrent_misses_share_one_read() -> None:
    cache, source = Cache(10.0, clock=Clock()), Source()
    source.gate = asyncio.Event()
    asking = [asyncio.create_task(cache.get("k", source.load)) for _ in range(20)]
    await asyncio.sleep(0)  # every caller has asked while the first read is under way
    source.gate.set()
    values = await asyncio.gather(*asking)
    assert values == [1] * 20
    assert source.reads == 1


async def test_a_value_past_its_ttl_is_answered_while_one_read_replaces_it() -> None:
    clock, source = Clock(), Source()
    cache = Cache(0.05, stale_s=5.0, clock=clock)
    assert await cache.get("k", source.load) == 1
    clock.advance(0.06)  # past the ttl
    source.gate = asyncio.Event()  # the new read does not finish until released
    # Answered at once with the old value, although the new read is still under way.
    answered = await asyncio.wait_for(cache.get("k", source.load), 10)
    assert answered == 1
    assert await cache.get("k", source.load) == 1  # one background read, not two
    source.gate.set()
    await background_reads_done()
    assert source.reads == 2
    assert await cache.get("k", source.load) == 2


async def test_a_value_too_old_to_serve_is_read_again_first() -> None:
    clock, source = Clock(), Source()
    cache = Cache(0.02, stale_s=0.02, clock=clock)
    assert await cache.get("k", source.load) == 1
    clock.advance(0.05)
    assert await cache.get("k", source.load) == 2


async def test_failures_are_not_kept() -> None:
    cache, source = Cache(10.0, clock=Clock()), Source()
    source.fail = True
    with pytest.raises(ConnectionError):
        await cache.get("k", source.load)
    source.fail = False
    assert await cache.get("k", source.load) == 2


async def test_a_zero_ttl_reads_every_time() -> None:
    cache, source = Cache(0.0, clock=Clock()), Source()
    assert [await cache.get("k", source.load) for _ in range(3)] == [1, 2, 3]


async def test_many_viewers_of_a_stale_value_start_one_read() -> None:
    clock, source = Clock(), Source()
    cache = Cache(0.02, stale_s=5.0, clock=clock)
    await cache.get("k", source.load)
    clock.advance(0.03)
    source.gate = asyncio.Event()
    # Fifty requests arrive before the background read has finished.
    values = await asyncio.gather(*(cache.get("k", source.load) for _ in range(50)))
    assert values == [1] * 50
    source.gate.set()
    await background_reads_done()
    assert source.reads == 2


async def test_a_read_begun_before_a_clear_answers_its_caller_but_is_not_kept() -> None:
    """A config reload clears the cache while a page is being built from the old config:
    that page is answered, and the next viewer gets one built from the new config."""
    cache, source = Cache(10.0, clock=Clock()), Source()
    source.gate = asyncio.Event()
    reading = asyncio.create_task(cache.get("k", source.load))
    await asyncio.sleep(0)
    assert source.reads == 1  # the read is under way
    cache.clear()
    source.gate.set()
    assert await reading == 1
    source.gate = None
    assert await cache.get("k", source.load) == 2
    assert source.reads == 2
