"""Person accounts (谁发布、谁负责 names a person): roles, who may see which area and manage whom, login throttling,
and the directory that keeps accounts, server-side sessions and the portal's security log.

Roles, from least to most::

    reporter      an officer of a member unit: the member area
    unit_admin    a unit's account administrator: the member area, and the accounts of their own unit
    hq_reviewer   an HQ duty reviewer: the member area and the HQ console (decides reviews under their own id)
    hq_admin      an HQ administrator: all of the above, and every account

The :class:`Directory` protocol is what the portal asks; :class:`MemoryDirectory` keeps everything in memory (tests,
in-process use) and :class:`~consumers.portal.directory_pg.PostgresDirectory` keeps it in the archive's PostgreSQL
database (the running portal). Both apply the same rules, so a contract test runs against both.

Login throttling (:func:`throttle_wait`) is a pure function of the failures the directory has recorded: after a few
free attempts, each further failure doubles the wait before the next attempt, per account and per client address.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field

from firebus.county import County, UnitKind
from firebus.errors import AccountError


class Role(StrEnum):
    REPORTER = "reporter"
    UNIT_ADMIN = "unit_admin"
    HQ_REVIEWER = "hq_reviewer"
    HQ_ADMIN = "hq_admin"

    @property
    def hq(self) -> bool:
        """An HQ role: sees the HQ console and decides reviews."""
        return self in (Role.HQ_REVIEWER, Role.HQ_ADMIN)


ROLE_NAMES: dict[Role, str] = {
    Role.REPORTER: "报送员",
    Role.UNIT_ADMIN: "单位管理员",
    Role.HQ_REVIEWER: "指挥部审核员",
    Role.HQ_ADMIN: "指挥部管理员",
}


class Area(StrEnum):
    """The parts of the portal behind a login, each with the roles it lets in (:func:`allowed`)."""

    MEMBERS = "members"
    HQ = "hq"
    ADMIN = "admin"


def allowed(role: Role, area: Area) -> bool:
    """True when ``role`` may enter ``area``: the member area any account, the HQ console the HQ roles, the account
    administration the two administrator roles."""
    if area is Area.MEMBERS:
        return True
    if area is Area.HQ:
        return role.hq
    return role in (Role.UNIT_ADMIN, Role.HQ_ADMIN)


ACCOUNT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
MIN_PASSWORD_LENGTH = 10


class Account(BaseModel):
    """One person's login. For HQ roles the id is also the reviewer id in the county configuration: decisions made
    in the console are recorded under it, and the processors check it like any other reviewer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    role: Role
    password_hash: str = Field(pattern=r"^scrypt\$\d+\$\d+\$\d+\$[0-9a-f]+\$[0-9a-f]+$")
    disabled: bool = False
    demo: bool = False
    """Seeded from the shipped demo file: refused at login unless the portal runs in demo mode."""


def may_manage(actor: Account, *, unit: str, role: Role) -> bool:
    """True when ``actor`` may create or change an account of ``role`` in ``unit``: an HQ administrator any, a unit
    administrator the reporters and administrators of their own unit only."""
    if actor.disabled:
        return False
    if actor.role is Role.HQ_ADMIN:
        return True
    return actor.role is Role.UNIT_ADMIN and unit == actor.unit and role in (Role.REPORTER, Role.UNIT_ADMIN)


PROBLEMS: dict[str, str] = {
    "bad_account_id": "account id must be 2-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter/digit",
    "bad_name": "the name must not be empty",
    "weak_password": f"the password must have at least {MIN_PASSWORD_LENGTH} characters",
    "unknown_unit": "the unit is not in the county's units registry",
    "hq_role_outside_hq": "HQ roles belong to an HQ office unit",
    "not_a_reviewer": "an hq_reviewer must be a reviewer of the county configuration (county.toml [[reviewers]]) "
    "with the same id and unit: the processors check every decision against it",
    "not_allowed": "this administrator may not manage accounts of that unit or role",
    "account_exists": "an account with this id exists already",
    "unknown_account": "no such account",
}
"""Why an account change is refused, by code: the portal shows the code's zh-CN text, the CLI this English one."""


def account_problem(county: County, *, account_id: str, name: str, unit: str, role: Role, password: str) -> str | None:
    """The code of the first thing wrong with a new account (see :data:`PROBLEMS`), or None."""
    if not ACCOUNT_ID.match(account_id):
        return "bad_account_id"
    if not name.strip():
        return "bad_name"
    registered = next((known for known in county.units if known.id == unit), None)
    if registered is None:
        return "unknown_unit"
    if role.hq and registered.kind is not UnitKind.HQ_OFFICE:
        return "hq_role_outside_hq"
    reviewer = county.reviewer(account_id)
    if role is Role.HQ_REVIEWER and (reviewer is None or reviewer.unit != unit):
        return "not_a_reviewer"
    return password_problem(password)


