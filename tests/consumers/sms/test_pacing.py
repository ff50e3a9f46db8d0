"""The token bucket and quiet hours: pure arithmetic over the time given to them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.sms.quiet_hours import QuietHours
from consumers.sms.ratelimit import TokenBucket


def test_a_burst_goes_at_once_then_the_rate_applies() -> None:
    """With a burst of 3 at 60 a minute, three parts go at once and the fourth waits one second, the fifth two."""
    bucket = TokenBucket(rate_per_minute=60, burst=3, now=0.0)
    assert [bucket.reserve(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve(0.0) == pytest.approx(1.0)
    assert bucket.reserve(0.0) == pytest.approx(2.0)


def test_the_bucket_refills_but_never_beyond_its_burst() -> None:
    """An hour idle refills the bucket to its burst size, not more."""
    bucket = TokenBucket(rate_per_minute=60, burst=2, now=0.0)
    bucket.reserve(0.0, 2)
    assert bucket.reserve(3600.0, 2) == 0.0
    assert bucket.reserve(3600.0) == pytest.approx(1.0)


@given(st.integers(1, 600), st.integers(1, 20), st.integers(1, 200))
def test_n_parts_never_go_faster_than_burst_plus_rate(rate: int, burst: int, parts: int) -> None:
    """Sending as soon as allowed, the last of n parts leaves no earlier than (n - burst) / rate."""
    bucket = TokenBucket(rate_per_minute=rate, burst=burst, now=0.0)
    now = 0.0
    for _ in range(parts):
        now += bucket.reserve(now)
    assert now >= max(0, parts - burst) * 60 / rate - 1e-6


def test_a_bucket_needs_a_rate_and_a_burst() -> None:
    """A zero rate or an empty bucket is a configuration error."""
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(rate_per_minute=0, burst=1, now=0.0)


YANGCHENG = ZoneInfo("Asia/Shanghai")


def utc(hour: int, minute: int = 0, day: int = 14) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


NIGHT = QuietHours.parse("22:00-07:00", YANGCHENG)  # UTC 14:00-23:00


@pytest.mark.parametrize(
    ("moment", "quiet", "ends"),
    [
        (utc(13, 59), False, utc(13, 59)),  # 21:59 local
        (utc(14, 0), True, utc(23, 0)),  # 22:00 local
        (utc(15, 30), True, utc(23, 0)),  # 23:30 local
        (utc(17, 0), True, utc(23, 0)),  # 01:00 local, the next day
        (utc(22, 59), True, utc(23, 0)),  # 06:59 local
        (utc(23, 0), False, utc(23, 0)),  # 07:00 local
        (utc(4, 0), False, utc(4, 0)),  # noon
    ],
)
def test_a_window_across_midnight(moment: datetime, quiet: bool, ends: datetime) -> None:
    """22:00-07:00 Beijing time holds from 22:00 to just before 07:00, and ends at the next 07:00."""
    assert NIGHT is not None
    assert NIGHT.contains(moment) is quiet
    assert NIGHT.ends_after(moment) == ends


def test_a_window_within_one_day() -> None:
    """12:00-14:00 holds at 13:00 and ends at 14:00 the same day."""
    lunch = QuietHours.parse("12:00-14:00", YANGCHENG)
    assert lunch is not None
    assert lunch.contains(utc(5))
    assert not lunch.contains(utc(6))
    assert lunch.ends_after(utc(5)) == utc(6)


@pytest.mark.parametrize("spec", ["", "07:00-07:00"])
def test_no_quiet_hours(spec: str) -> None:
    """An empty spec or a window of no length means no quiet hours."""
    assert QuietHours.parse(spec, YANGCHENG) is None


def test_a_malformed_window_is_refused() -> None:
    """Quiet hours must read HH:MM-HH:MM."""
    with pytest.raises(ValueError, match="HH:MM"):
        QuietHours.parse("10pm-7am", YANGCHENG)
