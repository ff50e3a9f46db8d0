"""A health port that is taken stops `firebus processors` and `firebus sinks` with one error line and exit 1, before
they reach Kafka."""

from __future__ import annotations

import socket

import pytest

from tests.test_cli import firebus


@pytest.mark.parametrize(
    ("command", "setting"), [("processors", "processors_health_port"), ("sinks", "sinks_health_port")]
)
async def test_a_taken_health_port_is_one_error_line_and_exit_1(
    command: str, setting: str, cli_env: dict[str, str]
) -> None:
    """Another process listening on the stage's health port: one `firebus: error:` line naming the port and the
    setting, nothing else on stderr, exit 1 (no broker is needed to find out: the port is taken first)."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = {**cli_env, f"FIREBUS_{setting.upper()}": str(port), "FIREBUS_BOOTSTRAP": "127.0.0.1:1"}
        code, out, err = await firebus(command, env=env)
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        f"firebus: error: health port 127.0.0.1:{port} is already in use by another process; "
        f"set {setting} (FIREBUS_{setting.upper()}) to a free port, or 0 for any"
    ]
