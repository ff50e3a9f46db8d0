"""Settings precedence and validation, the county registry's checks, Kafka client options per security protocol,
and secret masking in logs. Nothing here needs a broker.
"""

from __future__ import annotations

import io
import json
import logging
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr, ValidationError

from firebus.county import load_county
from firebus.errors import ConfigurationError
from firebus.kafka import client_options
from firebus.logs import configure_logging
from firebus.settings import (
    CONFIG_ENV,
    SAMPLE_CONFIG,
    LogFormat,
    SaslMechanism,
    SecurityProtocol,
    Settings,
)

PASSWORD = "hunter2"  # noqa: S105  (a throwaway test credential)
SASL_OPTIONS = {"sasl_mechanism", "sasl_plain_username", "sasl_plain_password"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FIREBUS_* variable from outside reaches these tests."""
    for name in [name for name in os.environ if name.startswith("FIREBUS_")]:
        monkeypatch.delenv(name)


def write_config(tmp_path: Path, firebus_table: str, name: str = "county.toml") -> Path:
    """A config file: the given [firebus] table followed by the sample county's data."""
    sample = SAMPLE_CONFIG.read_text(encoding="utf-8").replace("[firebus]\n", "[_sample_firebus]\n", 1)
    path = tmp_path / name
    path.write_text(f"[firebus]\n{firebus_table}\n\n{sample}", encoding="utf-8")
    return path


# --- defaults ----------------------------------------------------------------------------------------------------


def test_defaults_run_the_embedded_broker():
    """Without bootstrap the settings are embedded, PLAINTEXT, on 127.0.0.1:9092, reading the sample config."""
    settings = Settings()
    assert settings.embedded
    assert settings.bootstrap is None
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.security_protocol is SecurityProtocol.PLAINTEXT
    assert settings.sasl_mechanism is SaslMechanism.SCRAM_SHA_512
    assert settings.config == SAMPLE_CONFIG
    assert settings.log_format is LogFormat.AUTO


@pytest.mark.parametrize("port", [1, 19092, 65535])
def test_embedded_bootstrap_uses_the_broker_port(port: int):
    """The embedded bootstrap address is loopback on broker_port."""
    settings = Settings(broker_port=port)
    assert settings.embedded
    assert settings.bootstrap_servers == f"127.0.0.1:{port}"


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_broker_port_out_of_range_is_refused(port: int):
    """A broker port outside 1..65535 is a validation error."""
    with pytest.raises(ValidationError, match="broker_port"):
        Settings(broker_port=port)


def test_explicit_bootstrap_is_not_embedded():
    """A bootstrap address turns the embedded broker off and is used verbatim."""
    settings = Settings(bootstrap="kafka-1:9093,kafka-2:9093", broker_port=1234)
    assert not settings.embedded
    assert settings.bootstrap_servers == "kafka-1:9093,kafka-2:9093"


def test_key_directory_defaults_under_home(tmp_path: Path):
    """Keys live in HOME/keys unless keys_dir is set; '~' is expanded."""
    assert Settings(home=tmp_path).key_directory == tmp_path / "keys"
    assert Settings(home=tmp_path, keys_dir=tmp_path / "k").key_directory == tmp_path / "k"
    assert Settings().key_directory == Path("~/.firebus/keys").expanduser()
    assert Settings().home_dir == Path("~/.firebus").expanduser()


def test_settings_are_frozen():
    """Settings cannot be changed after construction."""
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.bootstrap = "elsewhere:9092"  # type: ignore[misc]


# --- precedence --------------------------------------------------------------------------------------------------


def test_config_file_table_is_read(tmp_path: Path):
    """The [firebus] table of the config file sets settings."""
    path = write_config(tmp_path, 'bootstrap = "kafka-1:9093"\nclient_id = "county-a"\nsend_retries = 2')
    settings = Settings(config=path)
    assert (settings.bootstrap, settings.client_id, settings.send_retries) == ("kafka-1:9093", "county-a", 2)
    assert not settings.embedded


def test_config_file_is_found_through_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """FIREBUS_CONFIG names the config file whose [firebus] table is read."""
    path = write_config(tmp_path, 'client_id = "from-file"')
    monkeypatch.setenv(CONFIG_ENV, str(path))
    settings = Settings()
    assert settings.client_id == "from-file"
    assert settings.config == path


@pytest.mark.parametrize(
    ("field", "values", "expected"),
    [
        ("bootstrap", ('"file:9092"', "env:9092"), "env:9092"),
        ("client_id", ('"file"', "env"), "env"),
        ("send_retries", ("1", "7"), 7),
        ("producer_idempotence", ("false", "true"), True),
    ],
)
def test_environment_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, values: tuple[str, str], expected: Any
):
    """A FIREBUS_* variable overrides the same key in the config file's [firebus] table."""
    in_file, in_env = values
    path = write_config(tmp_path, f"{field} = {in_file}")
    monkeypatch.setenv(f"FIREBUS_{field.upper()}", in_env)
    assert getattr(Settings(config=path), field) == expected


