"""Quality-based availability: the contract term that makes a slot of poor quality count
as unavailable.

`availability: {unavailable_when: {loss_pct_over: 5, rtt_ms_over: 150, over: 1m}}`: a
slot (`over`, one minute by default, aligned to the window's start) in which the mean loss
or the mean RTT of the link's available samples is strictly over its limit counts as down
in the availability and the budget, but is no outage. The rule itself is `sla.quality`;
this module only validates the term. Nothing here computes anything.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import Field

from kernel.config.fields import Duration, _rule, _Strict
from kernel.durations import format_duration

_HOUR = timedelta(hours=1)
# Limits are compared exactly with the stored samples' means: a few decimals are plenty.
LIMIT_PLACES = 6


class QualityLimits(_Strict):
    """A slot is unavailable when a mean of its available samples is over a limit."""

    loss_pct_over: Annotated[Decimal, Field(ge=0, lt=100, decimal_places=LIMIT_PLACES)] | None = (
        None
    )
    rtt_ms_over: (
        Annotated[Decimal, Field(gt=0, le=3_600_000, decimal_places=LIMIT_PLACES)] | None
    ) = None
    over: Duration = timedelta(minutes=1)

    @_rule
    def _some_limit(self) -> None:
        if self.loss_pct_over is None and self.rtt_ms_over is None:
            raise ValueError("give loss_pct_over, rtt_ms_over or both")

    @_rule
    def _slot_divides_an_hour(self) -> None:
        slot_us = self.over // timedelta(microseconds=1)
        if self.over < timedelta(seconds=1) or (_HOUR // timedelta(microseconds=1)) % slot_us:
            raise ValueError(
                f"over {format_duration(self.over)} must divide an hour, so that slots line "
                "up with the window's hours; use e.g. 10s, 30s, 1m, 5m, 15m or 1h"
            )


class AvailabilityTerms(_Strict):
    """How availability is judged beyond up and down."""

    unavailable_when: QualityLimits
