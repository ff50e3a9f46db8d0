"""Avro single-object encoding: ``C3 01`` + little-endian CRC-64-AVRO fingerprint of the writer schema + body.

The decoder finds the writer schema by fingerprint among every released version and resolves the data to the
current version of that record. fastavro and pydantic errors are wrapped into :mod:`firebus.errors` types.
"""

from __future__ import annotations

from functools import cache
from io import BytesIO
from typing import Any, TypeAlias

from fastavro import schemaless_reader, schemaless_writer
from pydantic import BaseModel, ValidationError

from firebus.contracts import Contract, ContractSet, default_contracts
from firebus.errors import CorruptRecordError, InvalidEventError, Problem, UnknownSchemaError
from firebus.events import BODY_TYPES, Event, EventType
from firebus.records import AuditEvent, DeadLetter, Release, ReviewDecision, ReviewItem

MAGIC = b"\xc3\x01"
PREFIX_LENGTH = len(MAGIC) + 8

Envelope: TypeAlias = Event[Any] | ReviewDecision | AuditEvent | DeadLetter | Release | ReviewItem
"""Anything that travels on a firebus topic."""

_RECORD_MODELS: dict[str, type[BaseModel]] = {
    "firebus.ReviewDecision": ReviewDecision,
    "firebus.AuditEvent": AuditEvent,
    "firebus.DeadLetter": DeadLetter,
    "firebus.Release": Release,
    "firebus.ReviewItem": ReviewItem,
}


@cache  # pydantic's own lookup of a parametrised generic costs more than validating a small event
def event_model(event_type: EventType) -> type[Event[Any]]:
    """The parametrised ``Event[Body]`` model of one event type."""
    body_type = BODY_TYPES[event_type]
    # Parametrised at run time, one model per type.
    return Event[body_type]  # type: ignore[valid-type]


def problems_from(error: ValidationError) -> list[Problem]:
    """One :class:`Problem` per pydantic error, named by its dotted field path."""
    return [
        Problem(".".join(str(part) for part in issue["loc"]), issue["msg"]) for issue in error.errors(include_url=False)
    ]


class Codec:
    """Encodes and decodes every firebus record with the shipped (or given) contracts."""

    def __init__(self, contracts: ContractSet | None = None) -> None:
        self.contracts = contracts if contracts is not None else default_contracts()
        by_name = {contract.name: contract for contract in self.contracts}
        self._record_contracts = {model: by_name[name] for name, model in _RECORD_MODELS.items() if name in by_name}

    # --- contracts -----------------------------------------------------------------------------------------

    def contract_of(self, record: BaseModel) -> Contract:
        if isinstance(record, Event):
            return self.contracts.for_event_type(record.header.event_type)
        contract = self._record_contracts.get(type(record))
        if contract is None:
            raise TypeError(f"{type(record).__name__} is not a firebus record")
        return contract

    # --- encoding ------------------------------------------------------------------------------------------

    def encode(self, record: BaseModel) -> bytes:
        """Single-object encode a model with the current version of its schema."""
        return self.encode_data(self.contract_of(record), record.model_dump())

    @staticmethod
    def encode_data(contract: Contract, data: dict[str, Any]) -> bytes:
        buffer = BytesIO()
        buffer.write(MAGIC)
        buffer.write(contract.fingerprint)
        branches = contract.record_branches
        if branches:
            data = {
                name: (branches[name], value) if name in branches and isinstance(value, dict) else value
                for name, value in data.items()
            }
        try:
            schemaless_writer(buffer, contract.parsed, data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InvalidEventError([Problem("", f"does not fit {contract.name}: {exc}")], subject="record") from exc
        return buffer.getvalue()

    # --- decoding ------------------------------------------------------------------------------------------

    def writer_of(self, data: bytes) -> Contract:
        """The contract ``data`` was written with, from its fingerprint."""
        if len(data) < PREFIX_LENGTH:
            raise CorruptRecordError(f"record is {len(data)} bytes, shorter than the {PREFIX_LENGTH}-byte prefix")
        if data[:2] != MAGIC:
            raise CorruptRecordError(
                f"record does not start with the single-object marker C3 01 (got {data[:2].hex()})"
            )
        fingerprint = bytes(data[2:PREFIX_LENGTH])
        writer = self.contracts.by_fingerprint(fingerprint)
        if writer is None:
            raise UnknownSchemaError(fingerprint)
        return writer

    def decode_data(self, data: bytes, *, as_written: bool = False) -> tuple[Contract, dict[str, Any]]:
        """The raw record, resolved to the current version (or left as written, for signature checks)."""
        writer = self.writer_of(data)
        reader = writer if as_written else self.contracts.current(writer.stem)
        stream = BytesIO(data)
        stream.seek(PREFIX_LENGTH)
        try:
            if reader.fingerprint == writer.fingerprint:
                # The same binary layout (a frozen copy of the current version, say): nothing to resolve, and
                # fastavro's resolution compares the two schemas in full on every call.
                record = schemaless_reader(stream, reader.parsed, None)
            else:
                record = schemaless_reader(stream, writer.parsed, reader.parsed)
        except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, UnicodeDecodeError ...
            raise CorruptRecordError(f"{writer.name} v{writer.version} body is corrupt: {exc!r}") from exc
        if stream.tell() != len(data):
            raise CorruptRecordError(f"{len(data) - stream.tell()} unexpected bytes after the {writer.name} record")
        if not isinstance(record, dict):
            raise CorruptRecordError(f"{writer.name} body did not decode to a record")
        return reader, record

    def decode(self, data: bytes) -> Envelope:
        """Decode into the model of the current schema version; model rules apply as on the way in."""
        contract, record = self.decode_data(data)
        return self.to_model(contract, record)

    @staticmethod
    def to_model(contract: Contract, record: dict[str, Any]) -> Envelope:
        model: type[BaseModel] = (
            event_model(contract.event_type) if contract.event_type is not None else _RECORD_MODELS[contract.name]
        )
        try:
            return model.model_validate(record)  # type: ignore[return-value]
        except ValidationError as exc:
            raise InvalidEventError(problems_from(exc), subject=contract.name) from exc