def test_arguments_win_over_environment_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Constructor arguments override both FIREBUS_* variables and the config file."""
    path = write_config(tmp_path, 'bootstrap = "file:9092"\nclient_id = "file"')
    monkeypatch.setenv("FIREBUS_BOOTSTRAP", "env:9092")
    monkeypatch.setenv("FIREBUS_CLIENT_ID", "env")
    settings = Settings(config=path, bootstrap="arg:9092", client_id="arg")
    assert (settings.bootstrap, settings.client_id) == ("arg:9092", "arg")


def test_argument_config_wins_over_environment_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An explicit config argument is the file read, even when FIREBUS_CONFIG names another."""
    from_env = write_config(tmp_path, 'client_id = "env-file"', name="env.toml")
    from_arg = write_config(tmp_path, 'client_id = "arg-file"', name="arg.toml")
    monkeypatch.setenv(CONFIG_ENV, str(from_env))
    assert Settings(config=from_arg).client_id == "arg-file"


def test_secret_from_environment_is_hidden(monkeypatch: pytest.MonkeyPatch):
    """A SASL password from the environment is a SecretStr that repr and str never reveal."""
    monkeypatch.setenv("FIREBUS_BOOTSTRAP", "kafka:9093")
    monkeypatch.setenv("FIREBUS_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("FIREBUS_SASL_USERNAME", "firebus")
    monkeypatch.setenv("FIREBUS_SASL_PASSWORD", "hunter2")
    settings = Settings()
    assert isinstance(settings.sasl_password, SecretStr)
    assert settings.sasl_password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings)


# --- validation --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [SecurityProtocol.SASL_SSL, SecurityProtocol.SASL_PLAINTEXT])
@pytest.mark.parametrize(
    "credentials", [{}, {"sasl_username": "u"}, {"sasl_password": "p"}, {"sasl_username": "", "sasl_password": "p"}]
)
def test_sasl_without_credentials_is_refused(protocol: SecurityProtocol, credentials: dict[str, Any]):
    """A SASL protocol without both username and password is a validation error naming them."""
    with pytest.raises(ValidationError, match="needs sasl_username and sasl_password"):
        Settings(bootstrap="kafka:9093", security_protocol=protocol, **credentials)


@pytest.mark.parametrize("protocol", [SecurityProtocol.SSL, SecurityProtocol.SASL_SSL, SecurityProtocol.SASL_PLAINTEXT])
def test_secured_protocol_without_bootstrap_is_refused(protocol: SecurityProtocol):
    """A non-PLAINTEXT protocol for the embedded broker (no bootstrap) is a validation error."""
    with pytest.raises(ValidationError, match="embedded broker speaks PLAINTEXT only"):
        Settings(security_protocol=protocol, sasl_username="u", sasl_password=PASSWORD)


def test_secured_protocol_from_the_file_without_bootstrap_is_refused(tmp_path: Path):
    """The same rule applies when the protocol comes from the config file."""
    path = write_config(tmp_path, 'security_protocol = "SSL"')
    with pytest.raises(ValidationError, match="PLAINTEXT only"):
        Settings(config=path)


def test_unknown_key_in_the_file_is_refused(tmp_path: Path):
    """A misspelt key in the [firebus] table is refused rather than ignored."""
    path = write_config(tmp_path, 'bootstrap_server = "kafka:9093"')
    with pytest.raises(ValidationError, match="bootstrap_server"):
        Settings(config=path)


