"""The monitor's own vantage point (its site) and the canaries that say whether it sees.

A monitor cut off from the network (its uplink, its gateway, its route to a PoP) sees
every link it watches fail. The canaries are a few targets that should always answer
(the PoP's gateway, a core router, another site): while at least `blind_when` of them
fail, the site is blind, and its probes' failures are the monitor's trouble, recorded
as unknown (`collector.site_guard`). Without canaries, nothing is judged blind.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernel.config.fields import Id, _rule, _Strict
from kernel.config.links import ProbeSpec


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
