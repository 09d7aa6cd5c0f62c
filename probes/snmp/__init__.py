"""SNMP: the probe, the shared poller behind it, and the hand-written codecs it sends with.

- `probes.snmp.probe`: `probe_snmp`, an interface's state and traffic as a probe result;
- `probes.snmp.poller`: `SnmpPoller`, polls of one device batched into one GET;
- `probes.snmp.reads`: one batch answered, the device's state kept between polls;
- `probes.snmp.names`: interfaces found by ifName, ifDescr or ifAlias (walked, cached);
- `probes.snmp.interface` and `probes.snmp.counters`: the rules, pure: varbinds read as a
  reading, rates from counters (wraps, resets, agent restarts, a frozen sysUpTime);
- `probes.snmp.targets` (device keys, interface refs, readings, failures) and
  `probes.snmp.mib` (the objects read): the vocabulary the others share;
- `probes.snmp.transport`: every request, through our codecs or pysnmp, and its bounds;
- `probes.snmp.via_pysnmp`: walks, DES users and pysnmp's engine-ID cache;
- `probes.snmp.v2c` and `probes.snmp.v3`: GETs on the wire without pysnmp (community,
  USM authPriv), around what `probes.snmp.wire` shares (BER, the PDU, the UDP socket).

Nothing here writes to the network anything but SNMP requests to the configured
devices. Import from the modules: this package imports none of them, so that
`probes.context` can import the poller without importing the probe.
"""
