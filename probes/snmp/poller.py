"""The SNMP poller: one shared engine, one GET per device poll, rates from counters.

Every SNMP probe names one interface on a device, and many links share a device. Each
`poll(spec)` joins the device's current *batch*: requests for the same device (same
address, credentials, timeout and retries) that arrive within `window_s` of the first
are answered together (`probes.snmp.reads`: one GET for up to
`max_interfaces_per_request` interfaces). A full batch starts at once. Concurrency is
bounded per device and globally (`probes.snmp.transport`).

The poller keeps, per device, what the next poll needs (`probes.snmp.reads.Device`:
counters for rates, the agent's clock, resolved interface names) for as long as one
event loop runs: sockets and futures of another loop are unusable, so a new loop starts
afresh. Target failures reach the probe as `SnmpFailure` carrying the outcome; a bug in
a batch is handed to every caller in it, where it propagates. This module never writes
to the network anything but SNMP requests to the configured devices, and never blocks
the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from kernel.config import SnmpProbe
from probes.snmp.names import NameCache
from probes.snmp.reads import Device, answer
from probes.snmp.targets import DeviceKey, Reading, Ref, SnmpFailure, interface_ref
from probes.snmp.transport import Peer, RequestCounts, Transport

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Queue:
    """A device's polls waiting for their batch to start."""

    device: Device
    waiting: list[tuple[Ref | None, asyncio.Future[Reading]]] = field(default_factory=list)
    flush: asyncio.TimerHandle | None = None


class SnmpPoller:
    """Shared by every SNMP probe of a process (it lives on the ProbeContext)."""

    def __init__(
        self,
        *,
        window_s: float = 0.03,
        max_in_flight: int = 128,
        per_device_in_flight: int = 2,
        max_interfaces_per_request: int = 16,
        names_ttl_s: float = 3600.0,
        fast_v2c: bool = True,
        fast_v3: bool = True,
    ) -> None:
        self._window_s = window_s
        self._max_in_flight = max_in_flight
        self._per_device = per_device_in_flight
        self._max_interfaces = max_interfaces_per_request
        self._names_ttl_s = names_ttl_s
        self._fast_v2c = fast_v2c
        self._fast_v3 = fast_v3
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[DeviceKey, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._transport: Transport | None = None
        self._counts = RequestCounts()

    @property
    def requests(self) -> int:
        """SNMP requests sent (GETs, with their resends after a refused varbind)."""
        return self._counts.requests

    @property
    def pysnmp_gets(self) -> int:
        """Of those, the GETs that went through pysnmp (each try after a rediscovery too)."""
        return self._counts.pysnmp_gets

    @property
    def walks(self) -> int:
        """Naming columns walked."""
        return self._counts.walks

    def _bind(self) -> tuple[asyncio.AbstractEventLoop, Transport]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._transport is None:
            # A new event loop (another asyncio.run): sockets and futures of the old one
            # are unusable, so start afresh. Counters for rates are lost with them.
            self._queues = {}
            self._tasks = set()
            self._loop = loop
            self._transport = Transport(
                self._counts,
                max_in_flight=self._max_in_flight,
                fast_v2c=self._fast_v2c,
                fast_v3=self._fast_v3,
            )
        return loop, self._transport

    async def close(self) -> None:
        """Cancel batches in flight and close the sockets."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._transport is not None:
            self._transport.close()
        self._queues = {}
        self._tasks = set()
        self._transport = None
        self._loop = None

    async def poll(self, spec: SnmpProbe) -> Reading:
        """The state of the probe's interface; raises SnmpFailure when not measured."""
        loop, transport = self._bind()
        key = DeviceKey.from_spec(spec)
        queue = self._queues.get(key)
        if queue is None:
            peer = Peer(key, asyncio.Semaphore(self._per_device))
            device = Device(peer, NameCache(self._names_ttl_s), self._max_interfaces)
            queue = self._queues[key] = _Queue(device)
        future: asyncio.Future[Reading] = loop.create_future()
        queue.waiting.append((interface_ref(spec.interface), future))
        if len(queue.waiting) >= queue.device.max_interfaces * self._per_device:
            self._start(transport, queue)  # a full batch gains nothing by waiting
        elif queue.flush is None:
            queue.flush = loop.call_later(self._window_s, self._start, transport, queue)
        return await future

    def _start(self, transport: Transport, queue: _Queue) -> None:
        if queue.flush is not None:
            queue.flush.cancel()
            queue.flush = None
        batch, queue.waiting = queue.waiting, []
        if not batch:
            return
        task = asyncio.create_task(
            self._serve(transport, queue.device, batch),
            name=f"snmp-poll:{queue.device.peer.key}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(
        self,
        transport: Transport,
        device: Device,
        batch: list[tuple[Ref | None, asyncio.Future[Reading]]],
    ) -> None:
        try:
            answers = await answer(transport, device, {ref for ref, _ in batch})
        except SnmpFailure as failure:
            answers = dict.fromkeys((ref for ref, _ in batch), failure)
        except Exception as exc:  # a bug: hand it to every caller, where it propagates
            log.exception("snmp poll failed device=%s", device.peer.key)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for ref, future in batch:
            if future.done():  # the caller gave up (its deadline passed)
                continue
            result = answers[ref]
            if isinstance(result, SnmpFailure):
                future.set_exception(result)
            else:
                future.set_result(result)
