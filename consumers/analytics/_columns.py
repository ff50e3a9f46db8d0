"""Raw records into fact columns, a batch at a time: the topics' values and the archive files' release records.

:class:`Collector` keeps the values of one batch grouped by writer fingerprint (the single-object prefix); at
:data:`BATCH` values (and at the end) each group is decoded natively (:mod:`consumers.analytics._decoding`), resolved
to the current version's columns and turned into fact columns, and the values are let go. What stays is the facts'
columns, so a replay's memory grows with its facts, not with the records in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import polars as pl
import structlog

from consumers.analytics._decoding import (
    AUDIT_PATHS,
    EVENT_PATHS,
    RELEASE_PATHS,
    decode_column,
    decode_values,
    resolved_column,
    top_level,
)
from consumers.analytics._facts import AUDIT_SCHEMA, FIRE_COLUMNS, RELEASE_SCHEMA, Facts, merged
from firebus.codec import PREFIX_LENGTH, Codec
from firebus.contracts import Contract
from firebus.errors import DecodeError

log = structlog.get_logger(__name__)

BATCH = 50_000
"""Values decoded together: large enough that the per-container cost vanishes, small enough that the batch's raw
values (about 1 KB each) stay a small part of a replay's memory."""

RELEASE = "firebus.Release"
AUDIT = "firebus.AuditEvent"

_RELEASE_COLUMNS = {
    "tier": "tier",
    "event_id": "event_id",
    "event_type": "event_type",
    "incident_id": "incident_id",
    "decided_at": "decision.decided_at",
    "reviewer": "decision.reviewer",
    "reviewer_kind": "decision.reviewer_kind",
    "released_at": "released_at",
    "event": "event",
}
"""A release's columns as the facts are built from them (see :func:`release_columns`) → the field path read."""


def release_columns(frame: pl.DataFrame, writer: Contract, reader: Contract) -> pl.DataFrame:
    """Decoded releases of ``writer`` as flat columns of the current version ``reader``: what
    :func:`release_facts` builds the facts from."""
    return frame.select(
        **{name: resolved_column(frame, writer, reader, path) for name, path in _RELEASE_COLUMNS.items()}
    )


