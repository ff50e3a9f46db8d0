"""Every error firebus raises on purpose, as one tree.

    FirebusError                      root; ``retriable`` says whether trying again may help
    ├── ConfigurationError            settings, registry or key files are wrong; fix config and restart
    │   └── SigningKeyError           a unit's private key is missing, unreadable or not the registered one
    ├── ContractError                 an .avsc file is malformed or breaks the contract rules
    │   ├── IncompatibleSchemaError   a new schema version cannot read data of an earlier one
    │   └── RecursiveSchemaError      a named type contains itself: no reader can inline it (analytics decode in full)
    ├── DecodeError                   bytes on the bus cannot be turned into a record
    │   ├── CorruptRecordError        not single-object encoded, truncated or garbled
    │   └── UnknownSchemaError        the writer fingerprint is not one of ours
    ├── InvalidEventError             an event breaks its schema or a governance rule; lists every problem
    │   ├── ClassifiedEventError      classification ``secret``: never on the bus (涉密信息不得直接共享)
    │   ├── DutyViolationError        the unit may not publish this type (duty matrix)
    │   └── UnknownUnitError          the unit is not in the registry
    ├── SignatureError                missing or bad Ed25519 signature
    ├── BrokerError                   Kafka could not be reached or refused the request (retriable)
    │   ├── BrokerUnavailableError    no broker answered within the timeout
    │   └── BrokerLostError           the broker lost records it had stored (wiped or replaced): restart the stage
    ├── StoreUnavailableError         the HTTP API's PostgreSQL (credentials, idempotency keys) is down (retriable)
    ├── SinkError                     a sink could not apply a record; the sink runner decides by ``retriable``
    │   ├── SinkUnavailableError      the sink's outside system cannot take it now: retried with backoff (retriable)
    │   └── PoisonRecordError         this record can never be applied: dead-lettered with the reason
    ├── AccountError                  a portal account change is refused (unknown, taken, not allowed, weak password)
    └── GatewayError                  the SMS gateway did not take one part of a message
        ├── GatewayUnavailableError   certainly not taken (no connection, 5xx, credentials refused): retry (retriable)
        ├── GatewayRejectedError      refused for good for this message (4xx: bad number, bad request)
        └── GatewayUncertainError     the request went out but no answer came: maybe taken, so never sent again

Library exceptions (fastavro, aiokafka, pydantic) are wrapped at the boundary and never leak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class FirebusError(Exception):
    """Root of every error firebus raises on purpose."""

    retriable: bool = False


class ConfigurationError(FirebusError):
    """Settings, the units registry or a key file is wrong."""


class SigningKeyError(ConfigurationError):
    """A unit's signing key is missing, unreadable or does not match the registry."""


class ContractError(FirebusError):
    """An Avro schema file is malformed or breaks a contract rule."""


class IncompatibleSchemaError(ContractError):
    """A schema version cannot read data written with an earlier version."""


class RecursiveSchemaError(ContractError):
    """A named type refers to itself: a reader with every named type inlined at each use would be endless."""


class DecodeError(FirebusError):
    """Bytes could not be decoded into a firebus record."""


class CorruptRecordError(DecodeError):
    """The bytes are not a complete single-object encoded Avro record."""


class UnknownSchemaError(DecodeError):
    """The writer schema fingerprint is not a known firebus schema."""

    def __init__(self, fingerprint: bytes) -> None:
        super().__init__(f"unknown writer schema fingerprint {fingerprint.hex()}")
        self.fingerprint = fingerprint


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an event: where and what."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidEventError(FirebusError):
    """An event breaks its schema or a governance rule; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[Problem], *, subject: str = "event") -> None:
        self.problems = tuple(problems)
        listing = "; ".join(str(problem) for problem in self.problems)
        super().__init__(f"invalid {subject}: {listing}")


class ClassifiedEventError(InvalidEventError):
    """Classified (涉密) information may not be put on the bus; use phone or official letter."""


class DutyViolationError(InvalidEventError):
    """The publishing unit's duties do not include this event type."""


class UnknownUnitError(InvalidEventError):
    """The unit is not in the units registry."""


class SignatureError(FirebusError):
    """An event's signature is missing or does not verify against its unit's key."""


class BrokerError(FirebusError):
    """Kafka refused a request or could not be reached."""

    retriable = True


class BrokerUnavailableError(BrokerError):
    """No broker answered within the configured timeout."""


class BrokerLostError(BrokerError):
    """The broker no longer has records it once stored: it was wiped (the embedded broker keeps nothing across a
    restart) or replaced. The stage saved what it held and must start again."""


class StoreUnavailableError(FirebusError):
    """The PostgreSQL database holding API credentials and idempotency keys cannot be reached now."""

    retriable = True


class SinkError(FirebusError):
    """A sink could not apply a record; ``retriable`` tells the sink runner whether to retry or dead-letter it."""


class SinkUnavailableError(SinkError):
    """The sink's outside system cannot take the record now; the runner retries it."""

    retriable = True


class PoisonRecordError(SinkError):
    """This record can never be applied; the runner dead-letters it with the reason."""

    retriable = False


class AccountError(FirebusError):
    """A portal account change is refused: the account is unknown or exists, the role or unit is wrong, the actor may
    not make it, or the password is too weak. The message says which, in one line; ``code`` names the refusal so
    the portal can say it in its own words."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class GatewayError(FirebusError):
    """The SMS gateway did not take a part."""


class GatewayUnavailableError(GatewayError):
    """The gateway certainly did not take the part and may later: try again."""

    retriable = True


class GatewayRejectedError(GatewayError):
    """The gateway refused the part for good (a bad number, a malformed request)."""

    retriable = False


class GatewayUncertainError(GatewayError):
    """The part went out but no answer came back: it may or may not have been taken."""

    # Sending it again could put the same part on a phone twice; the ledger records it as uncertain instead.
    retriable = False
