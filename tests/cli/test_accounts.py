"""`firebus accounts` against real PostgreSQL (a schema of this module's own): add, list, disable, enable, passwd,
revoke-sessions, each change in the security log as done by ``cli``, and every refusal one line with a non-zero exit.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from consumers.portal import PostgresDirectory
from consumers.portal.auth import password_matches
from tests.consumers.archiving import create_schema, drop_schema, dsn_for
from tests.test_cli import error_lines, firebus

PW = b"long-enough-1\n"


@pytest.fixture(scope="module")
async def dsn() -> AsyncIterator[str]:
    name = await create_schema()
    yield dsn_for(name)
    await drop_schema(name)


@pytest.fixture(scope="module")
def env(dsn: str) -> dict[str, str]:
    return {**os.environ, "FIREBUS_ARCHIVE_DSN": dsn, "FIREBUS_LOG_FORMAT": "json"}


async def directory_at(dsn: str) -> PostgresDirectory:
    directory = PostgresDirectory(dsn)
    await directory.start()
    return directory


async def test_an_officer_is_added_listed_disabled_enabled_and_given_a_new_password(
    env: dict[str, str], dsn: str
) -> None:
    """The whole life of one account from the shell, with the password on standard input and every change logged."""
    code, out, err = await firebus(
        "accounts", "add", "forestry-zhang", "--name", "张伟", "--unit", "forestry", "--role", "reporter",
        env=env, stdin=b"zhang-pass-2026\n",
    )  # fmt: skip
    assert (code, out.strip()) == (0, "added forestry-zhang (张伟, forestry, reporter)"), err
    code, out, _ = await firebus("accounts", "list", "--json", env=env)
    [listed] = [entry for entry in json.loads(out)["accounts"] if entry["id"] == "forestry-zhang"]
    assert listed == {
        "id": "forestry-zhang",
        "name": "张伟",
        "unit": "forestry",
        "role": "reporter",
        "disabled": False,
        "demo": False,
        "sessions": 0,
    }
    directory = await directory_at(dsn)
    try:
        await directory.open_session("tok", "forestry-zhang", client="10.1.1.1", now=datetime.now(UTC))
        code, out, _ = await firebus("accounts", "revoke-sessions", "forestry-zhang", env=env)
        assert code == 0
        assert out.startswith("forestry-zhang: 1 session(s) ended")
        assert await directory.session_account("tok", now=datetime.now(UTC)) is None
        assert (await firebus("accounts", "disable", "forestry-zhang", env=env))[0] == 0
        assert (await directory.account("forestry-zhang")).disabled  # type: ignore[union-attr]
        code, table, _ = await firebus("accounts", "list", "--unit", "forestry", env=env)
        assert "forestry-zhang" in table
        assert "disabled" in table
        assert (await firebus("accounts", "enable", "forestry-zhang", env=env))[0] == 0
        code, out, _ = await firebus("accounts", "passwd", "forestry-zhang", env=env, stdin=b"another-pass-2026\n")
        assert (code, out.strip()) == (0, "forestry-zhang: password changed, 0 session(s) ended")
        account = await directory.account("forestry-zhang")
        assert password_matches(account, "another-pass-2026")
        assert not password_matches(account, "zhang-pass-2026")
        log = [(line.kind.value, line.actor) for line in reversed(await directory.security_log(unit="forestry"))]
        assert log == [
            ("account_added", "cli"),
            ("sessions_revoked", "cli"),
            ("account_disabled", "cli"),
            ("account_enabled", "cli"),
            ("password_changed", "cli"),
        ]
    finally:
        await directory.close()


@pytest.mark.parametrize(
    ("args", "stdin", "error"),
    [
        (("add", "x1", "--name", "甲", "--unit", "forestry", "--role", "boss"), PW, "is not a role"),
        (("add", "Bad Id", "--name", "甲", "--unit", "forestry", "--role", "reporter"), PW, "account id"),
        (("add", "x2", "--name", "甲", "--unit", "nowhere", "--role", "reporter"), PW, "units registry"),
        (("add", "x3", "--name", "甲", "--unit", "forestry", "--role", "reporter"), b"short\n", "at least 10"),
        (("add", "x4", "--name", "甲", "--unit", "forestry", "--role", "reporter"), b"\n", "standard input"),
        (("add", "x5", "--name", "甲", "--unit", "forestry", "--role", "hq_admin"), PW, "HQ office"),
        (("add", "hq-x", "--name", "甲", "--unit", "hq_office", "--role", "hq_reviewer"), PW, "reviewer"),
        (("disable", "nobody"), b"", "no such account"),
        (("passwd", "nobody"), PW, "no such account"),
        (("revoke-sessions", "nobody"), b"", "no such account"),
    ],
    ids=["role", "id", "unit", "weak", "no-password", "hq-outside-hq", "not-reviewer", "disable", "passwd", "revoke"],
)
async def test_refusals_are_one_line(env: dict[str, str], args: tuple[str, ...], stdin: bytes, error: str) -> None:
    """Each refused command prints one ``firebus: error:`` line naming the problem and exits 1."""
    code, _, err = await firebus("accounts", *args, env=env, stdin=stdin)
    lines = error_lines(err)
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith("firebus: error: ")
    assert error in lines[0]


async def test_a_taken_id_and_an_unreachable_database_are_one_line(env: dict[str, str]) -> None:
    """Adding an id twice, or any command without its database, is one line and exit 1."""
    add = ("accounts", "add", "twice", "--name", "乙", "--unit", "police", "--role", "reporter")
    assert (await firebus(*add, env=env, stdin=PW))[0] == 0
    code, _, err = await firebus(*add, env=env, stdin=PW)
    assert (code, error_lines(err)) == (1, ["firebus: error: twice: an account with this id exists already"])
    unreachable = {**env, "FIREBUS_ARCHIVE_DSN": "postgresql://127.0.0.1:1/none?connect_timeout=2"}
    code, _, err = await firebus("accounts", "list", env=unreachable)
    [line] = error_lines(err)
    assert code == 1
    assert line.startswith("firebus: error: cannot reach the accounts database (FIREBUS_ARCHIVE_DSN)")


async def test_the_portal_does_not_start_without_its_accounts_database(env: dict[str, str]) -> None:
    """Outside demo mode `firebus portal` needs its accounts: without the database it stops with one line."""
    from firebus.broker import free_port  # noqa: PLC0415

    unreachable = {**env, "FIREBUS_ARCHIVE_DSN": "postgresql://127.0.0.1:1/none?connect_timeout=2"}
    code, _, err = await firebus("portal", "--port", str(free_port()), env=unreachable)
    [line] = error_lines(err)
    assert code == 1
    assert line.startswith("firebus: error: cannot reach the accounts database (FIREBUS_ARCHIVE_DSN)")
