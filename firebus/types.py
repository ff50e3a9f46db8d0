"""Shared type aliases: integer widths that map onto Avro ``int`` and ``long``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
"""An integer that fits Avro ``int``."""

Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
"""An integer that fits Avro ``long``."""


def _require_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamp needs a time zone (UTC is used on the bus)")
    # Avro timestamp-millis keeps milliseconds; truncate now so a round trip is exact.
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]
"""An aware timestamp, normalised to UTC and millisecond precision (Avro timestamp-millis)."""
