"""A pysnmp-based SNMPv3 agent (pysnmp's own command responder) for the engine-ID tests.

Agents built on pysnmp answer a request addressed to an engine ID that is not theirs
with usmStatsUnknownUserNames, where net-snmp says usmStatsUnknownEngineIDs; the poller
must take either as "discover again". This agent serves GETs of sysUpTime and of ifTable
row 1 (up, up) to one authPriv user, under the engine ID it is given, on 127.0.0.1.

Run as ``python -m tests.snmp_pysnmp_agent PORT ENGINE_ID_HEX USER AUTH_KEY PRIV_KEY``;
it prints ``ready`` once it listens and runs until terminated.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.smi import instrum

_STARTED = time.monotonic()
_IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)


class _Row1(instrum.AbstractMibInstrumController):  # type: ignore[misc]
    def read_variables(self, *var_binds: Any, **_context: Any) -> list[tuple[Any, Any]]:
        answers = []
        for name, _ in var_binds:
            oid = tuple(name)
            value: Any = rfc1905.NoSuchInstance()
            if oid == (1, 3, 6, 1, 2, 1, 1, 3, 0):
                value = rfc1902.TimeTicks(int((time.monotonic() - _STARTED) * 100))
            elif oid in ((*_IF_ENTRY, 7, 1), (*_IF_ENTRY, 8, 1)):
                value = rfc1902.Integer(1)
            elif oid[:-1] in ((*_IF_ENTRY, 13), (*_IF_ENTRY, 14), (*_IF_ENTRY, 20)):
                value = rfc1902.Counter32(0) if oid[-1] == 1 else value
            answers.append((name, value))
        return answers


async def main() -> None:
    port, engine_id, user, auth_key, priv_key = sys.argv[1:]
    snmp = engine.SnmpEngine(snmpEngineID=rfc1902.OctetString(hexValue=engine_id))
    config.add_transport(
        snmp, udp.DOMAIN_NAME, udp.UdpAsyncioTransport().open_server_mode(("127.0.0.1", int(port)))
    )
    config.add_v3_user(
        snmp,
        user,
        config.USM_AUTH_HMAC96_SHA,
        auth_key,
        config.USM_PRIV_CFB128_AES,
        priv_key,
    )
    config.add_vacm_user(snmp, 3, user, "authPriv", (1, 3, 6))
    snmp_context = context.SnmpContext(snmp)
    snmp_context.unregister_context_name(b"")
    snmp_context.register_context_name(b"", _Row1())
    cmdrsp.GetCommandResponder(snmp, snmp_context)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
