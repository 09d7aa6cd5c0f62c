"""SNMP: the probe, the shared poller behind it, and the hand-written codecs it sends with.

- `probes.snmp.probe`: `probe_snmp`, an interface's state and traffic as a probe result;
- `probes.snmp.poller`: `SnmpPoller`, one GET per device poll, rates from counters;
- `probes.snmp.v2c` and `probes.snmp.v3`: GETs on the wire without pysnmp (community,
  USM authPriv), around what `probes.snmp.wire` shares (BER, the PDU, the UDP socket).

Nothing here writes to the network anything but SNMP requests to the configured
devices. Import from the modules: this package imports none of them, so that
`probes.context` can import the poller without importing the probe.
"""