def password_problem(password: str) -> str | None:
    return "weak_password" if len(password) < MIN_PASSWORD_LENGTH else None


def refuse(code: str, account_id: str = "") -> AccountError:
    """The one-line error for a refused change (the CLI's wording)."""
    return AccountError(f"{account_id}: {PROBLEMS[code]}" if account_id else PROBLEMS[code], code=code)


# --- security log ------------------------------------------------------------------------------------------------


class Security(StrEnum):
    """What the portal's security log records (table ``portal_security_log``)."""

    LOGIN_OK = "login_ok"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    LOGOUT = "logout"
    SESSIONS_REVOKED = "sessions_revoked"
    ACCOUNT_ADDED = "account_added"
    ACCOUNT_DISABLED = "account_disabled"
    ACCOUNT_ENABLED = "account_enabled"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 (an event name, not a password)


SECURITY_NAMES: dict[Security, str] = {
    Security.LOGIN_OK: "登录成功",
    Security.LOGIN_FAILED: "登录失败",
    Security.LOGIN_THROTTLED: "登录过频被拒",
    Security.LOGOUT: "退出登录",
    Security.SESSIONS_REVOKED: "会话被注销",
    Security.ACCOUNT_ADDED: "新建账号",
    Security.ACCOUNT_DISABLED: "停用账号",
    Security.ACCOUNT_ENABLED: "启用账号",
    Security.PASSWORD_CHANGED: "修改密码",
}


@dataclass(frozen=True)
class SecurityEvent:
    """One line of the security log: what happened, to which account (as typed, for a failed login), from which
    client address, done by whom (the account itself, an administrator, or ``cli``), with a short detail."""

    at: datetime
    kind: Security
    account_id: str
    client: str = ""
    actor: str = ""
    unit: str = ""
    detail: str = ""


# --- throttling --------------------------------------------------------------------------------------------------

FREE_ACCOUNT_FAILURES = 3
"""Failed logins of one account after which each further attempt waits."""
FREE_CLIENT_FAILURES = 10
"""Failed logins from one client address (any accounts) after which each further attempt waits."""
FIRST_WAIT = timedelta(seconds=2)
LONGEST_WAIT = timedelta(minutes=15)
FAILURE_WINDOW = timedelta(hours=1)
"""Failures older than this are forgotten; for an account, so are those before its last successful login."""


class Failures(NamedTuple):
    """Failed logins counted for one account or one client address, and when the last was."""

    failed: int
    last_at: datetime | None


def wait_after(failures: int, free: int) -> timedelta:
    """The wait after ``failures`` failures of which ``free`` cost nothing: doubling from :data:`FIRST_WAIT`."""
    if failures < free:
        return timedelta(0)
    return min(FIRST_WAIT * (1 << min(failures - free, 20)), LONGEST_WAIT)


def throttle_wait(account: Failures, client: Failures, now: datetime) -> timedelta:
    """How long the next login attempt must still wait (zero: it may be tried now)."""
    waits = [timedelta(0)]
    for failures, free in ((account, FREE_ACCOUNT_FAILURES), (client, FREE_CLIENT_FAILURES)):
        wait = wait_after(failures.failed, free)
        if failures.last_at is not None and wait:
            waits.append(failures.last_at + wait - now)
    return max(waits)


# --- sessions ----------------------------------------------------------------------------------------------------

