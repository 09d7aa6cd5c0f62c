"""Which live agent of a site probes which link: rendezvous (highest-random-weight)
hashing, pure and deterministic.

Every agent of a site computes the same answer from the same two inputs, the site's live
agents and its links, with no coordinator: a link goes to the agent whose hash of
(agent id, link id) is highest. When an agent comes or goes, only the links whose
highest weight is that agent's move; every other link stays where it was. Nothing here
does I/O or reads a clock (`collector.agents` does, around it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable


def weight(agent_id: str, link_id: str) -> int:
    """The pseudo-random weight of `link_id` for `agent_id`: the same on every machine
    and in every Python process (no salted `hash()`)."""
    digest = hashlib.blake2b(f"{agent_id}\n{link_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(link_id: str, agents: Collection[str]) -> str | None:
    """The agent that probes `link_id` (None: no live agent); ties, which a 64-bit hash
    makes vanishingly rare, go to the greater id so that every agent agrees."""
    if not agents:
        return None
    return max(agents, key=lambda agent: (weight(agent, link_id), agent))


def share(link_ids: Iterable[str], agents: Collection[str], me: str) -> set[str]:
    """The links of `link_ids` that `me` probes among the live `agents`. An agent that
    does not see itself live (it cannot renew its lease) counts itself in: its last
    share is then what it keeps probing, as the caller decides."""
    voters = set(agents) | {me}
    return {link_id for link_id in link_ids if owner(link_id, voters) == me}