@pytest.mark.parametrize("via", ["argument", "environment"])
def test_missing_config_file_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via: str):
    """A config file that does not exist raises ConfigurationError naming the file."""
    missing = tmp_path / "nowhere" / "county.toml"
    arguments: dict[str, Any] = {"config": missing}
    if via == "environment":
        monkeypatch.setenv(CONFIG_ENV, str(missing))
        arguments = {}
    with pytest.raises(ConfigurationError, match="does not exist") as caught:
        Settings(**arguments)
    assert str(missing) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[firebus\n", "Expected ']'"),
        ("firebus = 3\n", "[firebus] must be a table"),
        ('[firebus]\nbootstrap = "unterminated\n', "config file"),
    ],
)
def test_broken_config_file_is_a_configuration_error(tmp_path: Path, text: str, fragment: str):
    """An unparseable config file or a [firebus] that is not a table raises ConfigurationError naming the file."""
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        Settings(config=path)
    assert str(path) in str(caught.value)
    assert fragment in str(caught.value)


# --- the county registry -----------------------------------------------------------------------------------------

UNIT = '\n[[units]]\nid = "{id}"\nname = "x"\nkind = "{kind}"\nduties = {duties}\ntownships = {townships}\n'


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        pytest.param(
            UNIT.format(id="twp_atlantis", kind="township", duties='["work_update"]', townships='["atlantis"]'),
            ["twp_atlantis", "atlantis"],
            id="unknown-township",
        ),
        pytest.param(
            UNIT.format(id="police", kind="member", duties='["work_update"]', townships="[]"),
            ["police"],
            id="duplicate-unit",
        ),
        pytest.param(
            '\n[[reviewers]]\nid = "hq-zhao"\nname = "x"\nunit = "ghost"\n', ["hq-zhao", "ghost"], id="reviewer"
        ),
        pytest.param(
            UNIT.format(id="bad_duty", kind="member", duties='["arson"]', townships="[]"),
            ["units.13.duties.0"],
            id="unknown-duty",
        ),
        pytest.param(
            UNIT.format(id="Bad-Id", kind="member", duties="[]", townships="[]"), ["units.13.id"], id="bad-unit-id"
        ),
        pytest.param(
            UNIT.format(id="odd", kind="agency", duties="[]", townships="[]"), ["units.13.kind"], id="unknown-kind"
        ),
    ],
)
def test_bad_county_entry_is_a_configuration_error(tmp_path: Path, extra: str, names: list[str]):
    """load_county refuses a bad unit, township reference or reviewer with ConfigurationError naming file and entry."""
    path = tmp_path / "county.toml"
    path.write_text(SAMPLE_CONFIG.read_text(encoding="utf-8") + extra, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_county(path)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message
    for name in names:
        assert name in message


def test_duplicate_unit_ids_are_refused(tmp_path: Path):
    """Two units with one id are refused by load_county."""
    path = tmp_path / "county.toml"
    extra = UNIT.format(id="police", kind="member", duties='["work_update"]', townships="[]")
    path.write_text(SAMPLE_CONFIG.read_text(encoding="utf-8") + extra, encoding="utf-8")
    with pytest.raises(ConfigurationError, match="unit ids must be unique"):
        load_county(path)


def test_missing_county_file_is_a_configuration_error(tmp_path: Path):
    """load_county of a missing file raises ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_county(tmp_path / "none.toml")


def test_sample_county_loads():
    """The shipped sample county loads with its units, townships and reviewers."""
    county = load_county(SAMPLE_CONFIG)
    assert county.county.id == "yangcheng"
    assert {"hq_office", "forestry", "police", "twp_manghe"} <= {unit.id for unit in county.units}
    assert "manghe" in county.township_ids()
    assert county.reviewer("hq-wang") is not None
    assert county.reviewer("nobody") is None


# --- Kafka client options ----------------------------------------------------------------------------------------


def test_sasl_ssl_options_carry_credentials_and_tls():
    """SASL_SSL options include mechanism, username, the plain password and an SSL context."""
    settings = Settings(
        bootstrap="kafka:9093",
        security_protocol=SecurityProtocol.SASL_SSL,
        sasl_mechanism=SaslMechanism.SCRAM_SHA_256,
        sasl_username="firebus",
        sasl_password=PASSWORD,
    )
    options = client_options(settings, client_id="firebus-test")
    assert options["bootstrap_servers"] == "kafka:9093"
    assert options["client_id"] == "firebus-test"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_username"] == "firebus"
    assert options["sasl_plain_password"] == PASSWORD
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_plaintext_options_have_no_security():
    """PLAINTEXT options carry no SASL credentials and no SSL context."""
    options = client_options(Settings(broker_port=19092))
    assert options["security_protocol"] == "PLAINTEXT"
    assert options["bootstrap_servers"] == "127.0.0.1:19092"
    assert options["client_id"] == "firebus"
    assert options["request_timeout_ms"] == 15_000
    assert not SASL_OPTIONS & options.keys()
    assert "ssl_context" not in options


@pytest.mark.parametrize(
    ("protocol", "has_ssl", "has_sasl"),
    [
        (SecurityProtocol.SSL, True, False),
        (SecurityProtocol.SASL_PLAINTEXT, False, True),
        (SecurityProtocol.SASL_SSL, True, True),
    ],
)
def test_options_per_protocol(protocol: SecurityProtocol, has_ssl: bool, has_sasl: bool):
    """SSL adds only an SSL context, SASL_PLAINTEXT only credentials, SASL_SSL both."""
    settings = Settings(bootstrap="kafka:9093", security_protocol=protocol, sasl_username="u", sasl_password=PASSWORD)
    options = client_options(settings)
    assert ("ssl_context" in options) is has_ssl
    assert (options.keys() >= SASL_OPTIONS) is has_sasl
    if has_sasl:
        assert options["sasl_plain_password"] == PASSWORD


# --- logging -----------------------------------------------------------------------------------------------------


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """A stream structlog writes to for one test; the global configuration is reset afterwards."""
    stream = io.StringIO()
    root_handlers = list(logging.getLogger().handlers)
    yield stream
    structlog.reset_defaults()
    for handler in logging.getLogger().handlers:
        if handler not in root_handlers:
            logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize("key", ["sasl_password", "password", "PASSWORD", "client_secret", "private_key", "token"])
def test_secrets_are_masked_in_json_logs(log_output: io.StringIO, key: str):
    """A logged key naming a password, secret, private key or token renders as *** in the JSON line."""
    configure_logging(stream=log_output, log_format=LogFormat.JSON)
    structlog.get_logger("test").warning("connecting", **{key: "hunter2"}, user="firebus")
    line = json.loads(log_output.getvalue().strip().splitlines()[-1])
    assert line[key] == "***"
    assert line["user"] == "firebus"
    assert line["event"] == "connecting"
    assert line["level"] == "warning"
    assert "hunter2" not in log_output.getvalue()


def test_sasl_password_x_renders_masked(log_output: io.StringIO):
    """log.info(..., sasl_password="x") renders "***" in the JSON line read back."""
    configure_logging(stream=log_output, log_format=LogFormat.JSON)
    structlog.get_logger().info("kafka_client", sasl_password="x")  # noqa: S106
    assert json.loads(log_output.getvalue().splitlines()[-1])["sasl_password"] == "***"  # noqa: S105


def test_secrets_are_masked_in_console_logs(log_output: io.StringIO):
    """The console renderer masks secrets too."""
    configure_logging(stream=log_output, log_format=LogFormat.CONSOLE)
    structlog.get_logger().info("connecting", sasl_password=PASSWORD)
    assert "hunter2" not in log_output.getvalue()
    assert "***" in log_output.getvalue()


def test_log_level_filters(log_output: io.StringIO):
    """Calls below the configured level are not written."""
    configure_logging(stream=log_output, log_format=LogFormat.JSON, level="warning")
    structlog.get_logger().info("quiet")
    structlog.get_logger().error("loud")
    events = [json.loads(line)["event"] for line in log_output.getvalue().splitlines()]
    assert events == ["loud"]


def test_logging_follows_the_current_stderr(capsys: pytest.CaptureFixture[str]):
    """Configured without a stream, lines go to whatever sys.stderr is when they are written: a tool or test runner
    that replaced (and closed) the stderr logging was configured with must not break every later line."""
    import contextlib  # noqa: PLC0415

    first = io.StringIO()
    with contextlib.redirect_stderr(first):
        configure_logging(log_format=LogFormat.JSON)
    first.close()
    structlog.get_logger().warning("after_the_old_stderr_closed")
    logging.getLogger("faust").warning("stdlib_line")
    written = capsys.readouterr().err
    assert "after_the_old_stderr_closed" in written
    assert "stdlib_line" in written
    structlog.reset_defaults()