SESSION_LIFETIME = timedelta(hours=12)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the directory stores of a session token: its SHA-256, so a copy of the table opens no session."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    """A server-side session as an administrator sees it (never the token)."""

    account_id: str
    client: str
    created_at: datetime
    expires_at: datetime


class Directory(Protocol):
    """Accounts, sessions and the security log, wherever they are kept. ``now`` is passed in so the rules (expiry,
    throttling windows) are the caller's clock, not the database's."""

    async def start(self) -> None:
        """Connect and migrate (nothing for memory)."""

    async def close(self) -> None: ...

    async def account(self, account_id: str) -> Account | None: ...

    async def accounts(self, *, unit: str | None = None) -> list[Account]:
        """Every account (of ``unit``), by unit then id."""

    async def add(self, account: Account) -> None:
        """Store a new account; :class:`AccountError` when the id is taken."""

    async def update(self, account_id: str, *, disabled: bool | None = None, password_hash: str | None = None) -> None:
        """Change an account; :class:`AccountError` when there is none."""

    async def open_session(self, token: str, account_id: str, *, client: str, now: datetime) -> None: ...

    async def session_account(self, token: str, *, now: datetime) -> Account | None:
        """The account of a live session (not ended, not expired, account not disabled), else None."""

    async def end_session(self, token: str, *, now: datetime) -> None: ...

    async def end_sessions(self, account_id: str, *, now: datetime) -> int:
        """End every live session of the account; how many there were."""

    async def live_sessions(self, *, now: datetime) -> list[SessionInfo]: ...

    async def record(self, event: SecurityEvent) -> None: ...

    async def failures(self, *, account_id: str | None = None, client: str | None = None, now: datetime) -> Failures:
        """Failed logins within :data:`FAILURE_WINDOW` of the account (since its last success) or of the client."""

    async def security_log(self, *, unit: str | None = None, limit: int = 200) -> list[SecurityEvent]:
        """The latest lines, newest first (of accounts of ``unit``)."""


@dataclass
class _StoredSession:
    account_id: str
    client: str
    created_at: datetime
    expires_at: datetime
    ended: bool = False


@dataclass
class MemoryDirectory:
    """The directory in memory: for tests and in-process use, never for a running portal (nothing survives)."""

    initial: Sequence[Account] = ()
    _accounts: dict[str, Account] = field(default_factory=dict)
    _sessions: dict[str, _StoredSession] = field(default_factory=dict)
    _log: list[SecurityEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._accounts.update({account.id: account for account in self.initial})

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def account(self, account_id: str) -> Account | None:
        return self._accounts.get(account_id)

    async def accounts(self, *, unit: str | None = None) -> list[Account]:
        chosen = (account for account in self._accounts.values() if unit is None or account.unit == unit)
        return sorted(chosen, key=lambda account: (account.unit, account.id))

    async def add(self, account: Account) -> None:
        if account.id in self._accounts:
            raise refuse("account_exists", account.id)
        self._accounts[account.id] = account

    async def update(self, account_id: str, *, disabled: bool | None = None, password_hash: str | None = None) -> None:
        account = self._accounts.get(account_id)
        if account is None:
            raise refuse("unknown_account", account_id)
        changes: dict[str, object] = {}
        if disabled is not None:
            changes["disabled"] = disabled
        if password_hash is not None:
            changes["password_hash"] = password_hash
        self._accounts[account_id] = account.model_copy(update=changes)

    async def open_session(self, token: str, account_id: str, *, client: str, now: datetime) -> None:
        self._sessions[token_digest(token)] = _StoredSession(account_id, client, now, now + SESSION_LIFETIME)

    async def session_account(self, token: str, *, now: datetime) -> Account | None:
        stored = self._sessions.get(token_digest(token))
        if stored is None or stored.ended or stored.expires_at <= now:
            return None
        account = self._accounts.get(stored.account_id)
        return None if account is None or account.disabled else account

    async def end_session(self, token: str, *, now: datetime) -> None:
        stored = self._sessions.get(token_digest(token))
        if stored is not None:
            self._sessions[token_digest(token)] = replace(stored, ended=True)

    async def end_sessions(self, account_id: str, *, now: datetime) -> int:
        ended = 0
        for digest, stored in self._sessions.items():
            if stored.account_id == account_id and not stored.ended and stored.expires_at > now:
                self._sessions[digest] = replace(stored, ended=True)
                ended += 1
        return ended

    async def live_sessions(self, *, now: datetime) -> list[SessionInfo]:
        return [
            SessionInfo(stored.account_id, stored.client, stored.created_at, stored.expires_at)
            for stored in self._sessions.values()
            if not stored.ended and stored.expires_at > now
        ]

    async def record(self, event: SecurityEvent) -> None:
        self._log.append(event)

    async def failures(self, *, account_id: str | None = None, client: str | None = None, now: datetime) -> Failures:
        since = now - FAILURE_WINDOW
        if account_id is not None:
            successes = [e.at for e in self._log if e.kind is Security.LOGIN_OK and e.account_id == account_id]
            since = max([since, *successes])
        counted = [
            event.at
            for event in self._log
            if event.kind is Security.LOGIN_FAILED
            and event.at > since
            and (account_id is None or event.account_id == account_id)
            and (client is None or event.client == client)
        ]
        return Failures(len(counted), max(counted) if counted else None)

    async def security_log(self, *, unit: str | None = None, limit: int = 200) -> list[SecurityEvent]:
        chosen = [event for event in self._log if unit is None or event.unit == unit]
        return sorted(chosen, key=lambda event: event.at, reverse=True)[:limit]
