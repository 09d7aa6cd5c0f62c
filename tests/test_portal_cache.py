"""The portal's page cache: one read per key however many ask, fresh within its ttl, a
stale value answered at once while one background read replaces it, failures never kept."""

from __future__ import annotations

import asyncio

import pytest

from portal.cache import Cache


class Source:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.reads = 0
        self.delay_s = delay_s
        self.fail = False

    async def load(self) -> int:
        self.reads += 1
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise ConnectionError("database away")
        return self.reads


async def test_concurrent_misses_share_one_read() -> None:
    cache, source = Cache(10.0), Source(delay_s=0.05)
    values = await asyncio.gather(*(cache.get("k", source.load) for _ in range(20)))
    assert values == [1] * 20
    assert source.reads == 1


async def test_a_value_past_its_ttl_is_answered_while_one_read_replaces_it() -> None:
    cache, source = Cache(0.05, stale_s=5.0), Source(delay_s=0.1)
    assert await cache.get("k", source.load) == 1
    await asyncio.sleep(0.06)  # past the ttl
    # Answered at once with the old value, although the new read takes 0.1 s.
    answered = await asyncio.wait_for(cache.get("k", source.load), 0.05)
    assert answered == 1
    assert await cache.get("k", source.load) == 1  # one background read, not two
    await asyncio.sleep(0.15)
    assert source.reads == 2
    assert await cache.get("k", source.load) == 2


async def test_a_value_too_old_to_serve_is_read_again_first() -> None:
    cache, source = Cache(0.02, stale_s=0.02), Source()
    assert await cache.get("k", source.load) == 1
    await asyncio.sleep(0.05)
    assert await cache.get("k", source.load) == 2


async def test_failures_are_not_kept() -> None:
    cache, source = Cache(10.0), Source()
    source.fail = True
    with pytest.raises(ConnectionError):
        await cache.get("k", source.load)
    source.fail = False
    assert await cache.get("k", source.load) == 2


async def test_a_zero_ttl_reads_every_time() -> None:
    cache, source = Cache(0.0), Source()
    assert [await cache.get("k", source.load) for _ in range(3)] == [1, 2, 3]


async def test_many_viewers_of_a_stale_value_start_one_read() -> None:
    cache, source = Cache(0.02, stale_s=5.0), Source(delay_s=0.05)
    await cache.get("k", source.load)
    await asyncio.sleep(0.03)
    # Fifty requests arrive before the background read has even started.
    values = await asyncio.gather(*(cache.get("k", source.load) for _ in range(50)))
    assert values == [1] * 50
    await asyncio.sleep(0.1)
    assert source.reads == 2


async def test_a_read_begun_before_a_clear_answers_its_caller_but_is_not_kept() -> None:
    """A config reload clears the cache while a page is being built from the old config:
    that page is answered, and the next viewer gets one built from the new config."""
    cache, source = Cache(10.0), Source(delay_s=0.05)
    reading = asyncio.create_task(cache.get("k", source.load))
    await asyncio.sleep(0.01)
    cache.clear()
    assert await reading == 1
    assert await cache.get("k", source.load) == 2
    assert source.reads == 2
