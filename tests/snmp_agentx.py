"""An AgentX subagent (RFC 2741) that serves chosen values and errors through a real snmpd.

The tests need what real devices do and a healthy snmpd never does: a genErr on one
interface's counter, Counter32-only interfaces near their wrap, a counter cleared while
the agent stays up, an interface present in ifXTable but not in ifTable, an ifAlias in
latin-1, a frozen sysUpTime. net-snmp's snmpd stays the agent the poller talks to (its
PDU handling, error-index, GETBULK and USM are the real ones); this subagent only
answers net-snmp's AgentX Get/GetNext for the subtrees it registers, from a JSON file the
test rewrites between polls::

    {"1.3.6.1.2.1.2.2.1.8.1": ["integer", 1],
     "1.3.6.1.2.1.2.2.1.10.1": ["counter32", 4294967000],
     "1.3.6.1.2.1.2.2.1.14.1": ["error", 5]}

Value kinds: integer, octets (hex), string, counter32, gauge32, timeticks, counter64;
``error`` answers a GET of that varbind with that error status (5 genErr, 6 noAccess);
walks step over it.

Run as ``python -m tests.snmp_agentx SOCKET VALUES.json SUBTREE...``. It connects only to
the given unix socket and exits when the master closes it.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
from pathlib import Path
from typing import Any

_OPEN, _REGISTER, _GET, _GETNEXT, _GETBULK, _RESPONSE = 1, 3, 5, 6, 7, 18
_NETWORK_BYTE_ORDER = 0x10
_TYPES = {
    "integer": 2,
    "octets": 4,
    "string": 4,
    "counter32": 65,
    "gauge32": 66,
    "timeticks": 67,
    "counter64": 70,
}
_EXCEPTIONS = {"noSuchObject": 128, "noSuchInstance": 129, "endOfMibView": 130}

Oid = tuple[int, ...]


def _oid(text: str) -> Oid:
    return tuple(int(arc) for arc in text.strip(".").split("."))


def encode_oid(oid: Oid, include: bool = False) -> bytes:
    prefix = 0
    if len(oid) >= 5 and oid[:4] == (1, 3, 6, 1) and 0 < oid[4] < 256:
        prefix, oid = oid[4], oid[5:]
    return struct.pack("!BBBB", len(oid), prefix, int(include), 0) + b"".join(
        struct.pack("!I", arc) for arc in oid
    )


def decode_oid(data: bytes, at: int) -> tuple[Oid, bool, int]:
    count, prefix, include, _ = struct.unpack_from("!BBBB", data, at)
    at += 4
    arcs = struct.unpack_from(f"!{count}I", data, at)
    at += 4 * count
    oid: Oid = ((1, 3, 6, 1, prefix) if prefix else ()) + tuple(arcs)
    return oid, bool(include), at


def _octets(value: bytes) -> bytes:
    return struct.pack("!I", len(value)) + value + bytes(-len(value) % 4)


def _varbind(oid: Oid, kind: str, value: Any) -> bytes:
    if kind in _EXCEPTIONS:
        return struct.pack("!HH", _EXCEPTIONS[kind], 0) + encode_oid(oid)
    head = struct.pack("!HH", _TYPES[kind], 0) + encode_oid(oid)
    if kind == "octets":
        return head + _octets(bytes.fromhex(value))
    if kind == "string":
        return head + _octets(str(value).encode())
    if kind == "counter64":
        return head + struct.pack("!Q", int(value))
    if kind == "integer":
        return head + struct.pack("!i", int(value))
    return head + struct.pack("!I", int(value))


class Subagent:
    def __init__(self, path: str, values: Path, subtrees: list[Oid]) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.values_path = values
        self.subtrees = subtrees
        self.session = 0
        self.packets = 0

    def values(self) -> dict[Oid, tuple[str, Any]]:
        raw = json.loads(self.values_path.read_text())
        return {_oid(k): (v[0], v[1]) for k, v in raw.items()}

    def send(self, kind: int, payload: bytes, transaction: int = 0, packet: int = 0) -> None:
        if not packet:
            self.packets += 1
            packet = self.packets
        header = struct.pack(
            "!BBBBIIII", 1, kind, _NETWORK_BYTE_ORDER, 0, self.session, transaction, packet,
            len(payload),
        )  # fmt: skip
        self.sock.sendall(header + payload)

    def receive(self) -> tuple[int, int, int, int, bytes] | None:
        header = self._exactly(20)
        if header is None:
            return None
        _, kind, flags, _, session, transaction, packet, size = struct.unpack("!BBBBIIII", header)
        if not flags & _NETWORK_BYTE_ORDER:
            raise SystemExit("master sent little-endian AgentX; not supported")
        payload = self._exactly(size) if size else b""
        assert payload is not None
        return kind, session, transaction, packet, payload

    def _exactly(self, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def start(self) -> None:
        self.send(_OPEN, struct.pack("!BBBB", 5, 0, 0, 0) + encode_oid(()) + _octets(b"lw-test"))
        answer = self.receive()
        if answer is None or answer[0] != _RESPONSE:
            raise SystemExit(f"the master did not open a session: {answer}")
        self.session = answer[1]
        for subtree in self.subtrees:
            self.send(_REGISTER, struct.pack("!BBBB", 5, 1, 0, 0) + encode_oid(subtree))
            reply = self.receive()
            if reply is None or reply[0] != _RESPONSE:
                raise SystemExit(f"the master did not answer registering {subtree}: {reply}")
            _uptime, error, _index = struct.unpack_from("!IHH", reply[4])
            if error:
                raise SystemExit(f"registering {subtree} failed with AgentX error {error}")

    def serve(self) -> None:
        while (got := self.receive()) is not None:
            kind, _session, transaction, packet, payload = got
            if kind in (_GET, _GETNEXT, _GETBULK):
                self.answer(kind, transaction, packet, payload)
            else:  # TestSet and the like: not served
                self.send(_RESPONSE, struct.pack("!IHH", 0, 263, 0), transaction, packet)

    def answer(self, kind: int, transaction: int, packet: int, payload: bytes) -> None:
        at, repetitions = 0, 1
        if kind == _GETBULK:
            _non_repeaters, repetitions = struct.unpack_from("!HH", payload)
            at = 4
        values = self.values()
        # Errors answer a GET only: snmpd fills a GETBULK by GetNexts, and one error
        # there would fail every walk that passes the object.
        ordered = sorted(oid for oid, (kind, _) in values.items() if kind != "error")
        varbinds, error, index = [], 0, 0
        number = 0
        while at < len(payload):
            start, include, at = decode_oid(payload, at)
            end, _, at = decode_oid(payload, at)
            number += 1
            if kind == _GET:
                kind_value = values.get(start)
                if kind_value is None:
                    # As snmpd's own tables: a column with other rows lacks an instance.
                    column = start[:-1]
                    known = any(oid[:-1] == column for oid in values)
                    missing = "noSuchInstance" if known else "noSuchObject"
                    varbinds.append(_varbind(start, missing, None))
                elif kind_value[0] == "error":
                    error, index = error or int(kind_value[1]), index or number
                    varbinds.append(struct.pack("!HH", 5, 0) + encode_oid(start))
                else:
                    varbinds.append(_varbind(start, *kind_value))
                continue
            cursor = start
            for _ in range(max(1, repetitions)):
                following = [
                    o
                    for o in ordered
                    if (o > cursor or (include and o == cursor)) and (not end or o < end)
                ]
                if not following:
                    varbinds.append(_varbind(cursor, "endOfMibView", None))
                    break
                cursor, include = following[0], False
                varbinds.append(_varbind(cursor, *values[cursor]))
        self.send(
            _RESPONSE, struct.pack("!IHH", 0, error, index) + b"".join(varbinds), transaction,
            packet,
        )  # fmt: skip


def main() -> None:
    path, values, *subtrees = sys.argv[1:]
    agent = Subagent(path, Path(values), [_oid(s) for s in subtrees])
    agent.start()
    print("registered", flush=True)
    agent.serve()


if __name__ == "__main__":
    main()
