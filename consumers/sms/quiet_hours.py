"""Quiet hours (免扰时段): a daily local window in which non-urgent SMS are held, and when it ends.

Policy: a non-urgent SMS that falls in quiet hours is *deferred*, not dropped — the ledger keeps it with the end of
the window as its due time and the sink sends it then (also after a restart). Urgent events (urgency immediate, or
severity extreme/severe) ignore quiet hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WINDOW = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class QuietHours:
    """``start``–``end`` local time every day; a window across midnight (22:00–07:00) is the usual case."""

    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, spec: str, zone: ZoneInfo) -> QuietHours | None:
        """``"22:00-07:00"`` in ``zone`` (the county's); None for an empty spec or a window of no length."""
        if not spec:
            return None
        found = _WINDOW.match(spec)
        if found is None:
            raise ValueError(f"quiet hours {spec!r} are not HH:MM-HH:MM")
        hour_a, minute_a, hour_b, minute_b = (int(group) for group in found.groups())
        start, end = time(hour_a, minute_a), time(hour_b, minute_b)
        return None if start == end else cls(start, end, zone)

    def contains(self, moment: datetime) -> bool:
        """True when ``moment`` (aware) falls inside the window."""
        local = moment.astimezone(self.zone).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, moment: datetime) -> datetime:
        """The end of the window ``moment`` is in (UTC); ``moment`` itself when it is not in one."""
        if not self.contains(moment):
            return moment
        local = moment.astimezone(self.zone)
        end = datetime.combine(local.date(), self.end, tzinfo=self.zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=self.zone)
        return end.astimezone(UTC)
