"""One settings object per process: environment ``FIREBUS_*`` over the ``[firebus]`` table of the config file.

The config file (``FIREBUS_CONFIG``, default: the shipped Yangcheng County sample ``firebus/data/county.toml``)
also holds the county's data — townships, units and their duties, reviewers — read by :mod:`firebus.county`.
No ``bootstrap`` means the embedded broker on loopback.
"""

from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from firebus.errors import ConfigurationError

SAMPLE_CONFIG = Path(__file__).resolve().parent / "data" / "county.toml"
SAMPLE_POLICY = Path(__file__).resolve().parent / "data" / "review_policy.toml"
SAMPLE_REPORTING_POLICY = Path(__file__).resolve().parent / "data" / "reporting_policy.toml"
SAMPLE_PORTAL_ACCOUNTS = Path(__file__).resolve().parent / "data" / "portal_accounts.toml"
SAMPLE_SMS_RECIPIENTS = Path(__file__).resolve().parent / "data" / "sms_recipients.toml"
CONFIG_ENV = "FIREBUS_CONFIG"


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class Compression(StrEnum):
    """The codecs Kafka allows; firebus reads all of them whatever it writes with."""

    NONE = "none"
    GZIP = "gzip"
    SNAPPY = "snappy"
    LZ4 = "lz4"
    ZSTD = "zstd"


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class Settings(BaseSettings):
    """Everything a firebus process is configured with. Pass it into constructors; never read the env elsewhere."""

    model_config = SettingsConfigDict(env_prefix="FIREBUS_", extra="forbid", frozen=True)

    config: Path = Field(default=SAMPLE_CONFIG, description="TOML file with [firebus] settings and the county data.")
    bootstrap: str | None = Field(default=None, description="Kafka bootstrap servers; unset runs the embedded broker.")
    broker_port: int = Field(default=9092, ge=1, le=65535, description="Embedded broker port on 127.0.0.1.")
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: SaslMechanism = SaslMechanism.SCRAM_SHA_512
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    client_id: str = "firebus"
    request_timeout_ms: int = Field(default=15_000, ge=1_000)
    connect_timeout_s: float = Field(default=15.0, gt=0, description="How long to wait for a broker to answer.")
    fetch_max_wait_ms: int = Field(default=100, ge=1, le=5_000, description="Consumer fetch wait; latency on Tansu.")
    producer_idempotence: bool = Field(
        default=False, description="Enable on Apache Kafka; Tansu has no idempotent producer."
    )
    compression: Compression = Field(
        default=Compression.NONE,
        description="Codec every firebus producer writes with (none, gzip, snappy, lz4, zstd).",
    )
    send_retries: int = Field(default=5, ge=0, description="Bounded retries of a failed produce request.")
    review_policy: Path = Field(default=SAMPLE_POLICY, description="The HQ office's versioned review policy (TOML).")
    group_session_timeout_s: float = Field(
        default=6.0, gt=0, description="Consumer-group session/rebalance timeout; joins take about half of it on Tansu."
    )
    group_poll_interval_s: float = Field(
        default=300.0,
        gt=0,
        description="Longest a sink's consumer may go without polling before it leaves its group (max.poll.interval).",
    )
    processors_batch_size: int = Field(default=500, ge=1, description="Records the processors take per batch.")
    processors_batch_within_s: float = Field(default=0.01, gt=0, description="Longest wait to fill a batch.")
    processors_linger_ms: int = Field(default=2, ge=0, description="Producer linger of the processors.")
    processors_broker_check_s: float = Field(
        default=10.0,
        gt=0,
        description="How often the processors worker checks that the broker still has what it stored (a wiped or "
        "replaced broker is noticed within two checks).",
    )
    processors_stall_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="How long a review partition may have records waiting, none taken, before the worker logs it as "
        "stalled (faust's stream_processing_timeout).",
    )
    review_tick_s: float = Field(default=15.0, gt=0, description="How often overdue reviews are looked for.")
    review_retention_s: float = Field(
        default=30 * 24 * 3600.0,
        gt=0,
        description="How long the processors keep a settled review item (released, rejected, withdrawn) after it "
        "settled, in memory and on the compacted review-items topic, before it is tombstoned; pending items are "
        "always kept. Default 30 days, the review inbox's retention: no redelivery can come later.",
    )
    topic_replication: int = Field(default=1, ge=1, description="Replication factor used by `firebus topics create`.")
    review_partitions: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Partitions `firebus topics create` gives the co-partitioned topics (intake, decisions, review items); "
            "default the registry's (3), never fewer. More lets more processors workers share the work."
        ),
    )
    home: Path = Field(default=Path("~/.firebus"), description="State directory: keys, archive files, ledgers.")
    keys_dir: Path | None = Field(default=None, description="Units' key files; default HOME/keys.")
    archive_dsn: SecretStr = Field(
        default=SecretStr("postgresql://127.0.0.1:5432/test"),
        description="PostgreSQL connection (libpq URI or key=value) of the archive; may hold a password.",
    )
    archive_dir: Path | None = Field(default=None, description="Avro cold-storage files; default HOME/archive.")
    archive_file_max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Size at which an archive file rolls to the next -NNN file."
    )
    portal_host: str = Field(default="127.0.0.1", description="Address the portal web server listens on.")
    portal_port: int = Field(default=8080, ge=1, le=65535, description="Port of the portal web server.")
    portal_secret: SecretStr | None = Field(
        default=None, description="Key signing portal session cookies; unset: a random key per process."
    )
    api_rate_per_minute: float = Field(
        default=120.0, gt=0, description="Requests per minute each HTTP API credential may make (token bucket)."
    )
    api_burst: int = Field(default=30, ge=1, description="Requests an HTTP API credential may make at once.")
    portal_accounts: Path = Field(
        default=SAMPLE_PORTAL_ACCOUNTS,
        description="Demo portal accounts (TOML), seeded into the accounts database in demo mode only; real accounts "
        "are made with `firebus accounts add`.",
    )
    portal_demo: bool = Field(
        default=False,
        description="Demo mode (`firebus up --demo` sets it): the demo accounts are seeded and may log in; otherwise "
        "they are refused.",
    )
    portal_cookie_secure: bool = Field(
        default=False,
        description="Mark the session cookie Secure and send HSTS: set it whenever the portal is served over HTTPS.",
    )
    # --- health ---
    health_host: str = Field(
        default="127.0.0.1", description="Address the health servers (/healthz, /readyz, /metrics) listen on."
    )
    processors_health_port: int = Field(
        default=9101, ge=0, le=65535, description="Health port of `firebus processors`; 0: any free port."
    )
    sinks_health_port: int = Field(default=9102, ge=0, le=65535, description="Health port of `firebus sinks`; 0: any.")
    supervisor_port: int = Field(
        default=9100, ge=0, le=65535, description="Port of the `firebus up` supervisor (/stages, /healthz); 0: any."
    )
    # --- end health ---
    # --- sms ---
    sms_gateway_url: str = Field(
        default="http://127.0.0.1:13013/cgi-bin/sendsms", description="Kannel smsbox sendsms URL of the SMS sink."
    )
    sms_username: str = Field(default="firebus", description="Kannel sendsms-user username.")
    sms_password: SecretStr | None = Field(default=None, description="Kannel sendsms-user password; never logged.")
    sms_sender: str | None = Field(default="12119", description="Sender number shown to recipients (from).")
    sms_recipients: Path = Field(
        default=SAMPLE_SMS_RECIPIENTS, description="SMS recipients directory (TOML): who gets which events."
    )
    sms_rate_per_minute: int = Field(default=60, ge=1, description="SMS parts per minute handed to the gateway.")
    sms_burst: int = Field(default=10, ge=1, description="SMS parts that may go at once before the rate applies.")
    sms_quiet_hours: str = Field(
        default="22:00-07:00",
        pattern=r"^$|^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Quiet hours HH:MM-HH:MM, county time; non-urgent SMS wait until they end; empty: none.",
    )
    sms_max_parts: int = Field(default=4, ge=1, le=10, description="Longest SMS, in parts; longer texts are cut.")
    sms_ledger: Path | None = Field(default=None, description="SQLite ledger of sent SMS; default HOME/sms.sqlite3.")
    sms_timeout_s: float = Field(default=10.0, gt=0, description="Time-out of one request to the SMS gateway.")
    # --- end sms ---
    # --- supervision ---
    supervisor_backoff_s: float = Field(default=1.0, gt=0, description="Wait before restarting a stage that exited.")
    supervisor_backoff_max_s: float = Field(default=30.0, gt=0, description="Longest wait; the wait doubles up to it.")
    supervisor_give_up_after: int = Field(
        default=5, ge=1, description="Failures within supervisor_give_up_within_s after which a stage is given up."
    )
    supervisor_give_up_within_s: float = Field(default=60.0, gt=0, description="Window of the give-up count.")
    stages_url: str | None = Field(
        default=None,
        description="The supervisor's /stages the portal watches (`firebus up` sets it); unset: readiness_urls.",
    )
    readiness_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Stage name -> its /readyz URL, watched when there is no supervisor (a production deployment).",
    )
    stages_poll_s: float = Field(default=3.0, gt=0, description="How often the portal looks at the stages and Kafka.")
    # --- end supervision ---
    log_format: LogFormat = LogFormat.AUTO
    log_level: str = "info"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ConfigFileSource(settings_cls, init_settings))

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        if self.security_protocol in (SecurityProtocol.SASL_SSL, SecurityProtocol.SASL_PLAINTEXT) and not (
            self.sasl_username and self.sasl_password
        ):
            raise ValueError(f"security_protocol {self.security_protocol} needs sasl_username and sasl_password")
        if self.bootstrap is None and self.security_protocol is not SecurityProtocol.PLAINTEXT:
            raise ValueError("the embedded broker speaks PLAINTEXT only; set bootstrap for a secured Kafka")
        return self

    @property
    def embedded(self) -> bool:
        """True when firebus runs its own broker on loopback."""
        return self.bootstrap is None

    @property
    def bootstrap_servers(self) -> str:
        return self.bootstrap if self.bootstrap is not None else f"127.0.0.1:{self.broker_port}"

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser()

    @property
    def key_directory(self) -> Path:
        return (self.keys_dir or self.home / "keys").expanduser()

    @property
    def archive_directory(self) -> Path:
        return (self.archive_dir or self.home / "archive").expanduser()

    @property
    def sms_ledger_path(self) -> Path:
        return (self.sms_ledger or self.home / "sms.sqlite3").expanduser()


class _ConfigFileSource(PydanticBaseSettingsSource):
    """The ``[firebus]`` table of the config file named by the ``config`` argument or ``FIREBUS_CONFIG``."""

    def __init__(self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        init_kwargs: dict[str, Any] = getattr(init_settings, "init_kwargs", {})
        path = Path(init_kwargs.get("config") or os.environ.get(CONFIG_ENV) or SAMPLE_CONFIG)
        table = read_config_file(path).get("firebus", {})
        if not isinstance(table, dict):
            raise ConfigurationError(f"{path}: [firebus] must be a table")
        self._table: dict[str, Any] = table

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._table.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._table)


def read_config_file(path: Path) -> dict[str, Any]:
    """The whole TOML config file, with a one-line error naming the file when it cannot be read."""
    try:
        with path.expanduser().open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError(f"config file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"config file {path}: {exc}") from exc