def release_records(records: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """Release records already decoded (the archive files') as the flat columns of :func:`release_columns`."""
    rows = [
        {
            "tier": record["tier"],
            "event_id": UUID(str(record["event_id"])).bytes,  # as polars-avro reads a UUID
            "event_type": record["event_type"],
            "incident_id": record.get("incident_id"),
            "decided_at": record["decision"]["decided_at"],
            "reviewer": record["decision"]["reviewer"],
            "reviewer_kind": record["decision"]["reviewer_kind"],
            "released_at": record["released_at"],
            "event": record["event"],
        }
        for record in records
    ]
    schema = {name: RELEASE_SCHEMA.get(name, pl.Binary) for name in _RELEASE_COLUMNS}
    schema.update(event_id=pl.Binary, decided_at=RELEASE_SCHEMA["released_at"])
    return pl.DataFrame(rows, schema=schema)


def _text(expression: pl.Expr) -> pl.Expr:
    """An enum (categorical) or string column as text."""
    return expression.cast(pl.String)


def _uuid(expression: pl.Expr) -> pl.Expr:
    """A UUID column (polars-avro reads a ``uuid`` string as its 16 bytes) as canonical text, what ``str()`` of a
    ``UUID`` gives."""
    hexed = expression.bin.encode("hex")
    return pl.concat_str(
        [hexed.str.slice(start, length) for start, length in ((0, 8), (8, 4), (12, 4), (16, 4), (20, 12))],
        separator="-",
    )


class Collector:
    """Turns raw single-object encoded values into facts, a batch at a time, counting what is not a release or an
    audit record (other tests' garbage, a record that does not decode) as skipped.

    A full batch is decoded on a thread of its own while the next one fills, so that the native decoding can use a
    second core. At most one batch is decoded at a time and one fills,
    which bounds the raw values held."""

    def __init__(self, codec: Codec, *, batch: int = BATCH) -> None:
        self.codec = codec
        self.batch = batch
        self.pending: dict[bytes, list[bytes]] = {}
        self.waiting = 0
        self.parts: list[Facts] = []
        self.skipped = 0
        self._decoding: _Decoding | None = None

    def add(self, value: bytes | None) -> None:
        value = value or b""
        group = self.pending.get(value[:PREFIX_LENGTH])
        if group is None:
            group = self.pending[value[:PREFIX_LENGTH]] = []
        group.append(value)
        self.waiting += 1
        if self.waiting >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Start decoding the waiting values (after the batch before them is done)."""
        pending, self.pending, self.waiting = self.pending, {}, 0
        self._finish()
        if pending:
            self._decoding = _Decoding(self, pending)

    def _finish(self) -> None:
        """Wait for the batch being decoded, and keep its facts."""
        if self._decoding is not None:
            decoding, self._decoding = self._decoding, None
            parts, skipped = decoding.result()
            self.parts += parts
            self.skipped += skipped

    def decode(self, pending: Mapping[bytes, Sequence[bytes]]) -> tuple[list[Facts], int]:
        """The facts of values grouped by single-object prefix, and how many values were skipped."""
        parts: list[Facts] = []
        skipped = 0
        for values in pending.values():
            try:
                writer = self.codec.writer_of(values[0])
            except DecodeError:
                skipped += len(values)
                continue
            reader = self.codec.contracts.current(writer.stem)
            if writer.name == RELEASE:
                frame, broken = decode_values(writer, values, top_level(RELEASE_PATHS))
                facts, unreadable = release_facts(release_columns(frame, writer, reader), self.codec)
                parts.append(Facts(releases=facts))
                skipped += len(broken) + unreadable
            elif writer.name == AUDIT:
                frame, broken = decode_values(writer, values, AUDIT_PATHS)
                parts.append(Facts(audits=audit_facts(frame, writer, reader)))
                skipped += len(broken)
            else:
                skipped += len(values)
        return parts, skipped

    def add_releases(self, releases: pl.DataFrame) -> None:
        """Releases in the flat columns of :func:`release_columns`: their events decoded, the facts kept."""
        facts, skipped = release_facts(releases, self.codec)
        self.skipped += skipped
        self.parts.append(Facts(releases=facts))

    def facts(self) -> Facts:
        """Every fact so far (the waiting values decoded first)."""
        self.flush()
        self._finish()
        collected = merged(self.parts)
        self.parts = [collected]
        return collected


class _Decoding:
    """One batch being decoded on its own thread."""

    def __init__(self, collector: Collector, pending: Mapping[bytes, Sequence[bytes]]) -> None:
        self._outcome: tuple[list[Facts], int] | BaseException = ([], 0)
        self._thread = threading.Thread(target=self._run, args=(collector, pending), name="stats-decode", daemon=True)
        self._thread.start()

    def _run(self, collector: Collector, pending: Mapping[bytes, Sequence[bytes]]) -> None:
        try:
            self._outcome = collector.decode(pending)
        except BaseException as exc:  # handed to the caller of result()
            self._outcome = exc

    def result(self) -> tuple[list[Facts], int]:
        self._thread.join()
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        return self._outcome


def release_facts(releases: pl.DataFrame, codec: Codec) -> tuple[pl.DataFrame, int]:
    """The facts of releases (the flat columns of :func:`release_columns`), in their order, and how many were
    left out because the event they carry does not decode."""
    numbered = releases.with_row_index("row").with_columns(prefix=pl.col("event").bin.slice(0, PREFIX_LENGTH))
    events = []
    skipped = 0
    for (prefix,), group in numbered.partition_by("prefix", as_dict=True, maintain_order=True).items():
        try:
            writer = codec.writer_of(prefix)
        except DecodeError:
            skipped += group.height
            continue
        decoded, broken = decode_column(writer, group["event"], top_level(EVENT_PATHS))
        skipped += len(broken)
        rows = group["row"]
        if broken:
            rows = rows.filter(~pl.int_range(group.height, eager=True).is_in(broken))
        reader = codec.contracts.current(writer.stem)
        columns = {
            path.split(".")[-1]: resolved_column(decoded, writer, reader, path)
            for path in EVENT_PATHS
            if path in reader.fields  # an event type without a status has none
        }
        columns["status"] = columns["status"].cast(pl.String) if "status" in columns else pl.lit(None, pl.String)
        columns.update(_fire_columns(columns))
        events.append(decoded.select(row=rows, **columns))
    if not events:
        return RELEASE_SCHEMA.to_frame(), skipped
    joined = numbered.join(pl.concat(events, how="vertical_relaxed"), on="row", how="inner").sort("row")
    facts = joined.select(
        event_id=_uuid(pl.col("event_id")),
        tier=_text(pl.col("tier")),
        event_type=_text(pl.col("event_type")),
        incident_id=pl.col("incident_id"),
        townships=pl.col("townships"),
        occurred_at=pl.col("occurred_at"),
        published_at=pl.col("published_at"),
        decided_at=pl.col("decided_at"),
        reviewer=pl.col("reviewer"),
        reviewer_kind=_text(pl.col("reviewer_kind")),
        released_at=pl.col("released_at"),
        fire_status=pl.when(_text(pl.col("event_type")) == "fire_report").then(_text(pl.col("status"))),
        **{name: pl.when(_text(pl.col("event_type")) == "fire_report").then(pl.col(name)) for name in FIRE_COLUMNS},
    )
    return facts.cast(dict(RELEASE_SCHEMA)), skipped  # type: ignore[arg-type]


def _fire_columns(columns: dict[str, pl.Expr]) -> dict[str, pl.Expr]:
    """A fire report's :data:`FIRE_COLUMNS` of its decoded body columns (typed nulls where the event type has no
    such field), the forces summed into personnel and vehicles."""
    forces = columns.pop("forces", None)
    if forces is None:
        personnel, vehicles = pl.lit(None, pl.Int64), pl.lit(None, pl.Int64)
    else:
        personnel = forces.list.eval(pl.element().struct.field("personnel")).list.sum().cast(pl.Int64)
        vehicles = forces.list.eval(pl.element().struct.field("vehicles")).list.sum().cast(pl.Int64)
    return {
        "discovered_at": columns.get("discovered_at", pl.lit(None, RELEASE_SCHEMA["discovered_at"])),
        "burned_area_ha": columns.get("burned_area_ha", pl.lit(None, pl.Float64)).cast(pl.Float64),
        "suspected_cause": columns.get("suspected_cause", pl.lit(None, pl.String)).cast(pl.String),
        "personnel": personnel,
        "vehicles": vehicles,
    }


def audit_facts(frame: pl.DataFrame, writer: Contract, reader: Contract) -> pl.DataFrame:
    """The facts of decoded audit records of ``writer``, resolved to the current version ``reader``."""
    column = {path: resolved_column(frame, writer, reader, path) for path in AUDIT_PATHS}
    details = column["details"]
    has_details = "details" in writer.fields
    facts = frame.select(
        audit_id=_uuid(column["audit_id"]),
        action=_text(column["action"]),
        event_id=_uuid(column["event_id"]),
        event_type=_text(column["event_type"]),
        tier=_text(column["tier"]),
        reason=column["reason"],
        sink=details.map.get("sink") if has_details else pl.lit(None),
        verdict=details.map.get("verdict") if has_details else pl.lit(None),
        at=column["at"],
    )
    return facts.cast(dict(AUDIT_SCHEMA))  # type: ignore[arg-type]
