"""Sites (vantage points), the canaries that say whether a site sees, and links measured
from several sites.

`site` is where `linkwatch run` measures from (id `local` unless set); `sites` are the
others, where `linkwatch agent --site ID` runs. A link is measured from this monitor's
site, unless it names its `vantage`: the sites that measure it and how many of them must
agree before it is down (`quorum`). Each probe of such a link is measured once per site,
as a measurement of its own: the probe's id at this monitor's site, `probe@site`
elsewhere (ids cannot hold '@'), so a link measured here keeps its history when other
sites join. `measure_from_sites` makes those measurements the link's probes, which is
what every part after the config sees; `links_at` is what one site's process probes.

A monitor cut off from the network (its uplink, its gateway, its route to a PoP) sees
every link it watches fail. The canaries are a few targets that should always answer
(the PoP's gateway, a core router, another site): while at least `blind_when` of them
fail, the site is blind, and its probes' failures are the monitor's trouble, recorded
as unknown (`collector.site_guard`). Without canaries, nothing is judged blind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from kernel.config.fields import Id, _rule, _Strict
from kernel.config.links import Link, ProbeSpec

# Between a probe's id and the site it is measured from, in a measurement's id.
AT = "@"


class SiteConfig(_Strict):
    id: Id = "local"
    name: str = ""
    canaries: list[ProbeSpec] = Field(default_factory=list, max_length=20)
    # How many failing canaries make the site blind: all of them, or a number.
    blind_when: int | Literal["all"] = "all"

    @property
    def blind_threshold(self) -> int:
        """Failing canaries from which the site is blind (0: no canaries, never blind)."""
        return len(self.canaries) if self.blind_when == "all" else self.blind_when

    @_rule
    def _canaries(self) -> None:
        ids = [canary.id for canary in self.canaries]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"canary ids must be unique; repeated: {', '.join(repeated)}")
        if self.blind_when == "all":
            return
        if not self.canaries:
            raise ValueError(
                f"blind_when {self.blind_when} needs canaries to count; add canaries, or drop it"
            )
        if not 1 <= self.blind_when <= len(self.canaries):
            raise ValueError(
                f"blind_when {self.blind_when} must be between 1 and the number of canaries "
                f"({len(self.canaries)}), or 'all'"
            )


def measurement_id(probe_id: str, site: str, home: str) -> str:
    """The id of `probe_id` measured from `site`: itself at `home`, `probe@site` elsewhere."""
    return probe_id if site == home else f"{probe_id}{AT}{site}"


def base_probe_id(measurement: str) -> str:
    """The configured probe a measurement is of."""
    return measurement.partition(AT)[0]


def measure_from_sites(links: Sequence[Link], home: str) -> list[Link]:
    """`links` with each probe of a link with `vantage` replaced by one measurement per
    site (with its id and `measured_from` set); other links as they are."""
    measured = []
    for link in links:
        if link.vantage is None:
            measured.append(link)
            continue
        probes = [
            probe.model_copy(
                update={"id": measurement_id(probe.id, site, home), "measured_from": site}
            )
            for probe in link.probes
            for site in link.vantage.sites
        ]
        measured.append(link.model_copy(update={"probes": probes}))
    return measured


def links_at(links: Sequence[Link], site: str, home: str) -> list[Link]:
    """What a process at `site` probes: the measurements taken there (a probe without
    `measured_from` is taken at `home`), in links that have any."""
    mine = []
    for link in links:
        probes = [p for p in link.probes if (p.measured_from or home) == site]
        if probes:
            mine.append(
                link
                if len(probes) == len(link.probes)
                else link.model_copy(update={"probes": probes})
            )
    return mine
