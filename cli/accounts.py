"""``firebus accounts add|list|disable|enable|passwd|revoke-sessions``: the portal's person accounts, in the
accounts database (``FIREBUS_ARCHIVE_DSN``), from a shell on the server. Passwords are read from standard input."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cli.commands import Commands, json_option, say, say_json
from firebus.county import load_county
from firebus.errors import ConfigurationError
from firebus.settings import Settings

if TYPE_CHECKING:
    from consumers.portal import PostgresDirectory


async def _directory(settings: Settings) -> PostgresDirectory:
    from consumers.portal import PostgresDirectory

    directory = PostgresDirectory(settings.archive_dsn.get_secret_value())
    await directory.start()
    return directory


def _password() -> str:
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise ConfigurationError("give the password on standard input")
    return password


async def cmd_accounts_add(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.portal import Role, add_account

    try:
        role = Role(args.role)
    except ValueError:
        raise ConfigurationError(f"{args.role!r} is not a role ({', '.join(role.value for role in Role)})") from None
    password = _password()
    directory = await _directory(settings)
    try:
        account = await add_account(
            directory,
            load_county(settings.config),
            actor=None,
            account_id=args.account_id,
            name=args.name,
            unit=args.unit,
            role=role,
            password=password,
            now=datetime.now(UTC),
        )
    finally:
        await directory.close()
    say(f"added {account.id} ({account.name}, {account.unit}, {account.role.value})")
    return 0


async def cmd_accounts_list(args: argparse.Namespace, settings: Settings) -> int:
    directory = await _directory(settings)
    try:
        accounts = await directory.accounts(unit=args.unit)
        live = await directory.live_sessions(now=datetime.now(UTC))
    finally:
        await directory.close()
    sessions = {account.id: sum(1 for info in live if info.account_id == account.id) for account in accounts}
    if args.json:
        say_json(
            {
                "accounts": [
                    {**account.model_dump(mode="json", exclude={"password_hash"}), "sessions": sessions[account.id]}
                    for account in accounts
                ]
            }
        )
        return 0
    say(f"{'account':<20} {'unit':<14} {'role':<12} {'state':<9} {'sessions':>8}  name")
    for account in accounts:
        state = "disabled" if account.disabled else ("demo" if account.demo else "active")
        say(
            f"{account.id:<20} {account.unit:<14} {account.role.value:<12} {state:<9} {sessions[account.id]:>8}  "
            f"{account.name}"
        )
    say(f"{len(accounts)} account(s)")
    return 0


async def cmd_accounts_disable(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.portal import set_disabled

    disabled = args.accounts_command == "disable"
    directory = await _directory(settings)
    try:
        ended = await set_disabled(
            directory, actor=None, account_id=args.account_id, disabled=disabled, now=datetime.now(UTC)
        )
    finally:
        await directory.close()
    say(f"{args.account_id}: {'disabled, ' + str(ended) + ' session(s) ended' if disabled else 'enabled'}")
    return 0


async def cmd_accounts_passwd(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.portal import change_password

    password = _password()
    directory = await _directory(settings)
    try:
        ended = await change_password(
            directory, actor=None, account_id=args.account_id, password=password, now=datetime.now(UTC)
        )
    finally:
        await directory.close()
    say(f"{args.account_id}: password changed, {ended} session(s) ended")
    return 0


async def cmd_accounts_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.portal import revoke_sessions

    directory = await _directory(settings)
    try:
        ended = await revoke_sessions(directory, actor=None, account_id=args.account_id, now=datetime.now(UTC))
    finally:
        await directory.close()
    say(f"{args.account_id}: {ended} session(s) ended (open consoles close within a keep-alive, 15 s)")
    return 0


def register(commands: Commands) -> None:
    accounts = commands.group("accounts", "portal person accounts: add, list, disable, passwd, revoke-sessions")
    add = accounts.command("add", cmd_accounts_add, "add a person's account (password on standard input)")
    add.add_argument("account_id", help="login id, e.g. forestry-zhang (a-z, 0-9, . _ -)")
    add.add_argument("--name", required=True, help="the person's name as the portal shows it")
    add.add_argument("--unit", required=True, help="unit id of the county configuration")
    add.add_argument(
        "--role", required=True, help="reporter | unit_admin | hq_reviewer (a county reviewer id) | hq_admin"
    )
    listing = accounts.command("list", cmd_accounts_list, "list the accounts and their live sessions")
    listing.add_argument("--unit", help="only this unit's accounts")
    json_option(listing)
    for name, help_text in (
        ("disable", "disable an account and end its sessions"),
        ("enable", "enable a disabled account"),
    ):
        action = accounts.command(name, cmd_accounts_disable, help_text)
        action.add_argument("account_id")
    passwd = accounts.command("passwd", cmd_accounts_passwd, "set a new password (standard input); ends its sessions")
    passwd.add_argument("account_id")
    revoke = accounts.command("revoke-sessions", cmd_accounts_revoke, "end every live session of an account")
    revoke.add_argument("account_id")
